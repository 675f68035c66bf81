//! Crawl state on disk (`--state_dir`), so a crawl survives a stop or a
//! SIGKILL of the engine, and a finished crawl can be crawled again
//! (`--recrawl`).
//!
//! # Layout
//!
//! - this file: the directory: its lock, its modes, the done log, and
//!   loading what it holds into the frontier.
//! - `store/`: [`UrlStore`], the durable URL store (`urls.redb`, on
//!   redb): a record per URL, keyed by discovery order (each task carries
//!   its key), the unacknowledged items, the pending
//!   deletes, the counters; changes are group-committed (`batch.rs`: the
//!   changes a commit writes).
//! - `record.rs`: [`UrlRecord`], what is kept per URL, and its encoding.
//! - `recrawl.rs`: [`RecrawlPolicy`], when a known URL is fetched again.
//! - `tests.rs`: the directory's tests (the store's are in `store/`).
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
pub use store::{CommitJob, Meta, UrlStore, DEFAULT_CACHE_MB, VERSION};

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
    /// Opens (creating if needed) `dir`, takes its lock and opens its store
    /// with the default page cache ([`DEFAULT_CACHE_MB`]).
    pub fn open(dir: &Path) -> Result<(StateDir, Loaded), OpenError> {
        StateDir::open_with_cache(dir, (DEFAULT_CACHE_MB as usize) << 20)
    }

    /// [`StateDir::open`] with a page cache of `cache_bytes` for the store.
    pub fn open_with_cache(
        dir: &Path,
        cache_bytes: usize,
    ) -> Result<(StateDir, Loaded), OpenError> {
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
        let (store, contents) = UrlStore::open(open_private(&dir.join(STORE))?, cache_bytes)?;
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
        self.store.scan(|key, fp, value| {
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
            out.pending.push(record.task(key));
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
mod tests;
