//! Rendering workers (issue 16): pages built by their scripts are rendered
//! in a headless browser and parsed like fetched pages; `auto` renders only
//! the pages that need it; every request the browser makes goes through
//! the worker's address guard and the crawl's allowed domains; hanging,
//! looping and dialog pages end within their timeout; the browser is
//! recycled; a worker without a browser says so.
//!
//! Each test serves its pages from a small server of this file on
//! 127.0.0.1:0. Names are resolved by a table, never by a real resolver,
//! and a last check on every address handed to the HTTP client fails the
//! test on anything but loopback. Tests that need Chromium skip with a
//! notice when it is missing (and fail under CI). They run side by side,
//! each with its own browser, except the one that writes a fake browser
//! and runs it, which runs alone (see [`turn`]).

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use common::{local, loopback_only, policy, request, Table, Violations};
use rpcsupport::{
    CrawlError, FetchHints, FetchPolicy, ParseResult, Render, RenderError, RenderReason, Request,
};
use worker::{Worker, WorkerConfig};

/// The site's request log, by path.
type Log = Arc<Mutex<Vec<String>>>;

fn html(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn script(body: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        body,
    )
        .into_response()
}

fn json(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            // Read by pages of other origins (the `other.test` fetch).
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        body,
    )
        .into_response()
}

/// A profile table as the `profile` parser reads it, for server-rendered
/// pages; the scripts below build the same one.
fn profile_table(id: u64) -> String {
    format!(
        r#"<table class="profile" data-id="{id}"><tr><td data-field="name">Person {id}</td>
        <td data-field="age">{}岁</td><td data-field="city">Springfield</td></tr></table>
        <div class="guess-you-like"><a href="/profile/{}">next</a></div>"#,
        20 + id,
        id + 1
    )
}

/// The profile shell's script: the table from `/api/profile/{id}.json`.
const PROFILE_JS: &str = r#"
const id = location.pathname.split('/').pop();
fetch('/api/profile/' + id + '.json').then(r => r.json()).then(p => {
  document.getElementById('app').innerHTML =
    '<table class="profile" data-id="' + p.id + '"><tr><td data-field="name">' + p.name +
    '</td><td data-field="age">' + p.age + '岁</td><td data-field="city">' + p.city +
    '</td></tr></table><div class="guess-you-like"><a href="/profile/' + (p.id + 1) +
    '">next</a></div>';
});
"#;

/// The list shell's script: links from `/api/list.json`.
const APP_JS: &str = r#"
fetch('/api/list.json').then(r => r.json()).then(ids => {
  document.getElementById('app').innerHTML =
    ids.map(i => '<a href="/profile/' + i + '">' + i + '</a>').join(' ');
});
"#;

/// A page of one fetch of 100 KB, then ten small ones: it links
/// `/result/{n}-{ok|failed}` for each.
const MANY: &str = r#"<html><body><div id="out"></div><script>
const out = document.getElementById('out');
const note = (name, ok) => out.insertAdjacentHTML('beforeend',
  '<a href="/result/' + name + '-' + (ok ? 'ok' : 'failed') + '">' + name + '</a>');
fetch('/api/big.json').then(r => r.text()).then(() => note('big', true), () => note('big', false));
for (let i = 0; i < 10; i++) {
  fetch('/api/list.json?' + i).then(r => note(i, r.ok), () => note(i, false));
}
</script></body></html>"#;

/// A page whose fetches must all be refused (the worker's guard, the
/// crawl's allowed domains); it links `/result/{name}-{ok|failed}`.
fn blocked_page(port: u16) -> String {
    format!(
        r#"<html><body><div id="out"></div><script>
        const out = document.getElementById('out');
        const note = (name, ok) => out.insertAdjacentHTML('beforeend',
          '<a href="/result/' + name + '-' + (ok ? 'ok' : 'failed') + '">' + name + '</a>');
        const tries = [
          ['secret', 'http://internal.test:{port}/secret'],
          ['metadata', 'http://169.254.169.254/latest/meta-data/'],
          ['other', 'http://other.test:{port}/api/list.json'],
        ];
        for (const [name, url] of tries) {{
          fetch(url).then(r => note(name, r.ok), () => note(name, false));
        }}
        // Neither is a request the page's interception sees: the browser's
        // own backstop (a closed proxy, no name resolution) must stop them.
        try {{ new WebSocket('ws://127.0.0.1:{port}/ws'); }} catch (e) {{}}
        try {{ window.open('http://127.0.0.1:{port}/popup'); }} catch (e) {{}}
        note('webrtc', typeof RTCPeerConnection !== 'undefined');
        </script><iframe src="http://other.test:{port}/frame"></iframe></body></html>"#
    )
}

