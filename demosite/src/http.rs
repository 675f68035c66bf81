//! HTTP: the axum router over [`Site`], the `/fault/...` routes tests use to
//! provoke fetch errors (and the `/hostile/...` ones of [`crate::hostile`]),
//! and [`serve`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Promises 100 000 bytes, sends a few, then breaks the connection.
async fn fault_truncated() -> Response {
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
async fn fault_redirect_to(RawQuery(query): RawQuery) -> Response {
    match query.as_deref().and_then(|q| q.strip_prefix("url=")) {
        Some(to) => redirect(to),
        None => not_found(),
    }
}

/// A small gzip body that inflates to `bytes` bytes of HTML.
async fn fault_gzip_bomb(Path(bytes): Path<String>) -> Response {
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
async fn fault_invalid_utf8() -> Response {
    let mut body = b"<html><body><p>bad \xff\xfe bytes \xc3</p>".to_vec();
    body.extend_from_slice(b"<a href=\"/fault/status/204\">on</a></body></html>");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// GBK bytes declared as UTF-8.
async fn fault_wrong_charset() -> Response {
    let (gbk, _, _) = encoding_rs::GBK.encode("<html><body><p>北京的征婚资料</p></body></html>");
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        gbk.into_owned(),
    )
        .into_response()
}

/// Binary noise served as HTML.
async fn fault_binary() -> Response {
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
async fn fault_nested(Path(depth): Path<String>) -> Response {
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
async fn fault_links() -> Response {
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
