//! Step 2: the frontier. Pending requests wait in one queue per host; ready
//! hosts are served round-robin, so a slow or rate-limited host never holds
//! up the others. Because the engine sees every request of the crawl, the
//! per-host limits here hold for the whole worker pool, however many
//! workers there are:
//!
//! - at most `concurrency` requests in flight per host, and at least
//!   `delay` between the starts of two requests to it (config defaults,
//!   per-domain overrides, robots.txt `Crawl-delay`, adaptive throttle);
//! - robots.txt fetched once per host (through a worker, as a request of
//!   its own) before any other request to it, re-fetched after its TTL;
//!   while it is unreachable the host waits and the fetch is retried;
//! - requests that failed transiently wait in a timer heap until their
//!   backoff is over.
//!
//! Dedup happens on enqueue, on the normalized URL (see [`crate::scope`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use rpcsupport::types::host_in_domain;
use rpcsupport::{ParserSpec, Request};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use url::Url;

use crate::robots::Robots;
use crate::scope::{OutOfScope, Scope};
use crate::seen::SeenSet;
use crate::spill::Spill;

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
}

impl Task {
    fn new(request: Request) -> Task {
        Task {
            request,
            attempts: 0,
            retries: 0,
            robots: false,
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

/// Per-host limits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HostLimits {
    /// Requests in flight at once to the host.
    pub concurrency: u32,
    /// Least time between two request starts to the host.
    pub delay: Duration,
}

/// How the scheduler treats robots.txt and slow hosts.
#[derive(Debug, Clone)]
pub struct Politeness {
    /// Limits for hosts no override names.
    pub default: HostLimits,
    /// Per-domain limits; the first whose domain matches the host applies.
    pub overrides: Vec<(String, HostLimits)>,
    /// Fetch and obey robots.txt.
    pub obey_robots: bool,
    /// Product token looked up in robots.txt groups.
    pub robots_agent: String,
    /// How long a fetched robots.txt is trusted.
    pub robots_ttl: Duration,
    /// Cap on a robots.txt `Crawl-delay`.
    pub max_crawl_delay: Duration,
    /// Adapt each host's delay to its latency and to 429/503 answers.
    pub autothrottle: bool,
    /// Ceiling of the adaptive delay.
    pub max_delay: Duration,
}

impl Default for Politeness {
    fn default() -> Self {
        Politeness {
            default: HostLimits {
                concurrency: 8,
                delay: Duration::ZERO,
            },
            overrides: Vec::new(),
            obey_robots: false,
            robots_agent: "crawler".into(),
            robots_ttl: Duration::from_secs(86_400),
            max_crawl_delay: Duration::from_secs(10),
            autothrottle: false,
            max_delay: Duration::from_secs(30),
        }
    }
}

#[derive(Debug)]
enum RobotsState {
    /// Not fetched yet (or expired): the next dispatch to the host fetches it.
    Unknown,
    /// A robots request is in flight.
    Fetching,
    /// Rules known until `until`.
    Ready { robots: Robots, until: Instant },
    /// Fetch failed transiently; try again at `retry_at`.
    Unavailable { retry_at: Instant },
}

#[derive(Debug)]
struct Host {
    queue: VecDeque<Task>,
    in_flight: u32,
    next_start: Instant,
    limits: HostLimits,
    /// The delay in force: limits.delay, raised by Crawl-delay and throttle.
    delay: Duration,
    /// The floor of `delay`: limits.delay or the robots Crawl-delay.
    base_delay: Duration,
    robots: RobotsState,
    /// robots.txt fetches failed in a row.
    robots_failures: u32,
    /// `scheme://host[:port]` of the first URL seen, for robots.txt.
    origin: String,
    in_ring: bool,
}

/// One host as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostView {
    /// The host key (`host[:port]`).
    pub host: String,
    /// Requests waiting in its queue.
    pub queued: usize,
    /// Requests to it in flight.
    pub in_flight: u32,
    /// The delay between two request starts in force (configured,
    /// Crawl-delay or autothrottle).
    pub delay_ms: u64,
    /// Where its robots.txt stands.
    pub robots: &'static str,
    /// Requests to it that failed for good (filled in by the crawl loop,
    /// which keeps that count; 0 here).
    pub errors: u64,
}

/// Counters the crawl reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchedulerCounts {
    /// Requests skipped because robots.txt disallows them.
    pub robots_disallowed: u64,
    /// Requests skipped because the host's robots.txt stayed unreachable.
    pub robots_unreachable: u64,
}

