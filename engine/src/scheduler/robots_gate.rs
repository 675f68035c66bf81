//! The robots gate: a host's robots.txt is fetched (through a worker, as a
//! request of its own) before any other request to the host, re-fetched
//! after its TTL, and obeyed. While it is unreachable (5xx, timeout) the
//! host waits and the fetch is retried with backoff; after
//! [`ROBOTS_MAX_FAILURES`] the host counts as disallowed (RFC 9309: an
//! unreachable robots.txt means "assume complete disallow").
//!
//! The file's `Sitemap:` lines are handed to the scheduler once per fetch
//! ([`RobotsGate::take_sitemaps`]); a crawl that does not obey robots.txt
//! does not fetch it, so it follows none.

use std::time::Duration;

use tokio::time::Instant;

use super::url::far_future;
use crate::robots::Robots;

/// Robots.txt fetches that fail transiently are retried this many times
/// before the host is treated as disallowed.
pub(super) const ROBOTS_MAX_FAILURES: u32 = 4;

/// What a robots.txt fetch brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RobotsAnswer<'a> {
    /// The file's text.
    File(&'a str),
    /// There is none (4xx) or it is unusable: everything is allowed.
    Missing,
    /// It could not be fetched now (5xx, timeout, unreachable): try again.
    Unavailable,
}

#[derive(Debug)]
enum State {
    /// Not fetched yet (or expired): the next dispatch to the host fetches it.
    Unknown,
    /// A robots request is in flight.
    Fetching,
    /// Rules known until `until`.
    Ready { robots: Robots, until: Instant },
    /// Fetch failed transiently; try again at `retry_at`.
    Unavailable { retry_at: Instant },
}

/// Whether the host may be served now, as far as robots.txt goes.
#[derive(Debug, PartialEq)]
pub(super) enum Gate {
    /// Go on (its rules are known, or its fetch is due).
    Open,
    /// Not now: at this time (`None`: when its fetch comes back).
    Closed(Option<Instant>),
}

/// One host's robots.txt state.
#[derive(Debug)]
pub(super) struct RobotsGate {
    state: State,
    /// Fetches failed in a row.
    failures: u32,
    /// `Sitemap:` URLs of the last file, until the scheduler takes them.
    sitemaps: Vec<String>,
    /// The wait after the first failed fetch; it doubles with each
    /// failure after it (`robots_retry_backoff_ms`).
    backoff: Duration,
}

/// What [`RobotsGate::answer`] decided.
#[derive(Debug, PartialEq)]
pub(super) enum Answered {
    /// Rules in force; `Some` is their Crawl-delay.
    Rules(Option<Duration>),
    /// Unavailable: the host waits this long.
    Wait(Duration),
    /// Unreachable too often: the host is disallowed; its queue goes.
    GaveUp,
}

impl RobotsGate {
    /// A gate that fetches robots.txt first (`obey`), or one always open.
    pub(super) fn new(obey: bool, backoff: Duration) -> RobotsGate {
        let state = if obey {
            State::Unknown
        } else {
            State::Ready {
                robots: Robots::allow_all(),
                until: far_future(),
            }
        };
        RobotsGate {
            state,
            failures: 0,
            sitemaps: Vec::new(),
            backoff,
        }
    }

    /// The `Sitemap:` URLs the last file named, once: taken, not kept.
    pub(super) fn take_sitemaps(&mut self) -> Vec<String> {
        std::mem::take(&mut self.sitemaps)
    }

    /// Where the gate stands at `now`: expired rules and retry times come
    /// due here, turning back into "fetch it".
    pub(super) fn poll(&mut self, now: Instant) -> Gate {
        match &self.state {
            State::Ready { until, .. } if now >= *until => self.state = State::Unknown,
            State::Unavailable { retry_at } if now >= *retry_at => self.state = State::Unknown,
            State::Unavailable { retry_at } => return Gate::Closed(Some(*retry_at)),
            State::Fetching => return Gate::Closed(None),
            _ => {}
        }
        Gate::Open
    }

    /// If the file is due, marks it fetching and says so: the caller
    /// sends the robots request.
    pub(super) fn start_fetch(&mut self) -> bool {
        let due = matches!(self.state, State::Unknown);
        if due {
            self.state = State::Fetching;
        }
        due
    }

    /// The rules in force, once known.
    pub(super) fn rules(&self) -> Option<&Robots> {
        match &self.state {
            State::Ready { robots, .. } => Some(robots),
            _ => None,
        }
    }

