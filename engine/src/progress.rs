//! Live progress: a status line redrawn in place on a terminal (indicatif),
//! or, when stderr is not a terminal (CI, a log file), one concise log line
//! every `progress_interval_ms`.

use std::io::IsTerminal;
use std::time::Duration;

use tokio::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

/// What the crawl loop reports at each tick.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// Pages fetched and parsed.
    pub pages: u64,
    /// Requests queued or waiting out a backoff.
    pub queued: usize,
    /// Calls to workers in progress.
    pub in_flight: usize,
    /// Items the itemsaver acknowledged.
    pub items: u64,
    /// Requests that failed for good.
    pub errors: u64,
    /// Workers in rotation, and in all.
    pub workers_up: usize,
    /// Workers in the pool.
    pub workers: usize,
    /// Time since the crawl started.
    pub elapsed: Duration,
}

impl Status {
    fn line(&self, rate: f64) -> String {
        format!(
            "pages={} pages/s={:.0} queued={} in_flight={} items={} errors={} workers={}/{} elapsed={:.0}s",
            self.pages,
            rate,
            self.queued,
            self.in_flight,
            self.items,
            self.errors,
            self.workers_up,
            self.workers,
            self.elapsed.as_secs_f64()
        )
    }
}

/// The progress reporter.
pub struct Progress {
    bar: Option<ProgressBar>,
    interval: Duration,
    last: Instant,
    last_pages: u64,
}

impl Progress {
    /// A bar on a terminal, log lines every `interval` otherwise; a zero
    /// interval turns both off.
    pub fn new(interval: Duration) -> Progress {
        let bar = (!interval.is_zero() && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}").expect("a valid template"),
            );
            bar
        });
        Progress {
            bar,
            interval,
            last: Instant::now(),
            last_pages: 0,
        }
    }

    /// Reports `status`: redraws the bar, or logs a line if the interval
    /// has passed.
    pub fn update(&mut self, status: &Status) {
        if self.interval.is_zero() {
            return;
        }
        let since = self.last.elapsed();
        if let Some(bar) = &self.bar {
            let rate = status.pages as f64 / status.elapsed.as_secs_f64().max(0.001);
            bar.set_message(status.line(rate));
            bar.tick();
            return;
        }
        if since < self.interval {
            return;
        }
        // The rate over the last interval: what the crawl does now.
        let rate = (status.pages - self.last_pages.min(status.pages)) as f64 / since.as_secs_f64();
        tracing::info!(target: "crawler::progress", "progress: {}", status.line(rate));
        self.last = Instant::now();
        self.last_pages = status.pages;
    }

    /// Clears the bar before the summary is printed.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line names every figure the issue asks for.
    #[test]
    fn line_has_every_figure() {
        let s = Status {
            pages: 10,
            queued: 3,
            in_flight: 2,
            items: 9,
            errors: 1,
            workers_up: 1,
            workers: 2,
            elapsed: Duration::from_secs(5),
        };
        assert_eq!(
            s.line(2.0),
            "pages=10 pages/s=2 queued=3 in_flight=2 items=9 errors=1 workers=1/2 elapsed=5s"
        );
    }
}
