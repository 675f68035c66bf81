//! The loop's decisions, driven as a state machine under paused time: no
//! worker, no site; outcomes are fed in as values.

use std::time::Duration;

use rpcsupport::{CrawlError, FetchError, Item, ParseResult, ParserSpec, Request};
use tokio::time::Instant;

use super::machine::{Crawl, Step, Tick};
use super::outcome::{backoff, page_failure, robots_answer, PageFailure};
use super::{CallId, CallResult, EngineError, Outcome};
use crate::config::{EngineConfig, Settings};
use crate::pool::ConnectionId;
use crate::scheduler::RobotsAnswer;

fn settings(edit: impl FnOnce(&mut EngineConfig)) -> Settings {
    let mut cfg = EngineConfig {
        seeds: vec!["http://a.test/".into()],
        worker_hosts: vec!["127.0.0.1:1".into()],
        itemsaver_host: "127.0.0.1:2".into(),
        // Tests that want robots.txt turn it on.
        obey_robots: false,
        ..EngineConfig::default()
    };
    edit(&mut cfg);
    cfg.validate().expect("valid test settings")
}

fn crawl(settings: &Settings) -> Crawl<'_> {
    let workers = settings.workers.clone();
    // No state dir and no frontier bound reaching the disk in these tests.
    let mut c = Crawl::new(settings, &workers, std::env::temp_dir(), None);
    assert!(c.resume_or_seed(None).is_empty());
    c
}

/// Dispatches at `now`; returns the calls sent and the step.
fn dispatch(c: &mut Crawl<'_>, now: Instant) -> (Vec<(CallId, String)>, Step) {
    let mut sent = Vec::new();
    let step = c.dispatch(now, |id, r: &Request| sent.push((id, r.url.clone())));
    (sent, step)
}

fn answered(result: Result<ParseResult, CrawlError>) -> Option<Outcome> {
    Some(Outcome {
        worker: 0,
        result: CallResult::Answered(result),
    })
}

fn page(links: &[&str]) -> Option<Outcome> {
    answered(Ok(ParseResult {
        requests: links
            .iter()
            .map(|u| Request {
                url: (*u).into(),
                parser: ParserSpec::named("p"),
                depth: 1,
                hints: Default::default(),
            })
            .collect(),
        ..ParseResult::default()
    }))
}

fn status(code: u16) -> CrawlError {
    CrawlError::Fetch(FetchError::Status {
        url: "http://a.test/".into(),
        status: code,
        retry_after_secs: None,
    })
}

fn deadline() -> Option<Outcome> {
    Some(Outcome {
        worker: 0,
        result: CallResult::Failed {
            kind: "rpc_deadline",
            reason: "deadline".into(),
            lost: None,
        },
    })
}

/// The one call sent, its id.
fn one(sent: Vec<(CallId, String)>) -> CallId {
    assert_eq!(sent.len(), 1, "{sent:?}");
    sent[0].0
}

/// A call that fails at the transport level (the worker is fine) is sent
/// again at once, using an attempt; at `max_attempts` it fails for good.
#[tokio::test(start_paused = true)]
async fn transport_failure_is_retried_then_failed() {
    let s = settings(|c| c.max_attempts = 2);
    let mut c = crawl(&s);
    let now = Instant::now();
    let id = one(dispatch(&mut c, now).0);
    assert_eq!(c.on_outcome(id, deadline(), now), None);
    assert_eq!(c.summary.retries, 1);
    let (sent, _) = dispatch(&mut c, now);
    assert_eq!(sent[0].1, "http://a.test/", "sent again at once");
    c.on_outcome(sent[0].0, deadline(), now);
    assert_eq!(c.summary.errors.get("rpc_deadline"), Some(&1));
    assert_eq!(c.summary.fetches, 2, "both calls may have reached the site");
    assert_eq!(dispatch(&mut c, now).1, Step::Done);
}