async fn serve(log: Log) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shell = |src: &str| {
        format!(
            r#"<html><head><title>Loading</title></head><body><div id="app"></div>
            <img src="/img/logo.png"><script src="{src}"></script></body></html>"#
        )
    };
    let (app_shell, profile_shell) = (shell("/js/app.js"), shell("/js/profile.js"));
    let app = Router::new()
        .route("/app", get(move || async move { html(app_shell) }))
        .route(
            "/profile/{id}",
            get(move || async move { html(profile_shell) }),
        )
        .route("/js/app.js", get(|| async { script(APP_JS) }))
        .route("/js/profile.js", get(|| async { script(PROFILE_JS) }))
        .route(
            "/api/list.json",
            get(|| async { json("[1, 2, 3, 4, 5]".into()) }),
        )
        .route(
            "/api/profile/{file}",
            get(|Path(file): Path<String>| async move {
                let id: u64 = file.trim_end_matches(".json").parse().unwrap_or(0);
                json(format!(
                    r#"{{"id": {id}, "name": "Person {id}", "age": {}, "city": "Springfield"}}"#,
                    20 + id
                ))
            }),
        )
        .route(
            "/plain/{id}",
            get(|Path(id): Path<u64>| async move {
                html(format!("<html><body>{}</body></html>", profile_table(id)))
            }),
        )
        .route(
            "/hang",
            get(|| async {
                html("<html><body><script>fetch('/never')</script>waiting</body></html>".into())
            }),
        )
        .route("/never", get(std::future::pending::<Response>))
        .route(
            "/loop",
            get(|| async { html("<html><body><script>while (true) {}</script></body></html>".into()) }),
        )
        .route(
            "/dialog",
            get(|| async {
                html(format!(
                    "<html><body><script>for (let i = 0; i < 3; i++) {{ alert('hi'); confirm('sure?'); prompt('name?'); }}\
                     document.body.innerHTML = '{}';</script></body></html>",
                    profile_table(9).replace('\n', " ")
                ))
            }),
        )
        .route(
            "/blocked",
            get(move || async move { html(blocked_page(port)) }),
        )
        .route(
            "/late/{id}",
            get(|| async {
                html(format!(
                    "<html><body><p>{}</p><div id=\"app\"></div><script src=\"/js/profile.js\"></script></body></html>",
                    "A long introduction the server sends before the profile. ".repeat(8)
                ))
            }),
        )
        .route("/many", get(|| async { html(MANY.into()) }))
        .route(
            "/noindex",
            get(|| async {
                html(format!(
                    "<html><head></head><body><script>\
                     document.head.insertAdjacentHTML('beforeend', '<meta name=\"robots\" content=\"noindex\">');\
                     document.body.insertAdjacentHTML('beforeend', '{}');</script></body></html>",
                    profile_table(11).replace('\n', " ")
                ))
            }),
        )
        .route(
            "/api/big.json",
            get(|| async { json(format!("[\"{}\"]", "x".repeat(100_000))) }),
        )
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "no such page") })
        .layer(axum::middleware::from_fn_with_state(
            log,
            |State(log): State<Log>, req: axum::extract::Request, next: axum::middleware::Next| async move {
                log.lock().unwrap().push(req.uri().path().to_owned());
                next.run(req).await
            },
        ));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

/// The test's site on 127.0.0.1: its base URL, port and request log.
struct Site {
    base: String,
    port: u16,
    log: Log,
}

