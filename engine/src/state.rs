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

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use rpcsupport::Item;
use serde::{Deserialize, Serialize};

use crate::scheduler::Task;
use crate::summary::Summary;

/// 2: the summary counts `fetches` (what `max_pages` bounds).
const VERSION: u32 = 2;
const SNAPSHOT: &str = "state.bin";
const DONE_LOG: &str = "done.log";

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
}

/// What a state directory held when opened.
pub struct Loaded {
    /// The last snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// Pages finished after that snapshot.
    pub done_since: HashSet<u64>,
}

impl StateDir {
    /// Opens (creating if needed) `dir` and reads what it holds.
    pub fn open(dir: &Path) -> io::Result<(StateDir, Loaded)> {
        std::fs::create_dir_all(dir)?;
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
                    ));
                }
                Some(snap)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let mut done_since = HashSet::new();
        let log_path = dir.join(DONE_LOG);
        if snapshot.is_some() {
            if let Ok(mut f) = File::open(&log_path) {
                let mut bytes = Vec::new();
                f.read_to_end(&mut bytes)?;
                // A torn last record (killed mid-write) is ignored.
                for chunk in bytes.chunks_exact(8) {
                    done_since.insert(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
                }
            }
        }
        let done_log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        if snapshot.is_none() {
            done_log.set_len(0)?;
        }
        Ok((
            StateDir {
                dir: dir.to_owned(),
                done_log,
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
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, self.dir.join(SNAPSHOT))?;
        File::open(&self.dir)?.sync_all()?;
        self.done_log.set_len(0)?;
        Ok(())
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

/// Spill files left by a killed engine (`*-spill-PID.bin`, see
/// [`crate::spill`]). What they held is in the snapshot, or came from pages
/// done after it, which are fetched again; so they are only clutter.
fn remove_stale_spills(dir: &Path) {
    let own = format!("-spill-{}.bin", std::process::id());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains("-spill-") && name.ends_with(".bin") && !name.ends_with(&own) {
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

    /// A damaged snapshot is an error, never silently an empty crawl.
    #[test]
    fn corrupt_snapshot_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SNAPSHOT), b"garbage").unwrap();
        assert!(StateDir::open(dir.path()).is_err());
    }
}
