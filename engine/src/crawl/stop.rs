//! The shutdown sequence, in a fixed order (Scrapy's `close_spider`): no
//! new dispatches (the loop has ended), calls still in flight abandoned as
//! pending, items flushed and deletes sent, the state committed (or, with
//! no state dir, the unsaved items put in a file), the final figures
//! reported. Each step's failure is logged on
//! its own, so one broken part does not block the rest.

use std::io::Write as _;
use std::path::Path;

use rpcsupport::Item;
use tokio::time::Instant;

use super::machine::Crawl;
use super::report::ms;
use super::EngineError;
use crate::dashboard::HOSTS_SHOWN;
use crate::failures::open_append;
use crate::items::{Ack, Deleter, Finished, ItemSink};
use crate::pool::WorkerPool;
use crate::scheduler::Task;
use crate::summary::Summary;

impl Crawl<'_> {
    /// Ends the loop's bookkeeping at `now`: closes the worker-wait timer
    /// and returns the calls still in flight and the suspects still
    /// parked, which are pending work (robots fetches are redone on
    /// resume, so they are not kept).
    pub(super) fn abandon(&mut self, now: Instant) -> Vec<Task> {
        if let Some(since) = self.waiting_since.take() {
            self.summary.waited_for_workers += now.saturating_duration_since(since);
        }
        let mut abandoned: Vec<Task> = self
            .in_flight
            .drain()
            .map(|(_, f)| f.task)
            .filter(|t| !t.robots)
            .collect();
        abandoned.extend(self.suspects.drain_parked());
        self.absorb_scheduler_counts();
        self.metrics.in_flight.set(0);
        self.metrics
            .queue
            .set((self.scheduler.len() + abandoned.len()) as i64);
        abandoned
    }

    /// The shutdown sequence, after the loop: returns the summary, or the
    /// error that ended the crawl.
    pub(super) async fn finish(
        mut self,
        pool: &WorkerPool,
        sink: ItemSink,
        deleter: Option<Deleter>,
        mut acks: tokio::sync::mpsc::UnboundedReceiver<Ack>,
    ) -> Result<Summary, EngineError> {
        let abandoned = self.abandon(Instant::now());
        self.summary.worker_outages += pool.outages();
        self.progress.finish();
        self.summary.per_worker_latency_ms = pool
            .addrs()
            .iter()
            .zip(&self.metrics.latency)
            .filter(|(_, h)| h.count() > 0)
            .map(|(addr, h)| (addr.to_string(), ms(h, 0.5), ms(h, 0.9), ms(h, 0.99)))
            .collect();

        let finished = sink.finish().await;
        if let Some(deleter) = deleter {
            if let Some(d) = self.deletes_out.pop().map(|k| vec![k]) {
                // Cannot happen: the loop hands every delete over as it
                // is recorded; were one left, it is still in the store.
                tracing::warn!(key = %d[0], "a delete was not handed to the deleter");
            }
            let stats = deleter.finish().await;
            self.summary.recrawl.deletes_pending = stats.pending;
        }
        // Every sender is gone now (sink, deleter, the loop's own).
        while let Ok(ack) = acks.try_recv() {
            self.on_ack(ack);
        }
        self.absorb_items(&finished, abandoned.len(), Instant::now());
        self.save(&abandoned, finished.unsaved)?;
        if let Some(d) = &self.settings.dashboard {
            let (total, hosts) = self.scheduler.busiest_hosts(HOSTS_SHOWN, Instant::now());
            d.finish(&self.summary, self.fatal.is_none(), total, hosts);
        }
        match self.fatal {
            Some(e) => Err(e),
            None => Ok(self.summary),
        }
    }

    /// The sink's final figures, and what is left, into the summary.
    fn absorb_items(&mut self, finished: &Finished, abandoned: usize, now: Instant) {
        let elapsed = self.elapsed(now);
        let summary = &mut self.summary;
        summary.items_saved += finished.stats.saved;
        summary.save_retries += finished.stats.save_retries;
        summary.items_rejected += finished.stats.rejected;
        summary.waited_for_itemsaver += finished.stats.waited;
        summary.items_unsaved = finished.unsaved.len() as u64;
        summary.elapsed = elapsed;
        summary.left_pending = (self.scheduler.len() + abandoned) as u64;
    }

    /// Commits the final state (calls in flight and parked suspects are
    /// queued in the store already; unsaved items are among its unacked
    /// ones), or, with no state dir, writes the items the itemsaver never
    /// took to a file beside the failures file.
    fn save(&mut self, abandoned: &[Task], unsaved: Vec<Item>) -> Result<(), EngineError> {
        if self.state.is_some() {
            let finished = self.fatal.is_none()
                && !self.summary.interrupted
                && abandoned.is_empty()
                && self.scheduler.is_empty();
            self.commit_final(finished, Instant::now())?;
            let state = self.state.as_ref().expect("checked");
            tracing::info!(dir = %state.path().display(), pending = self.summary.left_pending, unsaved_items = unsaved.len(), finished, "crawl state written");
            return Ok(());
        }
        if unsaved.is_empty() {
            return Ok(());
        }
        let path = self
            .settings
            .failures_file
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."))
            .join("unsaved-items.jsonl");
        match write_jsonl(&path, unsaved.iter().map(Item::to_json)) {
            Ok(()) => {
                tracing::error!(items = unsaved.len(), path = %path.display(), "itemsaver unreachable; unsaved items written to a file")
            }
            Err(e) => {
                tracing::error!(error = %e, path = %path.display(), "itemsaver unreachable and unsaved items cannot be written")
            }
        }
        Ok(())
    }
}

fn write_jsonl(path: &Path, lines: impl Iterator<Item = serde_json::Value>) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(open_append(path)?);
    for line in lines {
        writeln!(f, "{line}")?;
    }
    f.flush()?;
    f.get_ref().sync_all()
}
