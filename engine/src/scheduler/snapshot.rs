//! The frontier as a value, and loading one back: the crawl tasks queued,
//! spilled or waiting out a backoff, and the seen-URL fingerprints. A
//! resume loads the URL store's queued records and every stored
//! fingerprint this way ([`crate::state::StateDir::frontier`]). robots.txt
//! fetches are not crawl tasks: they are redone after a restart.

use super::{fingerprint, Scheduler, Task};

/// The frontier as a value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrontierSnapshot {
    /// Every crawl task not yet done.
    pub pending: Vec<Task>,
    /// Fingerprints of every URL ever enqueued.
    pub seen: Vec<u64>,
}

impl Scheduler {
    /// The frontier's tasks (spilled ones included) and seen set.
    pub fn snapshot(&mut self) -> FrontierSnapshot {
        let mut pending: Vec<Task> = self
            .hosts
            .values()
            .flat_map(|h| h.queue.iter())
            .chain(self.delayed.tasks())
            .filter(|t| !t.robots)
            .cloned()
            .collect();
        if let Some(overflow) = self.overflow.as_mut() {
            pending.extend(overflow.snapshot());
        }
        FrontierSnapshot {
            pending,
            seen: self.seen.iter().collect(),
        }
    }

    /// Loads saved state: its tasks queued, its URLs seen.
    pub fn restore(&mut self, saved: FrontierSnapshot) {
        self.seen.extend(saved.seen);
        for task in saved.pending.into_iter().filter(|t| !t.robots) {
            // Pending tasks were seen when first queued; make sure even a
            // hand-edited state cannot queue them twice later.
            self.seen.insert(fingerprint(&task.request.url));
            self.push_or_spill(task);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{open, req, take};
    use super::super::{Dropped, Next};
    use std::time::Duration;
    use tokio::time::Instant;

    /// A restored scheduler keeps its queue and still rejects seen URLs.
    #[test]
    fn restore_keeps_queue_and_seen() {
        let mut s = open();
        s.enqueue(req("http://h/a", 0)).unwrap();
        s.enqueue(req("http://h/b", 0)).unwrap();
        let first = take(&mut s, Instant::now());
        let mut r = open();
        r.restore(s.snapshot());
        assert_eq!(
            r.enqueue(req(&first.request.url, 0)),
            Err(Dropped::Duplicate)
        );
        assert_eq!(take(&mut r, Instant::now()).request.url, "http://h/b");
        assert_eq!(r.next(Instant::now()), Next::Idle);
    }

    /// Past its memory bound the frontier spills to disk and gets every
    /// task back; the state snapshot sees the spilled ones too.
    #[test]
    fn frontier_spills_past_its_memory_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open().with_memory_bound(10, dir.path().to_owned());
        for i in 0..100 {
            s.enqueue(req(&format!("http://h{}/p{i}", i % 7), 0))
                .unwrap();
        }
        assert_eq!(s.len(), 100);
        assert_eq!(s.queued, 10, "only the bound stays in memory");
        assert_eq!(s.snapshot().pending.len(), 100);
        let now = Instant::now();
        let mut got = std::collections::HashSet::new();
        while let Next::Task(t) = s.next(now) {
            assert!(s.queued <= 10);
            s.done(&t, Duration::ZERO, false);
            got.insert(t.request.url);
        }
        assert_eq!(got.len(), 100);
        assert!(s.is_idle());
    }
}
