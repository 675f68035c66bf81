//! Items out: batches items and sends them to the itemsaver, losing none.
//!
//! A batch goes out when it holds `batch_size` items or its first item has
//! waited `linger`, so a trickle still reaches the store promptly and a
//! stream costs one RPC per batch. The sink never blocks the crawl: while
//! the itemsaver is down or slow, items pile up in memory up to
//! `memory_items`, then in a spill file on disk, and go out when it answers
//! again (reconnecting as needed, with backoff). An item is dropped from the
//! sink only once the itemsaver acknowledged the batch holding it, and the
//! itemsaver upserts by id, so a batch sent twice stores nothing twice.
//! Items the itemsaver refuses for good (too large, unmappable) are counted
//! and written to the failures file rather than resent forever.

use std::path::PathBuf;
use std::time::Duration;

use rpcsupport::{
    connect_itemsaver, ConnectOptions, HostAddr, Item, ItemSaverClient, Refusal, SaveError, Shared,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::failures::FailureLog;
use crate::pool::deadline_in;
use crate::spill::SpillQueue;

mod delete;

pub use delete::{DeleteOptions, DeleteStats, Deleter};

/// What the itemsaver acknowledged, for the URL store: it keeps items and
/// deletes until they are acknowledged, so a killed engine loses neither.
#[derive(Debug, Clone, PartialEq)]
pub enum Ack {
    /// Items with these keys were stored (or refused for good, and put in
    /// the failures file): no longer to be sent.
    Items(Vec<String>),
    /// These deletes were done; the itemsaver held this many of the keys.
    Deletes(Vec<String>, u64),
}

/// Most encoded bytes in one save call: big items make smaller batches, so
/// a batch stays well under the itemsaver's frame limit (64 MiB by
/// default), which would otherwise close the connection on every try.
const MAX_BATCH_BYTES: u64 = 8 << 20;

/// What happened to the items sent to the sink.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemStats {
    /// Items the itemsaver acknowledged.
    pub saved: u64,
    /// Save calls that failed and were tried again.
    pub save_retries: u64,
    /// Items the itemsaver refused for good (retrying cannot help); each
    /// is in the failures file.
    pub rejected: u64,
    /// Time during which saves were failing.
    pub waited: Duration,
}

/// How the sink batches, buffers and retries.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// Where the itemsaver listens.
    pub addr: HostAddr,
    /// How to connect to it.
    pub connect: ConnectOptions,
    /// Items per save call.
    pub batch_size: usize,
    /// Longest a partial batch waits.
    pub linger: Duration,
    /// Deadline of one save call.
    pub rpc_timeout: Duration,
    /// Items kept in memory before spilling to disk.
    pub memory_items: usize,
    /// Directory for the spill file.
    pub spill_dir: PathBuf,
    /// When finishing, how long to keep trying an unreachable itemsaver
    /// before handing the remaining items back to the caller.
    pub finish_timeout: Duration,
    /// Counts acknowledged items as they are acknowledged (for progress
    /// and metrics; the final figure is in [`ItemStats::saved`]).
    pub saved: rpcsupport::metrics::Counter,
    /// Where refused items are recorded.
    pub failures: FailureLog,
    /// Told the keys of each batch once the itemsaver has answered for
    /// it, if anyone keeps items until then (the URL store).
    pub acked: Option<mpsc::UnboundedSender<Ack>>,
}

enum Msg {
    Items(Vec<Item>),
    /// Reply with every item not yet acknowledged, in order.
    Unacked(oneshot::Sender<Vec<Item>>),
}

/// What the sink returns when it finishes.
#[derive(Debug, Default)]
pub struct Finished {
    /// Final counts.
    pub stats: ItemStats,
    /// Items still unacknowledged after `finish_timeout` (itemsaver down):
    /// the caller must keep them.
    pub unsaved: Vec<Item>,
}

/// Handle to the sink task.
pub struct ItemSink {
    tx: mpsc::UnboundedSender<Msg>,
    task: JoinHandle<Finished>,
}

