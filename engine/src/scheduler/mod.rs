//! Step 2: the frontier. Pending requests wait in one queue per host; ready
//! hosts are served round-robin, so a slow or rate-limited host never holds
//! up the others. Dedup happens on enqueue, on the normalized URL (see
//! [`crate::scope`]).
//!
//! The interface is small, after Scrapy's scheduler: [`Scheduler::enqueue`]
//! (queued, or why it was [`Dropped`]), [`Scheduler::next`] (a task, wait,
//! or idle), [`Scheduler::done`] / [`Scheduler::retry`] /
//! [`Scheduler::robots_answer`] when a call comes back, and
//! [`Scheduler::is_idle`]; then what the crawl reports (`len`,
//! `take_counts`, `busiest_hosts`, `seen_count`) and the state dir
//! (`enqueue_with`, `snapshot.rs`). Behind it, one file per part:
//!
//! - `hosts.rs`: per-host queues and limits: at most `concurrency` requests
//!   in flight per host and at least `delay` between the starts of two
//!   (config defaults, per-domain overrides, robots.txt `Crawl-delay`,
//!   adaptive throttle).
//! - `robots_gate.rs`: robots.txt fetched once per host (through a worker,
//!   as a request of its own) before any other request to it, re-fetched
//!   after its TTL; while it is unreachable the host waits.
//! - `delayed.rs`: requests that failed transiently wait in a timer heap
//!   until their backoff is over.
//! - `snapshot.rs`: the frontier as a value, and loading one back (a
//!   resume from the URL store).
//! - `url.rs`: host, origin and path read off a URL's text; the fingerprint.
//! - `tests.rs`, and `testing.rs`: helpers it shares with the crawl loop's
//!   tests.
//!
//! The far end of a frontier larger than `queue_memory_tasks` waits on disk
//! in a [`SpillQueue`].

mod delayed;
mod hosts;
mod robots_gate;
mod snapshot;
#[cfg(test)]
pub(super) mod testing;
#[cfg(test)]
mod tests;
mod url;

use std::cmp::Reverse;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use rpcsupport::{ParserSpec, Request};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::scope::{OutOfScope, RejectCache, Scope};
use crate::seen::SeenSet;
use crate::spill::SpillQueue;
use delayed::DelayedHeap;
use hosts::Host;
use robots_gate::{Answered, Gate};
use url::{host_of, path_and_query};

pub use hosts::{HostLimits, HostView, Politeness};
pub use robots_gate::RobotsAnswer;
pub use snapshot::FrontierSnapshot;
pub use url::fingerprint;

/// A request and what has happened to it so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// What to fetch and parse.
    pub request: Request,
    /// Worker calls already made for it that failed at the transport level.
    pub attempts: u32,
    /// Fetches retried after a transient failure (timeout, 503...).
    #[serde(default)]
    pub retries: u32,
    /// A robots.txt fetch made by the scheduler, not a crawl request.
    #[serde(default)]
    pub robots: bool,
    /// Its URL's key in the URL store (`--state_dir`): the URL's place in
    /// the order URLs were discovered, given when it is first queued
    /// ([`crate::state::UrlStore::new_key`]); 0 when the crawl keeps no
    /// state. See `state/store/` for why the store is keyed this way.
    #[serde(default)]
    pub key: u64,
}

impl Task {
    /// A request not tried yet.
    pub fn new(request: Request) -> Task {
        Task {
            request,
            attempts: 0,
            retries: 0,
            robots: false,
            key: 0,
        }
    }
}

/// Why [`Scheduler::enqueue`] did not queue a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// Its normalized URL was seen before.
    Duplicate,
    /// It is deeper than the depth limit.
    TooDeep,
    /// Outside the crawl's scope (or not a crawlable URL).
    OutOfScope(OutOfScope),
}

/// What the dispatcher should do next.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Send this task to a worker.
    Task(Task),
    /// Nothing is ready: come back at this time, or (`None`) when a call in
    /// flight finishes.
    Wait(Option<Instant>),
    /// Nothing is queued or waiting at all.
    Idle,
}

/// Requests the scheduler dropped on its own, for the summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchedulerCounts {
    /// Requests skipped because robots.txt disallows them.
    pub robots_disallowed: u64,
    /// Requests skipped because the host's robots.txt stayed unreachable.
    pub robots_unreachable: u64,
}

