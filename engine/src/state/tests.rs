//! Tests of the state directory: commits, the done log, recrawl queues, locks, modes.

use super::*;
use crate::scheduler::fingerprint;
use rpcsupport::{ParserSpec, Request};

fn task(url: &str) -> Task {
    Task::new(Request::new(url, ParserSpec::named("p"), 2))
}

/// Committed URLs come back: queued ones as tasks, all as seen; the
/// pages finished after the commit come back from the done log.
#[test]
fn commit_round_trip_and_done_log() {
    let dir = tempfile::tempdir().unwrap();
    let (mut state, loaded) = StateDir::open(dir.path()).unwrap();
    assert!(loaded.meta.is_none());
    state.store.put(1, UrlRecord::queued(&task("http://h/a")));
    let mut done = UrlRecord::queued(&task("http://h/b"));
    done.status = UrlStatus::Done;
    state.store.put(2, done);
    state.record_done(99);
    state.commit(&Meta::default()).unwrap();
    state.record_done(5);
    state.record_done(6);
    drop(state);
    let (state, loaded) = StateDir::open(dir.path()).unwrap();
    assert!(loaded.meta.is_some());
    assert_eq!(loaded.done_since, HashSet::from([5, 6]));
    let f = state.frontier(Requeue::Resume).unwrap();
    assert_eq!(
        f.pending,
        vec![Task {
            key: 1,
            ..task("http://h/a")
        }],
        "a queued task comes back under its key"
    );
    let mut seen = f.seen;
    seen.sort();
    let mut fps = [fingerprint("http://h/a"), fingerprint("http://h/b")];
    fps.sort();
    assert_eq!(seen, fps, "the seen set gets the URLs' fingerprints");
}

/// Keys follow discovery across a restart: a reopened store gives keys
/// after the largest committed one, never one a stored URL holds.
#[test]
fn keys_continue_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut state, _) = StateDir::open(dir.path()).unwrap();
    let keys: Vec<u64> = (0..3).map(|_| state.store.new_key()).collect();
    assert_eq!(keys, [1, 2, 3]);
    for (key, url) in keys.iter().zip(["http://h/a", "http://h/b", "http://h/c"]) {
        state.store.put(*key, UrlRecord::queued(&task(url)));
    }
    state.commit(&Meta::default()).unwrap();
    // Given but never committed (a kill): reused, harmlessly.
    assert_eq!(state.store.new_key(), 4);
    drop(state);
    let (mut state, _) = StateDir::open(dir.path()).unwrap();
    assert_eq!(state.store.new_key(), 4);
    assert_eq!(state.store.get(2).unwrap().unwrap().url, "http://h/b");
}

/// A commit run off the loop covers the pages done before it began;
/// the done log keeps those finished while it ran.
#[test]
fn background_commit_trims_the_done_log() {
    let dir = tempfile::tempdir().unwrap();
    let (mut state, _) = StateDir::open(dir.path()).unwrap();
    state.record_done(1);
    let job = state.begin_commit(&Meta::default()).unwrap().unwrap();
    assert!(state.begin_commit(&Meta::default()).unwrap().is_none());
    state.record_done(2);
    job.run().unwrap();
    drop(job);
    state.end_commit(true).unwrap();
    state.record_done(3);
    drop(state);
    let (_, loaded) = StateDir::open(dir.path()).unwrap();
    assert_eq!(loaded.done_since, HashSet::from([2, 3]));
}