    /// Takes in a fetch's answer at `now`; `agent` picks the group, `ttl`
    /// is how long the rules hold, `max_sitemaps` bounds the `Sitemap:`
    /// lines kept (0 when they are not followed).
    pub(super) fn answer(
        &mut self,
        answer: RobotsAnswer<'_>,
        agent: &str,
        ttl: Duration,
        max_sitemaps: usize,
        now: Instant,
    ) -> Answered {
        let mut robots = match answer {
            RobotsAnswer::File(text) => Robots::parse_with_sitemaps(text, agent, max_sitemaps),
            RobotsAnswer::Missing => Robots::allow_all(),
            RobotsAnswer::Unavailable => return self.unavailable(ttl, now),
        };
        self.failures = 0;
        self.sitemaps = std::mem::take(&mut robots.sitemaps);
        let delay = robots.crawl_delay;
        self.state = State::Ready {
            robots,
            until: now + ttl,
        };
        Answered::Rules(delay)
    }

    fn unavailable(&mut self, ttl: Duration, now: Instant) -> Answered {
        self.failures += 1;
        if self.failures >= ROBOTS_MAX_FAILURES {
            self.state = State::Ready {
                robots: Robots::disallow_all(),
                until: now + ttl,
            };
            return Answered::GaveUp;
        }
        let backoff = self.backoff * 2u32.pow(self.failures - 1);
        self.state = State::Unavailable {
            retry_at: now + backoff,
        };
        Answered::Wait(backoff)
    }

    /// How the dashboard names the state.
    pub(super) fn label(&self, now: Instant) -> &'static str {
        match &self.state {
            State::Unknown => "not fetched",
            State::Fetching => "fetching",
            State::Ready { .. } => "obeyed",
            State::Unavailable { retry_at } if *retry_at > now => "unreachable, waiting",
            State::Unavailable { .. } => "unreachable",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unavailable file closes the gate for 1 s, 2 s, 4 s, then the
    /// host is given up on; a file that arrives resets the count.
    #[test]
    fn unavailable_backs_off_then_gives_up() {
        let ttl = Duration::from_secs(60);
        let t0 = Instant::now();
        let mut g = RobotsGate::new(true, Duration::from_secs(1));
        assert_eq!(g.poll(t0), Gate::Open);
        assert!(g.start_fetch());
        assert_eq!(g.poll(t0), Gate::Closed(None), "fetching");
        let mut now = t0;
        for secs in [1, 2, 4] {
            let wait = Duration::from_secs(secs);
            assert_eq!(
                g.answer(RobotsAnswer::Unavailable, "a", ttl, 0, now),
                Answered::Wait(wait)
            );
            assert_eq!(g.poll(now), Gate::Closed(Some(now + wait)));
            now += wait;
            assert_eq!(g.poll(now), Gate::Open);
            assert!(g.start_fetch());
        }
        assert_eq!(
            g.answer(RobotsAnswer::Unavailable, "a", ttl, 0, now),
            Answered::GaveUp
        );
        assert!(!g.rules().unwrap().allows("/"));
        // Once the rules expire the file is fetched again, from a clean count.
        assert_eq!(g.poll(now + ttl), Gate::Open);
        assert!(g.start_fetch());
        assert_eq!(
            g.answer(RobotsAnswer::Missing, "a", ttl, 0, now),
            Answered::Rules(None)
        );
        assert!(g.rules().unwrap().allows("/"));
    }

    /// The file's sitemaps are handed over once, and its rules obeyed.
    #[test]
    fn sitemaps_are_handed_over_once() {
        let ttl = Duration::from_secs(60);
        let now = Instant::now();
        let file = "User-agent: *\nDisallow: /x\nSitemap: http://h/s.xml\n";
        let mut g = RobotsGate::new(true, Duration::from_secs(1));
        assert!(g.start_fetch());
        g.answer(RobotsAnswer::File(file), "a", ttl, 10, now);
        assert!(!g.rules().unwrap().allows("/x"));
        assert_eq!(g.take_sitemaps(), ["http://h/s.xml"]);
        assert!(g.take_sitemaps().is_empty(), "handed over once");
        // Not followed: none kept.
        let mut g = RobotsGate::new(true, Duration::from_secs(1));
        assert!(g.start_fetch());
        g.answer(RobotsAnswer::File(file), "a", ttl, 0, now);
        assert!(g.take_sitemaps().is_empty());
    }

    /// A gate that does not obey robots.txt is open from the start.
    #[test]
    fn not_obeying_is_always_open() {
        let mut g = RobotsGate::new(false, Duration::from_secs(1));
        assert_eq!(g.poll(Instant::now()), Gate::Open);
        assert!(!g.start_fetch());
        assert!(g.rules().is_some());
    }
}
