//! What an outcome means for its request: the loop's decisions. The pure
//! parts ([`backoff`], [`page_failure`], [`robots_answer`]) take values
//! and return a decision; the `Crawl` methods here apply it (frontier,
//! counters, metrics, failures file).

use std::time::Duration;

use rpcsupport::{CrawlError, FetchError, Request};
use tokio::time::Instant;

use super::machine::Crawl;
use super::CallResult;
use crate::config::Settings;
use crate::poison::{Loss, POISON};
use crate::pool::ConnectionId;
use crate::scheduler::{Dropped, RobotsAnswer, Task};
use crate::scope::OutOfScope;

/// What to do with a request whose page failed.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum PageFailure {
    /// Not crawled on purpose (not HTML, redirected off-site): counted as
    /// skipped under this reason, not as an error.
    Skip(&'static str),
    /// Transient: fetch again after this delay.
    Retry(Duration),
    /// Failed for good.
    Fail,
}

/// A page's fetch or parse failed after `retries` retries: transient fetch
/// failures wait out a backoff and go again (up to `retry_times`); content
/// that is not HTML and redirects out of scope are skipped; the rest
/// failed for good.
pub(super) fn page_failure(e: &CrawlError, retries: u32, settings: &Settings) -> PageFailure {
    match e {
        CrawlError::Fetch(FetchError::NotHtml { .. }) => return PageFailure::Skip("not_html"),
        CrawlError::Fetch(FetchError::OffsiteRedirect { .. }) => {
            return PageFailure::Skip("offsite_redirect")
        }
        _ => {}
    }
    if !e.is_transient() || retries >= settings.retry_times {
        return PageFailure::Fail;
    }
    let retry_after = match e {
        CrawlError::Fetch(FetchError::Status {
            retry_after_secs, ..
        }) => retry_after_secs.map(Duration::from_secs),
        _ => None,
    };
    PageFailure::Retry(backoff(settings, retries, retry_after))
}

/// Exponential backoff with jitter (between half and all of the step), at
/// least the server's `Retry-After`, at most the configured ceiling.
pub(super) fn backoff(
    settings: &Settings,
    retries: u32,
    retry_after: Option<Duration>,
) -> Duration {
    let step = settings
        .retry_backoff
        .saturating_mul(2u32.saturating_pow(retries.min(20)));
    let jittered = step.mul_f64(0.5 + fastrand::f64() * 0.5);
    jittered
        .max(retry_after.unwrap_or_default())
        .min(settings.retry_max_backoff)
}

/// What the outcome of a robots.txt fetch says: the file, "none" (4xx
/// other than 429, or unusable: allow all) or "try again" (5xx, 429,
/// timeout, unreachable, a failed call: the host waits).
pub(super) fn robots_answer(result: &CallResult) -> RobotsAnswer<'_> {
    match result {
        CallResult::Answered(Ok(parsed)) => RobotsAnswer::File(
            parsed
                .items
                .first()
                .and_then(|i| i.payload.get("body"))
                .and_then(|v| v.as_str())
                .unwrap_or(""),
        ),
        CallResult::Answered(Err(e)) if is_missing_status(e) => RobotsAnswer::Missing,
        // Redirected off-site, too large, unparsable: like a missing
        // file, RFC 9309 says to treat it as allow-all.
        CallResult::Answered(Err(e)) if !e.is_transient() => RobotsAnswer::Missing,
        _ => RobotsAnswer::Unavailable,
    }
}

/// A 4xx answer other than 429: the server says there is no robots.txt.
fn is_missing_status(e: &CrawlError) -> bool {
    matches!(e, CrawlError::Fetch(FetchError::Status { status, .. })
        if (400..500).contains(status) && *status != 429)
}

