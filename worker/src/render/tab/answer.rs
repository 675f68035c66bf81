//! A page's requests, answered: refused (its request and byte budgets,
//! images, writes, other sites) or fetched by the worker's fetcher and
//! handed to the page.

use std::sync::atomic::Ordering;

use rpcsupport::FetchError;
use serde_json::{json, Value};

use super::{Paused, Tab};
use crate::fetch::{is_html, PageHeaders, Resource};

impl Tab<'_> {
    /// Answers one paused request: refused, or fetched by the worker and
    /// handed to the page.
    pub(super) async fn answer(&self, paused: Paused, is_document: bool) {
        let outcome = match self.refusal(&paused, is_document) {
            Some(reason) => Err((reason, "BlockedByClient")),
            None => self.fetch(&paused, is_document).await,
        };
        let session = Some(self.session);
        let timeout = self.call_timeout();
        let sent = match outcome {
            Ok(resource) => {
                let headers: Vec<Value> = resource
                    .headers
                    .iter()
                    .map(|(name, value)| json!({ "name": name, "value": value }))
                    .collect();
                let params = json!({
                    "requestId": paused.id,
                    "responseCode": resource.status,
                    "responseHeaders": headers,
                    "body": base64(&resource.body),
                });
                drop(resource);
                self.conn
                    .call(session, "Fetch.fulfillRequest", params, timeout)
                    .await
            }
            Err((reason, error)) => {
                self.refused(reason);
                self.conn
                    .call(
                        session,
                        "Fetch.failRequest",
                        json!({ "requestId": paused.id, "errorReason": error }),
                        timeout,
                    )
                    .await
            }
        };
        if let Err(e) = sent {
            tracing::debug!(url = %paused.url, error = %e, "could not answer a page's request");
        }
    }

    /// Why `paused` is refused without being fetched, if it is.
    fn refusal(&self, paused: &Paused, is_document: bool) -> Option<&'static str> {
        // Counted as the page asks, whatever the answer.
        let count = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        if count > self.settings.max_requests {
            return Some("requests");
        }
        if is_document {
            return None;
        }
        if !self.settings.load_images
            && matches!(paused.resource.as_str(), "Image" | "Media" | "Font")
        {
            return Some("media");
        }
        // A crawler has nothing to send: only reads are fetched for a page.
        if paused.method != "GET" {
            return Some("method");
        }
        let parsed = url::Url::parse(&paused.url).ok()?;
        // The browser asks for the site's icon on its own, for no page.
        if parsed.path() == "/favicon.ico" {
            return Some("media");
        }
        match parsed.host_str() {
            Some(host) if self.policy.allows_host(host) => None,
            _ => Some("offsite"),
        }
    }

    /// Fetches `paused` through the worker's fetcher, within the page's
    /// byte budget; a failure as (counted reason, the browser's error).
    async fn fetch(
        &self,
        paused: &Paused,
        is_document: bool,
    ) -> Result<Resource, (&'static str, &'static str)> {
        if let (true, Some(doc)) = (is_document, self.prefetched) {
            *self.doc() = Some(Ok((doc.url.clone(), 200, doc.headers.clone())));
            self.bytes
                .fetch_add(doc.text.len() as u64, Ordering::Relaxed);
            return Ok(Resource {
                url: doc.url.clone(),
                status: 200,
                // Decoded already: whatever its <meta charset> says, the
                // header's charset wins.
                headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
                body: doc.text.as_bytes().to_vec(),
                permit: None,
            });
        }
        let room = self
            .settings
            .max_bytes
            .saturating_sub(self.bytes.load(Ordering::Relaxed))
            .min(self.settings.max_dom_bytes);
        if !is_document {
            if let Some(host) = url::Url::parse(&paused.url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
            {
                *self
                    .subrequests
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(host)
                    .or_default() += 1;
            }
        }
        let fetched = self
            .fetcher
            .fetch_resource(&paused.url, self.policy, room, self.deadline)
            .await;
        let fetched = if is_document {
            let checked = fetched.and_then(|r| check_document(&paused.url, r));
            *self.doc() = Some(
                checked
                    .as_ref()
                    .map(|r| (r.url.clone(), r.status, page_headers(r)))
                    .map_err(Clone::clone),
            );
            checked
        } else {
            fetched
        };
        match fetched {
            Ok(resource) => {
                let len = resource.body.len() as u64;
                let before = self.bytes.fetch_add(len, Ordering::Relaxed);
                if before + len > self.settings.max_bytes {
                    // Not handed over, so not counted against the page.
                    self.bytes.fetch_sub(len, Ordering::Relaxed);
                    return Err(("bytes", "BlockedByClient"));
                }
                Ok(resource)
            }
            Err(FetchError::Blocked { .. }) => Err(("blocked_address", "AccessDenied")),
            Err(FetchError::OffsiteRedirect { .. }) => Err(("offsite", "BlockedByClient")),
            Err(FetchError::TooLarge { .. }) => Err(("bytes", "BlockedByClient")),
            Err(FetchError::Timeout { .. }) => Err(("fetch_failed", "TimedOut")),
            Err(_) => Err(("fetch_failed", "Failed")),
        }
    }

    fn refused(&self, reason: &str) {
        self.metrics
            .counter(
                "worker_render_refused_total",
                "Requests of rendered pages refused or failed, by why.",
                &[("reason", reason)],
            )
            .inc();
    }
}

/// The document must be what a fetched page must be: a 2xx HTML page.
fn check_document(url: &str, resource: Resource) -> Result<Resource, FetchError> {
    if !(200..300).contains(&resource.status) {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status: resource.status,
            retry_after_secs: header(&resource, "retry-after").and_then(|v| v.trim().parse().ok()),
        });
    }
    if let Some(ct) = header(&resource, "content-type") {
        if !is_html(ct) {
            return Err(FetchError::NotHtml {
                url: url.to_owned(),
                content_type: ct.to_owned(),
            });
        }
    }
    Ok(resource)
}

/// What a document's headers say of it, for [`crate::parse::meta`]:
/// `X-Robots-Tag` and `Link` (its validators are the shell's, left out).
fn page_headers(resource: &Resource) -> PageHeaders {
    let all = |name: &str| {
        resource
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    };
    PageHeaders {
        robots: all("x-robots-tag"),
        links: all("link"),
        ..PageHeaders::default()
    }
}

fn header<'r>(resource: &'r Resource, name: &str) -> Option<&'r str> {
    resource
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

pub(super) fn paused(params: &Value) -> Paused {
    let s = |ptr: &str| {
        params
            .pointer(ptr)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    Paused {
        id: s("/requestId"),
        url: s("/request/url"),
        method: s("/request/method"),
        resource: s("/resourceType"),
    }
}

/// Standard base64 with padding, as `Fetch.fulfillRequest` takes bodies.
pub(super) fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(ABC[(n >> 18) as usize & 63] as char);
        out.push(ABC[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            ABC[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            ABC[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}
