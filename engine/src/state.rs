//! Crawl state on disk (`--state_dir`), so a crawl survives a stop or a
//! SIGKILL of the engine.
//!
//! Two files:
//! - `state.bin`: a snapshot of everything the engine knows (pending and
//!   in-flight requests, the seen-URL fingerprints, items not yet
//!   acknowledged by the itemsaver, the counters), written at intervals and
//!   at stop, atomically: to `state.bin.tmp`, fsync, rename, fsync the
//!   directory. A crash leaves either the old snapshot or the new one.
//! - `done.log`: the fingerprint of every page finished since that snapshot,
//!   appended as it finishes (8 bytes each, no fsync: it only has to survive
//!   the process, not the machine). After a restart these pages are fetched
//!   again, because their links and items may not have been kept; the log
//!   lets the summary say how many.
//!
//! One engine per directory: `lock` holds an exclusive OS lock (`flock`)
//! for the engine's lifetime and the pid of its holder, so a second engine
//! on the same directory stops at start with [`OpenError::Locked`] instead
//! of both writing the same state. The lock goes with the process, however
//! it ends; the file stays.
//!
//! The directory is created 0700; every file the engine writes in it is
//! created exclusively, mode 0600 ([`crate::spill::create_private`]), so
//! a symlink planted in it is refused, never followed.

use std::collections::HashSet;
use std::fs::{DirBuilder, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek as _, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use rpcsupport::Item;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::scheduler::Task;
use crate::spill::create_private;
use crate::summary::Summary;

/// 2: the summary counts `fetches` (what `max_pages` bounds).
const VERSION: u32 = 2;
const SNAPSHOT: &str = "state.bin";
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

/// Everything needed to carry on a crawl.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// Format version; a snapshot of another version is refused.
    pub version: u32,
    /// Requests not yet done: queued and in flight at snapshot time.
    pub pending: Vec<Task>,
    /// Fingerprints of every URL ever queued.
    pub seen: Vec<u64>,
    /// Items sent to the sink and not yet acknowledged.
    pub unacked: Vec<Item>,
    /// Counters so far.
    pub summary: Summary,
    /// The crawl ran to its end.
    pub finished: bool,
}

/// An open state directory.
pub struct StateDir {
    dir: PathBuf,
    done_log: File,
    /// Holds the directory's lock while open (released when dropped).
    _lock: File,
}

/// What a state directory held when opened.
pub struct Loaded {
    /// The last snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// Pages finished after that snapshot.
    pub done_since: HashSet<u64>,
}

impl StateDir {
    /// Opens (creating if needed) `dir`, takes its lock and reads what it
    /// holds.
    pub fn open(dir: &Path) -> Result<(StateDir, Loaded), OpenError> {
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let lock = lock(dir)?;
        // With the lock held, every spill file here is a dead engine's.
        remove_stale_spills(dir);
        let snapshot = match std::fs::read(dir.join(SNAPSHOT)) {
            Ok(bytes) => {
                let snap: Snapshot = bincode::deserialize(&bytes).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: unreadable snapshot: {e}", dir.join(SNAPSHOT).display()),
                    )
                })?;
                if snap.version != VERSION {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: snapshot version {} (this engine reads {VERSION})",
                            dir.display(),
                            snap.version
                        ),
                    )
                    .into());
                }
                Some(snap)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
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
                if snapshot.is_some() {
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
        // Made afresh, exclusively, with what it held since the snapshot
        // (pages finished then are still to be counted as refetched if
        // this run is killed too).
        let mut done_log = create_private(&log_path)?;
        done_log.write_all(&kept)?;
        Ok((
            StateDir {
                dir: dir.to_owned(),
                done_log,
                _lock: lock,
            },
            Loaded {
                snapshot,
                done_since,
            },
        ))
    }

    /// Notes that the page with this fingerprint is done.
    pub fn record_done(&mut self, fingerprint: u64) {
        if let Err(e) = self.done_log.write_all(&fingerprint.to_le_bytes()) {
            // Only the refetch count suffers; the crawl is unaffected.
            tracing::warn!(error = %e, "cannot append to done.log");
        }
    }

    /// Writes `snapshot` atomically and starts a fresh done log.
    pub fn write(&mut self, snapshot: &mut Snapshot) -> io::Result<()> {
        snapshot.version = VERSION;
        let bytes = bincode::serialize(snapshot).map_err(io::Error::other)?;
        let tmp = self.dir.join(format!("{SNAPSHOT}.tmp"));
        // A leftover of a write that was killed: ours (the lock says so).
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        {
            let mut f = create_private(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, self.dir.join(SNAPSHOT))?;
        File::open(&self.dir)?.sync_all()?;
        self.done_log.set_len(0)?;
        self.done_log.seek(SeekFrom::Start(0))?;
        Ok(())
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
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
/// [`crate::spill`]). What they held is in the snapshot, or came from pages
/// done after it, which are fetched again; so they are only clutter.
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

    /// A snapshot written and reopened comes back whole, with the pages
    /// finished after it.
    #[test]
    fn snapshot_round_trip_and_done_log() {
        let dir = tempfile::tempdir().unwrap();
        let (mut state, loaded) = StateDir::open(dir.path()).unwrap();
        assert!(loaded.snapshot.is_none());
        let mut snap = Snapshot {
            pending: vec![Task {
                request: Request {
                    url: "http://h/a".into(),
                    parser: ParserSpec::named("p"),
                    depth: 2,
                    hints: Default::default(),
                },
                attempts: 1,
                retries: 0,
                robots: false,
            }],
            seen: vec![1, 2, 3],
            summary: Summary {
                pages: 7,
                ..Summary::default()
            },
            ..Snapshot::default()
        };
        state.record_done(99);
        state.write(&mut snap).unwrap();
        state.record_done(5);
        state.record_done(6);
        drop(state);
        let (_state, loaded) = StateDir::open(dir.path()).unwrap();
        let back = loaded.snapshot.unwrap();
        assert_eq!(back.pending, snap.pending);
        assert_eq!(back.seen, vec![1, 2, 3]);
        assert_eq!(back.summary.pages, 7);
        assert_eq!(loaded.done_since, HashSet::from([5, 6]));
        assert!(!dir.path().join("state.bin.tmp").exists());
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
        state.write(&mut Snapshot::default()).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        for name in [SNAPSHOT, DONE_LOG, LOCK] {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
        }
    }

    /// A symlink planted as the snapshot's temp file is replaced, not
    /// written through: its target is untouched (issue 11).
    #[test]
    fn planted_tmp_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let (mut state, _) = StateDir::open(&dir.path().join("s")).unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("s").join("state.bin.tmp")).unwrap();
        state.write(&mut Snapshot::default()).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        drop(state);
        // A symlinked done.log or lock is refused outright.
        std::fs::remove_file(dir.path().join("s").join(DONE_LOG)).unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("s").join(DONE_LOG)).unwrap();
        assert!(StateDir::open(&dir.path().join("s")).is_err());
        std::fs::remove_file(dir.path().join("s").join(DONE_LOG)).unwrap();
        std::fs::remove_file(dir.path().join("s").join(LOCK)).unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("s").join(LOCK)).unwrap();
        assert!(StateDir::open(&dir.path().join("s")).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }

    /// A damaged snapshot is an error, never silently an empty crawl.
    #[test]
    fn corrupt_snapshot_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SNAPSHOT), b"garbage").unwrap();
        assert!(StateDir::open(dir.path()).is_err());
    }
}
