//! Records that do not fit in memory, on disk: appended as length-prefixed
//! bincode records and read back from a cursor, oldest first. Used for items
//! waiting for an itemsaver that is down, and for the part of a very large
//! frontier past `queue_memory_tasks`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

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
    /// A new, empty spill file in `dir`, named after `name` and this process.
    pub fn create(dir: &Path, name: &str) -> io::Result<Spill<T>> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{name}-spill-{}.bin", std::process::id()));
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)?;
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
    pub fn append(&mut self, record: &T) -> io::Result<()> {
        let bytes = bincode::serialize(record).map_err(io::Error::other)?;
        self.writer.write_all(&(bytes.len() as u64).to_le_bytes())?;
        self.writer.write_all(&bytes)?;
        self.count += 1;
        Ok(())
    }

    fn read_from(&mut self, pos: u64, max: usize) -> io::Result<(Vec<T>, u64)> {
        self.writer.flush()?;
        let mut file = BufReader::new(File::open(&self.path)?);
        file.seek(SeekFrom::Start(pos))?;
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
            let mut buf = vec![0u8; n as usize];
            file.read_exact(&mut buf)?;
            records.push(bincode::deserialize(&buf).map_err(io::Error::other)?);
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
}
