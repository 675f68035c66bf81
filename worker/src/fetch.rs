//! Step 4: HTTP. One shared `reqwest::Client` per worker (one connection
//! pool, so repeated fetches from a site reuse connections), and the
//! mapping of every way a fetch can fail onto [`FetchError`].

use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    LAST_MODIFIED, LINK, LOCATION, RETRY_AFTER,
};
use reqwest::redirect::Policy;
use reqwest::{Client, Response, StatusCode, Url};
use rpcsupport::{content_hash, FetchError, FetchHints, FetchPolicy, PageMeta};

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::guard::{AllowInternal, Blocked, Guard, GuardResolver, Handoff, Lookup, SystemLookup};
use crate::parse::Content;
use crate::{WorkerConfig, WorkerError};

/// Longest `ETag` or `Last-Modified` kept (bytes). The engine stores the
/// validators of every URL it crawls, and real ones are under 100 bytes; a
/// longer one is not kept, so the next fetch of the page is unconditional.
pub const MAX_VALIDATOR_BYTES: usize = 1024;

/// Most room made for a body before its bytes arrive (1 MiB).
const INITIAL_BODY_BYTES: u64 = 1024 * 1024;

/// Values of one header kept (`X-Robots-Tag`, `Link`): real pages send one
/// or two; the rest are ignored.
pub const MAX_HEADER_VALUES: usize = 16;

/// A fetched page.
#[derive(Debug)]
pub struct Fetched {
    /// Where the body came from, after redirects: relative links resolve
    /// against this, not the URL asked for.
    pub url: Url,
    /// The final response's status: a 2xx, or 304 when the request's
    /// validators matched (then `body` is empty).
    pub status: u16,
    /// What the final response's headers say about the page itself.
    pub headers: PageHeaders,
    /// The Content-Type header, if any (for the charset).
    pub content_type: Option<String>,
    /// The body, decompressed, at most `max_body_bytes` (for
    /// [`Content::Text`], at most `max_robots_bytes`; for
    /// [`Content::Sitemap`], `max_sitemap_bytes`).
    pub body: Vec<u8>,
    /// Whether `body` is only the start of a longer text (cut at its last
    /// whole line) or sitemap (cut anywhere); HTML bodies are never cut
    /// here, they are refused.
    pub truncated: bool,
    /// The body's share of `max_buffered_body_bytes`, one permit per byte,
    /// held until this page (or the text decoded from it) is dropped.
    pub permit: Option<OwnedSemaphorePermit>,
}

impl Fetched {
    /// What the response alone says of the page: its status, validators
    /// and body hash, and whether it is unchanged since the fetch `hints`
    /// describe. A 304 is unchanged, with the validators it sent (or, when
    /// it omits them, the hinted ones, which still hold). A 200 whose body
    /// hashes as `hints.content_hash` is unchanged too: the bytes are the
    /// same as last time (a different body with the same FNV-1a 64 hash is
    /// a 1 in 2^64 chance), even if the server's validators changed or it
    /// sends none, so the page need not be parsed again.
    pub fn page_meta(&self, hints: &FetchHints) -> PageMeta {
        let etag = self.headers.etag.clone();
        let last_modified = self.headers.last_modified.clone();
        if self.status == StatusCode::NOT_MODIFIED.as_u16() {
            return PageMeta {
                status: self.status,
                unchanged: true,
                etag: etag.or_else(|| hints.etag.clone()),
                last_modified: last_modified.or_else(|| hints.last_modified.clone()),
                ..PageMeta::default()
            };
        }
        // FNV-1a runs at about a byte a cycle: a few ms for the largest
        // page, less than the thread hop that moving it would cost.
        let hash = content_hash(&self.body);
        PageMeta {
            status: self.status,
            unchanged: hints.content_hash == Some(hash),
            etag,
            last_modified,
            content_hash: Some(hash),
            ..PageMeta::default()
        }
    }
}

/// The final response's headers that describe the page, copied out of the
/// response (bounded by [`MAX_VALIDATOR_BYTES`] and [`MAX_HEADER_VALUES`]).
/// After redirects they are the final URL's, as the validators a recrawl
/// sends must be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageHeaders {
    /// `ETag`, as sent.
    pub etag: Option<String>,
    /// `Last-Modified`, as sent.
    pub last_modified: Option<String>,
    /// The `X-Robots-Tag` values.
    pub robots: Vec<String>,
    /// The `Link` values (for `rel="canonical"`).
    pub links: Vec<String>,
}

impl PageHeaders {
    fn from_headers(headers: &HeaderMap) -> PageHeaders {
        let validator = |name: HeaderName| {
            let value = headers.get(name)?.to_str().ok()?.trim();
            (!value.is_empty() && value.len() <= MAX_VALIDATOR_BYTES).then(|| value.to_owned())
        };
        let all = |name: &str| {
            headers
                .get_all(name)
                .iter()
                .take(MAX_HEADER_VALUES)
                .filter_map(|v| v.to_str().ok())
                .map(str::to_owned)
                .collect()
        };
        PageHeaders {
            etag: validator(ETAG),
            last_modified: validator(LAST_MODIFIED),
            robots: all("x-robots-tag"),
            links: all(LINK.as_str()),
        }
    }
}

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