/// The frontier.
#[derive(Debug, Default)]
pub struct Scheduler {
    hosts: HashMap<String, Host>,
    /// Hosts with queued work, in round-robin order.
    ring: VecDeque<String>,
    delayed: DelayedHeap,
    /// Tasks in the hosts' queues (in memory).
    queued: usize,
    /// 64-bit fingerprints of normalized URLs rather than the URLs: at most
    /// 14 bytes per URL instead of a heap string each. A false "seen" needs
    /// two URLs with the same 64-bit hash (odds near 1 in 10^7 at a billion
    /// URLs), which we accept for a crawler.
    seen: SeenSet,
    max_depth: Option<u32>,
    scope: Scope,
    /// Links the scope refused, so a repeated one is not normalized again.
    rejected: RejectCache,
    politeness: Politeness,
    /// Tasks kept in the hosts' queues before new ones go to `overflow`;
    /// 0 for no bound.
    memory_tasks: usize,
    /// The far end of a frontier larger than `memory_tasks`. Its own
    /// memory part is empty on purpose (bound 0): the frontier's memory is
    /// the hosts' queues, so everything past them is on disk.
    overflow: Option<SpillQueue<Task>>,
    counts: SchedulerCounts,
}

impl Scheduler {
    /// An empty frontier.
    pub fn new(max_depth: Option<u32>, scope: Scope, politeness: Politeness) -> Self {
        Scheduler {
            max_depth,
            scope,
            politeness,
            ..Scheduler::default()
        }
    }

    /// Keeps at most `tasks` queued tasks in memory (0: no bound); past
    /// that, new tasks wait in a spill file in `dir` and come back as the
    /// queue drains.
    pub fn with_memory_bound(mut self, tasks: usize, dir: PathBuf) -> Self {
        self.memory_tasks = tasks;
        self.overflow = (tasks > 0).then(|| SpillQueue::new("frontier", 0, Some(dir)));
        self
    }

    /// Queues `request` unless it is a duplicate, too deep or out of scope.
    pub fn enqueue(&mut self, request: Request) -> Result<(), Dropped> {
        self.enqueue_with(request, |_| {})
    }

    /// [`Scheduler::enqueue`], showing `queued` the task as queued (its URL
    /// normalized), so the URL store can record it and give it its key.
    pub fn enqueue_with(
        &mut self,
        mut request: Request,
        queued: impl FnOnce(&mut Task),
    ) -> Result<(), Dropped> {
        if self.max_depth.is_some_and(|max| request.depth > max) {
            return Err(Dropped::TooDeep);
        }
        // Most links a page yields were seen before, and arrive already in
        // normal form (workers resolve them with the same URL parser). Such
        // a link is its own normal form, which was admitted once (the scope
        // does not change during a crawl): a duplicate, known without
        // parsing it again. Normalizing is idempotent, so this gives the
        // same answer as normalizing first, only cheaper.
        let raw = fingerprint(&request.url);
        if self.seen.contains(raw) {
            return Err(Dropped::Duplicate);
        }
        // The same with a fragment (`page.html#method.len`, most of a
        // rustdoc page's links): parsing ignores what follows `#` and the
        // normal form drops it, so if the rest is a seen normal form, so is
        // the whole link's.
        if let Some((page, _)) = request.url.split_once('#') {
            if self.seen.contains(fingerprint(page)) {
                return Err(Dropped::Duplicate);
            }
        }
        if let Some(why) = self.rejected.get(raw) {
            return Err(Dropped::OutOfScope(why));
        }
        let normalized = self.scope.admit(&request.url).map_err(|why| {
            self.rejected.insert(raw, why);
            Dropped::OutOfScope(why)
        })?;
        if !self.seen.insert(fingerprint(&normalized)) {
            return Err(Dropped::Duplicate);
        }
        request.url = normalized;
        let mut task = Task::new(request);
        queued(&mut task);
        self.push_or_spill(task);
        Ok(())
    }

