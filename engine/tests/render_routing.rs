//! Render routing (issue 16): requests that need a browser go only to
//! workers whose status says they can render; with none, they wait (one
//! warning, not one per page) and are given up after `worker_wait_ms`; a
//! worker that answers `RenderError::Unavailable` gets no more of them and
//! the request goes again without using an attempt; an `auto` page that
//! needed a browser teaches its host and parser. Fake tarpc workers answer
//! from memory, so nothing is fetched.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::fake::{start_fake_worker, Reply, PARSER};
use common::*;
use rpcsupport::{CrawlError, ParseResult, ParserSpec, Render, RenderError, RenderReason, Request};

/// Pages of each kind the seed links to.
const EACH: u32 = 10;

/// A parser spec asking for a browser through its `render` argument.
fn render_spec(mode: &str) -> ParserSpec {
    let mut spec = ParserSpec::named(PARSER);
    spec.args.insert(Render::ARG.into(), mode.into());
    spec
}

/// What a fake worker does with render requests.
#[derive(Clone, Copy, PartialEq)]
enum Browser {
    /// Says it can render, and does.
    Works,
    /// Says it cannot render (and is never asked, if routing works).
    None,
    /// Says it can render, then answers `Unavailable` (it lost its browser).
    Lost,
}

/// Every call a fake worker answered: (worker name, URL, rendered).
type Calls = Arc<Mutex<Vec<(&'static str, String, bool)>>>;

/// A fake worker's answer: `/seed` links to `EACH` render pages and `EACH`
/// plain pages, `/auto-seed` to `EACH` pages of an `auto` parser, and
/// every page is rendered (or refused) as `browser` says.
async fn answer(name: &'static str, browser: Browser, calls: Calls, request: Request) -> Reply {
    let hinted = request.hints.render.unwrap_or(Render::Never);
    let render = hinted != Render::Never || request.parser.args.contains_key(Render::ARG);
    calls
        .lock()
        .unwrap()
        .push((name, request.url.clone(), render));
    if render && browser != Browser::Works {
        return Reply::Answer(Err(CrawlError::Render(RenderError::Unavailable {
            reason: format!("{name} has no browser"),
        })));
    }
    let mut result = ParseResult::default();
    if request.url.ends_with("/auto-seed") {
        let base = request.url.trim_end_matches("auto-seed");
        for n in 1..=EACH {
            result
                .requests
                .push(Request::new(format!("{base}a/{n}"), render_spec("auto"), 1));
        }
    }
    if request.url.ends_with("/seed") {
        let base = request.url.trim_end_matches("seed");
        for n in 1..=EACH {
            result.requests.push(Request::new(
                format!("{base}r/{n}"),
                render_spec("always"),
                1,
            ));
            result.requests.push(Request::new(
                format!("{base}p/{n}"),
                ParserSpec::named(PARSER),
                1,
            ));
        }
    }
    if render {
        // As a rendering worker reports it: asked by the engine, by the
        // parser, or (auto) because the page was a script shell.
        result.page.rendered = Some(match (hinted, request.parser.args.get(Render::ARG)) {
            (Render::Always, _) => RenderReason::Learnt,
            (_, Some(mode)) if mode == "auto" => RenderReason::ScriptShell,
            _ => RenderReason::Always,
        });
    }
    // Long enough that calls overlap.
    tokio::time::sleep(Duration::from_millis(5)).await;
    Reply::Answer(Ok(result))
}

/// Starts a fake worker called `name` that logs its calls in `calls`.
async fn start_fake(name: &'static str, browser: Browser, calls: Calls) -> SocketAddr {
    start_fake_worker(browser != Browser::None, move |request| {
        answer(name, browser, calls.clone(), request)
    })
    .await
}

/// A crawl of the fake site from `/seed` over `workers`.
async fn crawl(
    workers: &[SocketAddr],
    edit: impl FnOnce(&mut engine::EngineConfig),
) -> engine::Summary {
    let cluster = Cluster::builder()
        .workers(0)
        .workers_at(workers.iter().copied())
        .start()
        .await;
    // The demo site is idle: the fakes answer for site.test.
    let mut config = cluster.config();
    config.seeds = vec!["http://site.test/seed".into()];
    config.parser = PARSER.into();
    config.obey_robots = false;
    edit(&mut config);
    cluster.run(config).await
}

/// Render requests land only on the worker that can render; plain ones on
/// both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_requests_go_only_to_rendering_workers() {
    let calls = Calls::default();
    let renders = start_fake("renders", Browser::Works, calls.clone()).await;
    let plain = start_fake("plain", Browser::None, calls.clone()).await;
    let summary = crawl(&[renders, plain], |_| {}).await;

    let calls = calls.lock().unwrap().clone();
    assert_eq!(summary.pages, u64::from(1 + 2 * EACH), "{summary}");
    assert!(summary.errors.is_empty(), "{summary}");
    let rendered: Vec<_> = calls.iter().filter(|c| c.2).collect();
    assert_eq!(rendered.len(), EACH as usize, "{calls:?}");
    assert!(
        rendered.iter().all(|c| c.0 == "renders"),
        "a render request reached the worker without a browser: {calls:?}"
    );
    assert!(
        calls.iter().any(|c| c.0 == "plain"),
        "plain requests go to any worker: {calls:?}"
    );
    assert_eq!(summary.page.rendered.get("always"), Some(&(EACH as u64)));
    assert_eq!(summary.page.render_requeued, 0);
    assert!(summary.to_string().contains("rendered"), "{summary}");
}

