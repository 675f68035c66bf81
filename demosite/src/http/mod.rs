//! HTTP: the axum router over [`Site`], the `/fault/...` routes tests use to
//! provoke fetch errors (and the `/hostile/...` ones of [`crate::hostile`]),
//! and [`serve`].
//!
//! - this file: [`router`] / [`router_with`] (the route list), the
//!   `serve*` entry points, `/robots.txt`, `POST /_site/generation/{n}`
//!   and the small answers the routes share (404, 410, redirect).
//! - `options.rs`: [`SiteOptions`], the test knobs, and the [`View`](crate::View) a
//!   request sees.
//! - `log.rs`: [`RequestLog`], every request with its start, end and
//!   status, kept by a middleware.
//! - `answer.rs`: the fallback route: which page, sitemap, script or JSON
//!   a path is, and its ETag, Last-Modified and 304 on the open web.
//! - `fault.rs`: the `/fault/...` routes.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::open_web;
use crate::site::{Site, SiteConfig};

mod answer;
mod fault;
mod log;
mod options;

use answer::{origin_of, site_page};
use log::log_request;
pub use log::{LoggedRequest, RequestLog};
pub use options::SiteOptions;

use fault::{
    fault_big, fault_binary, fault_flaky, fault_gzip_bomb, fault_invalid_utf8, fault_links,
    fault_nested, fault_not_html, fault_redirect, fault_redirect_loop, fault_redirect_to,
    fault_slow, fault_status, fault_truncated, fault_wrong_charset,
};

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
/// - `/robots.txt`: from [`SiteOptions::robots`] (404 when unset, or with
///   [`SiteOptions::open_web`] an allow-all naming the sitemaps), or
///   [`SiteOptions::robots_bytes`] of filler.
/// - `POST /_site/generation/{n}`: serve generation `n` from now on.
/// - With [`SiteOptions::open_web`], the sitemaps and `/meta/...`
///   ([`crate::open_web`]); with [`SiteOptions::js`], `/js/...` and
///   `/api/js/...` ([`crate::js`]).
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
        .route("/_site/generation/{n}", post(set_generation))
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
    // A graceful shutdown waits for every request in flight, and a
    // `/js/never` request would hold it for `js::NEVER_SECS`: this server's
    // shutdown ends them (and only this server's, so a parallel test's
    // hanging page keeps hanging).
    let (stopping, _) = tokio::sync::watch::channel(false);
    let stopping = Arc::new(stopping);
    let router = router.layer(axum::Extension(Stopping(stopping.clone())));
    let shutdown = async move {
        shutdown.await;
        stopping.send_replace(true);
    };
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Set when the server a request came through begins to shut down.
#[derive(Clone)]
pub(super) struct Stopping(Arc<tokio::sync::watch::Sender<bool>>);

/// `POST /_site/generation/{n}`.
async fn set_generation(State(state): State<Arc<AppState>>, Path(n): Path<String>) -> Response {
    match n
        .parse::<u64>()
        .ok()
        .filter(|&n| n <= crate::generation::MAX_GENERATION)
    {
        Some(n) => {
            state.options.generation.set(n);
            (StatusCode::OK, format!("generation {n}\n")).into_response()
        }
        None => (
            StatusCode::BAD_REQUEST,
            format!(
                "generation must be a number up to {}\n",
                crate::generation::MAX_GENERATION
            ),
        )
            .into_response(),
    }
}

fn gone() -> Response {
    (
        StatusCode::GONE,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!DOCTYPE html>\n<html><head><title>410</title></head><body><h1>资料已删除</h1></body></html>\n",
    )
        .into_response()
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

async fn robots_txt(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
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
        None if state.options.open_web => (
            [(header::CONTENT_TYPE, "text/plain")],
            open_web::robots(&origin_of(&headers)),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no robots.txt").into_response(),
    }
}
