//! Rendering (issue 16): the browser's requests, made by this fetcher.
//!
//! A rendering browser opens no socket itself: every request it makes
//! (document, scripts, XHR) is intercepted and fetched here, through the
//! same guard, allowed domains, redirect limit and timeouts as any page.

use reqwest::Url;
use rpcsupport::{FetchError, FetchHints, FetchPolicy};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::response::map_error;
use super::{Conditional, Fetcher};

/// One response handed to a rendering browser: any status and type (a
/// script's 404 is the page's business), the body within its cap.
#[derive(Debug)]
pub struct Resource {
    /// Where the body came from, after redirects.
    pub url: Url,
    /// The final response's status.
    pub status: u16,
    /// Its headers, as (name, value), without those that describe the
    /// transfer (the body is handed over decoded, whole).
    pub headers: Vec<(String, String)>,
    /// The body, decompressed, at most the `limit` asked for.
    pub body: Vec<u8>,
    /// The body's share of `max_buffered_body_bytes`, held until dropped.
    pub permit: Option<OwnedSemaphorePermit>,
}

impl Fetcher {
    /// GETs `url` for a rendering browser: redirects followed within
    /// `policy` as for [`Fetcher::fetch`], any status, any type, a body of
    /// at most `limit` bytes (more is [`FetchError::TooLarge`]), all before
    /// `deadline` or `timeout_ms`, whichever comes first.
    pub async fn fetch_resource(
        &self,
        url: &str,
        policy: &FetchPolicy,
        limit: u64,
        deadline: Instant,
    ) -> Result<Resource, FetchError> {
        let deadline = deadline.min(Instant::now() + self.timeout);
        // Unconditional: the browser has no cache to revalidate.
        let unconditional = Conditional::from_hints(&FetchHints::default());
        let mut response = self.follow(url, policy, &unconditional, deadline).await?;
        let too_large = || FetchError::TooLarge {
            url: url.to_owned(),
            limit,
        };
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(too_large());
        }
        let headers = response
            .headers()
            .iter()
            .filter(|(name, _)| {
                !matches!(
                    name.as_str(),
                    "content-encoding" | "content-length" | "transfer-encoding" | "connection"
                )
            })
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        let mut permit = None;
        while let Some(chunk) = response.chunk().await.map_err(|e| map_error(url, e))? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            self.reserve(&mut permit, chunk.len(), deadline)
                .await
                .map_err(|()| FetchError::Timeout {
                    url: url.to_owned(),
                })?;
            body.extend_from_slice(&chunk);
        }
        Ok(Resource {
            url: response.url().clone(),
            status: response.status().as_u16(),
            headers,
            body,
            permit,
        })
    }
}
