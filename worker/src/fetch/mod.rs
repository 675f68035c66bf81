//! Step 4: HTTP. One shared `reqwest::Client` per worker (one connection
//! pool, so repeated fetches from a site reuse connections), and the
//! mapping of every way a fetch can fail onto [`FetchError`].
//!
//! # Layout
//!
//! - this file: [`Fetcher`]: the client, one deadline for the whole fetch,
//!   redirects followed by hand (each hop checked by the guard and the
//!   crawl's allowed domains), the body read within its cap and reserved
//!   against `max_buffered_body_bytes`, and the validators sent.
//! - `page`: what a fetch gives, [`Fetched`] and its [`PageHeaders`].
//! - `response`: whether a response is a page the worker takes (status,
//!   type), where a redirect points, and reqwest's failures as
//!   [`FetchError`].
//! - `resource`: [`Fetcher::fetch_resource`], the same fetch for a
//!   rendering browser's requests ([`Resource`]: any status and type).

mod page;
mod resource;
mod response;
#[cfg(test)]
mod tests;

use reqwest::header::{HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH};
use reqwest::redirect::Policy;
use reqwest::{Client, Response, StatusCode};
use rpcsupport::{FetchError, FetchHints, FetchPolicy};

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::guard::{AllowInternal, Guard, GuardResolver, Handoff, Lookup, SystemLookup};
use crate::parse::Content;
use crate::{WorkerConfig, WorkerError};

pub use page::{Fetched, PageHeaders};
pub use resource::Resource;
pub(crate) use response::is_html;
use response::{blocked, check_response, error_chain, http_url, map_error, redirect_target};

/// Longest `ETag` or `Last-Modified` kept (bytes). The engine stores the
/// validators of every URL it crawls, and real ones are under 100 bytes; a
/// longer one is not kept, so the next fetch of the page is unconditional.
pub const MAX_VALIDATOR_BYTES: usize = 1024;

/// Most room made for a body before its bytes arrive (1 MiB).
const INITIAL_BODY_BYTES: u64 = 1024 * 1024;

/// Values of one header kept (`X-Robots-Tag`, `Link`): real pages send one
/// or two; the rest are ignored.
pub const MAX_HEADER_VALUES: usize = 16;

/// Fetches pages with the worker's limits.
pub struct Fetcher {
    client: Client,
    guard: Arc<Guard>,
    max_body_bytes: u64,
    max_text_bytes: u64,
    max_sitemap_bytes: u64,
    max_redirects: usize,
    /// One deadline for a whole fetch: every redirect hop and the body.
    timeout: Duration,
    /// `max_buffered_body_bytes` as permits: a body takes one per byte as it
    /// arrives, so the bodies held at once, across requests, are bounded;
    /// a fetch that finds no room waits, within its deadline. Never closed.
    buffered: Arc<Semaphore>,
}

impl Fetcher {
    /// Builds the client from `config` (assumed validated), resolving
    /// names with the system resolver.
    pub fn new(config: &WorkerConfig) -> Result<Fetcher, WorkerError> {
        Fetcher::with_lookup(config, Arc::new(SystemLookup), None)
    }

    /// Like [`Fetcher::new`], resolving names with `lookup` and showing the
    /// addresses handed to the client to `handoff` (tests map names to
    /// addresses without any real resolution, and refuse any connection
    /// they did not expect).
    pub fn with_lookup(
        config: &WorkerConfig,
        lookup: Arc<dyn Lookup>,
        handoff: Option<Handoff>,
    ) -> Result<Fetcher, WorkerError> {
        let allow =
            AllowInternal::parse(&config.allow_internal).map_err(|reason| WorkerError::Config {
                key: "allow_internal",
                reason,
            })?;
        let guard = Guard::with_handoff(lookup, config.block_private_addresses, allow, handoff);
        // https through rustls with the ring provider. Installing the
        // process-wide default fails harmlessly if one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = Client::builder();
        if !config.tls_ca_file.trim().is_empty() {
            let path = config.tls_ca_file.trim();
            let pem = std::fs::read(path).map_err(|e| WorkerError::Config {
                key: "tls_ca_file",
                reason: format!("cannot read {path}: {e}"),
            })?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| WorkerError::Config {
                    key: "tls_ca_file",
                    reason: format!("{path}: {e}"),
                })?;
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            // Every name is resolved through the guard, which drops
            // internal addresses the worker's config does not allow.
            .dns_resolver(Arc::new(GuardResolver(guard.clone())))
            // No client-wide timeout: it would restart at every redirect
            // hop. `fetch` gives each hop what is left of one deadline.
            .connect_timeout(config.connect_timeout())
            .user_agent(&config.user_agent)
            .gzip(true)
            .brotli(true)
            // Redirects are followed by hand in `fetch`, so each hop can be
            // checked against the crawl's allowed domains before it is made.
            .redirect(Policy::none())
            // Crawling goes straight to the site; an HTTP_PROXY inherited
            // from the environment would silently reroute every fetch.
            .no_proxy()
            .build()
            .map_err(|e| WorkerError::Client(error_chain(&e)))?;
        Ok(Fetcher {
            client,
            guard,
            max_body_bytes: config.max_body_bytes,
            max_text_bytes: config.max_robots_bytes,
            max_sitemap_bytes: config.max_sitemap_bytes,
            max_redirects: config.max_redirects,
            timeout: config.timeout(),
            buffered: Arc::new(Semaphore::new(buffered_permits(config))),
        })
    }

