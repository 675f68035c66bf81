//! Records that do not fit in memory, on disk. [`SpillQueue`] is the one
//! "memory first, then a file" FIFO of the engine, used for items waiting
//! for an itemsaver that is down ([`crate::items`]) and for the part of a
//! very large frontier past `queue_memory_tasks` ([`crate::scheduler`]).
//! Its file part, [`Spill`], appends length-prefixed bincode records and
//! reads them back from a cursor, oldest first.
//!
//! The file lives in the state dir or in a [`PrivateDir`], never loose in
//! the shared temp dir: it is created exclusively (a file or symlink
//! already at the path is an error, so a link planted by another user is
//! never followed), mode 0600, under a name with a random part; it is read
//! back through the same open file, never reopened by path. A record
//! length read back is checked against [`MAX_RECORD_BYTES`] and the file's
//! size before anything is allocated for it.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::os::unix::fs::{DirBuilderExt as _, FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

mod queue;
pub use queue::SpillQueue;

/// Largest record a spill file holds (64 MiB): above the largest RPC frame
/// a worker may send, so any item or request the engine received fits. A
/// longer length read back means a damaged file and is an error.
pub const MAX_RECORD_BYTES: u64 = 64 * 1024 * 1024;

/// Tries at a fresh random name before giving up on creating a file.
const CREATE_TRIES: u32 = 16;

/// Creates `path` for reading and writing, mode 0600, failing if anything
/// (a file, a symlink) is already there: the one way the engine creates its
/// private files.
pub fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// A directory of the engine's own, for spill files when there is no state
/// dir: created fresh (mode 0700, a random name in the temp dir, failing
/// rather than reusing anything already there) and removed with what it
/// holds when dropped.
#[derive(Debug)]
pub struct PrivateDir {
    path: PathBuf,
}

impl PrivateDir {
    /// A new private directory in the system temp dir.
    pub fn create() -> io::Result<PrivateDir> {
        PrivateDir::create_in(&std::env::temp_dir())
    }

    /// A new private directory in `parent`.
    pub fn create_in(parent: &Path) -> io::Result<PrivateDir> {
        let mut last = None;
        for _ in 0..CREATE_TRIES {
            let path = parent.join(format!(
                "crawler-engine-{}-{:016x}",
                std::process::id(),
                fastrand::u64(..)
            ));
            // mkdir is exclusive: an existing directory or symlink fails.
            match DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(PrivateDir { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("tried at least once"))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(dir = %self.path.display(), error = %e, "cannot remove the engine's private temp dir");
        }
    }
}

/// Reads `file` from `pos` on with positioned reads, so the writer's
/// offset is untouched and the file is never reopened by its path.
struct ReadAt<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

fn corrupt(path: &Path, what: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}", path.display()),
    )
}

/// A FIFO of `T` in a file.
#[derive(Debug)]
pub struct Spill<T> {
    path: PathBuf,
    writer: BufWriter<File>,
    read_pos: u64,
    count: usize,
    _records: PhantomData<fn(T) -> T>,
}