/// A lost worker uses no attempt: the request is parked as a suspect and
/// sent again, alone.
#[tokio::test(start_paused = true)]
async fn worker_loss_parks_without_an_attempt() {
    let s = settings(|c| c.max_attempts = 1);
    let mut c = crawl(&s);
    let now = Instant::now();
    let id = one(dispatch(&mut c, now).0);
    let lost = Some(Outcome {
        worker: 0,
        result: CallResult::Failed {
            kind: "rpc_disconnected",
            reason: "gone".into(),
            lost: Some(ConnectionId {
                worker: 0,
                generation: 1,
            }),
        },
    });
    c.on_outcome(id, lost, now);
    assert!(c.summary.errors.is_empty(), "{:?}", c.summary.errors);
    let again = one(dispatch(&mut c, now).0);
    c.on_outcome(again, page(&[]), now);
    assert_eq!(c.summary.pages, 1);
}

/// Content that is not HTML is skipped, not failed; so is a URL the
/// robots.txt disallows.
#[tokio::test(start_paused = true)]
async fn not_html_and_robots_disallowed_are_skipped() {
    let s = settings(|c| c.obey_robots = true);
    let mut c = crawl(&s);
    let now = Instant::now();
    let (sent, _) = dispatch(&mut c, now);
    assert_eq!(sent[0].1, "http://a.test/robots.txt");
    let robots = answered(Ok(ParseResult {
        requests: vec![],
        items: vec![Item {
            url: "http://a.test/robots.txt".into(),
            kind: "robots".into(),
            id: None,
            payload: [(
                "body".to_string(),
                rpcsupport::Value::from("User-agent: *\nDisallow: /no\n"),
            )]
            .into(),
        }],
        ..ParseResult::default()
    }));
    c.on_outcome(sent[0].0, robots, now);
    let id = one(dispatch(&mut c, now).0);
    c.on_outcome(id, page(&["http://a.test/no/1", "http://a.test/pdf"]), now);
    let id = one(dispatch(&mut c, now).0);
    let not_html = CrawlError::Fetch(FetchError::NotHtml {
        url: "http://a.test/pdf".into(),
        content_type: "application/pdf".into(),
    });
    c.on_outcome(id, answered(Err(not_html)), now);
    assert_eq!(dispatch(&mut c, now).1, Step::Done);
    c.absorb_scheduler_counts();
    assert_eq!(c.summary.skipped.get("not_html"), Some(&1));
    assert_eq!(c.summary.skipped.get("robots_disallowed"), Some(&1));
    assert!(c.summary.errors.is_empty());
}

/// A transient page error waits out its backoff (nothing is sent before
/// it ends) and goes again, `retry_times` times; then the page fails.
#[tokio::test(start_paused = true)]
async fn page_error_is_retried_after_backoff_then_failed() {
    let s = settings(|c| {
        c.retry_times = 2;
        c.retry_backoff_ms = 1_000;
        c.retry_max_backoff_ms = 60_000;
    });
    let mut c = crawl(&s);
    let mut id = one(dispatch(&mut c, Instant::now()).0);
    for _ in 0..2 {
        c.on_outcome(id, answered(Err(status(503))), Instant::now());
        let (sent, step) = dispatch(&mut c, Instant::now());
        assert!(sent.is_empty(), "not before the backoff");
        let Step::Wait(Some(at)) = step else {
            panic!("should wait for the backoff, got {step:?}")
        };
        assert!(at > Instant::now());
        tokio::time::advance(at - Instant::now()).await;
        id = one(dispatch(&mut c, Instant::now()).0);
    }
    c.on_outcome(id, answered(Err(status(503))), Instant::now());
    assert_eq!(
        c.summary.fetch_retries.get("http_503"),
        Some(&2),
        "{:?}",
        c.summary.fetch_retries
    );
    assert_eq!(
        c.summary.errors.get("http_503"),
        Some(&1),
        "{:?}",
        c.summary.errors
    );
    assert_eq!(dispatch(&mut c, Instant::now()).1, Step::Done);
}

