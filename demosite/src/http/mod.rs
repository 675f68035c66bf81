//! HTTP: the axum router over [`Site`], the `/fault/...` routes tests use to
//! provoke fetch errors (and the `/hostile/...` ones of [`crate::hostile`]),
//! and [`serve`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::site::{Site, SiteConfig};

mod fault;

use fault::{
    fault_big, fault_binary, fault_flaky, fault_gzip_bomb, fault_invalid_utf8, fault_links,
    fault_nested, fault_not_html, fault_redirect, fault_redirect_loop, fault_redirect_to,
    fault_slow, fault_status, fault_truncated, fault_wrong_charset,
};

/// Test knobs on top of a [`Site`]: a robots.txt, slow pages, a request log.
#[derive(Debug, Clone, Default)]
pub struct SiteOptions {
    /// Served at `/robots.txt`; `None` means 404 (allow all).
    pub robots: Option<String>,
    /// `/robots.txt` answers 503 this many times before it works.
    pub robots_failures: u32,
    /// Every site page (not `/fault/...`) waits this long before answering.
    pub page_delay: Duration,
    /// When set, `/robots.txt` is an allow-all file of this many bytes,
    /// streamed (a hostile site's 100 MB robots.txt); wins over `robots`.
    pub robots_bytes: Option<u64>,
    /// When set, every site page first takes (and uses up) one permit, so a
    /// test decides how many pages the site serves and when.
    pub gate: Option<Arc<tokio::sync::Semaphore>>,
}

/// When each request started and ended, as seen by the server: tests check
/// the crawler's per-host limits against it.
#[derive(Debug, Default)]
pub struct RequestLog {
    entries: Mutex<Vec<LoggedRequest>>,
}

/// One request the site served.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    /// Path and query.
    pub path: String,
    /// When the request arrived.
    pub start: Instant,
    /// When the response was ready.
    pub end: Instant,
}

impl RequestLog {
    /// Everything served so far, in arrival order.
    pub fn entries(&self) -> Vec<LoggedRequest> {
        let mut v = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        v.sort_by_key(|e| e.start);
        v
    }

    /// The most requests that were ever being served at the same time.
    pub fn max_concurrency(&self) -> usize {
        let mut events: Vec<(Instant, i32)> = Vec::new();
        for e in self.entries() {
            events.push((e.start, 1));
            events.push((e.end, -1));
        }
        // Ends sort before starts at the same instant.
        events.sort();
        let (mut now, mut max) = (0i32, 0i32);
        for (_, d) in events {
            now += d;
            max = max.max(now);
        }
        max as usize
    }

    /// The shortest time between two consecutive request starts.
    pub fn min_start_gap(&self) -> Option<Duration> {
        let e = self.entries();
        e.windows(2).map(|w| w[1].start - w[0].start).min()
    }
}

struct AppState {
    site: Arc<Site>,
    options: SiteOptions,
    log: Arc<RequestLog>,
    /// `/robots.txt` requests answered so far.
    robots_served: Mutex<u32>,
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
/// - `/fault/flaky/{key}/{fails}[?status=N]`: 503 (or N) for the first
///   `fails` requests per `key`, then 200.
/// - `/fault/truncated`: the connection breaks mid-body.
/// - `/fault/redirect-to?url=U`: a redirect to U.
/// - `/fault/gzip-bomb/{bytes}`: a tiny gzip body that inflates to `bytes`.
/// - `/fault/invalid-utf8`, `/fault/wrong-charset`, `/fault/binary`:
///   bodies that are not what they claim to be.
/// - `/fault/nested/{depth}`: deeply nested HTML.
/// - `/fault/links`: exotic, broken and huge links.
/// - `/hostile/...`: pages built to hurt a crawler ([`crate::hostile`]).
/// - `/robots.txt`: from [`SiteOptions::robots`] (404 when unset), or
///   [`SiteOptions::robots_bytes`] of filler.
///
/// None of them is linked from the site, so they never change
/// [`Site::page_count`].
pub fn router(site: Arc<Site>) -> Router {
    router_with(site, SiteOptions::default()).0
}

/// [`router`] with test knobs, and the log of every request it serves.
pub fn router_with(site: Arc<Site>, options: SiteOptions) -> (Router, Arc<RequestLog>) {
    let log = Arc::new(RequestLog::default());
    let state = Arc::new(AppState {
        site,
        options,
        log: log.clone(),
        robots_served: Mutex::new(0),
        flaky: Mutex::new(HashMap::new()),
    });
    let router = Router::new()
        .route("/robots.txt", get(robots_txt))
        .route("/fault/truncated", get(fault_truncated))
        .route("/fault/redirect-to", get(fault_redirect_to))
        .route("/fault/gzip-bomb/{bytes}", get(fault_gzip_bomb))
        .route("/fault/invalid-utf8", get(fault_invalid_utf8))
        .route("/fault/wrong-charset", get(fault_wrong_charset))
        .route("/fault/binary", get(fault_binary))
        .route("/fault/nested/{depth}", get(fault_nested))
        .route("/fault/links", get(fault_links))
        .route("/fault/status/{code}", get(fault_status))
        .route("/fault/redirect/{n}", get(fault_redirect))
        .route("/fault/redirect-loop", get(fault_redirect_loop))
        .route("/fault/slow/{ms}", get(fault_slow))
        .route("/fault/big/{bytes}", get(fault_big))
        .route("/fault/not-html", get(fault_not_html))
        .route("/fault/flaky/{key}/{fails}", get(fault_flaky))
        .merge(crate::hostile::routes())
        .fallback(get(site_page))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            log_request,
        ))
        .with_state(state);
    (router, log)
}

async fn log_request(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let start = Instant::now();
    let response = next.run(request).await;
    let entry = LoggedRequest {
        path,
        start,
        end: Instant::now(),
    };
    state
        .log
        .entries
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(entry);
    response
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
    serve_router(listener, router(site), shutdown).await
}

/// Serves a router built by [`router_with`].
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn site_page(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
    if let Some(gate) = &state.options.gate {
        match gate.acquire().await {
            Ok(permit) => permit.forget(),
            Err(_) => return not_found(),
        }
    }
    if !state.options.page_delay.is_zero() {
        tokio::time::sleep(state.options.page_delay).await;
    }
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

async fn robots_txt(State(state): State<Arc<AppState>>) -> Response {
    let served = {
        let mut n = state
            .robots_served
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *n += 1;
        *n
    };
    if served <= state.options.robots_failures {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
    }
    if let Some(bytes) = state.options.robots_bytes {
        return crate::hostile::huge_robots(bytes);
    }
    match &state.options.robots {
        Some(text) => ([(header::CONTENT_TYPE, "text/plain")], text.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "no robots.txt").into_response(),
    }
}