/// A `Write` into a shared buffer, for reading the engine's log.
#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// With no worker able to render, plain pages are crawled, render
/// requests wait `worker_wait_ms` (once, not each) and are then failed as
/// `no_render_worker`, and the engine says so in one warning, not one per
/// page.
#[tokio::test(flavor = "current_thread")]
async fn without_a_rendering_worker_render_requests_wait_then_fail() {
    let log = LogBuf::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // current_thread: every task of the crawl runs on this thread, so they
    // all log to this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);

    let calls = Calls::default();
    let a = start_fake("a", Browser::None, calls.clone()).await;
    let b = start_fake("b", Browser::None, calls.clone()).await;
    let wait = Duration::from_millis(400);
    let started = std::time::Instant::now();
    // Two at a time on the one host: were each render call to wait a
    // whole worker_wait_ms of its own, the ten would take five waits.
    let summary = crawl(&[a, b], |c| {
        c.worker_wait_ms = wait.as_millis() as u64;
        c.per_host_concurrency = 2;
    })
    .await;
    let took = started.elapsed();

    assert_eq!(summary.pages, u64::from(1 + EACH), "{summary}");
    assert_eq!(
        summary.errors,
        [("no_render_worker".to_string(), u64::from(EACH))].into(),
        "{summary}"
    );
    assert_eq!(
        summary.fetches,
        u64::from(1 + EACH),
        "nothing was sent for them"
    );
    assert!(
        calls.lock().unwrap().iter().all(|c| !c.2),
        "no render request was sent"
    );
    assert!(took >= wait, "they waited: {took:?}");
    assert!(
        summary.elapsed < 3 * wait,
        "one wait for all, not five in a row: {:?}",
        summary.elapsed
    );
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("no connected worker can render"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning, not one per page:\n{text}");
    assert!(
        warnings[0].contains("requests need a browser"),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[0].contains("--browser"),
        "says how to start one: {}",
        warnings[0]
    );
}

/// A worker that said it can render but answers `Unavailable` gets no
/// more render requests; each refused request goes again, to the worker
/// that can, without using an attempt (`max_attempts = 1`: a used attempt
/// would fail it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_requeues_without_an_attempt() {
    let calls = Calls::default();
    let lost = start_fake("lost", Browser::Lost, calls.clone()).await;
    let works = start_fake("works", Browser::Works, calls.clone()).await;
    // One call at a time: the first refusal marks the worker before any
    // other render request is sent, so exactly one is refused.
    let summary = crawl(&[lost, works], |c| {
        c.max_attempts = 1;
        c.worker_count = 1;
    })
    .await;

    let calls = calls.lock().unwrap().clone();
    assert!(summary.errors.is_empty(), "{summary}");
    assert_eq!(summary.pages, u64::from(1 + 2 * EACH), "{summary}");
    let refused = calls.iter().filter(|c| c.0 == "lost" && c.2).count();
    assert_eq!(refused, 1, "marked after its first refusal: {calls:?}");
    assert_eq!(summary.page.render_requeued, 1, "{summary}");
    let rendered_by_works = calls.iter().filter(|c| c.0 == "works" && c.2).count();
    assert_eq!(rendered_by_works, EACH as usize, "{calls:?}");
    assert!(
        calls.iter().any(|c| c.0 == "lost" && !c.2),
        "it still takes plain requests: {calls:?}"
    );
}

/// Once a page of an `auto` parser turned out to need a browser, the
/// engine asks for rendering for the rest of that host and parser
/// (`hints.render = always`, counted as `learnt`), so they are not fetched
/// plainly first; the summary says why each page was rendered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_pages_teach_their_host_and_parser() {
    let calls = Calls::default();
    let renders = start_fake("renders", Browser::Works, calls.clone()).await;
    let summary = crawl(&[renders], |c| {
        c.seeds = vec!["http://site.test/auto-seed".into()];
        // One call at a time, so every page after the first is sent once
        // the first one has taught the engine.
        c.worker_count = 1;
    })
    .await;
    assert!(summary.errors.is_empty(), "{summary}");
    let p = &summary.page;
    assert_eq!(p.rendered.get("script_shell"), Some(&1), "{summary}");
    assert_eq!(
        p.rendered.get("learnt"),
        Some(&(EACH as u64 - 1)),
        "{summary}"
    );
    let text = summary.to_string();
    assert!(
        text.contains(&format!(
            "rendered       {EACH} (always 0, learnt {}, script_shell 1, missing 0)",
            EACH - 1
        )),
        "{text}"
    );
}