impl<T: Serialize + DeserializeOwned> Spill<T> {
    /// A new, empty spill file in `dir` (which must exist: the state dir
    /// or a [`PrivateDir`]), named after `name`, this process and a random
    /// part.
    pub fn create(dir: &Path, name: &str) -> io::Result<Spill<T>> {
        let mut tries = 0;
        let (path, file) = loop {
            let path = dir.join(format!(
                "{name}-spill-{}-{:016x}.bin",
                std::process::id(),
                fastrand::u64(..)
            ));
            match create_private(&path) {
                Ok(file) => break (path, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < CREATE_TRIES => {
                    tries += 1
                }
                Err(e) => return Err(e),
            }
        };
        Ok(Spill {
            path,
            writer: BufWriter::new(file),
            read_pos: 0,
            count: 0,
            _records: PhantomData,
        })
    }

    /// Records waiting in the file.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the file holds nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record.
    /// A record over [`MAX_RECORD_BYTES`] is refused, so that every record
    /// written can be read back.
    pub fn append(&mut self, record: &T) -> io::Result<()> {
        // Sized before it is encoded: an oversized record costs no buffer.
        let size = bincode::serialized_size(record).map_err(io::Error::other)?;
        if size > MAX_RECORD_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("record of {size} bytes is over the spill limit of {MAX_RECORD_BYTES}"),
            ));
        }
        let bytes = bincode::serialize(record).map_err(io::Error::other)?;
        self.writer.write_all(&(bytes.len() as u64).to_le_bytes())?;
        self.writer.write_all(&bytes)?;
        self.count += 1;
        Ok(())
    }

    fn read_from(&mut self, pos: u64, max: usize) -> io::Result<(Vec<T>, u64)> {
        self.writer.flush()?;
        let size = self.writer.get_ref().metadata()?.len();
        let mut file = BufReader::new(ReadAt {
            file: self.writer.get_ref(),
            pos,
        });
        let mut records = Vec::new();
        let mut pos = pos;
        let mut len = [0u8; 8];
        while records.len() < max {
            match file.read_exact(&mut len) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
            let n = u64::from_le_bytes(len);
            // Checked before the allocation: a damaged length must not
            // become a giant buffer.
            let left = size.saturating_sub(pos + 8);
            if n > MAX_RECORD_BYTES || n > left {
                return Err(corrupt(
                    &self.path,
                    format!(
                        "record at byte {pos} claims {n} bytes ({left} left in the file, at most {MAX_RECORD_BYTES})"
                    ),
                ));
            }
            let mut buf = vec![0u8; n as usize];
            file.read_exact(&mut buf)?;
            records.push(
                bincode::deserialize(&buf)
                    .map_err(|e| corrupt(&self.path, format!("record at byte {pos}: {e}")))?,
            );
            pos += 8 + n;
        }
        Ok((records, pos))
    }

    /// Takes up to `max` of the oldest records out.
    pub fn take(&mut self, max: usize) -> io::Result<Vec<T>> {
        let (records, pos) = self.read_from(self.read_pos, max)?;
        self.read_pos = pos;
        self.count -= records.len();
        if self.count == 0 {
            // Drained: start the file over so it does not grow forever.
            self.writer.get_mut().set_len(0)?;
            self.writer.seek(SeekFrom::Start(0))?;
            self.read_pos = 0;
        }
        Ok(records)
    }

    /// Every record still waiting, without taking them out.
    pub fn peek_all(&mut self) -> io::Result<Vec<T>> {
        Ok(self.read_from(self.read_pos, usize::MAX)?.0)
    }
}

impl<T> Drop for Spill<T> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records come back in order, and the file restarts when drained.
    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill: Spill<(u32, String)> = Spill::create(dir.path(), "t").unwrap();
        for i in 0..10 {
            spill.append(&(i, format!("r{i}"))).unwrap();
        }
        assert_eq!(spill.peek_all().unwrap().len(), 10);
        let first = spill.take(4).unwrap();
        assert_eq!(
            first,
            (0..4).map(|i| (i, format!("r{i}"))).collect::<Vec<_>>()
        );
        assert_eq!(spill.take(100).unwrap().len(), 6);
        assert!(spill.is_empty());
        spill.append(&(42, "x".into())).unwrap();
        assert_eq!(spill.take(5).unwrap(), vec![(42, "x".to_string())]);
        let path = spill.path().to_owned();
        drop(spill);
        assert!(!path.exists(), "the file goes with the spill");
    }

    /// A spill file is created 0600, and a private dir 0700 and removed
    /// with its contents when dropped.
    #[test]
    fn private_modes() {
        use std::os::unix::fs::PermissionsExt as _;
        let parent = tempfile::tempdir().unwrap();
        let dir = PrivateDir::create_in(parent.path()).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.path()), 0o700);
        let mut spill: Spill<u32> = Spill::create(dir.path(), "t").unwrap();
        spill.append(&1).unwrap();
        assert_eq!(mode(spill.path()), 0o600);
        let path = dir.path().to_owned();
        drop(dir);
        assert!(!path.exists(), "the private dir goes when dropped");
    }

    /// A symlink planted where a private file is to be created is not
    /// followed: creation fails and the link's target is untouched
    /// (issue 11).
    #[test]
    fn planted_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        std::fs::write(&target, b"precious").unwrap();
        let link = dir.path().join("items-spill-1.bin");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = create_private(&link).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    }

    /// A damaged record length is refused as invalid data, without
    /// allocating what it claims (it claims more than memory holds).
    #[test]
    fn corrupt_length_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill: Spill<String> = Spill::create(dir.path(), "t").unwrap();
        spill.append(&"ok".to_string()).unwrap();
        spill.writer.write_all(&u64::MAX.to_le_bytes()).unwrap();
        spill.writer.write_all(b"short").unwrap();
        spill.count += 1;
        let err = spill.peek_all().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(err.to_string().contains("claims"), "{err}");
    }

    /// A record over the limit is refused when written, so every record
    /// in the file can be read back.
    #[test]
    fn oversized_record_is_refused_on_append() {
        let dir = tempfile::tempdir().unwrap();
        // A string, not a Vec<u8>: encoded in one piece, so the test is
        // quick in a debug build.
        let mut spill: Spill<String> = Spill::create(dir.path(), "t").unwrap();
        let big = "x".repeat(MAX_RECORD_BYTES as usize + 1);
        assert_eq!(
            spill.append(&big).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert!(spill.is_empty());
    }
}
