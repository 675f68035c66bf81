//! Crawl state on disk (`--state_dir`), so a crawl survives a stop or a
//! SIGKILL of the engine, and a finished crawl can be crawled again
//! (`--recrawl`).
//!
//! # Layout
//!
//! - this file: the directory: its lock, its modes, the done log, and
//!   loading what it holds into the frontier.
//! - `store.rs`: [`UrlStore`], the durable URL store (`urls.redb`, on
//!   redb): a record per URL, the unacknowledged items, the pending
//!   deletes, the counters; changes are group-committed.
//! - `record.rs`: [`UrlRecord`], what is kept per URL, and its encoding.
//! - `recrawl.rs`: [`RecrawlPolicy`], when a known URL is fetched again.
//!
//! Files:
//! - `urls.redb`: the store. A killed engine resumes from its last commit:
//!   queued URLs (and those in flight then) are queued again; pages done
//!   since that commit are fetched again.
//! - `done.log`: the fingerprint of every page finished since the last
//!   commit, appended as it finishes (8 bytes each, no fsync: it only has
//!   to survive the process, not the machine), so the summary can say how
//!   many pages a resume fetched twice.
//! - `lock`: one engine per directory. It holds an exclusive OS lock
//!   (`flock`) for the engine's lifetime and the pid of its holder, so a
//!   second engine on the same directory stops at start with
//!   [`OpenError::Locked`] instead of both writing the same state. The
//!   lock goes with the process, however it ends; the file stays.
//!
//! The directory is created 0700; every file the engine writes in it is
//! created exclusively, mode 0600 ([`crate::spill::create_private`]), and
//! existing ones are opened without following a symlink, so a symlink
//! planted in it is refused, never followed.
//!
//! A directory of the engine before the URL store (a `state.bin`
//! snapshot) is refused with a message: its snapshot format is gone.

mod record;
mod recrawl;
mod store;

