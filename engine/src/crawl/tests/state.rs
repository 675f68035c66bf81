//! Commits of the URL store: when one is due, what it is enough to resume
//! from, and dispatch held back while commits fall behind.

use super::*;

/// A store commit is due every `state_interval` (or sooner, after
/// `state_commit_changes` changes), and what it holds is enough to resume:
/// the calls in flight then are sent again and the seeds are not queued
/// twice.
#[tokio::test(start_paused = true)]
async fn state_commit_keeps_calls_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let s = state_settings(dir.path(), |c| {
        c.state_interval_ms = 1_000;
        c.state_commit_changes = 5;
    });
    let mut c = stateful(&s, dir.path(), None);
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

    let mut resumed = stateful(&s, dir.path(), Some(Requeue::Resume));
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
    let s = state_settings(dir.path(), |c| c.state_commit_changes = 5);
    let mut c = stateful(&s, dir.path(), None);
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

/// While a commit is under way and a full batch of changes waits behind
/// it, nothing new is sent: the changes held in memory stay bounded
/// however slow the disk; once the commit is done, dispatch resumes.
#[tokio::test(start_paused = true)]
async fn dispatch_waits_for_a_commit_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let s = state_settings(dir.path(), |c| c.state_commit_changes = 3);
    let mut c = stateful(&s, dir.path(), None);
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