    /// The next task to dispatch at `now`, respecting every host's limits.
    pub fn next(&mut self, now: Instant) -> Next {
        self.refill();
        while let Some(task) = self.delayed.pop_due(now) {
            self.push(task, true);
        }
        let mut wake: Option<Instant> = self.delayed.next_at();
        let mut earliest = |t: Option<Instant>| {
            if let Some(t) = t {
                wake = Some(wake.map_or(t, |w| w.min(t)));
            }
        };
        for _ in 0..self.ring.len() {
            let key = self.ring.pop_front().expect("counted");
            let host = self.hosts.get_mut(&key).expect("ring holds known hosts");
            if host.queue.is_empty() {
                host.in_ring = false;
                continue;
            }
            // Robots first, then the host's slot and delay; `None` waits
            // for a call to finish, which wakes the dispatcher anyway.
            let closed = match host.robots.poll(now) {
                Gate::Closed(at) => Err(at),
                Gate::Open => host.ready(now),
            };
            if let Err(at) = closed {
                earliest(at);
                self.ring.push_back(key);
                continue;
            }
            if host.robots.start_fetch() {
                host.start(now);
                let request = Request {
                    url: format!("{}/robots.txt", host.origin),
                    parser: ParserSpec::named("robots"),
                    depth: 0,
                    hints: Default::default(),
                };
                self.ring.push_back(key);
                return Next::Task(Task {
                    robots: true,
                    ..Task::new(request)
                });
            }
            let robots = host
                .robots
                .rules()
                .expect("an open gate not fetching has rules");
            while let Some(task) = host.queue.pop_front() {
                self.queued -= 1;
                if !robots.allows(path_and_query(&task.request.url)) {
                    self.counts.robots_disallowed += 1;
                    continue;
                }
                host.in_flight += 1;
                host.next_start = now + host.delay;
                if host.queue.is_empty() {
                    host.in_ring = false;
                } else {
                    self.ring.push_back(key);
                }
                return Next::Task(task);
            }
            host.in_ring = false;
        }
        if self.is_idle() {
            Next::Idle
        } else {
            Next::Wait(wake)
        }
    }

    /// A call for `task` finished (whatever its outcome): frees its host
    /// slot. `latency` and `throttle` (429/503 seen) feed the adaptive
    /// delay.
    pub fn done(&mut self, task: &Task, latency: Duration, throttle: bool) {
        let Some(host) = host_of(&task.request.url).and_then(|(k, _)| self.hosts.get_mut(&k))
        else {
            return;
        };
        host.in_flight = host.in_flight.saturating_sub(1);
        if self.politeness.autothrottle && !task.robots {
            host.throttle(latency, throttle, self.politeness.max_delay);
        }
    }

    /// `n` requests made to `host` outside the frontier (a rendered page's
    /// scripts, styles and data, fetched by its worker) are charged to the
    /// host's delay as if the engine had started them: its next start moves
    /// `n` delays later. A host the crawl has never queued is not charged
    /// (it has no limits of its own; off-scope hosts the worker refuses).
    pub fn charge(&mut self, host: &str, n: u32, now: Instant) {
        if let Some(host) = self.hosts.get_mut(&host.to_ascii_lowercase()) {
            // The count comes from a worker's reply: saturate rather than
            // panic on an overflow (a count the worker's own
            // max_render_requests bounds never comes near it).
            let start = host.next_start.max(now);
            host.next_start = start
                .checked_add(host.delay.saturating_mul(n))
                .unwrap_or(start + Duration::from_secs(86_400 * 365));
        }
    }

    /// Puts back a task (already counted as seen) to be dispatched again:
    /// at once, at the front of its host's queue (`None`: its worker call
    /// failed), or no earlier than `not_before` (a backoff).
    pub fn retry(&mut self, task: Task, not_before: Option<Instant>) {
        match not_before {
            Some(at) => self.delayed.push(task, at),
            None => self.push(task, true),
        }
    }

    /// The answer to the robots.txt fetch `task` for its host, at `now`.
    /// Unavailable: the host waits and the fetch is retried with backoff;
    /// after a few failures the host counts as disallowed.
    ///
    /// Returns the sitemaps the file names, as depth-0 requests for the
    /// sitemap parser, when they are followed (`Politeness::sitemaps`):
    /// the caller enqueues them like any request (scope, dedup), so each
    /// is fetched once however often the file is fetched again.
    pub fn robots_answer(
        &mut self,
        task: &Task,
        answer: RobotsAnswer<'_>,
        now: Instant,
    ) -> Vec<Request> {
        let Some(host) = host_of(&task.request.url).and_then(|(k, _)| self.hosts.get_mut(&k))
        else {
            return Vec::new();
        };
        let p = &self.politeness;
        let max_sitemaps = p.sitemaps.as_ref().map_or(0, |_| p.max_robots_sitemaps);
        let answered = host
            .robots
            .answer(answer, &p.robots_agent, p.robots_ttl, max_sitemaps, now);
        let sitemaps = match &p.sitemaps {
            Some(spec) => host
                .robots
                .take_sitemaps()
                .into_iter()
                .map(|url| Request::new(url, spec.clone(), 0))
                .collect(),
            None => Vec::new(),
        };
        match answered {
            Answered::Rules(Some(delay)) => host.crawl_delay(delay, p.max_crawl_delay, now),
            Answered::Rules(None) => {}
            Answered::Wait(backoff) => {
                tracing::warn!(host = %host.origin, retry_in = ?backoff, "robots.txt unavailable; the host waits")
            }
            Answered::GaveUp => {
                tracing::warn!(host = %host.origin, "robots.txt unreachable; skipping the host's requests");
                self.counts.robots_unreachable += host.queue.len() as u64;
                self.queued -= host.queue.len();
                host.queue.clear();
            }
        }
        sitemaps
    }