/// Refuses a non-2xx status, and for a page ([`Content::Html`]) a type
/// that is not HTML; the Content-Type, if any, for the decoder.
fn check_response(
    url: &str,
    response: &Response,
    content: Content,
) -> Result<Option<String>, FetchError> {
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
            retry_after_secs: retry_after(response.headers()),
        });
    }

    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if let (Content::Html, Some(ct)) = (content, &content_type) {
        if !is_html(ct) {
            return Err(FetchError::NotHtml {
                url: url.to_owned(),
                content_type: ct.clone(),
            });
        }
    }
    Ok(content_type)
}

/// `max_buffered_body_bytes` as a permit count.
fn buffered_permits(config: &WorkerConfig) -> usize {
    config
        .max_buffered_body_bytes
        .min(tokio::sync::Semaphore::MAX_PERMITS as u64) as usize
}

/// `raw` as an absolute http(s) URL, or why not (reported for `url`).
fn http_url(url: &str, raw: &str) -> Result<Url, FetchError> {
    let parsed = Url::parse(raw).map_err(|e| FetchError::InvalidUrl {
        url: url.to_owned(),
        reason: format!("{raw}: {e}"),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(FetchError::InvalidUrl {
            url: url.to_owned(),
            reason: format!("{raw}: not an http(s) URL"),
        });
    }
    Ok(parsed)
}

/// Where a redirect response points, resolved against the URL that
/// answered; `None` for anything that is not a redirect with a usable
/// Location (a 3xx without one is then reported as its status).
fn redirect_target(response: &Response, current: &Url) -> Option<Url> {
    // 304 is a 3xx but no redirect: the answer to our validators.
    if !response.status().is_redirection() || response.status() == StatusCode::NOT_MODIFIED {
        return None;
    }
    let location = response.headers().get(LOCATION)?.to_str().ok()?;
    current.join(location.trim()).ok()
}

/// HTML or XHTML; parameters (charset) and case do not matter.
fn is_html(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("text/html")
        || essence.eq_ignore_ascii_case("application/xhtml+xml")
}

/// `Retry-After` in its delta-seconds form. The HTTP-date form is rare from
/// the servers that rate-limit crawlers and is treated as absent.
fn retry_after(headers: &HeaderMap) -> Option<u64> {
    headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}

fn blocked(url: &str, b: &Blocked) -> FetchError {
    FetchError::Blocked {
        url: url.to_owned(),
        reason: b.to_string(),
    }
}

fn map_error(url: &str, e: reqwest::Error) -> FetchError {
    // The guard's refusal surfaces as a connect error deep in the chain.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(b) = err.downcast_ref::<Blocked>() {
            return blocked(url, b);
        }
        source = err.source();
    }
    let url = url.to_owned();
    // Order matters: a connect timeout is both `is_connect` and
    // `is_timeout`, and we report it as the timeout it is.
    if e.is_redirect() {
        FetchError::TooManyRedirects { url }
    } else if e.is_timeout() {
        FetchError::Timeout { url }
    } else if e.is_builder() {
        FetchError::InvalidUrl {
            url,
            reason: error_chain(&e),
        }
    } else if e.is_connect() || e.is_request() || e.is_body() {
        // Refused, reset, or cut off mid-body: all "the connection could
        // not be made or broke off", and all worth retrying.
        FetchError::Connect {
            url,
            reason: error_chain(&e),
        }
    } else {
        FetchError::Other {
            url,
            reason: error_chain(&e),
        }
    }
}

/// The error and its sources, `: `-separated. reqwest's own message is just
/// "error sending request"; the cause ("Connection refused") is below it.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

// --- Rendering (issue 16): the browser's requests, made by this fetcher ---
//
// A rendering browser opens no socket itself: every request it makes
// (document, scripts, XHR) is intercepted and fetched here, through the same
// guard, allowed domains, redirect limit and timeouts as any page.

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Only HTML and XHTML pass, whatever the case or parameters.
    #[test]
    fn html_content_types() {
        assert!(is_html("text/html"));
        assert!(is_html("Text/HTML; charset=gbk"));
        assert!(is_html("application/xhtml+xml"));
        assert!(!is_html("application/json"));
        assert!(!is_html("text/plain; charset=utf-8"));
        assert!(!is_html("image/png"));
    }

    /// Retry-After in seconds is read; the date form is ignored.
    #[test]
    fn retry_after_seconds() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, " 120 ".parse().unwrap());
        assert_eq!(retry_after(&h), Some(120));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }
}
