//! Per-host state: a host's queue, its limits (config defaults, per-domain
//! overrides, robots.txt `Crawl-delay`) and the adaptive throttle. Because
//! the engine sees every request of the crawl, these limits hold for the
//! whole worker pool, however many workers there are.

use std::collections::VecDeque;
use std::time::Duration;

use rpcsupport::types::host_in_domain;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::robots_gate::RobotsGate;
use super::Task;

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
    /// The wait after a robots.txt fetch failed (5xx, unreachable),
    /// doubling with each further failure.
    pub robots_backoff: Duration,
    /// Cap on a robots.txt `Crawl-delay`.
    pub max_crawl_delay: Duration,
    /// Adapt each host's delay to its latency and to 429/503 answers.
    pub autothrottle: bool,
    /// Ceiling of the adaptive delay.
    pub max_delay: Duration,
    /// The parser of the sitemaps robots.txt names (`Sitemap:` lines),
    /// when they are followed (`use_sitemaps`, with `obey_robots`: the
    /// file is fetched only to be obeyed).
    pub sitemaps: Option<rpcsupport::ParserSpec>,
    /// `Sitemap:` lines read from one robots.txt.
    pub max_robots_sitemaps: usize,
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
            robots_backoff: Duration::from_secs(1),
            max_crawl_delay: Duration::from_secs(10),
            autothrottle: false,
            max_delay: Duration::from_secs(30),
            sitemaps: None,
            max_robots_sitemaps: 50,
        }
    }
}

/// One host of the frontier.
#[derive(Debug)]
pub(super) struct Host {
    pub(super) queue: VecDeque<Task>,
    pub(super) in_flight: u32,
    pub(super) next_start: Instant,
    pub(super) limits: HostLimits,
    /// The delay in force: limits.delay, raised by Crawl-delay and throttle.
    pub(super) delay: Duration,
    /// The floor of `delay`: limits.delay or the robots Crawl-delay.
    base_delay: Duration,
    pub(super) robots: RobotsGate,
    /// `scheme://host[:port]` of the first URL seen, for robots.txt.
    pub(super) origin: String,
    /// Whether the host is in the scheduler's round-robin ring.
    pub(super) in_ring: bool,
}

impl Host {
    /// A host first seen now, under the limits `politeness` gives `key`.
    pub(super) fn new(key: &str, origin: String, politeness: &Politeness) -> Host {
        let limits = politeness
            .overrides
            .iter()
            .find(|(domain, _)| host_in_domain(key, domain))
            .map_or(politeness.default, |(_, l)| *l);
        Host {
            queue: VecDeque::new(),
            in_flight: 0,
            next_start: Instant::now(),
            limits,
            delay: limits.delay,
            base_delay: limits.delay,
            robots: RobotsGate::new(politeness.obey_robots, politeness.robots_backoff),
            origin,
            in_ring: false,
        }
    }

    /// Whether another request may start now (its slot and its delay).
    /// `Err(Some(t))`: not before `t`; `Err(None)`: when a call finishes.
    pub(super) fn ready(&self, now: Instant) -> Result<(), Option<Instant>> {
        if self.in_flight >= self.limits.concurrency.max(1) {
            return Err(None);
        }
        if now < self.next_start {
            return Err(Some(self.next_start));
        }
        Ok(())
    }

    /// A request to the host starts now.
    pub(super) fn start(&mut self, now: Instant) {
        self.in_flight += 1;
        self.next_start = now + self.delay;
    }

    /// robots.txt says `Crawl-delay` (capped at `max`): the floor of the
    /// delay rises to it. The robots fetch that brought it was itself a
    /// request to the host, so the delay runs from `now`.
    pub(super) fn crawl_delay(&mut self, delay: Duration, max: Duration, now: Instant) {
        let delay = delay.min(max);
        self.base_delay = self.limits.delay.max(delay);
        self.delay = self.delay.max(self.base_delay);
        self.next_start = self.next_start.max(now + self.delay);
    }

    /// The adaptive throttle, after a call that took `latency`:
    /// `throttled` (429/503) doubles the delay (at least 250 ms); otherwise
    /// it moves halfway towards the latency (Scrapy's AutoThrottle), never
    /// below the floor. Never above `max`.
    pub(super) fn throttle(&mut self, latency: Duration, throttled: bool, max: Duration) {
        self.delay = if throttled {
            (self.delay * 2).max(Duration::from_millis(250)).min(max)
        } else {
            ((self.delay + latency) / 2).max(self.base_delay).min(max)
        };
    }

    /// The host as the dashboard shows it.
    pub(super) fn view(&self, name: &str, now: Instant) -> HostView {
        HostView {
            host: name.to_owned(),
            queued: self.queue.len(),
            in_flight: self.in_flight,
            delay_ms: self.delay.as_millis() as u64,
            robots: self.robots.label(now),
            errors: 0,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn host(delay_ms: u64) -> Host {
        let p = Politeness {
            default: HostLimits {
                concurrency: 2,
                delay: Duration::from_millis(delay_ms),
            },
            overrides: vec![(
                "slow.test".into(),
                HostLimits {
                    concurrency: 1,
                    delay: Duration::from_secs(3),
                },
            )],
            ..Politeness::default()
        };
        let h = Host::new("a.slow.test", "http://a.slow.test".into(), &p);
        assert_eq!(
            h.limits.concurrency, 1,
            "the override for its domain applies"
        );
        Host::new("h", "http://h".into(), &p)
    }

    /// The adaptive throttle doubles a host's delay on 429/503 and eases it
    /// back toward the latency, never below the configured floor.
    #[test]
    fn autothrottle_adapts_the_delay() {
        let mut h = host(100);
        let max = Duration::from_secs(1);
        h.throttle(Duration::from_millis(10), true, max);
        assert_eq!(
            h.delay,
            Duration::from_millis(250),
            "doubled, at least 250 ms"
        );
        for _ in 0..3 {
            h.throttle(Duration::from_millis(10), true, max);
        }
        assert_eq!(h.delay, max, "capped");
        for _ in 0..20 {
            h.throttle(Duration::from_millis(10), false, max);
        }
        assert_eq!(h.delay, Duration::from_millis(100), "back to the floor");
        h.throttle(Duration::from_millis(700), false, max);
        assert_eq!(
            h.delay,
            Duration::from_millis(400),
            "halfway toward a slow latency"
        );
    }

    /// A Crawl-delay raises the floor (capped), and runs from the robots
    /// fetch; the throttle never goes below it after.
    #[test]
    fn crawl_delay_raises_the_floor() {
        let mut h = host(100);
        let now = Instant::now();
        h.crawl_delay(Duration::from_secs(60), Duration::from_secs(2), now);
        assert_eq!(h.delay, Duration::from_secs(2));
        assert_eq!(h.ready(now), Err(Some(now + Duration::from_secs(2))));
        h.throttle(Duration::ZERO, false, Duration::from_secs(30));
        assert_eq!(h.delay, Duration::from_secs(2));
    }
}