/// A 5xx robots.txt makes the host wait (1 s), then the file is fetched
/// again; once it is missing (404) the page goes.
#[tokio::test(start_paused = true)]
async fn robots_5xx_makes_the_host_wait() {
    let s = settings(|c| c.obey_robots = true);
    let mut c = crawl(&s);
    let t0 = Instant::now();
    let id = one(dispatch(&mut c, t0).0);
    c.on_outcome(id, answered(Err(status(503))), t0);
    let (sent, step) = dispatch(&mut c, t0);
    assert!(sent.is_empty());
    assert_eq!(step, Step::Wait(Some(t0 + Duration::from_secs(1))));
    tokio::time::advance(Duration::from_secs(1)).await;
    let (sent, _) = dispatch(&mut c, Instant::now());
    assert_eq!(sent[0].1, "http://a.test/robots.txt", "fetched again");
    c.on_outcome(sent[0].0, answered(Err(status(404))), Instant::now());
    let (sent, _) = dispatch(&mut c, Instant::now());
    assert_eq!(sent[0].1, "http://a.test/");
    assert_eq!(c.summary.fetches, 0, "robots fetches do not count");
}

/// `max_pages` counts finished calls plus calls in flight: no more is
/// sent than the budget, and reaching it stops the crawl.
#[tokio::test(start_paused = true)]
async fn page_budget_counts_calls_in_flight() {
    let s = settings(|c| {
        c.max_pages = 3;
        c.worker_count = 10;
    });
    let mut c = crawl(&s);
    let now = Instant::now();
    let id = one(dispatch(&mut c, now).0);
    let links: Vec<String> = (0..10).map(|i| format!("http://a.test/{i}")).collect();
    let links: Vec<&str> = links.iter().map(String::as_str).collect();
    c.on_outcome(id, page(&links), now);
    let (sent, _) = dispatch(&mut c, now);
    assert_eq!(sent.len(), 2, "1 counted + 2 in flight = the budget");
    c.on_outcome(sent[0].0, page(&[]), now);
    assert!(
        dispatch(&mut c, now).0.is_empty(),
        "2 counted + 1 in flight"
    );
    c.on_outcome(sent[1].0, page(&[]), now);
    assert_eq!(dispatch(&mut c, now).1, Step::Done);
    assert_eq!(c.summary.stop_reason.as_deref(), Some("page limit reached"));
    assert_eq!(c.summary.fetches, 3);
}

/// With every worker down the crawl waits `worker_wait`, then gives up
/// with WorkersGone; a worker back in time resets the wait.
#[tokio::test(start_paused = true)]
async fn all_workers_down_waits_then_gives_up() {
    let s = settings(|c| c.worker_wait_ms = 5_000);
    let mut c = crawl(&s);
    assert_eq!(c.on_tick(Instant::now(), 0), Tick::Continue);
    tokio::time::advance(Duration::from_secs(4)).await;
    assert_eq!(c.on_tick(Instant::now(), 0), Tick::Continue);
    assert_eq!(c.on_tick(Instant::now(), 1), Tick::Continue, "one is back");
    assert_eq!(c.summary.waited_for_workers, Duration::from_secs(4));
    assert_eq!(c.on_tick(Instant::now(), 0), Tick::Continue);
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(c.on_tick(Instant::now(), 0), Tick::Abandon);
    assert!(matches!(c.fatal, Some(EngineError::WorkersGone(d)) if d == Duration::from_secs(5)));
    assert!(c.stopping());
}

