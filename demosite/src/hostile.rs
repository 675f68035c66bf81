//! `/hostile/...`: pages built to hurt a crawler, the open web's worst in
//! miniature (issue 11). A crawl of [`INDEX`] reaches each of them once:
//!
//! - `/hostile/link-flood/{n}`: `n` short relative links (`<a href=v1>`),
//!   about 16 bytes each, so 500,000 of them fit a 10 MiB body cap.
//! - `/hostile/base-href/{bytes}/{links}`: a `<base href>` of `bytes` bytes
//!   and `links` relative links that would resolve against it (a 1 MB base
//!   times 5,000 links is 5 GB of URLs for a crawler that resolves first).
//! - `/hostile/long-links/{count}/{bytes}`: `count` links each `bytes`
//!   long (over the 8 KiB a crawler should accept).
//! - `/hostile/big-attribute/{bytes}`: one attribute of `bytes` bytes.
//! - `/hostile/trickle/{bytes}`: a page that sends one byte a second.
//! - `/hostile/slow-redirects/{hops}/{ms}`: `hops` redirects, each after
//!   `ms` milliseconds: every hop fits a fetch timeout, the chain may not.
//! - `/hostile/void/...`: a 404, where the floods point.
//!
//! Deep nesting is `/fault/nested/{depth}`; a huge robots.txt is
//! [`crate::SiteOptions::robots_bytes`]. Every size has a ceiling, so a
//! typo cannot make the site itself eat the machine.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The page that links to every hostile route with the sizes of issue 11.
pub const INDEX: &str = "/hostile/";

/// Largest body any hostile route builds in memory.
const MAX_BYTES: usize = 64 * 1024 * 1024;
/// Most links a flood page holds.
const MAX_LINKS: usize = 2_000_000;
/// Longest a trickle may last (one byte a second).
const MAX_TRICKLE_BYTES: u64 = 600;
/// Most hops and longest wait per hop of a slow redirect chain.
const MAX_HOPS: u32 = 50;
const MAX_HOP_MS: u64 = 60_000;

/// The hostile routes, for any router state (none of them needs any).
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/hostile/", get(index))
        .route("/hostile/link-flood/{n}", get(link_flood))
        .route("/hostile/base-href/{bytes}/{links}", get(base_href))
        .route("/hostile/long-links/{count}/{bytes}", get(long_links))
        .route("/hostile/big-attribute/{bytes}", get(big_attribute))
        .route("/hostile/trickle/{bytes}", get(trickle))
        .route("/hostile/slow-redirects/{hops}/{ms}", get(slow_redirects))
        .route("/hostile/void/{*rest}", get(void))
}

/// The hostile URLs [`INDEX`] links to, for `hop_ms` per slow redirect hop
/// and a `trickle` of that many bytes (pick them from the fetch timeout:
/// each hop under it, all hops together over it; the trickle longer than it).
pub fn hostile_paths(hop_ms: u64, trickle: u64) -> Vec<String> {
    vec![
        "/hostile/link-flood/500000".into(),
        "/hostile/base-href/1000000/5000".into(),
        "/hostile/long-links/1000/9000".into(),
        "/hostile/big-attribute/10000000".into(),
        "/fault/nested/100000".into(),
        format!("/hostile/trickle/{trickle}"),
        format!("/hostile/slow-redirects/4/{hop_ms}"),
    ]
}

