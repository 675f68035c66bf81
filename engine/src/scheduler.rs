//! Step 2: the queue of pending requests, with URL dedup and a depth limit.
//!
//! The interface is deliberately as small as Scrapy's scheduler:
//! [`Scheduler::enqueue`] (false when the request is dropped),
//! [`Scheduler::next_task`], [`Scheduler::has_pending`], plus
//! [`Scheduler::retry`] for a request whose call failed, which must not be
//! dropped as a duplicate of itself.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use rpcsupport::Request;
use serde::{Deserialize, Serialize};
use url::Url;

/// A request and how many times it has been sent to a worker already.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// What to fetch and parse.
    pub request: Request,
    /// Calls already made for it (0 for a fresh request).
    pub attempts: u32,
}

/// Why [`Scheduler::enqueue`] did not queue a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// Its normalized URL was seen before.
    Duplicate,
    /// It is deeper than the depth limit.
    TooDeep,
    /// Not an absolute http(s) URL.
    BadUrl,
}

/// FIFO of tasks plus the set of URLs ever enqueued.
#[derive(Debug, Default)]
pub struct Scheduler {
    queue: VecDeque<Task>,
    /// 64-bit fingerprints of normalized URLs rather than the URLs: about
    /// 9 bytes per URL in the table instead of a heap string each. A false
    /// "seen" needs two URLs with the same 64-bit hash (odds near 1 in 10^7
    /// at a billion URLs), which we accept for a crawler.
    seen: HashSet<u64, BuildHasherDefault<PreHashed>>,
    max_depth: Option<u32>,
}

impl Scheduler {
    /// An empty scheduler; `max_depth` of `None` means no limit.
    pub fn new(max_depth: Option<u32>) -> Self {
        Scheduler {
            max_depth,
            ..Scheduler::default()
        }
    }

    /// Queues `request` unless it is a duplicate, too deep or not crawlable.
    pub fn enqueue(&mut self, mut request: Request) -> Result<(), Dropped> {
        if self.max_depth.is_some_and(|max| request.depth > max) {
            return Err(Dropped::TooDeep);
        }
        let normalized = normalize(&request.url).ok_or(Dropped::BadUrl)?;
        if !self.seen.insert(fingerprint(&normalized)) {
            return Err(Dropped::Duplicate);
        }
        request.url = normalized;
        self.queue.push_back(Task {
            request,
            attempts: 0,
        });
        Ok(())
    }

    /// Puts back a task whose call failed; it was already counted as seen.
    pub fn retry(&mut self, task: Task) {
        self.queue.push_back(task);
    }

    /// The oldest pending task.
    pub fn next_task(&mut self) -> Option<Task> {
        self.queue.pop_front()
    }

    /// Whether anything is queued.
    pub fn has_pending(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Tasks queued.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Distinct URLs ever enqueued.
    pub fn seen_count(&self) -> usize {
        self.seen.len()
    }

    /// The queued tasks, oldest first (for the state file).
    pub fn pending(&self) -> impl Iterator<Item = &Task> {
        self.queue.iter()
    }

    /// The seen-URL fingerprints (for the state file).
    pub fn seen_fingerprints(&self) -> Vec<u64> {
        self.seen.iter().copied().collect()
    }

    /// A scheduler as saved: these tasks queued, these URLs seen.
    pub fn restore(max_depth: Option<u32>, pending: Vec<Task>, seen: Vec<u64>) -> Self {
        let mut s = Scheduler::new(max_depth);
        s.seen.extend(seen);
        // Pending tasks were seen when first queued; make sure even a
        // hand-edited state cannot queue them twice later.
        for task in &pending {
            if let Some(n) = normalize(&task.request.url) {
                s.seen.insert(fingerprint(&n));
            }
        }
        s.queue = pending.into();
        s
    }
}

/// The form of a URL used for dedup: parsed (which lowercases scheme and
/// host, drops default ports and resolves dot segments) and without its
/// fragment. `None` for anything but absolute http(s) URLs.
pub fn normalize(raw: &str) -> Option<String> {
    let mut url = Url::parse(raw.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    url.set_fragment(None);
    Some(url.into())
}

/// The 64-bit fingerprint of a normalized URL; FNV-1a, stable across Rust
/// versions and runs (std's hasher is not promised to be), so fingerprints
/// can be saved and reloaded.
pub fn fingerprint(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in s.as_bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// The seen-set keys are already hashes; hashing them again is wasted work.
#[derive(Default)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are stored; this path is for completeness.
        for &b in bytes {
            self.0 = (self.0 << 8) | b as u64;
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpcsupport::ParserSpec;

    fn req(url: &str, depth: u32) -> Request {
        Request {
            url: url.into(),
            parser: ParserSpec::named("p"),
            depth,
        }
    }

    /// Equivalent spellings of one URL are crawled once.
    #[test]
    fn dedups_normalized_urls() {
        let mut s = Scheduler::new(None);
        assert_eq!(
            s.enqueue(req("http://Example.COM:80/a/./b/../c#frag", 0)),
            Ok(())
        );
        assert_eq!(
            s.enqueue(req("http://example.com/a/c", 1)),
            Err(Dropped::Duplicate)
        );
        assert_eq!(
            s.enqueue(req("http://example.com/a/c#other", 1)),
            Err(Dropped::Duplicate)
        );
        assert_eq!(s.enqueue(req("https://example.com/a/c", 1)), Ok(()));
        assert_eq!(s.len(), 2);
        assert_eq!(s.next_task().unwrap().request.url, "http://example.com/a/c");
    }

    /// Requests deeper than the limit are dropped; the limit itself is allowed.
    #[test]
    fn depth_limit() {
        let mut s = Scheduler::new(Some(2));
        assert_eq!(s.enqueue(req("http://h/1", 2)), Ok(()));
        assert_eq!(s.enqueue(req("http://h/2", 3)), Err(Dropped::TooDeep));
    }

    /// Non-http(s) and relative URLs never reach a worker.
    #[test]
    fn rejects_uncrawlable_urls() {
        let mut s = Scheduler::new(None);
        for bad in [
            "mailto:a@b",
            "javascript:void(0)",
            "/relative",
            "ftp://h/x",
            "",
        ] {
            assert_eq!(s.enqueue(req(bad, 0)), Err(Dropped::BadUrl), "{bad}");
        }
    }

    /// A restored scheduler keeps its queue and still rejects seen URLs.
    #[test]
    fn restore_keeps_queue_and_seen() {
        let mut s = Scheduler::new(None);
        s.enqueue(req("http://h/a", 0)).unwrap();
        s.enqueue(req("http://h/b", 0)).unwrap();
        s.next_task();
        let pending: Vec<Task> = s.pending().cloned().collect();
        let mut r = Scheduler::restore(None, pending, s.seen_fingerprints());
        assert_eq!(r.enqueue(req("http://h/a", 0)), Err(Dropped::Duplicate));
        assert_eq!(r.next_task().unwrap().request.url, "http://h/b");
        assert!(r.next_task().is_none());
    }

    /// A retried task goes back in the queue even though its URL is seen.
    #[test]
    fn retry_requeues_seen_task() {
        let mut s = Scheduler::new(None);
        s.enqueue(req("http://h/x", 0)).unwrap();
        let mut t = s.next_task().unwrap();
        t.attempts += 1;
        s.retry(t.clone());
        assert_eq!(s.next_task(), Some(t));
        assert!(!s.has_pending());
    }
}