/// A stop waits up to `shutdown_grace` for calls in flight, then abandons
/// them as pending; nothing new is sent meanwhile.
#[tokio::test(start_paused = true)]
async fn stop_waits_for_the_grace_then_abandons() {
    let s = settings(|c| {
        c.shutdown_grace_ms = 2_000;
        c.worker_count = 4;
    });
    let mut c = crawl(&s);
    let now = Instant::now();
    let id = one(dispatch(&mut c, now).0);
    c.on_outcome(
        id,
        page(&["http://a.test/1", "http://a.test/2", "http://a.test/3"]),
        now,
    );
    let (sent, _) = dispatch(&mut c, now);
    assert_eq!(sent.len(), 3);
    c.begin_stop("stopped by signal", now);
    assert!(c.summary.interrupted);
    // One comes back within the grace; its links are not followed.
    c.on_outcome(sent[0].0, page(&["http://a.test/4"]), now);
    assert!(matches!(dispatch(&mut c, now), (v, Step::Wait(_)) if v.is_empty()));
    tokio::time::advance(Duration::from_millis(1_999)).await;
    assert_eq!(c.on_tick(Instant::now(), 1), Tick::Continue);
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(c.on_tick(Instant::now(), 1), Tick::Abandon);
    let mut pending: Vec<String> = c
        .abandon(Instant::now())
        .into_iter()
        .map(|t| t.request.url)
        .collect();
    pending.sort();
    assert_eq!(pending, ["http://a.test/2", "http://a.test/3"]);
    assert_eq!(c.scheduler.len(), 1, "the new link stays queued");
    assert!(c.in_flight.is_empty());
}

/// The backoff doubles per retry, is jittered to between half and all of
/// the step, honours Retry-After and never passes the ceiling.
#[test]
fn backoff_bounds() {
    let s = settings(|c| {
        c.retry_backoff_ms = 100;
        c.retry_max_backoff_ms = 1_000;
    });
    for _ in 0..50 {
        let d = backoff(&s, 2, None);
        assert!((200..=400).contains(&(d.as_millis() as u64)), "{d:?}");
        assert_eq!(backoff(&s, 30, None), Duration::from_secs(1));
        let after = backoff(&s, 0, Some(Duration::from_millis(700)));
        assert_eq!(after, Duration::from_millis(700));
    }
}

/// Which page errors are skipped, retried or failed.
#[test]
fn page_failure_decisions() {
    let s = settings(|c| c.retry_times = 1);
    let offsite = CrawlError::Fetch(FetchError::OffsiteRedirect {
        url: "http://a.test/".into(),
        target: "http://b.test/".into(),
    });
    assert_eq!(
        page_failure(&offsite, 0, &s),
        PageFailure::Skip("offsite_redirect")
    );
    assert!(matches!(
        page_failure(&status(503), 0, &s),
        PageFailure::Retry(_)
    ));
    assert_eq!(
        page_failure(&status(503), 1, &s),
        PageFailure::Fail,
        "retries used up"
    );
    assert_eq!(
        page_failure(&status(404), 0, &s),
        PageFailure::Fail,
        "not transient"
    );
}

/// A robots.txt fetch's outcome: the file, missing (4xx but 429,
/// unusable) or unavailable (5xx, 429, a failed call).
#[test]
fn robots_answer_decisions() {
    let ok = CallResult::Answered(Ok(ParseResult::default()));
    assert_eq!(robots_answer(&ok), RobotsAnswer::File(""));
    let r = |e, want| assert_eq!(robots_answer(&CallResult::Answered(Err(e))), want);
    r(status(404), RobotsAnswer::Missing);
    r(status(429), RobotsAnswer::Unavailable);
    r(status(503), RobotsAnswer::Unavailable);
    let too_large = CrawlError::Fetch(FetchError::TooLarge {
        url: "http://a.test/robots.txt".into(),
        limit: 1,
    });
    r(too_large, RobotsAnswer::Missing);
    let failed = CallResult::Failed {
        kind: "rpc_deadline",
        reason: String::new(),
        lost: None,
    };
    assert_eq!(robots_answer(&failed), RobotsAnswer::Unavailable);
}