fn html(body: impl Into<Body>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

fn parse<T: std::str::FromStr + PartialOrd>(s: &str, max: T) -> Option<T> {
    s.parse::<T>().ok().filter(|v| *v <= max)
}

/// A query parameter as a number, or `default`.
fn query_param(query: Option<&str>, name: &str, default: u64) -> u64 {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(default)
}

/// `/hostile/?hop_ms=M&trickle=N`: links to every hostile page.
async fn index(RawQuery(query): RawQuery) -> Response {
    let hop_ms = query_param(query.as_deref(), "hop_ms", 5_000).min(MAX_HOP_MS);
    let trickle = query_param(query.as_deref(), "trickle", 60).min(MAX_TRICKLE_BYTES);
    let mut body = String::from("<!DOCTYPE html><html><body><h1>hostile</h1><ul>");
    for path in hostile_paths(hop_ms, trickle) {
        body.push_str(&format!("<li><a href=\"{path}\">{path}</a></li>"));
    }
    body.push_str("</ul></body></html>");
    html(body)
}

async fn link_flood(Path(n): Path<String>) -> Response {
    let Some(n) = parse(&n, MAX_LINKS) else {
        return not_found();
    };
    let mut body = String::with_capacity(n * 18 + 64);
    body.push_str("<html><body>");
    for i in 0..n {
        // Unquoted and relative: as short as a link gets.
        body.push_str("<a href=v");
        body.push_str(&i.to_string());
        body.push_str(">.</a>");
    }
    body.push_str("</body></html>");
    html(body)
}

async fn base_href(Path((bytes, links)): Path<(String, String)>) -> Response {
    let (Some(bytes), Some(links)) = (parse(&bytes, MAX_BYTES), parse(&links, MAX_LINKS)) else {
        return not_found();
    };
    let prefix = "/hostile/void/";
    let mut base = String::with_capacity(bytes.max(prefix.len() + 1));
    base.push_str(prefix);
    while base.len() + 1 < bytes {
        base.push('a');
    }
    base.push('/');
    let mut body = String::with_capacity(base.len() + links * 24 + 128);
    body.push_str("<html><head><base href=\"");
    body.push_str(&base);
    body.push_str("\"></head><body>");
    for i in 0..links {
        body.push_str(&format!("<a href=\"p{i}\">.</a>"));
    }
    body.push_str("</body></html>");
    html(body)
}

async fn long_links(Path((count, bytes)): Path<(String, String)>) -> Response {
    let (Some(count), Some(bytes)) = (parse(&count, MAX_LINKS), parse(&bytes, 1 << 20)) else {
        return not_found();
    };
    if count.saturating_mul(bytes) > MAX_BYTES {
        return not_found();
    }
    let mut body = String::with_capacity(count * (bytes + 24) + 64);
    body.push_str("<html><body>");
    for i in 0..count {
        let head = format!("/hostile/void/{i}/");
        body.push_str("<a href=\"");
        body.push_str(&head);
        body.extend(std::iter::repeat_n('x', bytes.saturating_sub(head.len())));
        body.push_str("\">.</a>");
    }
    body.push_str("</body></html>");
    html(body)
}

async fn big_attribute(Path(bytes): Path<String>) -> Response {
    let Some(bytes) = parse(&bytes, MAX_BYTES) else {
        return not_found();
    };
    let mut body = String::with_capacity(bytes + 128);
    body.push_str("<html><body><div data-x=\"");
    body.extend(std::iter::repeat_n('x', bytes));
    body.push_str("\">big</div><a href=\"/hostile/void/after-big\">next</a></body></html>");
    html(body)
}

/// Headers at once, then one byte a second.
async fn trickle(Path(bytes): Path<String>) -> Response {
    let Some(bytes) = parse(&bytes, MAX_TRICKLE_BYTES) else {
        return not_found();
    };
    let stream = futures::stream::unfold(0u64, move |sent| async move {
        if sent >= bytes {
            return None;
        }
        if sent > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Some((Ok::<_, Infallible>(Bytes::from_static(b" ")), sent + 1))
    });
    html(Body::from_stream(stream))
}

async fn slow_redirects(Path((hops, ms)): Path<(String, String)>) -> Response {
    let (Some(hops), Some(ms)) = (parse(&hops, MAX_HOPS), parse(&ms, MAX_HOP_MS)) else {
        return not_found();
    };
    tokio::time::sleep(Duration::from_millis(ms)).await;
    if hops == 0 {
        return html("<html><body><p>end of the chain</p></body></html>");
    }
    (
        StatusCode::FOUND,
        [(
            header::LOCATION,
            format!("/hostile/slow-redirects/{}/{ms}", hops - 1),
        )],
        Body::empty(),
    )
        .into_response()
}

async fn void() -> Response {
    not_found()
}

/// A robots.txt of `bytes` bytes that allows everything, streamed in
/// 64 KiB chunks so even 100 MB costs the site no memory.
pub(crate) fn huge_robots(bytes: u64) -> Response {
    const HEAD: &[u8] = b"User-agent: *\nAllow: /\n";
    const CHUNK: usize = 64 * 1024;
    let stream = futures::stream::unfold(0u64, move |sent| async move {
        if sent >= bytes {
            return None;
        }
        let len = (bytes - sent).min(CHUNK as u64) as usize;
        let mut chunk = Vec::with_capacity(len);
        if sent == 0 {
            chunk.extend_from_slice(&HEAD[..HEAD.len().min(len)]);
        }
        // Comment lines: valid robots.txt that changes nothing.
        while chunk.len() < len {
            let left = len - chunk.len();
            if left >= 2 {
                chunk.push(b'#');
                chunk.extend(std::iter::repeat_n(b'x', (left - 2).min(70)));
                chunk.push(b'\n');
            } else {
                chunk.push(b'\n');
            }
        }
        Some((Ok::<_, Infallible>(Bytes::from(chunk)), sent + len as u64))
    });
    (
        [(header::CONTENT_TYPE, "text/plain")],
        Body::from_stream(stream),
    )
        .into_response()
}