/// Timer heap entry: a task waiting out its backoff.
#[derive(Debug)]
struct Delayed {
    at: Instant,
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

/// Robots.txt fetches that fail transiently are retried this many times
/// before the host is treated as disallowed (RFC 9309: an unreachable
/// robots.txt means "assume complete disallow").
const ROBOTS_MAX_FAILURES: u32 = 4;

/// The frontier.
#[derive(Debug, Default)]
pub struct Scheduler {
    hosts: HashMap<String, Host>,
    /// Hosts with queued work, in round-robin order.
    ring: VecDeque<String>,
    delayed: BinaryHeap<Reverse<Delayed>>,
    seq: u64,
    queued: usize,
    /// 64-bit fingerprints of normalized URLs rather than the URLs: at most
    /// 14 bytes per URL instead of a heap string each. A false "seen" needs
    /// two URLs with the same 64-bit hash (odds near 1 in 10^7 at a billion
    /// URLs), which we accept for a crawler.
    seen: SeenSet,
    max_depth: Option<u32>,
    scope: Scope,
    politeness: Politeness,
    /// Tasks kept in memory before new ones go to `spill`; 0 for no bound.
    memory_tasks: usize,
    spill_dir: Option<PathBuf>,
    /// The far end of a frontier larger than `memory_tasks`, on disk.
    spill: Option<Spill<Task>>,
    /// Counters for the summary.
    pub counts: SchedulerCounts,
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

    /// Keeps at most `tasks` queued tasks in memory; past that, new tasks
    /// wait in a spill file in `dir` and come back as the queue drains.
    pub fn with_memory_bound(mut self, tasks: usize, dir: PathBuf) -> Self {
        self.memory_tasks = tasks;
        self.spill_dir = Some(dir);
        self
    }

    /// Queues `request` unless it is a duplicate, too deep or out of scope.
    pub fn enqueue(&mut self, mut request: Request) -> Result<(), Dropped> {
        if self.max_depth.is_some_and(|max| request.depth > max) {
            return Err(Dropped::TooDeep);
        }
        // Most links a page yields were seen before, and arrive already in
        // normal form (workers resolve them with the same URL parser). Such
        // a link is its own normal form, which was admitted once (the scope
        // does not change during a crawl): a duplicate, known without
        // parsing it again. Normalizing is idempotent, so this gives the
        // same answer as normalizing first, only cheaper.
        if self.seen.contains(fingerprint(&request.url)) {
            return Err(Dropped::Duplicate);
        }
        let normalized = self
            .scope
            .admit(&request.url)
            .map_err(Dropped::OutOfScope)?;
        if !self.seen.insert(fingerprint(&normalized)) {
            return Err(Dropped::Duplicate);
        }
        request.url = normalized;
        self.push_or_spill(Task::new(request));
        Ok(())
    }

    fn push_or_spill(&mut self, task: Task) {
        if self.memory_tasks > 0 && self.queued >= self.memory_tasks {
            if let (None, Some(dir)) = (&self.spill, &self.spill_dir) {
                match Spill::create(dir, "frontier") {
                    Ok(spill) => {
                        tracing::info!(path = %spill.path().display(), queued = self.queued, "frontier past its memory bound; spilling new requests to disk");
                        self.spill = Some(spill);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot create the frontier spill file; keeping requests in memory")
                    }
                }
            }
            if let Some(spill) = self.spill.as_mut() {
                match spill.append(&task) {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot write the frontier spill file; keeping the request in memory")
                    }
                }
            }
        }
        self.push(task, false);
    }