/// A store commit is due every `state_interval` (or sooner, after
/// `state_commit_changes` changes), and what it holds is enough to resume:
/// the calls in flight then are sent again and the seeds are not queued
/// twice.
#[tokio::test(start_paused = true)]
async fn state_commit_keeps_calls_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(|c| {
        c.state_interval_ms = 1_000;
        c.state_commit_changes = 5;
        c.state_dir = dir.path().display().to_string();
    });
    let (state, _) = crate::state::StateDir::open(dir.path()).unwrap();
    let workers = s.workers.clone();
    let mut c = Crawl::new(&s, &workers, dir.path().to_owned(), Some(state));
    c.resume_or_seed(None);
    let now = Instant::now();
    let id = one(dispatch(&mut c, now).0);
    c.on_outcome(id, page(&["http://a.test/1", "http://a.test/2"]), now);
    let (sent, _) = dispatch(&mut c, now);
    assert_eq!(sent.len(), 2);
    assert_eq!(c.on_tick(now, 1), Tick::Continue, "not due yet");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(c.on_tick(Instant::now(), 1), Tick::WriteState);
    c.commit(Instant::now());
    assert_eq!(c.on_tick(Instant::now(), 1), Tick::Continue, "just written");
    assert!(!c.commit_due());
    drop(c);

    let (state, mut loaded) = crate::state::StateDir::open(dir.path()).unwrap();
    loaded.frontier = state.frontier(crate::state::Requeue::Resume).unwrap();
    let mut resumed = Crawl::new(&s, &workers, dir.path().to_owned(), Some(state));
    resumed.resume_or_seed(Some(loaded));
    assert!(resumed.summary.resumed);
    assert_eq!(resumed.summary.pages, 1);
    let (sent, _) = dispatch(&mut resumed, Instant::now());
    let mut urls: Vec<String> = sent.into_iter().map(|(_, u)| u).collect();
    urls.sort();
    assert_eq!(urls, ["http://a.test/1", "http://a.test/2"]);
}

/// `state_commit_changes` brings a commit forward: a page with many new
/// links makes one due before the interval is up.
#[tokio::test(start_paused = true)]
async fn many_changes_commit_early() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(|c| {
        c.state_commit_changes = 5;
        c.state_dir = dir.path().display().to_string();
    });
    let (state, _) = crate::state::StateDir::open(dir.path()).unwrap();
    let workers = s.workers.clone();
    let mut c = Crawl::new(&s, &workers, dir.path().to_owned(), Some(state));
    c.resume_or_seed(None);
    let now = Instant::now();
    let id = one(dispatch(&mut c, now).0);
    assert!(!c.commit_due(), "one seed queued");
    let links: Vec<String> = (0..5).map(|i| format!("http://a.test/{i}")).collect();
    let links: Vec<&str> = links.iter().map(String::as_str).collect();
    c.on_outcome(id, page(&links), now);
    assert!(c.commit_due());
    assert_eq!(c.on_tick(now, 1), Tick::WriteState);
    c.commit(now);
    assert!(!c.commit_due());
    assert_eq!(c.state.as_ref().unwrap().store.url_count().unwrap(), 6);
}

/// `max_duration` stops the crawl like a signal once the run time is
/// up, counting the time of the runs it resumed from.
#[tokio::test(start_paused = true)]
async fn time_limit_stops_the_crawl() {
    let s = settings(|c| c.max_duration_s = 10);
    let mut c = crawl(&s);
    let id = one(dispatch(&mut c, Instant::now()).0);
    tokio::time::advance(Duration::from_secs(9)).await;
    c.on_outcome(id, page(&["http://a.test/1"]), Instant::now());
    let id = one(dispatch(&mut c, Instant::now()).0);
    assert!(!c.stop_begun());
    tokio::time::advance(Duration::from_secs(1)).await;
    c.on_outcome(id, page(&["http://a.test/2"]), Instant::now());
    assert_eq!(dispatch(&mut c, Instant::now()).1, Step::Done);
    assert_eq!(c.summary.stop_reason.as_deref(), Some("time limit reached"));
    assert_eq!(c.queued(), 1, "the new link is left pending");
}

fn profile_item(id: &str) -> Item {
    Item {
        url: "http://a.test/".into(),
        kind: "profile".into(),
        id: Some(id.into()),
        payload: Default::default(),
    }
}