impl Site {
    async fn start() -> Site {
        let log = Log::default();
        let port = serve(log.clone()).await;
        Site {
            base: format!("http://127.0.0.1:{port}"),
            port,
            log,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The paths requested so far.
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// A worker of this process with `browser`, a resolver table (internal
/// names no test may reach, and a loopback name for the allowed-domains
/// check) and the loopback-only check; its recorded violations.
fn worker(browser: &str, tune: impl FnOnce(&mut WorkerConfig)) -> (Worker, Violations) {
    let mut config = WorkerConfig {
        browser: browser.into(),
        render_timeout_ms: 10_000,
        render_idle_ms: 100,
        ..local()
    };
    tune(&mut config);
    let table = Table::new(&[
        ("internal.test", "10.20.30.40"),
        ("other.test", "127.0.0.1"),
    ]);
    let violations = Violations::default();
    let worker = Worker::with_resolver(
        &config,
        rpcsupport::metrics::Registry::new(),
        table,
        loopback_only(violations.clone()),
    )
    .unwrap();
    (worker, violations)
}

/// The browser, and a shared turn to start it; `None` (skip) without one.
async fn browser(test: &str) -> Option<(PathBuf, Turn)> {
    let path = testsupport::browser::chromium(test)?;
    Some((path, turn(libc::LOCK_SH).await))
}

/// A turn to start processes, held until dropped.
struct Turn(#[allow(dead_code)] std::fs::File);

/// Waits for a turn: a `flock` on a file in the temp dir, so the tests
/// wait for one another whether they share a process (`cargo test`) or
/// each have their own (nextest), and a failed test's turn ends with it.
/// Tests that start browsers share it (`LOCK_SH`: as many browsers at once
/// as the runner runs tests, one a core by default; one at a time, the
/// file's renders took a third longer on two cores); the test that writes
/// an executable takes it alone (`LOCK_EX`).
async fn turn(how: libc::c_int) -> Turn {
    let path = std::env::temp_dir().join("crawler-worker-render-tests.lock");
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    tokio::task::spawn_blocking(move || {
        use std::os::fd::AsRawFd;
        // SAFETY: flock(2) on a descriptor this closure owns.
        let locked = unsafe { libc::flock(file.as_raw_fd(), how) };
        assert_eq!(locked, 0, "flock: {}", std::io::Error::last_os_error());
        Turn(file)
    })
    .await
    .unwrap()
}

/// A request for `url` with `parser`, rendered as `render` says.
fn rendering(url: String, parser: &str, render: Option<Render>) -> Request {
    let mut request = request(url, parser);
    if let Some(mode) = render {
        request
            .parser
            .args
            .insert(Render::ARG.to_string(), mode.as_str().to_string());
    }
    request
}

/// `url` processed by `worker` with `parser`, rendered as `mode`, under
/// `policy`.
async fn run_under(
    worker: &Worker,
    url: String,
    parser: &str,
    mode: Render,
    policy: &FetchPolicy,
) -> Result<ParseResult, CrawlError> {
    worker
        .process_with(rendering(url, parser, Some(mode)), policy)
        .await
}

/// [`run_under`] a policy allowing any domain.
async fn run(
    worker: &Worker,
    url: String,
    parser: &str,
    mode: Render,
) -> Result<ParseResult, CrawlError> {
    run_under(worker, url, parser, mode, &any_domain()).await
}

fn any_domain() -> FetchPolicy {
    policy(&["*"])
}

fn paths(result: &ParseResult) -> Vec<String> {
    let mut out: Vec<String> = result
        .requests
        .iter()
        .map(|r| url::Url::parse(&r.url).unwrap().path().to_owned())
        .collect();
    out.sort();
    out
}

/// Requests of rendered pages refused for `reason`, so far.
fn refused(worker: &Worker, reason: &str) -> u64 {
    worker
        .metrics()
        .counter("worker_render_refused_total", "", &[("reason", reason)])
        .get()
}

/// `render=always`: the item and the links the page's script built are
/// extracted, with `page.rendered = Always`; a robots meta it wrote is
/// obeyed; images and the icon are never fetched.
#[tokio::test]
async fn always_renders_script_built_pages() {
    let Some((path, _turn)) = browser("always_renders_script_built_pages").await else {
        return;
    };
    let site = Site::start().await;
    let (worker, violations) = worker(path.to_str().unwrap(), |_| {});
    assert!(worker.status().can_render);

    let page = run(&worker, site.url("/profile/3"), "profile", Render::Always)
        .await
        .unwrap();
    assert_eq!(page.page.rendered, Some(RenderReason::Always));
    assert_eq!(page.page.status, 200);
    assert!(page.page.content_hash.is_some());
    let item = &page.items[0];
    assert_eq!(item.id.as_deref(), Some("3"));
    assert_eq!(item.payload["name"].as_str(), Some("Person 3"));
    assert_eq!(item.payload["age"], rpcsupport::Value::Int(23));
    assert_eq!(paths(&page), ["/profile/4"]);

    let list = run(&worker, site.url("/app"), "links", Render::Always)
        .await
        .unwrap();
    assert_eq!(
        paths(&list),
        [
            "/profile/1",
            "/profile/2",
            "/profile/3",
            "/profile/4",
            "/profile/5"
        ]
    );
    // A robots meta the script wrote is read from the rendered page, and
    // obeyed as the crawl's policy says.
    let obeying = FetchPolicy {
        obey_robots_meta: true,
        ..any_domain()
    };
    let noindex = run_under(
        &worker,
        site.url("/noindex"),
        "profile",
        Render::Always,
        &obeying,
    )
    .await
    .unwrap();
    assert!(noindex.page.noindex);
    assert!(noindex.items.is_empty());
    assert_eq!(noindex.page.noindex_items, 1);

    let log = site.log();
    assert!(log.contains(&"/api/profile/3.json".to_string()), "{log:?}");
    assert!(
        !log.iter()
            .any(|p| p.starts_with("/img/") || p == "/favicon.ico"),
        "images are not loaded: {log:?}"
    );
    assert!(refused(&worker, "media") >= 2);
    assert!(violations.lock().unwrap().is_empty());
}

/// A rule rendered only when it needs it.
const PROFILE_RULE: &str = r#"
start = "profile_page"

[parsers.profile_page]
render = "auto"

[parsers.profile_page.item]
kind = "profile"
id = { select = "table.profile", attr = "data-id" }

[parsers.profile_page.item.fields]
name = { select = "td[data-field=name]" }
"#;

/// `auto` renders the script shell (reason `ScriptShell`) and leaves the
/// server-rendered page alone (`page.rendered` None, one fetch), for a
/// built-in parser and a rule alike; a rule whose fields are missing from
/// a page with text is rendered as `Missing`; the engine's learnt hint
/// renders with reason `Learnt`.
#[tokio::test]
async fn auto_renders_only_what_needs_it() {
    let Some((path, _turn)) = browser("auto_renders_only_what_needs_it").await else {
        return;
    };
    let site = Site::start().await;
    let (worker, _) = worker(path.to_str().unwrap(), |_| {});

    let plain = run(&worker, site.url("/plain/2"), "profile", Render::Auto)
        .await
        .unwrap();
    assert_eq!(plain.page.rendered, None);
    assert_eq!(plain.items[0].payload["name"].as_str(), Some("Person 2"));
    assert_eq!(worker.renderer().launches(), 0, "no browser was needed");

    let shell = run(&worker, site.url("/profile/5"), "profile", Render::Auto)
        .await
        .unwrap();
    assert_eq!(shell.page.rendered, Some(RenderReason::ScriptShell));
    assert_eq!(shell.items[0].id.as_deref(), Some("5"));

    // A rule with render = "auto": the shell is rendered as a shell; a page
    // with text whose script builds the table as missing what the rule
    // extracts.
    let rules = rpcsupport::rules::Rules::check(
        rpcsupport::rules::parse_file(PROFILE_RULE).unwrap(),
        rpcsupport::rules::Builtins::Known(&worker.registry().names()),
    )
    .unwrap();
    worker.load_rules(&rules.to_json()).unwrap();
    let open = any_domain();
    let rule = |path: &str| {
        let request = Request::new(site.url(path), rules.spec("profile_page"), 0);
        worker.process_with(request, &open)
    };
    let shell_rule = rule("/profile/6").await.unwrap();
    assert_eq!(shell_rule.page.rendered, Some(RenderReason::ScriptShell));
    assert_eq!(shell_rule.items[0].id.as_deref(), Some("6"));
    let late = rule("/late/8").await.unwrap();
    assert_eq!(late.page.rendered, Some(RenderReason::Missing));
    assert_eq!(late.items[0].payload["name"].as_str(), Some("Person 8"));
    let plain_rule = rule("/plain/4").await.unwrap();
    assert_eq!(plain_rule.page.rendered, None);

    let mut learnt = rendering(site.url("/app"), "links", None);
    learnt.hints = FetchHints {
        render: Some(Render::Always),
        ..FetchHints::default()
    };
    let learnt = worker.process_with(learnt, &any_domain()).await.unwrap();
    assert_eq!(learnt.page.rendered, Some(RenderReason::Learnt));
    assert_eq!(learnt.requests.len(), 5);
    let log = site.log();
    for page in ["/plain/2", "/profile/5"] {
        assert_eq!(
            log.iter().filter(|p| *p == page).count(),
            1,
            "{page} is fetched once, rendered or not: {log:?}"
        );
    }
}

/// Issue 11 for rendered pages: the page's fetches of a name resolving to
/// a private address and of the metadata address are refused by the guard,
/// one to a host outside the crawl's allowed domains by the policy, the
/// page has no WebRTC, a refused document fails the render as it fails a
/// fetch, and nothing is handed to the client for any address but
/// loopback.
#[tokio::test]
async fn browser_requests_go_through_the_guard() {
    let Some((path, _turn)) = browser("browser_requests_go_through_the_guard").await else {
        return;
    };
    let site = Site::start().await;
    let (worker, violations) = worker(path.to_str().unwrap(), |_| {});
    let url = site.url("/blocked");

    let open = run(&worker, url.clone(), "links", Render::Always)
        .await
        .unwrap();
    assert_eq!(
        paths(&open),
        [
            "/result/metadata-failed",
            "/result/other-ok",
            "/result/secret-failed",
            "/result/webrtc-failed"
        ]
    );
    assert!(refused(&worker, "blocked_address") >= 2);

    let loopback = policy(&["127.0.0.1"]);
    let scoped = run_under(&worker, url, "links", Render::Always, &loopback)
        .await
        .unwrap();
    assert_eq!(
        paths(&scoped),
        [
            "/result/metadata-failed",
            "/result/other-failed",
            "/result/secret-failed",
            "/result/webrtc-failed"
        ]
    );
    assert!(refused(&worker, "offsite") >= 1);
    assert!(
        violations.lock().unwrap().is_empty(),
        "{:?}",
        violations.lock().unwrap()
    );
    // The document itself is refused like a fetched page: blocked
    // address, error status.
    for (url, want) in [
        (
            format!("http://internal.test:{}/", site.port),
            "blocked_address",
        ),
        (site.url("/no-such-page"), "http_404"),
    ] {
        let err = run(&worker, url, "links", Render::Always)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), want, "{err:?}");
    }

    let log = site.log();
    for never in ["/secret", "/ws", "/popup"] {
        assert!(
            !log.contains(&never.to_string()),
            "{never} reached: {log:?}"
        );
    }
    assert_eq!(
        log.iter().filter(|p| *p == "/frame").count(),
        1,
        "the frame is fetched by the worker, and only where allowed: {log:?}"
    );
}

/// A page's requests past `max_render_requests`, and a body past what is
/// left of `max_render_bytes`, are refused to the page and counted.
#[tokio::test]
async fn render_limits_refuse_and_count() {
    let Some((path, _turn)) = browser("render_limits_refuse_and_count").await else {
        return;
    };
    let site = Site::start().await;
    let (worker, _) = worker(path.to_str().unwrap(), |c| {
        c.max_render_requests = 6;
        c.max_render_bytes = 50_000;
    });
    let page = run(&worker, site.url("/many"), "links", Render::Always)
        .await
        .unwrap();
    let links = paths(&page);
    let ok = links.iter().filter(|l| l.ends_with("-ok")).count();
    // The document, the big fetch, and four more fit in six requests.
    assert_eq!(ok, 4, "{links:?}");
    assert!(
        links.contains(&"/result/big-failed".to_string()),
        "{links:?}"
    );
    assert!(refused(&worker, "requests") >= 5);
    assert!(refused(&worker, "bytes") >= 1);
}

/// A page that opens alerts, confirms and prompts renders (the dialogs
/// return at once and the script goes on to build the page); a page whose
/// network never goes quiet and a page in an endless loop both end at a
/// 2 s `render_timeout_ms` with `RenderError::Timeout` (rendered side by
/// side, one page's hang does not hold the other's), and the worker
/// renders the next page normally. (The pages that must render get three
/// tries at their 2 s, for a loaded machine.)
#[tokio::test]
async fn dialog_hanging_and_looping_pages() {
    let Some((path, _turn)) = browser("dialog_hanging_and_looping_pages").await else {
        return;
    };
    let site = Site::start().await;
    let (worker, _) = worker(path.to_str().unwrap(), |c| c.render_timeout_ms = 2_000);
    // First, so the browser's launch is not in the timings below.
    let dialogs = render_in_tries(&worker, site.url("/dialog")).await;
    assert_eq!(dialogs.items[0].id.as_deref(), Some("9"));
    // Both at once, in two tabs of the one browser: each waits out its
    // own deadline, so together they cost one deadline, not two.
    let timed_out = |page: &'static str| {
        let worker = &worker;
        let url = site.url(page);
        async move {
            let started = Instant::now();
            let err = run(worker, url, "links", Render::Always).await.unwrap_err();
            (page, err, started.elapsed())
        }
    };
    let (hang, looping) = tokio::join!(timed_out("/hang"), timed_out("/loop"));
    for (page, err, took) in [hang, looping] {
        assert!(
            matches!(err, CrawlError::Render(RenderError::Timeout { .. })),
            "{page}: {err:?}"
        );
        // The outcome is what this shows (only the render's deadline gives
        // it); the bound only catches a render that outlived its deadline
        // by far, with room for a loaded machine.
        assert!(took < Duration::from_secs(15), "{page}: {took:?}");
    }
    let after = render_in_tries(&worker, site.url("/plain/7")).await;
    assert_eq!(after.items[0].id.as_deref(), Some("7"));
}

/// `url` rendered for the `profile` parser, tried again (three tries in
/// all) when the render times out: the pages this is for render in a
/// fraction of their deadline, which only a machine loaded past it makes
/// them miss; a page that cannot render (a dialog that blocks it, a
/// browser wedged by the page before) misses it every time.
async fn render_in_tries(worker: &Worker, url: String) -> ParseResult {
    let mut tries = 0;
    loop {
        tries += 1;
        match run(worker, url.clone(), "profile", Render::Always).await {
            Err(CrawlError::Render(RenderError::Timeout { .. })) if tries < 3 => {
                eprintln!("{url}: render timed out (try {tries}); trying again");
            }
            result => return result.unwrap_or_else(|e| panic!("{url}: {e}")),
        }
    }
}

/// With `recycle_after_pages = 2`, three renders take two browsers, and
/// the second, killed after its first page, is replaced (a third launch)
/// and the next page still renders; with a memory bound below any
/// browser's, a browser is retired after its first page.
#[tokio::test]
async fn browser_is_recycled() {
    let Some((path, _turn)) = browser("browser_is_recycled").await else {
        return;
    };
    let site = Site::start().await;
    let render = |worker: Worker, id: u64| {
        let url = site.url(&format!("/plain/{id}"));
        async move { run(&worker, url, "profile", Render::Always).await.unwrap() }
    };
    let (by_pages, _) = worker(path.to_str().unwrap(), |c| c.recycle_after_pages = 2);
    for id in 1..=3 {
        render(by_pages.clone(), id).await;
    }
    assert_eq!(by_pages.renderer().launches(), 2);
    // The second browser has one page of its two: only its death makes
    // the next page launch another.
    let pid = by_pages.renderer().browser_pid().await.unwrap();
    // SAFETY: kill(2) on the browser this test's worker launched (its
    // process group).
    unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
    let page = render(by_pages.clone(), 4).await;
    assert_eq!(page.items[0].id.as_deref(), Some("4"));
    assert_eq!(by_pages.renderer().launches(), 3);
    drop(by_pages);

    let (by_memory, _) = worker(path.to_str().unwrap(), |c| c.browser_max_rss_mb = 1);
    render(by_memory.clone(), 1).await;
    assert_eq!(by_memory.renderer().browser_pid().await, None, "retired");
    let recycled = by_memory
        .metrics()
        .counter("worker_browser_recycled_total", "", &[("why", "memory")])
        .get();
    assert_eq!(recycled, 1);
}

/// A browser that exits at once makes the render `Unavailable`, with what
/// it said; no page is fetched.
#[tokio::test]
async fn a_browser_that_does_not_start_is_unavailable() {
    // Written and closed while no other test here starts a process, which
    // would hold it open for writing and make it "busy" to exec.
    let _turn = turn(libc::LOCK_EX).await;
    let site = Site::start().await;
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("chromium");
    std::fs::write(&fake, "#!/bin/sh\necho 'no display here' >&2\nexit 3\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (worker, _) = worker(fake.to_str().unwrap(), |_| {});
    assert!(worker.status().can_render);
    let err = run(&worker, site.url("/plain/1"), "profile", Render::Always)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CrawlError::Render(RenderError::Unavailable { reason }) if reason.contains("no display here")),
        "{err:?}"
    );
    assert!(site.log().is_empty());
}