impl Crawl<'_> {
    /// Queues a request, counting why if it is dropped.
    pub(super) fn enqueue(&mut self, request: Request) {
        let state = &mut self.state;
        let queued = |task: &mut Task| super::durable::record_queued(state, task);
        match self.scheduler.enqueue_with(request, queued) {
            Ok(()) => {}
            Err(Dropped::Duplicate) => self.summary.duplicates += 1,
            Err(Dropped::TooDeep) => self.summary.too_deep += 1,
            Err(Dropped::OutOfScope(OutOfScope::BadUrl)) => self.summary.bad_urls += 1,
            Err(Dropped::OutOfScope(_)) => self.summary.out_of_scope += 1,
        }
    }

    /// The answer to a robots.txt fetch, into the scheduler.
    pub(super) fn robots_answer(&mut self, task: Task, result: CallResult, now: Instant) {
        let answer = robots_answer(&result);
        if let (RobotsAnswer::Missing, CallResult::Answered(Err(e))) = (answer, &result) {
            if !is_missing_status(e) {
                tracing::info!(url = %task.request.url, error = %e, "robots.txt unusable; allowing all");
            }
        }
        // The sitemaps it names (when followed) are requests like any other.
        for sitemap in self.scheduler.robots_answer(&task, answer, now) {
            self.summary.page.robots_sitemaps += 1;
            self.enqueue(sitemap);
        }
    }

    /// A page's fetch or parse failed: see [`page_failure`].
    pub(super) fn page_failed(&mut self, task: Task, e: CrawlError, now: Instant) {
        match page_failure(&e, task.retries, self.settings) {
            PageFailure::Skip(why) => {
                self.record_skipped(&task);
                self.skip(why)
            }
            PageFailure::Retry(delay) => {
                // Debug, not info: a page that fails and is retried must
                // not log a line per try; its final outcome is logged once.
                tracing::debug!(url = %task.request.url, error = %e, retry_in = ?delay, "transient failure; retrying later");
                let kind = e.kind();
                self.registry
                    .counter(
                        "crawler_fetch_retries_total",
                        "Fetches retried after a transient failure, by kind.",
                        &[("kind", &kind)],
                    )
                    .inc();
                *self.summary.fetch_retries.entry(kind).or_default() += 1;
                let task = Task {
                    retries: task.retries + 1,
                    ..task
                };
                self.scheduler.retry(task, Some(now + delay));
            }
            PageFailure::Fail => {
                tracing::warn!(url = %task.request.url, error = %e, "page failed");
                self.fail(&task, &e.kind(), &e.to_string());
            }
        }
    }

    /// A worker call for `task` failed at the transport level. If the pool
    /// found the worker lost with it, the request is a suspect (or, at a
    /// second loss, poison) and no attempt is used up: it was not
    /// necessarily this call that killed the worker. Otherwise the worker
    /// is fine and this call itself failed (a deadline): one attempt of
    /// `max_attempts`.
    pub(super) fn call_failed(
        &mut self,
        task: Task,
        kind: &'static str,
        reason: &str,
        lost: Option<ConnectionId>,
    ) {
        if let Some(connection) = lost {
            match self.suspects.on_loss(task, connection, reason) {
                Loss::Parked => {
                    tracing::warn!(%reason, "worker lost during a call; its request will be sent again (not counted as an attempt)");
                    self.count_retry(kind);
                }
                Loss::Poison { task, reason } => {
                    tracing::error!(url = %task.request.url, %reason, "request lost two workers; failed as poison, not sent again");
                    self.fail(&task, POISON, &reason);
                }
            }
            return;
        }
        let attempts = task.attempts + 1;
        let task = Task { attempts, ..task };
        if attempts < self.settings.max_attempts {
            tracing::warn!(url = %task.request.url, %reason, attempts, "worker call failed; will retry on another worker");
            self.count_retry(kind);
            if let Some(task) = self.suspects.requeue(task) {
                self.scheduler.retry(task, None);
            }
        } else {
            tracing::error!(url = %task.request.url, %reason, attempts, "worker call failed; giving up on this request");
            self.suspects.forget(&task);
            self.fail(&task, kind, reason);
        }
    }

    fn count_retry(&mut self, kind: &str) {
        self.summary.retries += 1;
        self.registry
            .counter(
                "crawler_rpc_retries_total",
                "Worker calls sent again after a transport failure.",
                &[("kind", kind)],
            )
            .inc();
    }

    fn skip(&mut self, why: &str) {
        *self.summary.skipped.entry(why.to_owned()).or_default() += 1;
        self.registry
            .counter(
                "crawler_skipped_total",
                "Requests not crawled on purpose, by reason.",
                &[("reason", why)],
            )
            .inc();
    }

    /// The requests the scheduler dropped on its own, into the summary.
    pub(super) fn absorb_scheduler_counts(&mut self) {
        let counts = self.scheduler.take_counts();
        for (why, n) in [
            ("robots_disallowed", counts.robots_disallowed),
            ("robots_unreachable", counts.robots_unreachable),
        ] {
            if n > 0 {
                *self.summary.skipped.entry(why.into()).or_default() += n;
            }
        }
    }

    /// `task` failed for good: counted by kind and written to the
    /// failures file.
    pub(super) fn fail(&mut self, task: &Task, kind: &str, reason: &str) {
        self.record_failed(task, kind);
        *self.summary.errors.entry(kind.to_owned()).or_default() += 1;
        self.registry
            .counter(
                "crawler_errors_total",
                "Requests that failed for good, by kind.",
                &[("kind", kind)],
            )
            .inc();
        self.failures
            .request(&task.request, task.attempts.max(1), kind, reason);
    }
}