impl ItemSink {
    /// Starts the sink with `client` (already connected, or `None`) and
    /// items left unacknowledged by an earlier run.
    pub fn spawn(
        client: Option<ItemSaverClient>,
        opts: SinkOptions,
        carried_over: Vec<Item>,
    ) -> ItemSink {
        // Unbounded on purpose: the sink task only moves items into its own
        // bounded memory buffer or the spill file, so it drains this channel
        // as fast as the crawl fills it and never stalls the crawl loop.
        let (tx, rx) = mpsc::unbounded_channel();
        let mut sink = Sink::new(client, opts);
        sink.push(carried_over);
        let task = tokio::spawn(sink.run(rx));
        ItemSink { tx, task }
    }

    /// Queues items for saving.
    pub fn send(&self, items: Vec<Item>) {
        if !items.is_empty() && self.tx.send(Msg::Items(items)).is_err() {
            // Only possible if the task panicked; its JoinError surfaces in
            // `finish`.
            tracing::error!("item sink stopped early");
        }
    }

    /// Every item sent so far and not yet acknowledged, for the state file.
    pub async fn unacked(&self) -> Vec<Item> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Unacked(tx)).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Saves everything queued (waiting up to `finish_timeout` for an
    /// itemsaver that is down) and returns the counts and any items that
    /// could not be saved.
    pub async fn finish(self) -> Finished {
        drop(self.tx);
        match self.task.await {
            Ok(finished) => finished,
            Err(e) => {
                tracing::error!(error = %e, "item sink task failed");
                Finished::default()
            }
        }
    }
}

/// The client (if still usable), and on success the items the itemsaver
/// refused (the rest are stored).
type SaveOutcome = (Option<ItemSaverClient>, Result<Vec<Refusal>, SaveFailure>);

enum SaveFailure {
    /// Worth retrying: itemsaver down, deadline, store error.
    Transient(String),
    /// The itemsaver refused the whole batch for good.
    Rejected(String),
    /// Too many items for the itemsaver in one batch: send at most this
    /// many.
    TooLarge(u32),
}

struct Sink {
    opts: SinkOptions,
    /// `None` while not connected (taken while a save is in flight).
    client: Option<ItemSaverClient>,
    /// Items waiting: `memory_items` in memory, the rest on disk.
    buffer: SpillQueue<Item>,
    in_flight: Option<JoinHandle<SaveOutcome>>,
    /// The batch in flight, shared with the save task: kept so `unacked`
    /// can include it and a failed save can put it back.
    in_flight_items: Shared<Vec<Item>>,
    /// No save before this (backoff after a failure).
    not_before: Instant,
    backoff: Duration,
    /// When the oldest item still waiting arrived (for linger).
    oldest: Option<Instant>,
    failing_since: Option<Instant>,
    stats: ItemStats,
}

impl Sink {
    fn new(client: Option<ItemSaverClient>, opts: SinkOptions) -> Sink {
        Sink {
            buffer: SpillQueue::new("items", opts.memory_items, Some(opts.spill_dir.clone())),
            opts,
            client,
            in_flight: None,
            in_flight_items: Shared::default(),
            not_before: Instant::now(),
            backoff: Duration::from_millis(100),
            oldest: None,
            failing_since: None,
            stats: ItemStats::default(),
        }
    }

    fn waiting(&self) -> usize {
        self.buffer.len()
    }

    fn push(&mut self, items: Vec<Item>) {
        if items.is_empty() {
            return;
        }
        self.oldest.get_or_insert_with(Instant::now);
        for item in items {
            self.buffer.push_back(item);
        }
    }

    fn batch_ready(&self, closing: bool) -> bool {
        let waiting = self.waiting();
        waiting > 0
            && (closing
                || waiting >= self.opts.batch_size
                || self.oldest.is_some_and(|t| t.elapsed() >= self.opts.linger))
    }

