//! The page budget (`max_pages`) and the time limit (`max_duration`).

use super::*;

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
