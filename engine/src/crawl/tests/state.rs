//! Commits of the URL store: when one is due, what it is enough to resume
//! from, and dispatch held back so a kill loses at most one batch.

use super::*;

/// A stateful crawl of `s` in `dir` with its seed sent: the crawl, the
/// seed's call, and the time.
fn seed_sent<'a>(s: &'a Settings, dir: &Path) -> (Crawl<'a>, CallId, Instant) {
    let mut c = stateful(s, dir, None);
    let now = Instant::now();
    let id = one(dispatch(&mut c, now).0);
    (c, id, now)
}

/// The seed's page, linking to `n` new pages.
fn page_with_links(n: usize) -> Option<Outcome> {
    let links: Vec<String> = (0..n).map(|i| format!("http://a.test/{i}")).collect();
    page(&links.iter().map(String::as_str).collect::<Vec<_>>())
}

/// A store commit is due every `state_interval` (or sooner, after half of
/// `state_commit_changes` changes), and what it holds is enough to resume:
/// the calls in flight then are sent again and the seeds are not queued
/// twice.
#[tokio::test(start_paused = true)]
async fn state_commit_keeps_calls_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let s = state_settings(dir.path(), |c| {
        c.state_interval_ms = 1_000;
        c.state_commit_changes = 20;
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
/// links makes one due before the interval is up, at half the setting.
#[tokio::test(start_paused = true)]
async fn many_changes_commit_early() {
    let dir = tempfile::tempdir().unwrap();
    let s = state_settings(dir.path(), |c| c.state_commit_changes = 10);
    let (mut c, id, now) = seed_sent(&s, dir.path());
    assert!(!c.commit_due(), "one seed queued");
    c.on_outcome(id, page_with_links(3), now);
    assert!(c.commit_due(), "seed queued, done, 3 links: 5 changes");
    assert_eq!(c.on_tick(now, 1), Tick::WriteState);
    c.commit(now);
    assert!(!c.commit_due());
    assert_eq!(c.state.as_ref().unwrap().store.url_count().unwrap(), 4);
}

/// While a commit is under way, dispatch stops once the changes behind it
/// and the calls in flight reach half of `state_commit_changes`, so what a
/// kill loses (the commit being written and what gathered behind it) stays
/// within one setting's worth of changes plus the calls in flight; once
/// the commit is done, dispatch resumes (issue 13).
#[tokio::test(start_paused = true)]
async fn dispatch_waits_for_the_commit_under_way() {
    let dir = tempfile::tempdir().unwrap();
    let s = state_settings(dir.path(), |c| c.state_commit_changes = 6);
    let (mut c, id, now) = seed_sent(&s, dir.path());
    c.on_outcome(id, page_with_links(6), now);
    assert!(c.commit_due());
    let job = c.begin_commit(now).expect("a commit starts");
    assert!(!c.commit_backlogged(), "nothing behind the commit yet");
    // Half a batch is 3: three calls go out, then no more.
    let sent = dispatch(&mut c, now).0;
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(c.commit_backlogged());
    assert!(dispatch(&mut c, now).0.is_empty(), "held back");
    // A call ending swaps a call in flight for a change: still held.
    c.on_outcome(sent[0].0, page(&[]), now);
    assert!(c.commit_backlogged());
    assert!(dispatch(&mut c, now).0.is_empty(), "still held back");
    job.run().unwrap();
    drop(job);
    c.end_commit(Ok(Ok(())));
    assert!(!c.commit_backlogged());
    assert_eq!(dispatch(&mut c, now).0.len(), 3, "the other links go out");
}

/// Without a commit under way dispatch never waits on the store: the
/// changes gather until a commit takes them.
#[tokio::test(start_paused = true)]
async fn no_commit_under_way_no_wait() {
    let dir = tempfile::tempdir().unwrap();
    let s = state_settings(dir.path(), |c| c.state_commit_changes = 2);
    let (mut c, id, now) = seed_sent(&s, dir.path());
    c.on_outcome(id, page_with_links(2), now);
    assert!(c.commit_due());
    assert!(!c.commit_backlogged());
    assert_eq!(dispatch(&mut c, now).0.len(), 2);
}

/// A canonical URL a page claimed stays claimed after a resume: it is in
/// the store as seen, so the resumed crawl does not fetch it either.
#[tokio::test(start_paused = true)]
async fn canonical_claims_survive_a_resume() {
    let dir = tempfile::tempdir().unwrap();
    let s = state_settings(dir.path(), |_| {});
    let (mut c, id, now) = seed_sent(&s, dir.path());
    c.on_outcome(id, page(&["http://a.test/p/2/print"]), now);
    let print = one(dispatch(&mut c, now).0);
    let claimed = answered(Ok(ParseResult {
        page: rpcsupport::PageMeta {
            canonical: Some("http://a.test/p/2".into()),
            ..Default::default()
        },
        ..ParseResult::default()
    }));
    c.on_outcome(print, claimed, now);
    assert_eq!(c.summary.page.canonical_rewritten, 1);
    c.commit(now);
    drop(c);

    let mut resumed = stateful(&s, dir.path(), Some(Requeue::Resume));
    assert!(
        matches!(resumed.scheduler.claim("http://a.test/p/2"), Ok(false)),
        "the claimed canonical URL is seen after the resume"
    );
    assert!(dispatch(&mut resumed, now).0.is_empty(), "nothing to fetch");
}