    fn start_save(&mut self) {
        // Refill memory from the spill file once memory has drained.
        self.buffer
            .refill(self.opts.batch_size, self.opts.memory_items / 2 + 1);
        // Up to `batch_size` items, and no more bytes than the itemsaver's
        // frame limit lets through (always at least one item).
        let mut n = 0;
        let mut bytes = 0;
        for item in self.buffer.in_memory().iter().take(self.opts.batch_size) {
            bytes += bincode::serialized_size(item).unwrap_or(0);
            if n > 0 && bytes > MAX_BATCH_BYTES {
                break;
            }
            n += 1;
        }
        let batch: Vec<Item> = self.buffer.drain_front(n).collect();
        self.oldest = if self.waiting() > 0 {
            Some(Instant::now())
        } else {
            None
        };
        let batch = Shared::new(batch);
        self.in_flight_items = batch.share();
        let client = self.client.take();
        let opts = self.opts.clone();
        self.in_flight = Some(tokio::spawn(
            async move { save(client, &opts, batch).await },
        ));
    }

    fn finish_save(&mut self, (client, result): SaveOutcome) {
        self.client = client;
        // The save task is over and the call has let go of its handle, so
        // this takes the batch back without copying it.
        let batch = std::mem::take(&mut self.in_flight_items).into_inner();
        let answered = match &result {
            Ok(_) | Err(SaveFailure::Rejected(_)) => true,
            Err(SaveFailure::TooLarge(_)) => batch.len() <= 1,
            Err(SaveFailure::Transient(_)) => false,
        };
        if let (true, Some(acked)) = (answered, &self.opts.acked) {
            // The crawl's end of the channel lives as long as the crawl.
            let _ = acked.send(Ack::Items(batch.iter().map(Item::key).collect()));
        }
        match result {
            Ok(refused) => {
                let refused = self.record_refused(&batch, &refused);
                let saved = (batch.len() - refused) as u64;
                self.stats.saved += saved;
                self.stats.rejected += refused as u64;
                self.opts.saved.add(saved);
                self.backoff = Duration::from_millis(100);
                if let Some(since) = self.failing_since.take() {
                    self.stats.waited += since.elapsed();
                    tracing::info!(waited = ?since.elapsed(), "itemsaver answering again");
                }
            }
            Err(SaveFailure::Rejected(reason)) => self.reject_batch(&batch, &reason),
            Err(SaveFailure::TooLarge(_)) if batch.len() <= 1 => {
                // Cannot happen with our itemsaver (one item is never too
                // many); count it as refused rather than retry forever.
                self.reject_batch(&batch, "itemsaver refused a batch of one item as too large");
            }
            Err(SaveFailure::TooLarge(max_items)) => {
                // At most what it asked for, and always fewer than this
                // batch, so the batch size cannot get stuck.
                let smaller = (max_items as usize)
                    .min(batch.len().saturating_sub(1))
                    .max(1);
                tracing::warn!(
                    from = self.opts.batch_size,
                    to = smaller,
                    "itemsaver takes smaller batches; item_batch_size lowered for this crawl"
                );
                self.opts.batch_size = smaller;
                self.stats.save_retries += 1;
                self.put_back(batch);
            }
            Err(SaveFailure::Transient(reason)) => {
                if self.failing_since.is_none() {
                    self.failing_since = Some(Instant::now());
                }
                tracing::warn!(
                    items = batch.len(),
                    waiting = self.waiting() + batch.len(),
                    %reason,
                    retry_in = ?self.backoff,
                    "items not saved yet; retrying"
                );
                self.stats.save_retries += 1;
                self.put_back(batch);
                self.not_before = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(Duration::from_secs(5));
            }
        }
    }

    /// A batch to send again: back to the front, so order is kept and
    /// nothing is lost.
    fn put_back(&mut self, batch: Vec<Item>) {
        for item in batch.into_iter().rev() {
            self.buffer.push_front(item);
        }
        self.oldest.get_or_insert_with(Instant::now);
    }

    /// The itemsaver refused the whole batch for good: every item goes to
    /// the failures file and is counted as rejected.
    fn reject_batch(&mut self, batch: &[Item], reason: &str) {
        tracing::error!(items = batch.len(), %reason, "itemsaver rejected a batch; its items go to the failures file");
        for item in batch {
            self.opts.failures.item(item, reason);
        }
        self.stats.rejected += batch.len() as u64;
    }

