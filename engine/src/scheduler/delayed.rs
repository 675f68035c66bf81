//! The delayed-retry heap: tasks that failed transiently wait here until
//! their backoff is over, earliest first; ties go in the order they came.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use tokio::time::Instant;

use super::Task;

/// Timer heap entry: a task waiting out its backoff.
#[derive(Debug)]
struct Delayed {
    at: Instant,
    /// Breaks ties between equal times, first in first out.
    seq: u64,
    task: Task,
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Delayed {}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Delayed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Tasks waiting for a time.
#[derive(Debug, Default)]
pub(super) struct DelayedHeap {
    heap: BinaryHeap<Reverse<Delayed>>,
    seq: u64,
}

impl DelayedHeap {
    /// `task` waits until `at`.
    pub(super) fn push(&mut self, task: Task, at: Instant) {
        self.seq += 1;
        self.heap.push(Reverse(Delayed {
            at,
            seq: self.seq,
            task,
        }));
    }

    /// The earliest task whose time has come by `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<Task> {
        if self.heap.peek()?.0.at > now {
            return None;
        }
        self.heap.pop().map(|Reverse(d)| d.task)
    }

    /// When the earliest task's time comes.
    pub(super) fn next_at(&self) -> Option<Instant> {
        self.heap.peek().map(|d| d.0.at)
    }

    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Every task waiting, in no particular order (for the state file).
    pub(super) fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.heap.iter().map(|d| &d.0.task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpcsupport::{ParserSpec, Request};
    use std::time::Duration;

    fn task(url: &str) -> Task {
        Task::new(Request {
            url: url.into(),
            parser: ParserSpec::named("p"),
            depth: 0,
            hints: Default::default(),
        })
    }

    /// Tasks come out when their time has come, earliest first, and in
    /// arrival order at equal times.
    #[test]
    fn earliest_first_then_fifo() {
        let mut h = DelayedHeap::default();
        let t0 = Instant::now();
        h.push(task("http://h/late"), t0 + Duration::from_secs(2));
        h.push(task("http://h/a"), t0 + Duration::from_secs(1));
        h.push(task("http://h/b"), t0 + Duration::from_secs(1));
        assert_eq!(h.pop_due(t0), None);
        assert_eq!(h.next_at(), Some(t0 + Duration::from_secs(1)));
        let at1 = t0 + Duration::from_secs(1);
        assert_eq!(h.pop_due(at1).unwrap().request.url, "http://h/a");
        assert_eq!(h.pop_due(at1).unwrap().request.url, "http://h/b");
        assert_eq!(h.pop_due(at1), None);
        assert_eq!(h.len(), 1);
    }
}
