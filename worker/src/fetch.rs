//! Step 4: HTTP. One shared `reqwest::Client` per worker (one connection
//! pool, so repeated fetches from a site reuse connections), and the
//! mapping of every way a fetch can fail onto [`FetchError`].

use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use reqwest::redirect::Policy;
use reqwest::{Client, Url};
use rpcsupport::FetchError;

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
    max_body_bytes: u64,
}

impl Fetcher {
    /// Builds the client from `config` (assumed validated).
    pub fn new(config: &WorkerConfig) -> Result<Fetcher, WorkerError> {
        let client = Client::builder()
            .connect_timeout(config.connect_timeout())
            .timeout(config.timeout())
            .user_agent(&config.user_agent)
            .gzip(true)
            .brotli(true)
            // `limited(0)` makes any redirect an error rather than handing
            // back a 3xx page to parse.
            .redirect(Policy::limited(config.max_redirects))
            // Crawling goes straight to the site; an HTTP_PROXY inherited
            // from the environment would silently reroute every fetch.
            .no_proxy()
            .build()
            .map_err(|e| WorkerError::Client(error_chain(&e)))?;
        Ok(Fetcher {
            client,
            max_body_bytes: config.max_body_bytes,
        })
    }

    /// GETs `url` and returns its body if it is a 2xx HTML page within the
    /// size cap.
    pub async fn fetch(&self, url: &str) -> Result<Fetched, FetchError> {
        let parsed = Url::parse(url).map_err(|e| FetchError::InvalidUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(FetchError::InvalidUrl {
                url: url.to_owned(),
                reason: format!("unsupported scheme {:?}", parsed.scheme()),
            });
        }
        let mut response = self
            .client
            .get(parsed)
            .send()
            .await
            .map_err(|e| map_error(url, e))?;

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
        if let Some(ct) = &content_type {
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

fn map_error(url: &str, e: reqwest::Error) -> FetchError {
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