    /// Claims `raw` (normalized and scope-checked as any link) as seen
    /// without queueing it: `Ok(true)` if it was new, `Ok(false)` if it
    /// was seen before (queued, in flight or done). For a page's
    /// canonical URL, which the page itself stands for.
    pub fn claim(&mut self, raw: &str) -> Result<bool, OutOfScope> {
        let normalized = self.scope.admit(raw)?;
        Ok(self.seen.insert(fingerprint(&normalized)))
    }

    /// The normal form of `raw` if it is in the crawl's scope.
    pub fn admit(&self, raw: &str) -> Result<String, OutOfScope> {
        self.scope.admit(raw)
    }

    /// Whether nothing is queued or waiting.
    pub fn is_idle(&self) -> bool {
        self.queued == 0 && self.delayed.is_empty() && self.spilled() == 0
    }

    /// Tasks queued (in memory or spilled) or waiting out a backoff.
    pub fn len(&self) -> usize {
        self.queued + self.delayed.len() + self.spilled()
    }

    /// Whether [`Scheduler::len`] is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The requests dropped since the last call (robots.txt), for the
    /// summary; counting starts again from zero.
    pub fn take_counts(&mut self) -> SchedulerCounts {
        std::mem::take(&mut self.counts)
    }

    /// The `limit` hosts with the most queued (then in flight), for the
    /// dashboard, and how many hosts the frontier knows.
    pub fn busiest_hosts(&self, limit: usize, now: Instant) -> (usize, Vec<HostView>) {
        let mut rows: Vec<(&String, &Host)> = self.hosts.iter().collect();
        let key = |h: &Host| Reverse((h.queue.len(), h.in_flight));
        if rows.len() > limit {
            rows.select_nth_unstable_by_key(limit, |(_, h)| key(h));
            rows.truncate(limit);
        }
        rows.sort_by_key(|(name, h)| (key(h), name.as_str()));
        let views = rows
            .into_iter()
            .map(|(name, h)| h.view(name, now))
            .collect();
        (self.hosts.len(), views)
    }

    /// Distinct URLs ever enqueued.
    pub fn seen_count(&self) -> usize {
        self.seen.len()
    }

    fn spilled(&self) -> usize {
        self.overflow.as_ref().map_or(0, SpillQueue::len)
    }

    fn push_or_spill(&mut self, task: Task) {
        match self.overflow.as_mut() {
            Some(overflow) if self.queued >= self.memory_tasks => overflow.push_back(task),
            _ => self.push(task, false),
        }
    }

    /// Brings spilled tasks back once memory has room for them.
    fn refill(&mut self) {
        let half = self.memory_tasks / 2;
        let Some(overflow) = self.overflow.as_mut() else {
            return;
        };
        if overflow.is_empty() || self.queued >= half {
            return;
        }
        for task in overflow.take(half.max(1)) {
            self.push(task, false);
        }
    }

    fn push(&mut self, task: Task, front: bool) {
        let Some((key, origin)) = host_of(&task.request.url) else {
            return; // not reachable: enqueue only admits http(s) URLs
        };
        let politeness = &self.politeness;
        let host = self
            .hosts
            .entry(key.clone())
            .or_insert_with(|| Host::new(&key, origin, politeness));
        if front {
            host.queue.push_front(task);
        } else {
            host.queue.push_back(task);
        }
        self.queued += 1;
        if !host.in_ring {
            host.in_ring = true;
            self.ring.push_back(key);
        }
    }
}
