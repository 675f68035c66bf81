//! The dispatch event: what may go out now, within the page budget, the
//! time limit, the worker count and the hosts' limits.

use std::time::Duration;

use rpcsupport::Request;
use tokio::time::Instant;

use super::{Crawl, InFlight, Step};
use crate::crawl::CallId;
use crate::scheduler::{fingerprint, Next};

/// Work queued but nothing in flight to wake the loop: only possible while
/// limits say "not yet" without a time; look again this soon.
const IDLE_RECHECK: Duration = Duration::from_millis(50);

impl Crawl<'_> {
    /// Event: room to send. Checks the page and time limits, releases a
    /// suspect if it is its turn, then sends (through `send`) as many
    /// tasks as the worker count, the page budget and the hosts' limits
    /// allow.
    pub(in crate::crawl) fn dispatch(
        &mut self,
        now: Instant,
        mut send: impl FnMut(CallId, &Request),
    ) -> Step {
        if self.stop_at.is_none() {
            if let Some(reason) = self.limit_reached(now) {
                self.begin_stop(reason, now);
            }
        }
        let stopping = self.stopping();
        let mut wake = None;
        if !stopping {
            self.release_suspect();
            wake = self.fill(now, &mut send);
        }
        if self.in_flight.is_empty()
            && (stopping || (self.scheduler.is_idle() && self.suspects.parked_len() == 0))
        {
            return Step::Done;
        }
        if self.in_flight.is_empty() && wake.is_none() {
            wake = Some(now + IDLE_RECHECK);
        }
        Step::Wait(wake)
    }

    /// Sends tasks while there is room; returns when to look again.
    fn fill(&mut self, now: Instant, send: &mut impl FnMut(CallId, &Request)) -> Option<Instant> {
        // Page budget: what is counted plus what is in flight stays under
        // max_pages, so the sites see at most max_pages crawl requests.
        while self.in_flight.len() < self.settings.worker_count
            && !self.commit_backlogged()
            && self
                .settings
                .max_pages
                .is_none_or(|max| self.summary.fetches + self.pages_in_flight < max)
        {
            match self.scheduler.next(now) {
                Next::Task(mut task) => {
                    self.learnt.hint(&mut task.request);
                    let id = CallId(self.next_call);
                    self.next_call += 1;
                    send(id, &task.request);
                    self.pages_in_flight += u64::from(!task.robots);
                    self.in_flight.insert(id, InFlight { task, sent_at: now });
                }
                Next::Wait(at) => return at,
                Next::Idle => return None,
            }
        }
        None
    }

    /// Suspects of a worker loss go out one at a time (see poison.rs).
    fn release_suspect(&mut self) {
        let in_flight = &self.in_flight;
        let out = |fp| {
            in_flight
                .values()
                .any(|f| !f.task.robots && fingerprint(&f.task.request.url) == fp)
        };
        if let Some(task) = self.suspects.release(out, self.scheduler.is_idle()) {
            self.scheduler.retry(task, None);
        }
    }

    /// Page and time limits end the crawl like a stop, with a reason.
    fn limit_reached(&self, now: Instant) -> Option<&'static str> {
        if self
            .settings
            .max_pages
            .is_some_and(|max| self.summary.fetches >= max)
        {
            Some("page limit reached")
        } else if self
            .settings
            .max_duration
            .is_some_and(|max| self.elapsed(now) >= max)
        {
            Some("time limit reached")
        } else {
            None
        }
    }
}
