//! How a crawl stops: every worker gone for `worker_wait`, or a stop
//! that gives the calls in flight `shutdown_grace`.

use super::*;

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