/// A recrawl tells unchanged, changed and gone pages apart by their
/// previous records: unchanged keeps its items and backs off, changed
/// stores its new items and has the one it dropped deleted, gone has all
/// its items deleted; the counts land in the summary (issue 13).
#[tokio::test(start_paused = true)]
async fn recrawl_decides_unchanged_changed_gone() {
    use crate::state::{Fetched, Meta, Requeue, StateDir, UrlRecord, UrlStatus};
    use rpcsupport::PageMeta;
    let dir = tempfile::tempdir().unwrap();
    let s = settings(|c| {
        c.state_dir = dir.path().display().to_string();
        c.recrawl = true;
        c.recrawl_now = true;
    });
    let urls = [
        "http://a.test/same",
        "http://a.test/new-body",
        "http://a.test/gone",
    ];
    {
        let (mut state, _) = StateDir::open(dir.path()).unwrap();
        for (i, url) in urls.iter().enumerate() {
            let task = crate::scheduler::Task::new(Request::new(*url, ParserSpec::named("p"), 1));
            let mut r = UrlRecord::queued(&task);
            r.status = UrlStatus::Done;
            r.fetched = Some(Fetched {
                http_status: 200,
                etag: Some(format!("\"v{i}\"")),
                content_hash: Some(i as u64),
                interval_s: 7200,
                next_fetch: i64::MAX,
                ..Fetched::default()
            });
            r.item_keys = vec![format!("{i}a"), format!("{i}b")];
            state.store.put(crate::scheduler::fingerprint(url), r);
        }
        state
            .commit(&Meta {
                finished: true,
                ..Meta::default()
            })
            .unwrap();
    }
    let (state, mut loaded) = StateDir::open(dir.path()).unwrap();
    loaded.frontier = state
        .frontier(Requeue::Recrawl {
            now: crate::state::unix_now(),
            all: true,
        })
        .unwrap();
    let workers = s.workers.clone();
    let mut c = Crawl::new(&s, &workers, dir.path().to_owned(), Some(state));
    c.resume_or_seed(Some(loaded));
    assert!(c.summary.recrawl.active && !c.summary.resumed);
    assert_eq!(c.summary.recrawl.due, 3);
    let now = Instant::now();
    let mut sent = Vec::new();
    c.dispatch(now, |id, r: &Request| sent.push((id, r.clone())));
    assert_eq!(sent.len(), 3);
    for (id, request) in sent {
        assert!(
            request.hints.etag.is_some(),
            "{request:?} goes with its validators"
        );
        let outcome = match request.url.rsplit('/').next().unwrap() {
            "same" => answered(Ok(ParseResult {
                page: PageMeta {
                    status: 304,
                    unchanged: true,
                    ..PageMeta::default()
                },
                ..ParseResult::default()
            })),
            "new-body" => answered(Ok(ParseResult {
                items: vec![profile_item("1a")],
                page: PageMeta {
                    status: 200,
                    content_hash: Some(99),
                    ..PageMeta::default()
                },
                ..ParseResult::default()
            })),
            _ => answered(Err(status(410))),
        };
        c.on_outcome(id, outcome, now);
    }
    let r = &c.summary.recrawl;
    assert_eq!((r.unchanged, r.changed, r.new, r.gone), (1, 1, 0, 1));
    let mut deletes = c.take_deletes();
    deletes.sort();
    assert_eq!(deletes, ["1b", "2a", "2b"]);
    let store = &c.state.as_ref().unwrap().store;
    let get = |url: &str| {
        store
            .get(crate::scheduler::fingerprint(url))
            .unwrap()
            .unwrap()
    };
    let same = get(urls[0]);
    assert_eq!(same.item_keys, ["0a", "0b"], "unchanged keeps its items");
    let f = same.fetched.unwrap();
    assert_eq!(f.interval_s, 10_800, "unchanged: 1.5 times longer");
    assert_eq!(
        f.etag.as_deref(),
        Some("\"v0\""),
        "a 304 keeps the validators"
    );
    let changed = get(urls[1]);
    assert_eq!(changed.item_keys, ["1a"]);
    assert_eq!(
        changed.fetched.unwrap().interval_s,
        3_600,
        "changed: halved"
    );
    let gone = get(urls[2]);
    assert_eq!(gone.status, UrlStatus::Gone);
    assert!(gone.item_keys.is_empty());
}

