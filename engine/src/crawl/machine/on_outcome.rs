//! The outcome event: a call came back, and what it means for the
//! frontier, the counts and the suspects (the decisions themselves are in
//! `outcome.rs`, `page.rs` and `routing.rs`).

use std::time::Duration;

use rpcsupport::{CrawlError, FetchError, Item, ParseError, ParseResult, RenderError};
use tokio::time::Instant;

use super::{Crawl, InFlight};
use crate::crawl::{CallId, CallResult, EngineError, Outcome};
use crate::scheduler::{fingerprint, Task};

impl Crawl<'_> {
    /// Event: a call came back (`None`: its task panicked, nothing was
    /// learnt). Returns the page's items, for the sink.
    pub(in crate::crawl) fn on_outcome(
        &mut self,
        id: CallId,
        outcome: Option<Outcome>,
        now: Instant,
    ) -> Option<Vec<Item>> {
        let InFlight { task, sent_at } = self.in_flight.remove(&id)?;
        self.pages_in_flight -= u64::from(!task.robots);
        let latency = now.saturating_duration_since(sent_at);
        let Some(Outcome { worker, result }) = outcome else {
            self.call_panicked(task, latency);
            return None;
        };
        if let CallResult::NoRenderWorker { waited } = result {
            self.no_render_worker(task, latency, waited);
            return None;
        }
        self.metrics.latency[worker].observe(latency);
        let throttle = matches!(
            &result,
            CallResult::Answered(Err(CrawlError::Fetch(FetchError::Status {
                status: 429 | 503,
                ..
            })))
        );
        self.scheduler.done(&task, latency, throttle);
        if let CallResult::Answered(Ok(parsed)) = &result {
            self.summary.limits.add(&parsed.limits);
            // A rendered page's scripts and data were fetched by the
            // worker, outside the frontier: charged to their hosts here.
            for (host, n) in &parsed.page.subrequests {
                self.scheduler.charge(host, *n, now);
            }
        }
        if task.robots {
            self.robots_answer(task, result, now);
            return None;
        }
        // Whatever happened, this call may have reached the site.
        self.summary.fetches += 1;
        if let CallResult::Answered(_) = &result {
            self.suspects.on_answer(&task);
        }
        match result {
            CallResult::Answered(Ok(parsed)) => return Some(self.page_done(&task, worker, parsed)),
            CallResult::Answered(Err(CrawlError::Parse(ParseError::UnknownParser(name)))) => {
                tracing::error!(parser = %name, url = %task.request.url, "unknown parser; stopping the crawl");
                let url = task.request.url.clone();
                // Not done: keep it pending so a fixed worker can resume it.
                self.scheduler.retry(task, None);
                self.fatal
                    .get_or_insert(EngineError::UnknownParser { name, url });
            }
            CallResult::Answered(Err(CrawlError::Render(RenderError::Unavailable { reason }))) => {
                self.render_unavailable(task, &reason)
            }
            CallResult::Answered(Err(e)) => self.page_failed(task, e, now),
            CallResult::Failed { kind, reason, lost } => {
                self.call_failed(task, kind, &reason, lost)
            }
            CallResult::NoRenderWorker { .. } => unreachable!("handled above"),
        }
        None
    }

    /// The call task panicked: nothing was learnt, send again (it may
    /// have reached the site, so it is counted).
    fn call_panicked(&mut self, task: Task, latency: Duration) {
        self.scheduler.done(&task, latency, false);
        if task.robots {
            self.scheduler.retry(task, None);
            return;
        }
        self.summary.fetches += 1;
        if let Some(task) = self.suspects.requeue(task) {
            self.scheduler.retry(task, None);
        }
    }

    /// A page arrived: its links go into the frontier, its items are
    /// returned for the sink.
    fn page_done(&mut self, task: &Task, worker: usize, parsed: ParseResult) -> Vec<Item> {
        // What the page says about itself first: a canonical duplicate
        // has no items or links left to record (page.rs).
        let parsed = self.page_meta(task, parsed);
        let fp = fingerprint(&task.request.url);
        if self.done_since.remove(&fp) {
            self.summary.refetched += 1;
        }
        self.record_page(task, &parsed);
        self.summary.pages += 1;
        self.summary.per_worker[worker].1 += 1;
        self.metrics.pages.inc();
        for request in parsed.requests {
            self.enqueue(request);
        }
        parsed.items
    }
}