use std::collections::HashSet;
use std::fs::{DirBuilder, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek as _, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use rpcsupport::Item;
use thiserror::Error;

use crate::scheduler::Task;
use crate::spill::create_private;

pub use record::{Fetched, UrlRecord, UrlStatus};
pub use recrawl::{unix_now, Change, RecrawlPolicy};
pub use store::{CommitJob, Meta, UrlStore, CACHE_BYTES, VERSION};

const STORE: &str = "urls.redb";
/// The snapshot of the engine before the URL store.
const OLD_SNAPSHOT: &str = "state.bin";
const DONE_LOG: &str = "done.log";
const LOCK: &str = "lock";

/// Why a state directory could not be opened.
#[derive(Debug, Error)]
pub enum OpenError {
    /// Another engine holds the directory's lock.
    #[error("state dir {} is in use by another engine{}; stop it or choose another --state_dir", dir.display(), pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked {
        /// The directory.
        dir: PathBuf,
        /// The holder's pid, as it wrote it in the lock file.
        pid: Option<u32>,
    },
    /// Reading or writing it failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// An open state directory.
pub struct StateDir {
    dir: PathBuf,
    done_log: File,
    /// The URL store.
    pub store: UrlStore,
    /// Length of the done log when the commit under way began: what it
    /// held then is covered by that commit.
    done_at_commit: Option<u64>,
    /// Holds the directory's lock while open (released when dropped).
    _lock: File,
}

/// What a state directory held when opened (the URLs are read by
/// [`StateDir::frontier`]).
#[derive(Debug, Default)]
pub struct Loaded {
    /// The crawl's counters, if a crawl ever committed here.
    pub meta: Option<Meta>,
    /// Items sent and not acknowledged by the itemsaver.
    pub unacked: Vec<Item>,
    /// Item keys still to delete from the itemsaver.
    pub deletes: Vec<String>,
    /// Pages finished after the last commit.
    pub done_since: HashSet<u64>,
    /// The stored URLs, as the caller asked for them
    /// ([`StateDir::frontier`]); empty until then.
    pub frontier: Frontier,
}

/// Which stored URLs go back into the frontier.
#[derive(Debug, Clone, Copy)]
pub enum Requeue {
    /// Queued ones only: carry on a crawl.
    Resume,
    /// Queued ones, and every fetched or failed URL due at `now` (wall
    /// clock, seconds since the epoch), or all of them with `all`.
    Recrawl {
        /// Wall-clock time of the decision.
        now: i64,
        /// Ignore the schedule: every known URL is due.
        all: bool,
    },
}

/// The stored URLs, as the frontier takes them back.
#[derive(Debug, Default)]
pub struct Frontier {
    /// Tasks to queue.
    pub pending: Vec<Task>,
    /// Every stored fingerprint.
    pub seen: Vec<u64>,
    /// Of `pending`, the known pages queued again for a recrawl.
    pub due: u64,
    /// The earliest next-fetch time among known pages not due (for
    /// `recrawl_every`).
    pub next_due: Option<i64>,
}

impl StateDir {
    /// Opens (creating if needed) `dir`, takes its lock and opens its store.
    pub fn open(dir: &Path) -> Result<(StateDir, Loaded), OpenError> {
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let lock = lock(dir)?;
        if dir.join(OLD_SNAPSHOT).exists() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: holds a state.bin snapshot of an older engine, which this engine no longer reads (it keeps a URL store, urls.redb); finish that crawl with the older engine, or start afresh with an empty --state_dir",
                    dir.display()
                ),
            )
            .into());
        }
        // With the lock held, every spill file here is a dead engine's.
        remove_stale_spills(dir);
        let (store, contents) = UrlStore::open(open_private(&dir.join(STORE))?)?;
        let mut done_since = HashSet::new();
        let log_path = dir.join(DONE_LOG);
        let mut kept = Vec::new();
        match std::fs::symlink_metadata(&log_path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: is a symlink; refusing to follow it",
                        log_path.display()
                    ),
                )
                .into())
            }
            Ok(_) => {
                if contents.meta.is_some() {
                    let mut bytes = Vec::new();
                    File::open(&log_path)?.read_to_end(&mut bytes)?;
                    // A torn last record (killed mid-write) is ignored.
                    for chunk in bytes.chunks_exact(8) {
                        done_since.insert(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
                        kept.extend_from_slice(chunk);
                    }
                }
                std::fs::remove_file(&log_path)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        // Made afresh, exclusively, with what it held since the commit
        // (pages finished then are still to be counted as refetched if
        // this run is killed too).
        let mut done_log = create_private(&log_path)?;
        done_log.write_all(&kept)?;
        Ok((
            StateDir {
                dir: dir.to_owned(),
                done_log,
                store,
                done_at_commit: None,
                _lock: lock,
            },
            Loaded {
                meta: contents.meta,
                unacked: contents.unacked,
                deletes: contents.deletes,
                done_since,
                frontier: Frontier::default(),
            },
        ))
    }

    /// Reads every stored URL: all of them seen, and those `requeue` says
    /// as tasks. A queued record is decoded; the others only when a
    /// recrawl needs their schedule.
    pub fn frontier(&self, requeue: Requeue) -> io::Result<Frontier> {
        let mut out = Frontier::default();
        let mut bad = 0u64;
        self.store.scan(|fp, value| {
            out.seen.push(fp);
            let status = UrlStatus::of(value);
            let wanted = matches!(
                (status, requeue),
                (Some(UrlStatus::Queued), _)
                    | (
                        Some(UrlStatus::Done | UrlStatus::Failed),
                        Requeue::Recrawl { .. }
                    )
            );
            if !wanted {
                return;
            }
            let Ok(record) = UrlRecord::decode(value) else {
                bad += 1;
                return;
            };
            if let (UrlStatus::Done | UrlStatus::Failed, Requeue::Recrawl { now, all }) =
                (record.status, requeue)
            {
                let (next, at) = record
                    .fetched
                    .as_ref()
                    .map_or((0, 0), |f| (f.next_fetch, f.fetched_at));
                if !all && !RecrawlPolicy::due(next, at, record.lastmod, now) {
                    out.next_due = Some(out.next_due.map_or(next, |d| d.min(next)));
                    return;
                }
                out.due += 1;
            }
            out.pending.push(record.task());
        })?;
        if bad > 0 {
            tracing::warn!(
                records = bad,
                "unreadable URL records in the store; skipped"
            );
        }
        Ok(out)
    }

    /// Notes that the page with this fingerprint is done.
    pub fn record_done(&mut self, fingerprint: u64) {
        if let Err(e) = self.done_log.write_all(&fingerprint.to_le_bytes()) {
            // Only the refetch count suffers; the crawl is unaffected.
            tracing::warn!(error = %e, "cannot append to done.log");
        }
    }

    /// Commits the store's pending changes with `meta` here and now, then
    /// starts a fresh done log.
    pub fn commit(&mut self, meta: &Meta) -> io::Result<()> {
        self.store.commit(meta)?;
        self.done_log.set_len(0)?;
        self.done_log.seek(SeekFrom::Start(0))?;
        Ok(())
    }

    /// Takes the pending changes for a commit to run elsewhere
    /// ([`CommitJob::run`]), unless one is under way.
    pub fn begin_commit(&mut self, meta: &Meta) -> io::Result<Option<CommitJob>> {
        let Some(job) = self.store.begin_commit(meta) else {
            return Ok(None);
        };
        self.done_at_commit = Some(self.done_log.stream_position()?);
        Ok(Some(job))
    }

    /// The commit begun last is over: on success the done log keeps only
    /// the pages finished since it began.
    pub fn end_commit(&mut self, ok: bool) -> io::Result<()> {
        self.store.end_commit(ok);
        let Some(at) = self.done_at_commit.take() else {
            return Ok(());
        };
        if !ok {
            return Ok(());
        }
        let end = self.done_log.stream_position()?;
        let mut since = vec![0; end.saturating_sub(at) as usize];
        self.done_log.seek(SeekFrom::Start(at))?;
        self.done_log.read_exact(&mut since)?;
        self.done_log.set_len(0)?;
        self.done_log.seek(SeekFrom::Start(0))?;
        self.done_log.write_all(&since)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

/// Opens `path` read-write without following a symlink, creating it
/// (exclusively, 0600) if it is not there.
fn open_private(path: &Path) -> io::Result<File> {
    match create_private(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(O_NOFOLLOW)
            .open(path),
        other => other,
    }
}

/// Takes `dir`'s lock, or says who holds it. The file is opened without
/// following a symlink (O_NOFOLLOW) and never truncated before the lock is
/// held, so a running engine's pid is not wiped by the one turned away.
fn lock(dir: &Path) -> Result<File, OpenError> {
    let path = dir.join(LOCK);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(O_NOFOLLOW)
        .open(&path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(OpenError::Locked {
                dir: dir.to_owned(),
                pid: text.trim().parse().ok(),
            });
        }
        Err(TryLockError::Error(e)) => return Err(e.into()),
    }
    file.set_len(0)?;
    writeln!(file, "{}", std::process::id())?;
    Ok(file)
}

/// `O_NOFOLLOW` of this platform (std does not name it, and a libc
/// dependency for one constant is not worth it).
/// Linux: the generic value, except on the architectures that define
/// their own (asm/fcntl.h of arm, arm64, powerpc).
#[cfg(any(target_os = "linux", target_os = "android"))]
#[cfg(not(any(
    target_arch = "arm",
    target_arch = "aarch64",
    target_arch = "powerpc",
    target_arch = "powerpc64"
)))]
const O_NOFOLLOW: i32 = 0o400000;
#[cfg(any(target_os = "linux", target_os = "android"))]
#[cfg(any(
    target_arch = "arm",
    target_arch = "aarch64",
    target_arch = "powerpc",
    target_arch = "powerpc64"
))]
const O_NOFOLLOW: i32 = 0o100000;
/// macOS and the BSDs.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const O_NOFOLLOW: i32 = 0x0100;

/// Spill files left by a killed engine (`*-spill-*.bin`, see
/// [`crate::spill`]). What they held is in the store, or came from pages
/// done after its last commit, which are fetched again; so they are only
/// clutter.
fn remove_stale_spills(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains("-spill-") && name.ends_with(".bin") {
            if let Err(e) = std::fs::remove_file(entry.path()) {
                tracing::warn!(file = %name, error = %e, "cannot remove a stale spill file");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert_eq!(f.pending, vec![task("http://h/a")]);
        let mut seen = f.seen;
        seen.sort();
        assert_eq!(seen, [1, 2]);
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
}