/// While a commit is under way and a full batch of changes waits behind
/// it, nothing new is sent: the changes held in memory stay bounded
/// however slow the disk; once the commit is done, dispatch resumes.
#[tokio::test(start_paused = true)]
async fn dispatch_waits_for_a_commit_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(|c| {
        c.state_commit_changes = 3;
        c.state_dir = dir.path().display().to_string();
    });
    let (state, _) = crate::state::StateDir::open(dir.path()).unwrap();
    let workers = s.workers.clone();
    let mut c = Crawl::new(&s, &workers, dir.path().to_owned(), Some(state));
    c.resume_or_seed(None);
    let now = Instant::now();
    let id = one(dispatch(&mut c, now).0);
    let job = c.begin_commit(now).expect("a commit starts");
    c.on_outcome(
        id,
        page(&["http://a.test/1", "http://a.test/2", "http://a.test/3"]),
        now,
    );
    assert!(c.commit_backlogged());
    assert!(dispatch(&mut c, now).0.is_empty(), "held back");
    job.run().unwrap();
    drop(job);
    c.end_commit(Ok(Ok(())));
    assert!(!c.commit_backlogged());
    assert_eq!(dispatch(&mut c, now).0.len(), 3);
}

// What pages say about themselves (page.rs) and render routing
// (routing.rs), through the machine.

/// A page with a canonical URL crawled already is dropped (items and
/// links); one whose canonical is new stores its items under it and the
/// canonical is not fetched; a sitemap's entries get the sitemap's depth.
#[tokio::test(start_paused = true)]
async fn canonical_and_sitemap_pages_through_the_machine() {
    let s = settings(|c| c.max_depth = 1);
    let mut c = crawl(&s);
    let now = Instant::now();
    let item = |url: &str| Item {
        url: url.into(),
        kind: "profile".into(),
        id: None,
        payload: Default::default(),
    };
    let id = one(dispatch(&mut c, now).0);
    c.on_outcome(
        id,
        page(&[
            "http://a.test/p/1",
            "http://a.test/p/2/print",
            "http://a.test/p/1/print",
        ]),
        now,
    );
    let (sent, _) = dispatch(&mut c, now);
    assert_eq!(sent.len(), 3);
    let answer = |canonical: &str, url: &str| {
        answered(Ok(ParseResult {
            items: vec![item(url)],
            requests: vec![Request::new(
                "http://a.test/deeper",
                ParserSpec::named("p"),
                2,
            )],
            page: rpcsupport::PageMeta {
                canonical: Some(canonical.into()),
                ..Default::default()
            },
            ..ParseResult::default()
        }))
    };
    let by_url = |u: &str| sent.iter().find(|(_, s)| s == u).unwrap().0;
    // p/1 is queued-then-in-flight: its print copy is a duplicate.
    let dup = c.on_outcome(
        by_url("http://a.test/p/1/print"),
        answer("http://a.test/p/1", "http://a.test/p/1/print"),
        now,
    );
    assert_eq!(dup, Some(vec![]));
    assert_eq!(c.summary.page.canonical_duplicates, 1);
    let items = c
        .on_outcome(
            by_url("http://a.test/p/2/print"),
            answer("http://a.test/p/2", "http://a.test/p/2/print"),
            now,
        )
        .unwrap();
    assert_eq!(
        items[0].url, "http://a.test/p/2",
        "stored under its canonical"
    );
    assert_eq!(c.summary.page.canonical_rewritten, 1);
    let metrics = c.registry.render();
    for line in [
        r#"crawler_canonical_total{outcome="duplicate"} 1"#,
        r#"crawler_canonical_total{outcome="rewritten"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    c.on_outcome(
        by_url("http://a.test/p/1"),
        page(&["http://a.test/p/2"]),
        now,
    );
    assert_eq!(c.summary.duplicates, 1, "p/2 was claimed by its print copy");
    assert_eq!(c.summary.too_deep, 1, "the print copy's deeper link");

    // A sitemap at depth 1 lists pages: they get depth 1 too, not 2.
    c.enqueue(Request::new(
        "http://a.test/sitemap.xml",
        ParserSpec::sitemap(&ParserSpec::named("p")),
        1,
    ));
    let id = one(dispatch(&mut c, now).0);
    let listed = answered(Ok(ParseResult {
        requests: vec![Request::new(
            "http://a.test/listed",
            ParserSpec::named("p"),
            2,
        )],
        ..ParseResult::default()
    }));
    c.on_outcome(id, listed, now);
    assert_eq!(c.summary.page.sitemaps, 1);
    let (sent, _) = dispatch(&mut c, now);
    assert_eq!(sent.len(), 1, "the listed page is not too deep");
    assert_eq!(sent[0].1, "http://a.test/listed");
}

