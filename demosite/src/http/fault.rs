//! The `/fault/...` routes: each provokes one way a fetch can fail (see
//! [`super::router`] for the list).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{not_found, redirect, small_page, AppState};

/// Largest body `/fault/big/{bytes}` will build, so a typo cannot eat RAM.
const MAX_BIG_BYTES: usize = 256 * 1024 * 1024;
/// Longest delay `/fault/slow/{ms}` will sleep.
const MAX_SLOW_MS: u64 = 60_000;

pub(super) async fn fault_status(Path(code): Path<String>, RawQuery(query): RawQuery) -> Response {
    let Some(status) = code
        .parse::<u16>()
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
    else {
        return not_found();
    };
    let mut response = small_page(status.as_str());
    *response.status_mut() = status;
    let retry_after = query
        .as_deref()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("retry_after=")))
        .and_then(|s| s.parse::<u64>().ok());
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, secs.into());
    }
    response
}

pub(super) async fn fault_redirect(Path(n): Path<String>) -> Response {
    match n.parse::<u32>() {
        Ok(0) => redirect("/"),
        Ok(n) => redirect(&format!("/fault/redirect/{}", n - 1)),
        Err(_) => not_found(),
    }
}

pub(super) async fn fault_redirect_loop() -> Response {
    redirect("/fault/redirect-loop")
}

pub(super) async fn fault_slow(Path(ms): Path<String>) -> Response {
    let Ok(ms) = ms.parse::<u64>() else {
        return not_found();
    };
    tokio::time::sleep(Duration::from_millis(ms.min(MAX_SLOW_MS))).await;
    small_page("slow")
}

pub(super) async fn fault_big(Path(bytes): Path<String>, RawQuery(query): RawQuery) -> Response {
    let Some(bytes) = bytes.parse::<usize>().ok().filter(|&b| b <= MAX_BIG_BYTES) else {
        return not_found();
    };
    let open = b"<!DOCTYPE html><html><body><p>";
    let close = b"</p></body></html>";
    let mut body = Vec::with_capacity(bytes);
    if bytes >= open.len() + close.len() {
        body.extend_from_slice(open);
        body.resize(bytes - close.len(), b'x');
        body.extend_from_slice(close);
    } else {
        body.resize(bytes, b'x');
    }
    let content_type = [(header::CONTENT_TYPE, "text/html; charset=utf-8")];
    if query.as_deref() == Some("chunked=1") {
        // A streamed body has no Content-Length, so a client cannot refuse
        // it up front and must enforce its cap while reading.
        let chunks: Vec<Result<Vec<u8>, std::convert::Infallible>> =
            body.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
        let stream = futures::stream::iter(chunks);
        (content_type, Body::from_stream(stream)).into_response()
    } else {
        (content_type, body).into_response()
    }
}

/// Promises 100 000 bytes, sends a few, then breaks the connection.
pub(super) async fn fault_truncated() -> Response {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(b"<html><body><p>the start of a page".to_vec()),
        Err(std::io::Error::other("connection dropped mid-body")),
    ];
    (
        [(header::CONTENT_TYPE, "text/html")],
        Body::from_stream(futures::stream::iter(chunks)),
    )
        .into_response()
}

/// Redirects to the `url` query parameter, wherever it points.
pub(super) async fn fault_redirect_to(RawQuery(query): RawQuery) -> Response {
    match query.as_deref().and_then(|q| q.strip_prefix("url=")) {
        Some(to) => redirect(to),
        None => not_found(),
    }
}

/// A small gzip body that inflates to `bytes` bytes of HTML.
pub(super) async fn fault_gzip_bomb(Path(bytes): Path<String>) -> Response {
    use std::io::Write;
    let Some(bytes) = bytes.parse::<usize>().ok().filter(|&b| b <= MAX_BIG_BYTES) else {
        return not_found();
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = gz.write_all(b"<html><body><p>");
    let zeros = vec![b'0'; 64 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(zeros.len());
        let _ = gz.write_all(&zeros[..n]);
        left -= n;
    }
    let body = gz.finish().unwrap_or_default();
    (
        [
            (header::CONTENT_TYPE, "text/html"),
            (header::CONTENT_ENCODING, "gzip"),
        ],
        body,
    )
        .into_response()
}

/// Declared UTF-8, with bytes that are not; and one good link.
pub(super) async fn fault_invalid_utf8() -> Response {
    let mut body = b"<html><body><p>bad \xff\xfe bytes \xc3</p>".to_vec();
    body.extend_from_slice(b"<a href=\"/fault/status/204\">on</a></body></html>");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// GBK bytes declared as UTF-8.
pub(super) async fn fault_wrong_charset() -> Response {
    let (gbk, _, _) = encoding_rs::GBK.encode("<html><body><p>北京的征婚资料</p></body></html>");
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        gbk.into_owned(),
    )
        .into_response()
}

/// Binary noise served as HTML.
pub(super) async fn fault_binary() -> Response {
    let mut x: u32 = 0x9e37_79b9;
    let noise: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    ([(header::CONTENT_TYPE, "text/html")], noise).into_response()
}

/// `depth` nested `<div>`s with a link at the bottom.
pub(super) async fn fault_nested(Path(depth): Path<String>) -> Response {
    let Some(depth) = depth.parse::<usize>().ok().filter(|&d| d <= 1_000_000) else {
        return not_found();
    };
    let mut body = String::with_capacity(depth * 11 + 100);
    body.push_str("<html><body>");
    for _ in 0..depth {
        body.push_str("<div>");
    }
    body.push_str("<a href=\"/fault/status/204\">deep</a>");
    for _ in 0..depth {
        body.push_str("</div>");
    }
    body.push_str("</body></html>");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// Links a crawler must survive: exotic schemes, broken and huge URLs,
/// unicode hosts (off-site, so never fetched), plus one good link.
pub(super) async fn fault_links() -> Response {
    // Off-site (another loopback address), so it is dropped, never fetched.
    let huge = format!("http://127.0.0.2:1/{}", "a".repeat(200_000));
    let links = [
        "javascript:alert(1)",
        "mailto:someone@example.com",
        "data:text/html,<p>x</p>",
        "tel:+123",
        "http://[::1",
        "http://exa mple.com/",
        "http:///nohost",
        "http://例え.テスト/ページ",
        "http://xn--r8jz45g.xn--zckzah/",
        "//",
        "http://%zz/",
        "/fault/status/204#frag",
        huge.as_str(),
    ];
    let mut body = String::from("<html><body>");
    for l in links {
        body.push_str(&format!("<a href=\"{l}\">x</a>"));
    }
    body.push_str("</body></html>");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

pub(super) async fn fault_not_html() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        "{\"not\":\"html\"}",
    )
        .into_response()
}

pub(super) async fn fault_flaky(
    State(state): State<Arc<AppState>>,
    Path((key, fails)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let status = query
        .as_deref()
        .and_then(|q| q.strip_prefix("status="))
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let Ok(fails) = fails.parse::<u32>() else {
        return not_found();
    };
    let failed = {
        // A poisoned lock only means another handler panicked mid-update of
        // a counter; the counts are still usable.
        let mut counts = state.flaky.lock().unwrap_or_else(|e| e.into_inner());
        let seen = counts.entry(key).or_insert(0);
        if *seen < fails {
            *seen += 1;
            true
        } else {
            false
        }
    };
    if failed {
        let mut response = small_page("try again");
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, 1u32.into());
        response
    } else {
        small_page("ok")
    }
}
