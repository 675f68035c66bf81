//! HTTP: the axum router over [`Site`], the `/fault/...` routes tests use to
//! provoke fetch errors (and the `/hostile/...` ones of [`crate::hostile`]),
//! and [`serve`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::generation::Generation;
use crate::open_web;
use crate::site::{Site, SiteConfig, View, DEFAULT_JS_PROFILES};
use crate::validators;

mod fault;

use fault::{
    fault_big, fault_binary, fault_flaky, fault_gzip_bomb, fault_invalid_utf8, fault_links,
    fault_nested, fault_not_html, fault_redirect, fault_redirect_loop, fault_redirect_to,
    fault_slow, fault_status, fault_truncated, fault_wrong_charset,
};

/// Test knobs on top of a [`Site`]: a robots.txt, slow pages, a request
/// log, and the sections that are off by default (the open web, script
/// pages, generations). The default serves exactly the site of
/// [`Site::render`].
#[derive(Debug, Clone)]
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
    /// The open web (issue 13): sitemaps and a robots.txt naming them,
    /// validators and 304s on every page, the `/meta/...` pages and the
    /// sitemap-only profiles (see [`crate::open_web`]).
    pub open_web: bool,
    /// Profiles `profiles+1 ..= profiles+sitemap_only` exist, linked from
    /// no page (only the sitemaps list them); needs `open_web`. Default 0,
    /// at most [`crate::site::MAX_SITEMAP_ONLY`].
    pub sitemap_only: u64,
    /// URLs per `/sitemaps/profiles-{k}.xml.gz`; default
    /// [`open_web::DEFAULT_SITEMAP_PAGE`] (1,000), zero counts as one.
    pub sitemap_page: u64,
    /// The generation served (see [`crate::generation`]); keep a clone to
    /// change it while the site runs. Default 0.
    pub generation: Generation,
    /// The `/js/...` script-built pages (issue 16, see [`crate::js`]).
    pub js: bool,
    /// Profiles the `/js/` list links; default
    /// [`DEFAULT_JS_PROFILES`] (20).
    pub js_profiles: u64,
}

impl Default for SiteOptions {
    fn default() -> Self {
        SiteOptions {
            robots: None,
            robots_failures: 0,
            page_delay: Duration::ZERO,
            robots_bytes: None,
            gate: None,
            open_web: false,
            sitemap_only: 0,
            sitemap_page: open_web::DEFAULT_SITEMAP_PAGE,
            generation: Generation::default(),
            js: false,
            js_profiles: DEFAULT_JS_PROFILES,
        }
    }
}

