//! What a response means: whether it is a page the worker takes (status,
//! type), where a redirect points, and every way reqwest fails as a
//! [`FetchError`].

use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::{Response, StatusCode, Url};
use rpcsupport::FetchError;

use crate::guard::Blocked;
use crate::parse::Content;

/// Refuses a non-2xx status, and for a page ([`Content::Html`]) a type
/// that is not HTML; the Content-Type, if any, for the decoder.
pub(super) fn check_response(
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

/// `raw` as an absolute http(s) URL, or why not (reported for `url`).
pub(super) fn http_url(url: &str, raw: &str) -> Result<Url, FetchError> {
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
pub(super) fn redirect_target(response: &Response, current: &Url) -> Option<Url> {
    // 304 is a 3xx but no redirect: the answer to our validators.
    if !response.status().is_redirection() || response.status() == StatusCode::NOT_MODIFIED {
        return None;
    }
    let location = response.headers().get(LOCATION)?.to_str().ok()?;
    current.join(location.trim()).ok()
}

/// HTML or XHTML; parameters (charset) and case do not matter.
pub(crate) fn is_html(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("text/html")
        || essence.eq_ignore_ascii_case("application/xhtml+xml")
}

/// `Retry-After` in its delta-seconds form. The HTTP-date form is rare from
/// the servers that rate-limit crawlers and is treated as absent.
pub(super) fn retry_after(headers: &HeaderMap) -> Option<u64> {
    headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}

pub(super) fn blocked(url: &str, b: &Blocked) -> FetchError {
    FetchError::Blocked {
        url: url.to_owned(),
        reason: b.to_string(),
    }
}

pub(super) fn map_error(url: &str, e: reqwest::Error) -> FetchError {
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
pub(super) fn error_chain(e: &reqwest::Error) -> String {
    rpcsupport::cli::message(e)
}
