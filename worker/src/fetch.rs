//! Step 4: HTTP. One shared `reqwest::Client` per worker (one connection
//! pool, so repeated fetches from a site reuse connections), and the
//! mapping of every way a fetch can fail onto [`FetchError`].

use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::redirect::Policy;
use reqwest::{Client, Response, Url};
use rpcsupport::{FetchError, FetchPolicy};

use std::sync::Arc;

use crate::guard::{Blocked, Guard, GuardResolver, Handoff, Lookup, SystemLookup};
use crate::parse::Content;
use crate::{WorkerConfig, WorkerError};

/// A fetched HTML page.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Where the body came from, after redirects: relative links resolve
    /// against this, not the URL asked for.
    pub url: Url,
    /// The Content-Type header, if any (for the charset).
    pub content_type: Option<String>,
    /// The body, decompressed, at most `max_body_bytes`.
    pub body: Vec<u8>,
}

/// Fetches pages with the worker's limits.
pub struct Fetcher {
    client: Client,
    guard: Arc<Guard>,
    max_body_bytes: u64,
    max_redirects: usize,
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
        let guard = Guard::with_handoff(lookup, config.block_private_addresses, handoff);
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
            // internal addresses the crawl did not allow.
            .dns_resolver(Arc::new(GuardResolver(guard.clone())))
            .connect_timeout(config.connect_timeout())
            .timeout(config.timeout())
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
            max_redirects: config.max_redirects,
        })
    }

    /// GETs `url` and returns its body if it is a 2xx page within the size
    /// cap: HTML only, unless `content` is [`Content::Text`]. Redirects are
    /// followed up to the configured limit, but never to a host outside
    /// `policy`'s allowed domains.
    pub async fn fetch(
        &self,
        url: &str,
        policy: &FetchPolicy,
        content: Content,
    ) -> Result<Fetched, FetchError> {
        let mut current = http_url(url, url)?;
        self.guard.allow_explicit(&policy.allowed_domains);
        let mut hops = 0;
        let mut response = loop {
            self.guard
                .check_url(&current)
                .map_err(|b| blocked(url, &b))?;
            let response = self
                .client
                .get(current.clone())
                .send()
                .await
                .map_err(|e| map_error(url, e))?;
            let Some(target) = redirect_target(&response, &current) else {
                break response;
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
        };

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

        let too_large = || FetchError::TooLarge {
            url: url.to_owned(),
            limit: self.max_body_bytes,
        };
        // Content-Length lets us refuse before reading a byte. It is absent
        // for chunked or decompressed bodies, hence the check per chunk.
        let declared = response.content_length();
        if declared.is_some_and(|len| len > self.max_body_bytes) {
            return Err(too_large());
        }
        let capacity = declared.unwrap_or(16 * 1024).min(self.max_body_bytes) as usize;
        let mut body = Vec::with_capacity(capacity);
        while let Some(chunk) = response.chunk().await.map_err(|e| map_error(url, e))? {
            if (body.len() + chunk.len()) as u64 > self.max_body_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            url: response.url().clone(),
            content_type,
            body,
        })
    }
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
    if !response.status().is_redirection() {
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