impl SiteOptions {
    /// What a request arriving now sees.
    pub fn view(&self) -> View {
        View {
            generation: self.generation.get(),
            // Sitemap-only profiles are an open-web feature: without the
            // sitemaps nothing could reach them.
            sitemap_only: if self.open_web { self.sitemap_only } else { 0 },
            open_web: self.open_web,
            js: self.js,
            js_profiles: self.js_profiles,
        }
    }
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
    /// The status answered (304 for a conditional hit, 410 for a removed
    /// profile).
    pub status: u16,
    /// The request's `If-None-Match`, if any.
    pub if_none_match: Option<String>,
    /// The request's `If-Modified-Since`, if any.
    pub if_modified_since: Option<String>,
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

async fn log_request(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let (if_none_match, if_modified_since) = {
        let header = |name| {
            request
                .headers()
                .get(name)
                .map(|v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        (
            header(header::IF_NONE_MATCH),
            header(header::IF_MODIFIED_SINCE),
        )
    };
    let start = Instant::now();
    let response = next.run(request).await;
    let entry = LoggedRequest {
        path,
        start,
        end: Instant::now(),
        status: response.status().as_u16(),
        if_none_match,
        if_modified_since,
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
struct Stopping(Arc<tokio::sync::watch::Sender<bool>>);

/// One answer of the site before validators: what [`answer`] computes for
/// a path in one generation.
struct Doc {
    content_type: &'static str,
    body: Vec<u8>,
    /// The same in every generation: Last-Modified is the base date, with
    /// no walk over generations (the hostile sitemaps are megabytes).
    fixed: bool,
}

impl Doc {
    fn new(content_type: &'static str, body: impl Into<Vec<u8>>) -> Doc {
        Doc {
            content_type,
            body: body.into(),
            fixed: false,
        }
    }

    fn fixed(content_type: &'static str, body: impl Into<Vec<u8>>) -> Doc {
        Doc {
            fixed: true,
            ..Doc::new(content_type, body)
        }
    }
}

/// Longest `Host` header the site puts into its pages: a DNS name (253)
/// and a port. `/sitemaps/huge.xml` repeats the origin 60,000 times, so a
/// longer one could make a request cost gigabytes.
const MAX_HOST_LEN: usize = 260;

/// `http://{Host}` of the request, for absolute links; a missing, overlong
/// or odd Host (anything but a host name or address and a port) gives
/// `http://localhost`, so a request cannot write markup into a page.
fn origin_of(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= MAX_HOST_LEN
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map_or_else(|| "http://localhost".to_owned(), |h| format!("http://{h}"))
}

/// What the site answers at `path` in `view` (every route of the fallback
/// except `/js/never`), or `None`.
fn answer(
    state: &AppState,
    path: &str,
    query: Option<&str>,
    view: &View,
    origin: &str,
) -> Option<Doc> {
    let site = &state.site;
    if view.open_web {
        const XML: &str = "application/xml";
        let per_page = state.options.sitemap_page.max(1);
        match path {
            "/sitemap_index.xml" => {
                return Some(Doc::new(
                    XML,
                    open_web::sitemap_index(site, view, origin, per_page),
                ))
            }
            "/sitemaps/cities.xml" => {
                return Some(Doc::new(XML, open_web::cities_sitemap(site, view, origin)))
            }
            "/sitemap.txt" => {
                return Some(Doc::new(
                    "text/plain; charset=utf-8",
                    open_web::sitemap_txt(site, view, origin),
                ))
            }
            "/sitemaps/huge.xml" => return Some(Doc::fixed(XML, open_web::huge(origin))),
            "/sitemaps/bomb.xml.gz" => {
                return Some(Doc::fixed("application/gzip", open_web::bomb()))
            }
            "/sitemaps/junk.xml" => return Some(Doc::fixed(XML, open_web::junk(origin))),
            _ => {}
        }
        if let Some(k) = path
            .strip_prefix("/sitemaps/profiles-")
            .and_then(|k| k.strip_suffix(".xml.gz"))
            .filter(|k| !k.starts_with('0'))
            .and_then(|k| k.parse().ok())
        {
            let xml = open_web::profile_sitemap_xml(site, view, origin, k, per_page)?;
            return Some(Doc::new("application/gzip", open_web::gzip(xml.as_bytes())));
        }
    }
    if view.js {
        match path {
            "/js/app.js" => return Some(Doc::fixed(JS, crate::js::APP_JS)),
            "/js/profile.js" => return Some(Doc::fixed(JS, crate::js::PROFILE_JS)),
            "/api/js/list.json" => return Some(Doc::new(JSON, crate::js::list_json(site, view))),
            _ => {}
        }
        if let Some(file) = path.strip_prefix("/api/js/profile/") {
            return Some(Doc::new(JSON, crate::js::profile_json(site, view, file)?));
        }
    }
    let page = site.render_at(path, query, view, origin)?;
    let mut doc = Doc::new(page.encoding.content_type(), page.body);
    doc.fixed = open_web::generation_free(path);
    Some(doc)
}

const JS: &str = "text/javascript; charset=utf-8";
const JSON: &str = "application/json";

async fn site_page(
    State(state): State<Arc<AppState>>,
    stopping: Option<axum::Extension<Stopping>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(gate) = &state.options.gate {
        match gate.acquire().await {
            Ok(permit) => permit.forget(),
            Err(_) => return not_found(),
        }
    }
    if !state.options.page_delay.is_zero() {
        tokio::time::sleep(state.options.page_delay).await;
    }
    let view = state.options.view();
    let (path, query) = (uri.path(), uri.query());
    if view.js && path == "/js/never" {
        let mut stopping = stopping.map(|s| s.0 .0.subscribe());
        let stopped = async {
            match &mut stopping {
                // An error means the server is gone: stop waiting too.
                Some(rx) => drop(rx.wait_for(|stopping| *stopping).await),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(crate::js::NEVER_SECS)) => {}
            _ = stopped => {}
        }
        return (StatusCode::GATEWAY_TIMEOUT, "never\n").into_response();
    }
    let origin = origin_of(&headers);
    let Some(doc) = answer(&state, path, query, &view, &origin) else {
        return if state.site.is_gone(path, &view) {
            gone()
        } else {
            not_found()
        };
    };
    let mut response = if view.open_web {
        with_validators(&state, doc, path, query, &view, &origin, &headers)
    } else {
        ([(header::CONTENT_TYPE, doc.content_type)], doc.body).into_response()
    };
    if let Some(tag) = view
        .open_web
        .then(|| open_web::x_robots_tag(path))
        .flatten()
    {
        response
            .headers_mut()
            .insert("x-robots-tag", HeaderValue::from_static(tag));
    }
    response
}

/// `doc` with its ETag and Last-Modified, or a 304 when the request's
/// validators match them.
fn with_validators(
    state: &AppState,
    doc: Doc,
    path: &str,
    query: Option<&str>,
    view: &View,
    origin: &str,
    headers: &HeaderMap,
) -> Response {
    let etag = validators::etag(&doc.body);
    let changed = if doc.fixed {
        0
    } else {
        validators::last_change(view.generation, |g| {
            let at = View {
                generation: g,
                ..*view
            };
            if g == view.generation {
                // The walk asks for the current body first; it is at hand.
                return Some(doc.body.clone());
            }
            answer(state, path, query, &at, origin).map(|d| d.body)
        })
    };
    let modified = validators::date_of(changed);
    let header_str = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let hit = validators::not_modified(
        header_str(header::IF_NONE_MATCH),
        header_str(header::IF_MODIFIED_SINCE),
        &etag,
        modified,
    );
    let last_modified = validators::http_date(modified);
    if hit {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::LAST_MODIFIED, last_modified)],
        )
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, doc.content_type.to_owned()),
            (header::ETAG, etag),
            (header::LAST_MODIFIED, last_modified),
        ],
        doc.body,
    )
        .into_response()
}

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