    /// GETs `url` and returns its body if it is a 2xx page within the size
    /// cap: HTML only, unless `content` is [`Content::Text`] or
    /// [`Content::Sitemap`] (then any type, and a body over its cap,
    /// `max_robots_bytes` or `max_sitemap_bytes`, is cut rather than
    /// refused).
    /// Redirects are followed up to the configured limit, but never to a
    /// host outside `policy`'s allowed domains (which limit, and never
    /// widen: internal addresses are the guard's, from the worker's
    /// config). The whole fetch, every hop and the body, has `timeout_ms`.
    pub async fn fetch(
        &self,
        url: &str,
        policy: &FetchPolicy,
        content: Content,
    ) -> Result<Fetched, FetchError> {
        self.fetch_with(url, policy, content, &FetchHints::default())
            .await
    }

    /// Like [`Fetcher::fetch`], sending `hints`' validators as
    /// `If-None-Match` / `If-Modified-Since` (at every hop: which one is
    /// final is not known in advance, and the validators were the final
    /// URL's). A 304 answer to them is a success, with an empty body.
    pub async fn fetch_with(
        &self,
        url: &str,
        policy: &FetchPolicy,
        content: Content,
        hints: &FetchHints,
    ) -> Result<Fetched, FetchError> {
        let deadline = Instant::now() + self.timeout;
        let conditional = Conditional::from_hints(hints);
        let mut response = self.follow(url, policy, &conditional, deadline).await?;
        let headers = PageHeaders::from_headers(response.headers());
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED && !conditional.is_empty() {
            return Ok(Fetched {
                url: response.url().clone(),
                status: status.as_u16(),
                headers,
                content_type: None,
                body: Vec::new(),
                truncated: false,
                permit: None,
            });
        }
        let content_type = check_response(url, &response, content)?;
        let (body, truncated, permit) = self
            .read_body(url, &mut response, content, deadline)
            .await?;
        Ok(Fetched {
            url: response.url().clone(),
            status: status.as_u16(),
            headers,
            content_type,
            body,
            truncated,
            permit,
        })
    }

