//! Talking to the cluster: the HTTP client (nodes, deadline, credentials,
//! CA), the reachability check at start, reads retried across nodes, the
//! refresh that makes this store's writes visible, and ES error text.

use std::sync::atomic::Ordering;
use std::time::Duration;

use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::response::Response;
use elasticsearch::http::transport::{
    MultiNodeConnectionPool, SingleNodeConnectionPool, TransportBuilder,
};
use elasticsearch::http::StatusCode;
use elasticsearch::indices::IndicesRefreshParts;
use elasticsearch::Elasticsearch;
// An error with its sources: reqwest's own message ("error sending
// request") hides the useful part ("connection refused").
use rpcsupport::cli::message;
use serde_json::Value as Json;

use super::{Auth, Inner, Settings};
use crate::store::StoreError;
/// First wait between write attempts; doubles each time, up to
/// [`MAX_BACKOFF`]. Six attempts wait about 3 s in all.
pub(super) const FIRST_BACKOFF: Duration = Duration::from_millis(100);
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How often a read is tried; with several URLs, each try goes to the next
/// node, so one dead node does not fail a read.
const READ_ATTEMPTS: u32 = 3;
/// Deadline of one HTTP request. A bulk of 10 000 items fits well inside.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The HTTP client for `settings`: one node or a round-robin pool, the
/// request deadline, credentials and the CA to trust.
pub(super) fn client(settings: &Settings) -> Result<Elasticsearch, StoreError> {
    let builder = match settings.urls.as_slice() {
        [] => return Err(StoreError::Cluster("no Elasticsearch URL given".into())),
        [one] => TransportBuilder::new(SingleNodeConnectionPool::new(one.clone())),
        many => TransportBuilder::new(MultiNodeConnectionPool::round_robin(many.to_vec(), None)),
    };
    let mut builder = builder.timeout(REQUEST_TIMEOUT);
    match &settings.auth {
        Some(Auth::Basic { username, password }) => {
            builder = builder.auth(Credentials::Basic(username.clone(), password.clone()));
        }
        Some(Auth::ApiKey(key)) => {
            let credentials = match key.split_once(':') {
                Some((id, secret)) => Credentials::ApiKey(id.into(), secret.into()),
                None => Credentials::EncodedApiKey(key.clone()),
            };
            builder = builder.auth(credentials);
        }
        None => {}
    }
    if let Some(path) = &settings.ca_cert {
        let pem = std::fs::read(path).map_err(|e| {
            StoreError::Cluster(format!(
                "cannot read CA certificate {}: {e}",
                path.display()
            ))
        })?;
        let cert = Certificate::from_pem(&pem)
            .map_err(|e| StoreError::Cluster(format!("CA certificate {}: {e}", path.display())))?;
        builder = builder.cert_validation(CertificateValidation::Full(cert));
    }
    let transport = builder
        .build()
        .map_err(|e| StoreError::Cluster(format!("cannot set up the HTTP client: {e}")))?;
    Ok(Elasticsearch::new(transport))
}

impl Inner {
    /// Asks every node for its version (the pool hands out nodes in turn);
    /// fine if at least one answers, with a warning for each that does not.
    pub(super) async fn check_reachable(&self, nodes: usize) -> Result<(), StoreError> {
        let mut failures = Vec::new();
        let mut answered = false;
        for _ in 0..nodes {
            match self.client.info().send().await {
                Ok(response) if response.status_code().is_success() => {
                    let body: Json = response.json().await.unwrap_or_default();
                    tracing::info!(
                        version = %body["version"]["number"].as_str().unwrap_or("?"),
                        cluster = %body["cluster_name"].as_str().unwrap_or("?"),
                        "elasticsearch reachable"
                    );
                    answered = true;
                }
                Ok(response) => {
                    let status = response.status_code();
                    let body: Json = response.json().await.unwrap_or_default();
                    let hint = if status == StatusCode::UNAUTHORIZED {
                        " (check es_username / es_password / es_api_key)"
                    } else {
                        ""
                    };
                    failures.push(format!("HTTP {status}{hint}: {}", reason(&body)));
                }
                Err(e) => failures.push(message(&e)),
            }
        }
        for failure in &failures {
            tracing::warn!(%failure, "an Elasticsearch node did not answer");
        }
        if answered {
            Ok(())
        } else {
            Err(StoreError::Cluster(format!(
                "cannot reach Elasticsearch at {}: {}",
                self.urls,
                failures.join("; ")
            )))
        }
    }

    /// Sends a read, again on transport errors, 429 and 5xx (with several
    /// URLs, each try goes to the next node).
    pub(super) async fn read<F, Fut>(&self, send: F) -> Result<Response, StoreError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Response, elasticsearch::Error>>,
    {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let failure = match send().await {
                Ok(response) => {
                    let status = response.status_code().as_u16();
                    if status != 429 && status < 500 {
                        return Ok(response);
                    }
                    let body: Json = response.json().await.unwrap_or_default();
                    format!("HTTP {status}: {}", reason(&body))
                }
                Err(e) => message(&e),
            };
            if attempt >= READ_ATTEMPTS {
                return Err(StoreError::Cluster(format!("{}: {failure}", self.urls)));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            attempt += 1;
        }
    }

    /// [`Inner::read`] once [`Inner::refresh_if_written`] has made every
    /// write answered so far visible: what `count` and `search` send.
    pub(super) async fn read_fresh<F, Fut>(&self, send: F) -> Result<Response, StoreError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Response, elasticsearch::Error>>,
    {
        self.refresh_if_written().await?;
        self.read(send).await
    }

    /// Makes writes answered so far visible to `count` and `search`; see
    /// the module docs.
    pub(super) async fn refresh_if_written(&self) -> Result<(), StoreError> {
        let written = self.writes.load(Ordering::SeqCst);
        if self.refreshed.load(Ordering::SeqCst) >= written {
            return Ok(());
        }
        let response = self
            .read(|| async {
                self.client
                    .indices()
                    .refresh(IndicesRefreshParts::Index(&[&self.index]))
                    .send()
                    .await
            })
            .await?;
        self.ok_json(response).await?;
        self.refreshed.fetch_max(written, Ordering::SeqCst);
        Ok(())
    }

    /// The body of a successful answer, or the error it carries.
    pub(super) async fn ok_json(&self, response: Response) -> Result<Json, StoreError> {
        let status = response.status_code();
        let body: Json = response
            .json()
            .await
            .map_err(|e| StoreError::Cluster(format!("HTTP {status}: unreadable answer: {e}")))?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(StoreError::Cluster(format!(
                "index {}: HTTP {status}: {}",
                self.index,
                reason(&body)
            )))
        }
    }
}

/// The `reason` of an ES error body, or the body itself.
pub(super) fn reason(body: &Json) -> String {
    error_reason(Some(&body["error"]))
}

pub(super) fn error_reason(error: Option<&Json>) -> String {
    match error {
        Some(Json::Object(e)) => {
            let kind = e.get("type").and_then(Json::as_str).unwrap_or("error");
            let reason = e.get("reason").and_then(Json::as_str).unwrap_or_default();
            let cause = e
                .get("caused_by")
                .and_then(|c| c.get("reason"))
                .and_then(Json::as_str);
            match cause {
                Some(cause) if cause != reason => format!("{kind}: {reason} ({cause})"),
                _ => format!("{kind}: {reason}"),
            }
        }
        Some(Json::String(s)) => s.clone(),
        Some(other) if !other.is_null() => other.to_string(),
        _ => "no reason given".into(),
    }
}
