//! [`SpillQueue`]: the one "memory first, then a file on disk" FIFO of
//! the engine, over a [`Spill`] file.

use std::collections::VecDeque;
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::Serialize;

#[cfg(doc)]
use super::PrivateDir;
use super::Spill;

/// A FIFO kept in memory up to a bound, then in a [`Spill`] file: what
/// input grows (items while the itemsaver is down, a huge frontier) costs
/// disk, not memory, past the bound.
///
/// Order is kept: once anything is on disk, new records go to disk too,
/// behind it. Records put back at the front ([`SpillQueue::push_front`],
/// a batch to send again) stay in memory: they came out of it. If the file
/// cannot be created or written, a record stays in memory rather than be
/// lost (logged), so the bound is a target, never a reason to drop.
#[derive(Debug)]
pub struct SpillQueue<T> {
    memory: VecDeque<T>,
    /// Records kept in memory before new ones go to the file.
    bound: usize,
    /// Where the file is made (the state dir or a [`PrivateDir`]); `None`
    /// keeps everything in memory.
    dir: Option<PathBuf>,
    /// Names the file and the log lines.
    name: &'static str,
    /// Created at the first record past the bound.
    file: Option<Spill<T>>,
}

impl<T: Serialize + DeserializeOwned> SpillQueue<T> {
    /// An empty queue keeping up to `bound` records in memory, then
    /// spilling to a file in `dir` named after `name`.
    pub fn new(name: &'static str, bound: usize, dir: Option<PathBuf>) -> SpillQueue<T> {
        SpillQueue {
            memory: VecDeque::new(),
            bound,
            dir,
            name,
            file: None,
        }
    }

    /// Records waiting, in memory and on disk.
    pub fn len(&self) -> usize {
        self.memory.len() + self.spilled()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records waiting on disk.
    pub fn spilled(&self) -> usize {
        self.file.as_ref().map_or(0, Spill::len)
    }

    /// The records in memory, oldest first (the file's come after them).
    pub fn in_memory(&self) -> &VecDeque<T> {
        &self.memory
    }

    /// Appends `record`: in memory while there is room and nothing is on
    /// disk, else to the file.
    pub fn push_back(&mut self, record: T) {
        if self.memory.len() < self.bound && self.spilled() == 0 || self.dir.is_none() {
            self.memory.push_back(record);
            return;
        }
        if self.file.is_none() {
            let dir = self.dir.as_deref().expect("checked above");
            match Spill::create(dir, self.name) {
                Ok(file) => {
                    tracing::info!(queue = self.name, path = %file.path().display(), in_memory = self.memory.len(), "past its memory bound; spilling to disk");
                    self.file = Some(file);
                }
                Err(e) => {
                    tracing::error!(queue = self.name, error = %e, "cannot create a spill file; keeping records in memory");
                    self.memory.push_back(record);
                    return;
                }
            }
        }
        let file = self.file.as_mut().expect("created above");
        if let Err(e) = file.append(&record) {
            tracing::error!(queue = self.name, error = %e, "cannot write the spill file; keeping the record in memory");
            self.memory.push_back(record);
        }
    }

    /// Puts `record` back at the front, in memory.
    pub fn push_front(&mut self, record: T) {
        self.memory.push_front(record);
    }

    /// While fewer than `low` records are in memory, brings up to `chunk`
    /// back from the file.
    pub fn refill(&mut self, low: usize, chunk: usize) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        if file.is_empty() || self.memory.len() >= low {
            return;
        }
        match file.take(chunk.max(1)) {
            Ok(records) => self.memory.extend(records),
            Err(e) => {
                tracing::error!(queue = self.name, error = %e, "cannot read the spill file")
            }
        }
    }

    /// Takes the `n` oldest records in memory out.
    pub fn drain_front(&mut self, n: usize) -> std::collections::vec_deque::Drain<'_, T> {
        self.memory.drain(..n.min(self.memory.len()))
    }

    /// Takes up to `max` of the oldest records out, from memory first,
    /// then from the file.
    pub fn take(&mut self, max: usize) -> Vec<T> {
        let mut out: Vec<T> = self.drain_front(max).collect();
        if out.len() < max {
            self.refill(max - out.len(), max - out.len());
            let rest = max - out.len();
            out.extend(self.drain_front(rest));
        }
        out
    }

    /// Every record waiting (memory, then file), left in place: for the
    /// state snapshot. A file that cannot be read is logged and its
    /// records are missing from the answer (they stay in the queue).
    pub fn snapshot(&mut self) -> Vec<T>
    where
        T: Clone,
    {
        let mut all: Vec<T> = self.memory.iter().cloned().collect();
        if let Some(file) = self.file.as_mut() {
            match file.peek_all() {
                Ok(records) => all.extend(records),
                Err(e) => {
                    tracing::error!(queue = self.name, error = %e, "cannot read the spill file for the state snapshot")
                }
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The queue keeps its bound in memory, spills the rest, and gives
    /// everything back in order; put-back records come first; the
    /// snapshot sees both parts.
    #[test]
    fn spill_queue_is_a_bounded_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let mut q: SpillQueue<u32> = SpillQueue::new("t", 3, Some(dir.path().to_owned()));
        for i in 0..10 {
            q.push_back(i);
        }
        assert_eq!((q.len(), q.in_memory().len(), q.spilled()), (10, 3, 7));
        // The file is the private kind spill.rs makes: 0600, in `dir`.
        let file = q.file.as_ref().unwrap().path().to_owned();
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode, file.parent()), (0o600, Some(dir.path())));
        assert_eq!(q.snapshot(), (0..10).collect::<Vec<_>>());
        assert_eq!(q.drain_front(2).collect::<Vec<_>>(), [0, 1]);
        q.push_front(1);
        q.refill(3, 2);
        assert_eq!(q.in_memory().len(), 4, "1, 2 and two back from the file");
        assert_eq!(q.take(100), (1..10).collect::<Vec<_>>());
        assert!(q.is_empty());
        q.push_back(42);
        assert_eq!(q.spilled(), 0, "drained: memory first again");
        assert_eq!(q.take(1), [42]);
        drop(q);
        assert!(!file.exists(), "the file goes with the queue");
    }

    /// With no directory a queue never touches the disk; with one it can
    /// not create a file in, records stay in memory rather than be lost.
    #[test]
    fn spill_queue_keeps_records_when_it_cannot_spill() {
        let mut q: SpillQueue<u32> = SpillQueue::new("t", 1, None);
        q.push_back(1);
        q.push_back(2);
        assert_eq!((q.in_memory().len(), q.spilled()), (2, 0));
        let gone = tempfile::tempdir().unwrap().path().join("missing");
        let mut q: SpillQueue<u32> = SpillQueue::new("t", 1, Some(gone));
        q.push_back(1);
        q.push_back(2);
        assert_eq!(q.take(10), [1, 2]);
    }
}