/// A browser path that does not exist is refused at start, naming the key.
#[test]
fn bad_browser_setting_is_refused() {
    let config = WorkerConfig {
        browser: "/no/such/chromium".into(),
        ..WorkerConfig::default()
    };
    let err = Worker::new(&config).err().unwrap().to_string();
    assert!(
        err.contains("`browser`") && err.contains("/no/such/chromium"),
        "{err}"
    );
}

/// A worker with `browser = "none"` says it cannot render, and answers a
/// render request with `RenderError::Unavailable` without fetching.
#[tokio::test]
async fn no_browser_means_unavailable() {
    let site = Site::start().await;
    let (worker, _) = worker("none", |_| {});
    assert!(!worker.status().can_render);
    let err = run(&worker, site.url("/plain/1"), "profile", Render::Always)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CrawlError::Render(RenderError::Unavailable { .. })),
        "{err:?}"
    );
    assert!(site.log().is_empty());
}

/// The demo site's `/js/` section: `auto` renders its shells (the list's
/// links, and profile 3's table, whose item equals the server-rendered
/// page's) and not its plain pages; its dialog page renders; its blocked
/// page's fetches are refused by the guard.
#[tokio::test]
async fn demo_site_js_section() {
    let Some((path, _turn)) = browser("demo_site_js_section").await else {
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let site = Arc::new(demosite::Site::new(demosite::SiteConfig::default()));
    let options = demosite::SiteOptions {
        js: true,
        ..demosite::SiteOptions::default()
    };
    let (router, _log) = demosite::router_with(site, options);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(demosite::serve_router(listener, router, async {
        let _ = stopped.await;
    }));
    let (worker, violations) = worker(path.to_str().unwrap(), |_| {});
    let demo = |path: &str, parser: &'static str, render: Render| {
        run(&worker, format!("{base}{path}"), parser, render)
    };

    let list = demo("/js/", "links", Render::Auto).await.unwrap();
    assert_eq!(list.page.rendered, Some(RenderReason::ScriptShell));
    let links = paths(&list);
    for want in [
        "/js/profile/1",
        "/js/profile/20",
        "/js/plain/1",
        "/js/plain/5",
    ] {
        assert!(links.contains(&want.to_string()), "{want}: {links:?}");
    }

    let rendered = demo("/js/profile/3", "profile", Render::Auto)
        .await
        .unwrap();
    assert_eq!(rendered.page.rendered, Some(RenderReason::ScriptShell));
    // Its script and its JSON, fetched by the worker, are reported for the
    // engine to charge to the site's politeness (issue 16).
    assert!(
        rendered
            .page
            .subrequests
            .get("127.0.0.1")
            .copied()
            .unwrap_or(0)
            >= 2,
        "{:?}",
        rendered.page.subrequests
    );
    let fetched = demo("/profile/3", "profile", Render::Never).await.unwrap();
    assert_eq!(rendered.items[0].id, fetched.items[0].id);
    assert_eq!(rendered.items[0].payload, fetched.items[0].payload);

    let plain = demo("/js/plain/2", "profile", Render::Auto).await.unwrap();
    assert_eq!(plain.page.rendered, None);

    demo("/js/dialog", "links", Render::Always).await.unwrap();
    demo("/js/blocked", "links", Render::Always).await.unwrap();
    assert!(refused(&worker, "blocked_address") >= 2);
    assert!(violations.lock().unwrap().is_empty());
    drop(stop);
}
