//! Render routing, the loop's side: requests that need a browser wait in
//! their call for a worker that can render (see [`crate::pool`]), as
//! requests wait for any worker while all are down. This file holds what
//! the machine decides about them: the one warning while they wait, the
//! requests given up after `worker_wait_ms`, and the requests sent again
//! when a worker answers that it cannot render.

use std::time::Duration;

use super::machine::Crawl;
use crate::scheduler::Task;

/// The failure kind of a render request no rendering worker took.
pub(super) const NO_RENDER_WORKER: &str = "no_render_worker";

impl Crawl<'_> {
    /// At a tick: `waiting` render requests wait for a worker, and
    /// `rendering` connected workers can render. Says so once, not per
    /// page.
    pub(super) fn on_render_tick(&mut self, waiting: usize, rendering: usize) {
        if let Some(n) = self.render_wait.tick(waiting, rendering) {
            tracing::warn!(
                waiting = n,
                give_up_after = ?self.settings.worker_wait,
                "{n} requests need a browser (render = always/auto) but no connected worker can render; \
                 they wait up to worker_wait_ms for one. Start a worker with a browser \
                 (worker --browser PATH, or with chromium on its PATH) and add it to worker_hosts"
            );
        }
    }

    /// No worker that can render came up for `task` within the wait: it
    /// fails for good (it never reached a site, so no fetch is counted).
    pub(super) fn no_render_worker(&mut self, task: Task, latency: Duration, waited: Duration) {
        self.scheduler.done(&task, latency, false);
        self.suspects.forget(&task);
        let reason = format!(
            "no connected worker could render within {waited:?} (worker_wait_ms); start a worker with a browser"
        );
        // Debug: the wait was announced once; the summary and the
        // failures file count every request given up.
        tracing::debug!(url = %task.request.url, %reason, "render request given up");
        self.fail(&task, NO_RENDER_WORKER, &reason);
    }

    /// The worker answered that it cannot render (it has no browser, or
    /// lost it): the call marked it non-rendering in the pool; the request
    /// goes again at once, without using an attempt, to a worker that can.
    pub(super) fn render_unavailable(&mut self, task: Task, reason: &str) {
        tracing::info!(url = %task.request.url, %reason, "worker cannot render; sending the request to another");
        self.summary.page.render_requeued += 1;
        if let Some(task) = self.suspects.requeue(task) {
            self.scheduler.retry(task, None);
        }
    }
}