    /// GETs `url`, following redirects within `policy` and the redirect
    /// limit, each hop checked by the guard; the final response, whatever
    /// its status.
    async fn follow(
        &self,
        url: &str,
        policy: &FetchPolicy,
        conditional: &Conditional,
        deadline: Instant,
    ) -> Result<Response, FetchError> {
        let mut current = http_url(url, url)?;
        let mut hops = 0;
        loop {
            self.guard
                .check_url(&current)
                .map_err(|b| blocked(url, &b))?;
            self.guard
                .handoff_literal(&current)
                .map_err(|reason| FetchError::Connect {
                    url: url.to_owned(),
                    reason,
                })?;
            // reqwest's per-request timeout runs until the body is read, so
            // the last hop's also bounds the body.
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(FetchError::Timeout {
                    url: url.to_owned(),
                });
            }
            let response = conditional
                .apply(self.client.get(current.clone()))
                .timeout(left)
                .send()
                .await
                .map_err(|e| map_error(url, e))?;
            let Some(target) = redirect_target(&response, &current) else {
                return Ok(response);
            };
            let target = http_url(url, target.as_str())?;
            if !target.host_str().is_some_and(|h| policy.allows_host(h)) {
                return Err(FetchError::OffsiteRedirect {
                    url: url.to_owned(),
                    target: target.into(),
                });
            }
            hops += 1;
            if hops > self.max_redirects {
                return Err(FetchError::TooManyRedirects {
                    url: url.to_owned(),
                });
            }
            current = target;
        }
    }

    /// Reads the body within its cap, each chunk reserved against
    /// `max_buffered_body_bytes` before it is kept: the body, whether it was
    /// cut (a text only), and the permit it holds.
    async fn read_body(
        &self,
        url: &str,
        response: &mut Response,
        content: Content,
        deadline: Instant,
    ) -> Result<(Vec<u8>, bool, Option<OwnedSemaphorePermit>), FetchError> {
        // A text (robots.txt) is read up to its own cap and cut there: its
        // start is still worth obeying. A page over the cap is refused.
        // A sitemap is read up to max_sitemap_bytes, not max_body_bytes:
        // the protocol allows 50 MiB uncompressed, and a gzipped one is
        // smaller than that. Past it, it is cut and its start parsed.
        let (limit, cut) = match content {
            Content::Html => (self.max_body_bytes, false),
            Content::Text => (self.max_text_bytes, true),
            Content::Sitemap => (self.max_sitemap_bytes, true),
        };
        let too_large = || FetchError::TooLarge {
            url: url.to_owned(),
            limit,
        };
        // Content-Length lets us refuse before reading a byte. It is absent
        // for chunked or decompressed bodies, hence the check per chunk.
        let declared = response.content_length();
        if !cut && declared.is_some_and(|len| len > limit) {
            return Err(too_large());
        }
        // A declared length is only a claim: room for more than
        // INITIAL_BODY_BYTES is made as the bytes arrive (and are reserved),
        // so a server declaring 50 MiB and sending nothing costs nothing.
        let capacity = declared
            .unwrap_or(16 * 1024)
            .min(limit)
            .min(INITIAL_BODY_BYTES) as usize;
        let mut body = Vec::with_capacity(capacity);
        let mut truncated = false;
        let mut permit: Option<OwnedSemaphorePermit> = None;
        while let Some(chunk) = response.chunk().await.map_err(|e| map_error(url, e))? {
            let room = limit as usize - body.len();
            let take = chunk.len().min(room);
            if chunk.len() > room && !cut {
                return Err(too_large());
            }
            self.reserve(&mut permit, take, deadline)
                .await
                .map_err(|()| FetchError::Timeout {
                    url: url.to_owned(),
                })?;
            body.extend_from_slice(&chunk[..take]);
            if take < chunk.len() {
                truncated = true;
                break;
            }
        }
        // A sitemap is cut anywhere: XML is often one line, and its parser
        // leaves out the entry or line the cut went through.
        if truncated && content == Content::Text {
            // A partial last line could be half a rule ("Disallow: /pri"):
            // keep whole lines only.
            let keep = body.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            body.truncate(keep);
        }
        Ok((body, truncated, permit))
    }

    /// Adds `bytes` permits to `permit`, waiting for room until `deadline`
    /// (`Err` when it passes first).
    async fn reserve(
        &self,
        permit: &mut Option<OwnedSemaphorePermit>,
        bytes: usize,
        deadline: Instant,
    ) -> Result<(), ()> {
        // A body never needs more than the whole budget (validated to hold
        // max_body_bytes); the cap only guards the u32 of acquire_many.
        let bytes = bytes.min(u32::MAX as usize) as u32;
        if bytes == 0 {
            return Ok(());
        }
        let more =
            tokio::time::timeout_at(deadline, self.buffered.clone().acquire_many_owned(bytes))
                .await
                .map_err(|_| ())?
                // Never closed, so acquiring cannot fail.
                .expect("body semaphore is never closed");
        match permit {
            Some(p) => p.merge(more),
            None => *permit = Some(more),
        }
        Ok(())
    }
}

/// The validators a fetch sends, as header values (a hint that is not a
/// valid header value is not sent: the fetch is then unconditional).
struct Conditional {
    if_none_match: Option<HeaderValue>,
    if_modified_since: Option<HeaderValue>,
}

impl Conditional {
    fn from_hints(hints: &FetchHints) -> Conditional {
        let value = |v: &Option<String>| v.as_deref().and_then(|v| HeaderValue::from_str(v).ok());
        Conditional {
            if_none_match: value(&hints.etag),
            if_modified_since: value(&hints.last_modified),
        }
    }

    fn is_empty(&self) -> bool {
        self.if_none_match.is_none() && self.if_modified_since.is_none()
    }

    fn apply(&self, mut request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(v) = &self.if_none_match {
            request = request.header(IF_NONE_MATCH, v.clone());
        }
        if let Some(v) = &self.if_modified_since {
            request = request.header(IF_MODIFIED_SINCE, v.clone());
        }
        request
    }
}

/// `max_buffered_body_bytes` as a permit count.
fn buffered_permits(config: &WorkerConfig) -> usize {
    config
        .max_buffered_body_bytes
        .min(tokio::sync::Semaphore::MAX_PERMITS as u64) as usize
}