    /// Writes the items of `batch` named in `refused` to the failures file
    /// and returns how many there were (every copy of a refused key).
    fn record_refused(&self, batch: &[Item], refused: &[Refusal]) -> usize {
        if refused.is_empty() {
            return 0;
        }
        let mut count = 0;
        for item in batch {
            let key = item.key();
            if let Some(refusal) = refused.iter().find(|r| r.key == key) {
                self.opts.failures.item(item, &refusal.reason);
                count += 1;
            }
        }
        tracing::error!(
            items = count,
            first = %refused[0].key,
            reason = %refused[0].reason,
            "itemsaver refused items; they are in the failures file"
        );
        count
    }

    fn unacked(&mut self) -> Vec<Item> {
        let mut all = Vec::clone(&self.in_flight_items);
        all.extend(self.buffer.snapshot());
        all
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) -> Finished {
        let mut closing_since: Option<Instant> = None;
        loop {
            let closing = closing_since.is_some();
            if self.in_flight.is_none()
                && Instant::now() >= self.not_before
                && self.batch_ready(closing)
            {
                self.start_save();
            }
            if closing && self.in_flight.is_none() && self.waiting() == 0 {
                break;
            }
            if let Some(since) = closing_since {
                if self.in_flight.is_none() && since.elapsed() >= self.opts.finish_timeout {
                    tracing::error!(
                        items = self.waiting(),
                        "itemsaver still unreachable; handing unsaved items back"
                    );
                    break;
                }
            }
            // Wake for the next linger deadline or the end of a backoff.
            let wake = match self.oldest {
                Some(t) => (t + self.opts.linger).max(self.not_before),
                None => Instant::now() + Duration::from_secs(3600),
            };
            tokio::select! {
                msg = rx.recv(), if !closing => match msg {
                    Some(Msg::Items(items)) => self.push(items),
                    Some(Msg::Unacked(reply)) => {
                        let _ = reply.send(self.unacked());
                    }
                    None => closing_since = Some(Instant::now()),
                },
                outcome = async { self.in_flight.as_mut().expect("guarded").await }, if self.in_flight.is_some() => {
                    self.in_flight = None;
                    match outcome {
                        Ok(outcome) => self.finish_save(outcome),
                        Err(e) => {
                            // The save task panicked; treat as a failed try.
                            tracing::error!(error = %e, "save task failed");
                            self.finish_save((None, Err(SaveFailure::Transient(e.to_string()))));
                        }
                    }
                }
                _ = tokio::time::sleep_until(wake), if self.in_flight.is_none() => {}
            }
        }
        if let Some(since) = self.failing_since {
            self.stats.waited += since.elapsed();
        }
        let unsaved = self.unacked();
        // Dropping the buffer removes its spill file.
        drop(self.buffer);
        Finished {
            stats: self.stats,
            unsaved,
        }
    }
}

/// One save try, connecting first if needed. Returns the client (or `None`
/// if the connection is broken) and the result.
async fn save(
    client: Option<ItemSaverClient>,
    opts: &SinkOptions,
    batch: Shared<Vec<Item>>,
) -> SaveOutcome {
    let client = match client {
        Some(c) => c,
        None => match connect_itemsaver(&opts.addr, opts.connect).await {
            Ok(c) => c,
            Err(e) => {
                return (
                    None,
                    Err(SaveFailure::Transient(format!(
                        "connect {}: {e}",
                        opts.addr
                    ))),
                )
            }
        },
    };
    match client.save(deadline_in(opts.rpc_timeout), batch).await {
        Ok(Ok(ack)) => (Some(client), Ok(ack.refused)),
        Ok(Err(SaveError::Rejected(reason))) => (Some(client), Err(SaveFailure::Rejected(reason))),
        Ok(Err(SaveError::BatchTooLarge { max_items })) => {
            (Some(client), Err(SaveFailure::TooLarge(max_items)))
        }
        Ok(Err(e)) => (Some(client), Err(SaveFailure::Transient(e.to_string()))),
        // A deadline may just mean a slow commit; anything else means the
        // connection is gone. Reconnect in both cases: cheap and safe.
        Err(e) => (None, Err(SaveFailure::Transient(format!("rpc: {e}")))),
    }
}

#[cfg(test)]
mod tests;