/// Once `auto` had to render a page, later requests of that host and
/// parser are sent with `render = always`; an `Unavailable` answer sends
/// the request again without an attempt; a render request no worker took
/// fails as `no_render_worker` without counting a fetch.
#[tokio::test(start_paused = true)]
async fn render_learning_and_outcomes_through_the_machine() {
    let s = settings(|c| c.max_attempts = 1);
    let mut c = crawl(&s);
    let now = Instant::now();
    let mut sent: Vec<(CallId, Request)> = Vec::new();
    c.dispatch(now, |id, r: &Request| sent.push((id, r.clone())));
    let (id, _) = sent.pop().unwrap();
    let shell = answered(Ok(ParseResult {
        requests: vec![
            Request::new("http://a.test/2", ParserSpec::named("city_list"), 1),
            Request::new("http://a.test/3", ParserSpec::named("city_list"), 1),
            Request::new("http://a.test/4", ParserSpec::named("other"), 1),
        ],
        page: rpcsupport::PageMeta {
            rendered: Some(rpcsupport::RenderReason::ScriptShell),
            ..Default::default()
        },
        ..ParseResult::default()
    }));
    c.on_outcome(id, shell, now);
    assert_eq!(c.summary.page.rendered.get("script_shell"), Some(&1));
    c.dispatch(now, |id, r: &Request| sent.push((id, r.clone())));
    let hint = |u: &str| {
        sent.iter()
            .find(|(_, r)| r.url == u)
            .map(|(_, r)| r.hints.render)
            .unwrap()
    };
    assert_eq!(hint("http://a.test/2"), Some(rpcsupport::Render::Always));
    assert_eq!(hint("http://a.test/3"), Some(rpcsupport::Render::Always));
    assert_eq!(
        hint("http://a.test/4"),
        None,
        "another parser learnt nothing"
    );

    let unavailable = CrawlError::Render(rpcsupport::RenderError::Unavailable {
        reason: "no browser".into(),
    });
    let (id2, _) = sent
        .iter()
        .find(|(_, r)| r.url == "http://a.test/2")
        .unwrap();
    c.on_outcome(*id2, answered(Err(unavailable)), now);
    assert!(
        c.summary.errors.is_empty(),
        "no attempt used: {:?}",
        c.summary.errors
    );
    assert_eq!(c.summary.page.render_requeued, 1);
    let fetches = c.summary.fetches;
    let (id3, _) = sent
        .iter()
        .find(|(_, r)| r.url == "http://a.test/3")
        .unwrap();
    let none = Some(Outcome {
        worker: 0,
        result: CallResult::NoRenderWorker {
            waited: Duration::from_secs(1),
        },
    });
    c.on_outcome(*id3, none, now);
    assert_eq!(c.summary.errors.get("no_render_worker"), Some(&1));
    assert_eq!(c.summary.fetches, fetches, "nothing was sent");
    let mut again = Vec::new();
    c.dispatch(now, |_, r: &Request| again.push(r.url.clone()));
    assert_eq!(again, ["http://a.test/2"], "the refused request goes again");
}
