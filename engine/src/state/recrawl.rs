//! When a known URL is fetched again: a per-URL interval that adapts to
//! how often the page changes, after StormCrawler's `AdaptiveScheduler`
//! (and Nutch's `AdaptiveFetchSchedule`): unchanged at a refetch, the
//! interval grows by `unchanged_factor`; changed, it shrinks by
//! `changed_factor`; always within `[min, max]`. A page first seen gets
//! `default`, or, when a sitemap gave its `<lastmod>`, its age: a page
//! modified an hour ago is likely to change again soon, one untouched for
//! a year is not.
//!
//! Times are seconds since the Unix epoch, passed in, so every decision is
//! a pure function tested without a clock.

use std::time::Duration;

/// The recrawl settings (`recrawl_*` keys).
#[derive(Debug, Clone, PartialEq)]
pub struct RecrawlPolicy {
    /// Shortest interval.
    pub min: Duration,
    /// Longest interval.
    pub max: Duration,
    /// Interval of a page fetched for the first time without a sitemap
    /// `<lastmod>`.
    pub default: Duration,
    /// Multiplies the interval of a page found changed (below 1).
    pub changed_factor: f64,
    /// Multiplies the interval of a page found unchanged (above 1).
    pub unchanged_factor: f64,
}

impl Default for RecrawlPolicy {
    fn default() -> Self {
        RecrawlPolicy {
            min: Duration::from_secs(3600),
            max: Duration::from_secs(30 * 86_400),
            default: Duration::from_secs(86_400),
            changed_factor: 0.5,
            unchanged_factor: 1.5,
        }
    }
}

/// What a refetch found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// First fetch of the URL.
    New,
    /// The server said 304, or the body hashed the same.
    Unchanged,
    /// A different body.
    Changed,
}

impl RecrawlPolicy {
    /// The interval after a fetch at `now`: `previous` is the interval the
    /// URL had (`None` on a first fetch), `lastmod` its sitemap date.
    pub fn interval(
        &self,
        previous: Option<u64>,
        change: Change,
        lastmod: Option<i64>,
        now: i64,
    ) -> u64 {
        let secs = match (previous, change) {
            (Some(p), Change::Unchanged) => p as f64 * self.unchanged_factor,
            (Some(p), Change::Changed) => p as f64 * self.changed_factor,
            _ => match lastmod {
                Some(at) => now.saturating_sub(at).max(0) as f64,
                None => self.default.as_secs() as f64,
            },
        };
        (secs as u64).clamp(
            self.min.as_secs(),
            self.max.as_secs().max(self.min.as_secs()),
        )
    }

    /// Whether a URL fetched last with `next_fetch` is due at `now`; a
    /// sitemap `<lastmod>` newer than the last fetch makes it due at once.
    pub fn due(next_fetch: i64, fetched_at: i64, lastmod: Option<i64>, now: i64) -> bool {
        next_fetch <= now || lastmod.is_some_and(|m| m > fetched_at)
    }
}

/// Wall-clock seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    /// Unchanged pages back off, changed ones come sooner, both within the
    /// bounds; a first fetch gets the default.
    #[test]
    fn interval_adapts_within_bounds() {
        let p = RecrawlPolicy::default();
        let day = 86_400;
        assert_eq!(p.interval(None, Change::New, None, NOW), day);
        assert_eq!(
            p.interval(Some(day), Change::Unchanged, None, NOW),
            day * 3 / 2
        );
        assert_eq!(p.interval(Some(day), Change::Changed, None, NOW), day / 2);
        let mut i = day;
        for _ in 0..50 {
            i = p.interval(Some(i), Change::Unchanged, None, NOW);
        }
        assert_eq!(i, 30 * day, "capped at max");
        for _ in 0..50 {
            i = p.interval(Some(i), Change::Changed, None, NOW);
        }
        assert_eq!(i, 3600, "floored at min");
    }

    /// A sitemap `<lastmod>` seeds the first interval: recently modified,
    /// short; long untouched, long.
    #[test]
    fn lastmod_seeds_first_interval() {
        let p = RecrawlPolicy::default();
        assert_eq!(p.interval(None, Change::New, Some(NOW - 7200), NOW), 7200);
        assert_eq!(p.interval(None, Change::New, Some(NOW - 60), NOW), 3600);
        assert_eq!(
            p.interval(None, Change::New, Some(NOW - 400 * 86_400), NOW),
            30 * 86_400
        );
        // A date in the future is no reason for a negative interval.
        assert_eq!(p.interval(None, Change::New, Some(NOW + 999), NOW), 3600);
    }

    /// Due when its time has come, or when the sitemap says it changed
    /// since the last fetch.
    #[test]
    fn due_by_time_or_newer_lastmod() {
        assert!(RecrawlPolicy::due(NOW, NOW - 10, None, NOW));
        assert!(!RecrawlPolicy::due(NOW + 1, NOW - 10, None, NOW));
        assert!(RecrawlPolicy::due(NOW + 1, NOW - 10, Some(NOW - 5), NOW));
        assert!(!RecrawlPolicy::due(NOW + 1, NOW - 10, Some(NOW - 20), NOW));
    }
}
