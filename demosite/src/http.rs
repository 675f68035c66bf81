//! HTTP: the axum router over [`Site`], the `/fault/...` routes tests use to
//! provoke fetch errors, and [`serve`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::site::{Site, SiteConfig};

/// Largest body `/fault/big/{bytes}` will build, so a typo cannot eat RAM.
const MAX_BIG_BYTES: usize = 256 * 1024 * 1024;
/// Longest delay `/fault/slow/{ms}` will sleep.
const MAX_SLOW_MS: u64 = 60_000;

struct AppState {
    site: Arc<Site>,
    /// Failures served so far per `/fault/flaky/{key}`; a mutex is fine,
    /// only tests hit these routes and the critical section is one lookup.
    flaky: Mutex<HashMap<String, u32>>,
}

/// The site's routes plus the `/fault/...` routes:
///
/// - `/fault/status/{code}[?retry_after=S]`: that status, with `Retry-After`.
/// - `/fault/redirect/{n}`: `n` redirects, then `/`.
/// - `/fault/redirect-loop`: redirects to itself forever.
/// - `/fault/slow/{ms}`: a small page after `ms` milliseconds.
/// - `/fault/big/{bytes}[?chunked=1]`: an HTML page of exactly `bytes`
///   bytes; with `chunked=1` sent in 16 KiB chunks without Content-Length.
/// - `/fault/not-html`: a JSON document.
/// - `/fault/flaky/{key}/{fails}`: 503 for the first `fails` requests per
///   `key`, then 200.
///
/// None of them is linked from the site, so they never change
/// [`Site::page_count`].
pub fn router(site: Arc<Site>) -> Router {
    let state = Arc::new(AppState {
        site,
        flaky: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/fault/status/{code}", get(fault_status))
        .route("/fault/redirect/{n}", get(fault_redirect))
        .route("/fault/redirect-loop", get(fault_redirect_loop))
        .route("/fault/slow/{ms}", get(fault_slow))
        .route("/fault/big/{bytes}", get(fault_big))
        .route("/fault/not-html", get(fault_not_html))
        .route("/fault/flaky/{key}/{fails}", get(fault_flaky))
        .fallback(get(site_page))
        .with_state(state)
}

/// Serves a fresh [`Site`] for `config` on `listener` until `shutdown`
/// completes.
pub async fn serve(
    listener: TcpListener,
    config: SiteConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_site(listener, Arc::new(Site::new(config)), shutdown).await
}

/// Like [`serve`], for a site the caller already built (e.g. to print its
/// page count first).
pub async fn serve_site(
    listener: TcpListener,
    site: Arc<Site>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(site))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn site_page(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
    match state.site.render(uri.path(), uri.query()) {
        Some(page) => (
            [(header::CONTENT_TYPE, page.encoding.content_type())],
            page.body,
        )
            .into_response(),
        None => not_found(),
    }
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!DOCTYPE html>\n<html><head><title>404</title></head><body><h1>页面不存在</h1></body></html>\n",
    )
        .into_response()
}

fn small_page(text: &str) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!("<!DOCTYPE html>\n<html><head><title>{text}</title></head><body><p>{text}</p></body></html>\n"),
    )
        .into_response()
}

fn redirect(to: &str) -> Response {
    (
        StatusCode::FOUND,
        [(header::LOCATION, to.to_owned())],
        Body::empty(),
    )
        .into_response()
}

async fn fault_status(Path(code): Path<String>, RawQuery(query): RawQuery) -> Response {
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

async fn fault_redirect(Path(n): Path<String>) -> Response {
    match n.parse::<u32>() {
        Ok(0) => redirect("/"),
        Ok(n) => redirect(&format!("/fault/redirect/{}", n - 1)),
        Err(_) => not_found(),
    }
}

async fn fault_redirect_loop() -> Response {
    redirect("/fault/redirect-loop")
}

async fn fault_slow(Path(ms): Path<String>) -> Response {
    let Ok(ms) = ms.parse::<u64>() else {
        return not_found();
    };
    tokio::time::sleep(Duration::from_millis(ms.min(MAX_SLOW_MS))).await;
    small_page("slow")
}

async fn fault_big(Path(bytes): Path<String>, RawQuery(query): RawQuery) -> Response {
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

async fn fault_not_html() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        "{\"not\":\"html\"}",
    )
        .into_response()
}

async fn fault_flaky(
    State(state): State<Arc<AppState>>,
    Path((key, fails)): Path<(String, String)>,
) -> Response {
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
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, 1u32.into());
        response
    } else {
        small_page("ok")
    }
}