    /// Brings spilled tasks back once memory has room for them.
    fn refill(&mut self) {
        let Some(spill) = self.spill.as_mut() else {
            return;
        };
        if spill.is_empty() || self.queued >= self.memory_tasks / 2 {
            return;
        }
        match spill.take((self.memory_tasks / 2).max(1)) {
            Ok(tasks) => {
                for task in tasks {
                    self.push(task, false);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the frontier spill file"),
        }
    }

    fn spilled(&self) -> usize {
        self.spill.as_ref().map_or(0, |s| s.len())
    }

    /// Puts back, at the front of its host's queue, a task whose worker
    /// call failed; it was already counted as seen.
    pub fn retry(&mut self, task: Task) {
        self.push(task, true);
    }

    /// Puts back a task to be dispatched again no earlier than `at`.
    pub fn retry_at(&mut self, task: Task, at: Instant) {
        self.seq += 1;
        self.delayed.push(Reverse(Delayed {
            at,
            seq: self.seq,
            task,
        }));
    }

    fn push(&mut self, task: Task, front: bool) {
        let Some((key, origin)) = host_of(&task.request.url) else {
            return; // not reachable: enqueue only admits http(s) URLs
        };
        let politeness = &self.politeness;
        let host = self.hosts.entry(key.clone()).or_insert_with(|| {
            let limits = politeness
                .overrides
                .iter()
                .find(|(domain, _)| host_in_domain(&key, domain))
                .map_or(politeness.default, |(_, l)| *l);
            Host {
                queue: VecDeque::new(),
                in_flight: 0,
                next_start: Instant::now(),
                limits,
                delay: limits.delay,
                base_delay: limits.delay,
                robots: if politeness.obey_robots {
                    RobotsState::Unknown
                } else {
                    RobotsState::Ready {
                        robots: Robots::allow_all(),
                        until: far_future(),
                    }
                },
                robots_failures: 0,
                origin,
                in_ring: false,
            }
        });
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

    /// The next task to dispatch at `now`, respecting every host's limits.
    pub fn next(&mut self, now: Instant) -> Next {
        self.refill();
        while self.delayed.peek().is_some_and(|d| d.0.at <= now) {
            let Reverse(d) = self.delayed.pop().expect("peeked");
            self.push(d.task, true);
        }
        let mut wake: Option<Instant> = self.delayed.peek().map(|d| d.0.at);
        let mut earliest = |t: Instant| wake = Some(wake.map_or(t, |w| w.min(t)));
        for _ in 0..self.ring.len() {
            let key = self.ring.pop_front().expect("counted");
            let host = self.hosts.get_mut(&key).expect("ring holds known hosts");
            if host.queue.is_empty() {
                host.in_ring = false;
                continue;
            }
            // Robots first: expired rules and retry times turn back into
            // Unknown, which dispatches the robots fetch itself.
            match &host.robots {
                RobotsState::Ready { until, .. } if now >= *until => {
                    host.robots = RobotsState::Unknown
                }
                RobotsState::Unavailable { retry_at } if now >= *retry_at => {
                    host.robots = RobotsState::Unknown
                }
                RobotsState::Unavailable { retry_at } => {
                    earliest(*retry_at);
                    self.ring.push_back(key);
                    continue;
                }
                RobotsState::Fetching => {
                    self.ring.push_back(key);
                    continue;
                }
                _ => {}
            }
            if host.in_flight >= host.limits.concurrency.max(1) {
                self.ring.push_back(key);
                continue; // a finishing call wakes us
            }
            if now < host.next_start {
                earliest(host.next_start);
                self.ring.push_back(key);
                continue;
            }
            if matches!(host.robots, RobotsState::Unknown) {
                host.robots = RobotsState::Fetching;
                host.in_flight += 1;
                host.next_start = now + host.delay;
                let request = Request {
                    url: format!("{}/robots.txt", host.origin),
                    parser: ParserSpec::named("robots"),
                    depth: 0,
                };
                self.ring.push_back(key);
                return Next::Task(Task {
                    robots: true,
                    ..Task::new(request)
                });
            }
            let RobotsState::Ready { robots, .. } = &host.robots else {
                unreachable!("all other states handled above")
            };
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
        let Some((key, _)) = host_of(&task.request.url) else {
            return;
        };
        let Some(host) = self.hosts.get_mut(&key) else {
            return;
        };
        host.in_flight = host.in_flight.saturating_sub(1);
        if self.politeness.autothrottle && !task.robots {
            let max = self.politeness.max_delay;
            host.delay = if throttle {
                (host.delay * 2).max(Duration::from_millis(250)).min(max)
            } else {
                // Scrapy's AutoThrottle: move halfway towards the latency,
                // never below the configured floor.
                ((host.delay + latency) / 2).max(host.base_delay).min(max)
            };
        }
    }

    /// The robots.txt for `task`'s host arrived: `Some(text)`, or `None`
    /// when the server says there is none (4xx), which allows everything.
    pub fn robots_loaded(&mut self, task: &Task, text: Option<&str>, now: Instant) {
        let Some(host) = host_of(&task.request.url).and_then(|(k, _)| self.hosts.get_mut(&k))
        else {
            return;
        };
        let robots = text.map_or_else(Robots::allow_all, |t| {
            Robots::parse(t, &self.politeness.robots_agent)
        });
        if let Some(delay) = robots.crawl_delay {
            let delay = delay.min(self.politeness.max_crawl_delay);
            host.base_delay = host.limits.delay.max(delay);
            host.delay = host.delay.max(host.base_delay);
            // The robots fetch itself was a request to the host.
            host.next_start = host.next_start.max(now + host.delay);
        }
        host.robots_failures = 0;
        host.robots = RobotsState::Ready {
            robots,
            until: now + self.politeness.robots_ttl,
        };
    }

    /// Fetching robots.txt for `task`'s host failed transiently (5xx,
    /// timeout, unreachable): the host waits and the fetch is retried with
    /// backoff; after a few failures the host counts as disallowed.
    pub fn robots_failed(&mut self, task: &Task, now: Instant) {
        let Some(host) = host_of(&task.request.url).and_then(|(k, _)| self.hosts.get_mut(&k))
        else {
            return;
        };
        host.robots_failures += 1;
        let failures = host.robots_failures;
        if failures >= ROBOTS_MAX_FAILURES {
            tracing::warn!(host = %host.origin, "robots.txt unreachable; skipping the host's requests");
            self.counts.robots_unreachable += host.queue.len() as u64;
            self.queued -= host.queue.len();
            host.queue.clear();
            host.robots = RobotsState::Ready {
                robots: Robots::disallow_all(),
                until: now + self.politeness.robots_ttl,
            };
            return;
        }
        let backoff = Duration::from_secs(1) * 2u32.pow(failures - 1);
        tracing::warn!(host = %host.origin, retry_in = ?backoff, "robots.txt unavailable; the host waits");
        host.robots = RobotsState::Unavailable {
            retry_at: now + backoff,
        };
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
            .map(|(name, h)| HostView {
                host: name.clone(),
                queued: h.queue.len(),
                in_flight: h.in_flight,
                delay_ms: h.delay.as_millis() as u64,
                robots: match &h.robots {
                    RobotsState::Unknown => "not fetched",
                    RobotsState::Fetching => "fetching",
                    RobotsState::Ready { .. } => "obeyed",
                    RobotsState::Unavailable { retry_at } if *retry_at > now => {
                        "unreachable, waiting"
                    }
                    RobotsState::Unavailable { .. } => "unreachable",
                },
                errors: 0,
            })
            .collect();
        (self.hosts.len(), views)
    }

    /// Distinct URLs ever enqueued.
    pub fn seen_count(&self) -> usize {
        self.seen.len()
    }

    /// Every crawl task queued, spilled or waiting (for the state file);
    /// robots fetches are not crawl tasks and are redone after a restart.
    pub fn pending_tasks(&mut self) -> Vec<Task> {
        let mut tasks: Vec<Task> = self
            .hosts
            .values()
            .flat_map(|h| h.queue.iter())
            .chain(self.delayed.iter().map(|d| &d.0.task))
            .filter(|t| !t.robots)
            .cloned()
            .collect();
        if let Some(spill) = self.spill.as_mut() {
            match spill.peek_all() {
                Ok(spilled) => tasks.extend(spilled),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the frontier spill file for the state snapshot")
                }
            }
        }
        tasks
    }

    /// The seen-URL fingerprints (for the state file).
    pub fn seen_fingerprints(&self) -> Vec<u64> {
        self.seen.iter().collect()
    }

    /// Loads saved state: these tasks queued, these URLs seen.
    pub fn restore(&mut self, pending: Vec<Task>, seen: Vec<u64>) {
        self.seen.extend(seen);
        for task in pending.into_iter().filter(|t| !t.robots) {
            // Pending tasks were seen when first queued; make sure even a
            // hand-edited state cannot queue them twice later.
            self.seen.insert(fingerprint(&task.request.url));
            self.push_or_spill(task);
        }
    }

    /// The crawl's scope (its fetch policy goes to workers).
    pub fn scope(&self) -> &Scope {
        &self.scope
    }
}

/// The politeness key of a URL (its lowercase host name, without port) and
/// its origin for robots.txt. Every queued URL is in normal form (scheme and
/// host lowercase, no default port), so both are read off the text; the
/// full parse is only a fallback for anything unexpected.
fn host_of(url: &str) -> Option<(String, String)> {
    host_of_normal(url).or_else(|| {
        let url = Url::parse(url).ok()?;
        let host = url.host_str()?.to_ascii_lowercase();
        let origin = url.origin().ascii_serialization();
        Some((host, origin))
    })
}

/// [`host_of`] for a URL in normal form: `scheme://[userinfo@]host[:port]/…`.
/// `None` if it does not look like one.
fn host_of_normal(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let host = match host_port.strip_prefix('[') {
        // An IPv6 literal keeps its brackets, as `Url::host_str` does.
        Some(v6) => &host_port[..v6.find(']')? + 2],
        None => host_port.split(':').next()?,
    };
    let port = &host_port[host.len()..];
    if host.is_empty()
        || host.bytes().any(|b| b.is_ascii_uppercase())
        || !(port.is_empty()
            || port.len() > 1
                && port.starts_with(':')
                && port[1..].bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    Some((host.to_owned(), format!("{scheme}://{host_port}")))
}

fn path_and_query(url: &str) -> &str {
    // After "scheme://authority": the first '/' past the "//".
    let after_scheme = url.find("//").map_or(0, |i| i + 2);
    match url[after_scheme..].find('/') {
        Some(i) => &url[after_scheme + i..],
        None => "/",
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 86_400)
}

/// The 64-bit fingerprint of a normalized URL, stable across runs so
/// fingerprints can be saved and reloaded.
pub fn fingerprint(s: &str) -> u64 {
    rpcsupport::types::fnv1a64(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reading host and origin off a normalized URL's text agrees with
    /// parsing it, for every shape of authority.
    #[test]
    fn host_of_text_matches_the_parser() {
        for raw in [
            "http://Example.COM/a?b=c",
            "https://example.com:443/x",
            "http://example.com:8080",
            "http://user:pw@Example.com:81/p",
            "http://127.0.0.1:9000/",
            "http://[::1]:8080/x",
            "https://[2001:DB8::1]/",
            "http://xn--bcher-kva.example/",
            "http://bücher.example/x",
            "http://a.test?q=1",
            "http://a.test#frag",
        ] {
            let normal = crate::scope::normalize(raw, &[]).unwrap();
            let parsed = normal.host_str().unwrap().to_owned();
            let origin = normal.origin().ascii_serialization();
            assert_eq!(
                host_of_normal(normal.as_str()),
                Some((parsed, origin)),
                "{raw} -> {normal}"
            );
        }
        for odd in [
            "ftp://a.test/",
            "http://A.test/",
            "http://a.test:x/",
            "nonsense",
        ] {
            assert_eq!(host_of_normal(odd), None, "{odd}");
        }
        // The fallback still answers for a URL not in normal form.
        assert_eq!(
            host_of("http://A.test:80/").map(|(h, _)| h),
            Some("a.test".to_owned())
        );
    }

    /// The dashboard's hosts table: busiest first, cut at the limit, with
    /// the total count of hosts.
    #[test]
    fn busiest_hosts_first() {
        let mut s = open();
        for (host, n) in [("a.test", 1), ("b.test", 5), ("c.test", 3)] {
            for i in 0..n {
                s.enqueue(req(&format!("http://{host}/{i}"), 0)).unwrap();
            }
        }
        let (total, rows) = s.busiest_hosts(2, Instant::now());
        assert_eq!(total, 3);
        let names: Vec<(&str, usize)> = rows.iter().map(|r| (r.host.as_str(), r.queued)).collect();
        assert_eq!(names, [("b.test", 5), ("c.test", 3)]);
    }

    /// A link already in normal form that was seen is a duplicate before
    /// any parsing; one in another form is normalized, then found.
    #[test]
    fn seen_links_are_duplicates_in_any_form() {
        let mut s = Scheduler::default();
        s.enqueue(req("http://a.test/x", 0)).unwrap();
        assert_eq!(
            s.enqueue(req("http://a.test/x", 1)),
            Err(Dropped::Duplicate)
        );
        assert_eq!(
            s.enqueue(req("HTTP://A.test:80/x#top", 1)),
            Err(Dropped::Duplicate)
        );
        assert_eq!(s.len(), 1);
    }

    fn req(url: &str, depth: u32) -> Request {
        Request {
            url: url.into(),
            parser: ParserSpec::named("p"),
            depth,
        }
    }

    fn open() -> Scheduler {
        let scope = Scope::new(vec!["*".into()], vec![], vec![], vec![]);
        Scheduler::new(None, scope, Politeness::default())
    }

    fn take(s: &mut Scheduler, now: Instant) -> Task {
        match s.next(now) {
            Next::Task(t) => t,
            other => panic!("expected a task, got {other:?}"),
        }
    }

    /// Equivalent spellings of one URL are crawled once.
    #[test]
    fn dedups_normalized_urls() {
        let mut s = open();
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
        assert_eq!(
            take(&mut s, Instant::now()).request.url,
            "http://example.com/a/c"
        );
    }

    /// Requests deeper than the limit are dropped; the limit itself is allowed.
    #[test]
    fn depth_limit() {
        let mut s = Scheduler::new(
            Some(2),
            Scope::new(vec!["*".into()], vec![], vec![], vec![]),
            Politeness::default(),
        );
        assert_eq!(s.enqueue(req("http://h/1", 2)), Ok(()));
        assert_eq!(s.enqueue(req("http://h/2", 3)), Err(Dropped::TooDeep));
    }

    /// Non-http(s), relative and out-of-domain URLs never reach a worker.
    #[test]
    fn rejects_out_of_scope() {
        let mut s = Scheduler::new(
            None,
            Scope::new(vec!["h".into()], vec![], vec![], vec![]),
            Politeness::default(),
        );
        for bad in [
            "mailto:a@b",
            "javascript:void(0)",
            "/relative",
            "ftp://h/x",
            "",
        ] {
            assert_eq!(
                s.enqueue(req(bad, 0)),
                Err(Dropped::OutOfScope(OutOfScope::BadUrl)),
                "{bad}"
            );
        }
        assert_eq!(
            s.enqueue(req("http://other/x", 0)),
            Err(Dropped::OutOfScope(OutOfScope::Domain))
        );
    }

    /// A host never has more than `concurrency` requests in flight, and
    /// its requests start at least `delay` apart, while another host is
    /// served in between.
    #[test]
    fn per_host_limits_hold() {
        let p = Politeness {
            default: HostLimits {
                concurrency: 2,
                delay: Duration::from_millis(100),
            },
            ..Politeness::default()
        };
        let mut s = Scheduler::new(
            None,
            Scope::new(vec!["*".into()], vec![], vec![], vec![]),
            p,
        );
        for i in 0..5 {
            s.enqueue(req(&format!("http://a/{i}"), 0)).unwrap();
            s.enqueue(req(&format!("http://b/{i}"), 0)).unwrap();
        }
        let t0 = Instant::now();
        let a0 = take(&mut s, t0);
        let b0 = take(&mut s, t0);
        assert!(a0.request.url.starts_with("http://a/") && b0.request.url.starts_with("http://b/"));
        // Both hosts wait out their delay.
        assert_eq!(
            s.next(t0),
            Next::Wait(Some(t0 + Duration::from_millis(100)))
        );
        let t1 = t0 + Duration::from_millis(100);
        let a1 = take(&mut s, t1);
        let _b1 = take(&mut s, t1);
        // Two in flight per host: nothing more until one finishes.
        let t2 = t1 + Duration::from_millis(100);
        assert_eq!(s.next(t2), Next::Wait(None));
        s.done(&a1, Duration::from_millis(5), false);
        assert!(take(&mut s, t2).request.url.starts_with("http://a/"));
        assert_eq!(s.next(t2), Next::Wait(None));
    }

    /// robots.txt is fetched first, once per host; disallowed URLs are
    /// skipped and counted; Crawl-delay raises the host delay.
    #[test]
    fn robots_gate_the_host() {
        let p = Politeness {
            obey_robots: true,
            ..Politeness::default()
        };
        let mut s = Scheduler::new(
            None,
            Scope::new(vec!["*".into()], vec![], vec![], vec![]),
            p,
        );
        s.enqueue(req("http://h:8080/private/1", 0)).unwrap();
        s.enqueue(req("http://h:8080/public/1", 0)).unwrap();
        s.enqueue(req("http://h:8080/public/2", 0)).unwrap();
        let t0 = Instant::now();
        let robots = take(&mut s, t0);
        assert!(robots.robots);
        assert_eq!(robots.request.url, "http://h:8080/robots.txt");
        assert_eq!(
            s.next(t0),
            Next::Wait(None),
            "the host waits for its robots.txt"
        );
        s.done(&robots, Duration::ZERO, false);
        s.robots_loaded(
            &robots,
            Some("User-agent: *\nDisallow: /private\nCrawl-delay: 1\n"),
            t0,
        );
        // The robots fetch counts as a request: the delay runs from it.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(s.next(t0), Next::Wait(Some(t1)));
        let first = take(&mut s, t1);
        assert_eq!(first.request.url, "http://h:8080/public/1");
        assert_eq!(s.counts.robots_disallowed, 1);
        assert_eq!(s.next(t1), Next::Wait(Some(t1 + Duration::from_secs(1))));
    }

    /// An unavailable robots.txt delays the host and is fetched again; a
    /// missing one allows all.
    #[test]
    fn robots_unavailable_then_missing() {
        let p = Politeness {
            obey_robots: true,
            ..Politeness::default()
        };
        let mut s = Scheduler::new(
            None,
            Scope::new(vec!["*".into()], vec![], vec![], vec![]),
            p,
        );
        s.enqueue(req("http://h/a", 0)).unwrap();
        let t0 = Instant::now();
        let robots = take(&mut s, t0);
        s.done(&robots, Duration::ZERO, false);
        s.robots_failed(&robots, t0);
        assert_eq!(s.next(t0), Next::Wait(Some(t0 + Duration::from_secs(1))));
        let t1 = t0 + Duration::from_secs(1);
        let again = take(&mut s, t1);
        assert!(again.robots);
        s.done(&again, Duration::ZERO, false);
        s.robots_loaded(&again, None, t1);
        assert_eq!(take(&mut s, t1).request.url, "http://h/a");
        assert_eq!(s.next(t1), Next::Idle);
    }

    /// A task retried later waits out its time, then goes first.
    #[test]
    fn delayed_retry() {
        let mut s = open();
        s.enqueue(req("http://h/a", 0)).unwrap();
        let t0 = Instant::now();
        let mut t = take(&mut s, t0);
        s.done(&t, Duration::ZERO, false);
        t.retries += 1;
        s.retry_at(t.clone(), t0 + Duration::from_secs(2));
        assert_eq!(s.next(t0), Next::Wait(Some(t0 + Duration::from_secs(2))));
        assert_eq!(take(&mut s, t0 + Duration::from_secs(2)), t);
        assert!(s.is_idle());
    }

    /// A restored scheduler keeps its queue and still rejects seen URLs.
    #[test]
    fn restore_keeps_queue_and_seen() {
        let mut s = open();
        s.enqueue(req("http://h/a", 0)).unwrap();
        s.enqueue(req("http://h/b", 0)).unwrap();
        let first = take(&mut s, Instant::now());
        let pending = s.pending_tasks();
        let mut r = open();
        r.restore(pending, s.seen_fingerprints());
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
        assert_eq!(s.pending_tasks().len(), 100);
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

    /// The adaptive throttle doubles a host's delay on 429/503 and eases it
    /// back toward the latency, never below the configured floor.
    #[test]
    fn autothrottle_adapts_the_delay() {
        let p = Politeness {
            autothrottle: true,
            default: HostLimits {
                concurrency: 8,
                delay: Duration::from_millis(100),
            },
            max_delay: Duration::from_secs(1),
            ..Politeness::default()
        };
        let mut s = Scheduler::new(
            None,
            Scope::new(vec!["*".into()], vec![], vec![], vec![]),
            p,
        );
        for i in 0..10 {
            s.enqueue(req(&format!("http://h/{i}"), 0)).unwrap();
        }
        let delay = |s: &Scheduler| s.hosts["h"].delay;
        let t = take(&mut s, Instant::now());
        s.done(&t, Duration::from_millis(10), true);
        assert_eq!(
            delay(&s),
            Duration::from_millis(250),
            "429/503: doubled, at least 250 ms"
        );
        s.done(&t, Duration::from_millis(10), true);
        s.done(&t, Duration::from_millis(10), true);
        s.done(&t, Duration::from_millis(10), true);
        assert_eq!(delay(&s), Duration::from_secs(1), "capped");
        for _ in 0..20 {
            s.done(&t, Duration::from_millis(10), false);
        }
        assert_eq!(delay(&s), Duration::from_millis(100), "back to the floor");
        s.done(&t, Duration::from_millis(700), false);
        assert_eq!(
            delay(&s),
            Duration::from_millis(400),
            "halfway toward a slow latency"
        );
    }

    /// The path and query robots rules are matched against.
    #[test]
    fn robots_path() {
        assert_eq!(path_and_query("http://h:1/a/b?c=d"), "/a/b?c=d");
        assert_eq!(path_and_query("http://h"), "/");
    }
}
