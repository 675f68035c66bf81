//! Retry, skip or fail: what a failed call or a failed page costs.

use super::*;
use crate::crawl::outcome::{backoff, page_failure, PageFailure};
use crate::pool::ConnectionId;

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