/// A recrawl queues the known pages that are due (or all of them with
/// `all`), with their validators as hints, and says when the next one
/// falls due; gone pages stay gone.
#[test]
fn recrawl_queues_due_pages_with_hints() {
    let dir = tempfile::tempdir().unwrap();
    let (mut state, _) = StateDir::open(dir.path()).unwrap();
    let fetched = |next_fetch| {
        let mut r = UrlRecord::queued(&task(&format!("http://h/{next_fetch}")));
        r.status = UrlStatus::Done;
        r.fetched = Some(Fetched {
            http_status: 200,
            etag: Some(format!("\"e{next_fetch}\"")),
            fetched_at: 100,
            next_fetch,
            interval_s: 3600,
            ..Fetched::default()
        });
        r
    };
    state.store.put(1, fetched(1_000));
    state.store.put(2, fetched(5_000));
    let mut gone = fetched(0);
    gone.status = UrlStatus::Gone;
    state.store.put(3, gone);
    state.commit(&Meta::default()).unwrap();
    let f = state
        .frontier(Requeue::Recrawl {
            now: 2_000,
            all: false,
        })
        .unwrap();
    assert_eq!(f.due, 1);
    assert_eq!(f.pending.len(), 1);
    assert_eq!(
        f.pending[0].request.hints.etag.as_deref(),
        Some("\"e1000\"")
    );
    assert_eq!(f.next_due, Some(5_000));
    let all = state
        .frontier(Requeue::Recrawl {
            now: 2_000,
            all: true,
        })
        .unwrap();
    assert_eq!(all.due, 2);
    assert!(state.frontier(Requeue::Resume).unwrap().pending.is_empty());
}

/// Spill files of an earlier (killed) engine are cleared on open.
#[test]
fn stale_spill_files_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("items-spill-1.bin"), b"x").unwrap();
    std::fs::write(dir.path().join("frontier-spill-2.bin"), b"x").unwrap();
    std::fs::write(dir.path().join("keep.txt"), b"x").unwrap();
    let _ = StateDir::open(dir.path()).unwrap();
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!left.iter().any(|n| n.contains("-spill-")), "{left:?}");
    assert!(left.contains(&"keep.txt".to_string()));
}

/// A second open of a directory in use is refused, naming the
/// directory and the holder's pid; once the first is closed the
/// directory opens again (issue 11).
#[test]
fn second_open_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = StateDir::open(dir.path()).unwrap();
    match StateDir::open(dir.path()) {
        Err(OpenError::Locked { dir: d, pid }) => {
            assert_eq!(d, dir.path());
            assert_eq!(pid, Some(std::process::id()));
        }
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("a second open must be refused"),
    }
    let err = StateDir::open(dir.path()).err().unwrap().to_string();
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    drop(first);
    let _again = StateDir::open(dir.path()).unwrap();
}

/// The directory it creates is 0700 and the files it writes 0600.
#[test]
fn private_modes() {
    use std::os::unix::fs::PermissionsExt as _;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("state");
    let (mut state, _) = StateDir::open(&dir).unwrap();
    state.commit(&Meta::default()).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    for name in [STORE, DONE_LOG, LOCK] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
}

/// A symlink planted as the store, the done log or the lock is
/// refused, never written through: its target is untouched (issue 11).
#[test]
fn planted_symlinks_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let s = dir.path().join("s");
    drop(StateDir::open(&s).unwrap());
    for name in [STORE, DONE_LOG, LOCK] {
        let path = s.join(name);
        let saved = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        assert!(StateDir::open(&s).is_err(), "{name}");
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, saved).unwrap();
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
}

/// A damaged store is an error, never silently an empty crawl; an old
/// engine's `state.bin` is refused with a message saying what to do.
#[test]
fn corrupt_store_and_old_snapshot_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(STORE), b"garbage").unwrap();
    assert!(StateDir::open(dir.path()).is_err());
    let old = tempfile::tempdir().unwrap();
    std::fs::write(old.path().join(OLD_SNAPSHOT), b"x").unwrap();
    let err = StateDir::open(old.path()).err().unwrap().to_string();
    assert!(
        err.contains("state.bin") && err.contains("older engine"),
        "{err}"
    );
}

/// A canonical URL claimed by another page is seen on a resume, and
/// queued by neither a resume nor a recrawl of everything.
#[test]
fn claimed_urls_are_seen_never_queued() {
    let dir = tempfile::tempdir().unwrap();
    let (mut state, _) = StateDir::open(dir.path()).unwrap();
    let mut claimed = UrlRecord::queued(&task("http://h/canonical"));
    claimed.status = UrlStatus::Claimed;
    state.store.put(1, claimed);
    state.commit(&Meta::default()).unwrap();
    for requeue in [Requeue::Resume, Requeue::Recrawl { now: 0, all: true }] {
        let f = state.frontier(requeue).unwrap();
        assert!(f.pending.is_empty(), "{requeue:?}: {:?}", f.pending);
        assert_eq!(f.seen, [fingerprint("http://h/canonical")]);
    }
}
