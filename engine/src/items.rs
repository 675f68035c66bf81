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
use std::sync::Arc;
use std::time::Duration;

use rpcsupport::{
    connect_itemsaver, ConnectOptions, HostAddr, Item, ItemSaverClient, Refusal, SaveError,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::failures::FailureLog;
use crate::pool::deadline_in;
use crate::spill::SpillQueue;

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
    in_flight_items: Arc<Vec<Item>>,
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
            in_flight_items: Arc::default(),
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
        let batch = Arc::new(batch);
        self.in_flight_items = batch.clone();
        let client = self.client.take();
        let opts = self.opts.clone();
        self.in_flight = Some(tokio::spawn(
            async move { save(client, &opts, &batch).await },
        ));
    }

    fn finish_save(&mut self, (client, result): SaveOutcome) {
        self.client = client;
        // The save task is over and has let go of its reference, so this
        // takes the batch back without copying it.
        let batch = Arc::try_unwrap(std::mem::take(&mut self.in_flight_items))
            .unwrap_or_else(|shared| shared.as_ref().clone());
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
        let mut all = self.in_flight_items.as_ref().clone();
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
async fn save(client: Option<ItemSaverClient>, opts: &SinkOptions, batch: &[Item]) -> SaveOutcome {
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
    match client
        .save(deadline_in(opts.rpc_timeout), batch.to_vec())
        .await
    {
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
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn item(i: u64) -> Item {
        Item {
            url: format!("http://h/{i}"),
            kind: "t".into(),
            id: Some(i.to_string()),
            payload: BTreeMap::from([("n".to_string(), rpcsupport::Value::Int(i as i64))]),
        }
    }

    /// With no itemsaver at all, items are neither lost nor counted saved:
    /// they come back from `finish` after the timeout, spill included.
    #[tokio::test]
    async fn unreachable_itemsaver_hands_items_back() {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let opts = SinkOptions {
            addr: format!(":{port}").parse().unwrap(),
            connect: ConnectOptions::default(),
            batch_size: 3,
            linger: Duration::from_millis(10),
            rpc_timeout: Duration::from_secs(1),
            memory_items: 4,
            spill_dir: dir.path().to_owned(),
            finish_timeout: Duration::from_millis(300),
            saved: Default::default(),
            failures: FailureLog::new(None),
        };
        let sink = ItemSink::spawn(None, opts, vec![item(0)]);
        sink.send((1..10).map(item).collect());
        assert_eq!(sink.unacked().await.len(), 10);
        let finished = sink.finish().await;
        assert_eq!(finished.stats.saved, 0);
        let mut ids: Vec<u64> = finished
            .unsaved
            .iter()
            .map(|i| i.id.as_ref().unwrap().parse().unwrap())
            .collect();
        ids.sort();
        assert_eq!(ids, (0..10).collect::<Vec<_>>());
        assert!(finished.stats.save_retries > 0);
    }

    /// An itemsaver with `config` on 127.0.0.1:0 over an embedded store in
    /// `dir`: its address, the store, and the sender that stops it.
    async fn start_itemsaver(
        dir: &std::path::Path,
        config: itemsaver::ItemsaverConfig,
    ) -> (
        HostAddr,
        std::sync::Arc<itemsaver::EmbeddedStore>,
        oneshot::Sender<()>,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string().parse().unwrap();
        let store = std::sync::Arc::new(itemsaver::open_embedded(&dir.join("store")).unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn({
            let store = store.clone();
            async move {
                itemsaver::serve(listener, store, &config, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap()
            }
        });
        (addr, store, stop)
    }

    fn options(addr: HostAddr, dir: &std::path::Path, batch_size: usize) -> SinkOptions {
        SinkOptions {
            addr,
            connect: ConnectOptions::default(),
            batch_size,
            linger: Duration::from_millis(10),
            rpc_timeout: Duration::from_secs(5),
            memory_items: 100,
            spill_dir: dir.to_owned(),
            finish_timeout: Duration::from_secs(5),
            saved: Default::default(),
            failures: FailureLog::new(Some(dir.join("failures.jsonl"))),
        }
    }

    /// Items the itemsaver refuses (here: over its `max_item_bytes`) are
    /// counted as rejected and written to the failures file; the rest of
    /// their batches is saved, and nothing is sent twice.
    #[tokio::test]
    async fn refused_items_go_to_the_failures_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = itemsaver::ItemsaverConfig {
            max_item_bytes: 500,
            ..itemsaver::ItemsaverConfig::default()
        };
        let (addr, store, _stop) = start_itemsaver(dir.path(), config).await;
        // Every third item is too big for the itemsaver.
        let items: Vec<Item> = (0..10)
            .map(|i| {
                let mut it = item(i);
                if i % 3 == 0 {
                    it.payload
                        .insert("bio".into(), rpcsupport::Value::from("x".repeat(1_000)));
                }
                it
            })
            .collect();
        let sink = ItemSink::spawn(None, options(addr, dir.path(), 4), Vec::new());
        sink.send(items);
        let finished = sink.finish().await;
        assert_eq!(finished.stats.saved, 6, "{:?}", finished.stats);
        assert_eq!(finished.stats.rejected, 4, "{:?}", finished.stats);
        assert_eq!(finished.stats.save_retries, 0, "{:?}", finished.stats);
        assert!(finished.unsaved.is_empty());

        let text = std::fs::read_to_string(dir.path().join("failures.jsonl")).unwrap();
        let mut refused: Vec<String> = text
            .lines()
            .map(|line| {
                let record: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(record["kind"], crate::failures::ITEM_REFUSED, "{line}");
                let reason = record["reason"].as_str().unwrap();
                assert!(reason.contains("max_item_bytes"), "{line}");
                record["item"]["id"].as_str().unwrap().to_owned()
            })
            .collect();
        refused.sort();
        assert_eq!(refused, ["0", "3", "6", "9"]);

        use itemsaver::ItemStore as _;
        assert_eq!(store.count().await.unwrap(), 6);
        assert_eq!(store.get("3").await.unwrap(), None);
        assert_eq!(store.get("4").await.unwrap(), Some(item(4)));
    }

    /// An itemsaver that takes fewer items per batch than the engine sends
    /// gets smaller batches: everything is saved, nothing is refused.
    #[tokio::test]
    async fn batches_shrink_to_what_the_itemsaver_takes() {
        let dir = tempfile::tempdir().unwrap();
        let config = itemsaver::ItemsaverConfig {
            max_batch_items: 3,
            ..itemsaver::ItemsaverConfig::default()
        };
        let (addr, store, _stop) = start_itemsaver(dir.path(), config).await;
        let sink = ItemSink::spawn(None, options(addr, dir.path(), 10), Vec::new());
        sink.send((0..20).map(item).collect());
        let finished = sink.finish().await;
        assert_eq!(finished.stats.saved, 20, "{:?}", finished.stats);
        assert_eq!(finished.stats.rejected, 0, "{:?}", finished.stats);
        assert!(finished.stats.save_retries >= 1, "{:?}", finished.stats);
        assert!(finished.unsaved.is_empty());
        use itemsaver::ItemStore as _;
        assert_eq!(store.count().await.unwrap(), 20);
        assert!(!dir.path().join("failures.jsonl").exists());
    }

    /// Big items make smaller batches: a batch never carries more than
    /// `MAX_BATCH_BYTES` (unless one item alone does), and all arrive.
    #[tokio::test]
    async fn big_items_make_smaller_batches() {
        let dir = tempfile::tempdir().unwrap();
        let config = itemsaver::ItemsaverConfig {
            max_item_bytes: 4 << 20,
            ..itemsaver::ItemsaverConfig::default()
        };
        let (addr, store, _stop) = start_itemsaver(dir.path(), config).await;
        // 3 MiB each: at most two per batch.
        let big = |i: u64| {
            let mut it = item(i);
            it.payload
                .insert("blob".into(), rpcsupport::Value::from("x".repeat(3 << 20)));
            it
        };
        let mut sink = Sink::new(None, options(addr, dir.path(), 100));
        sink.push((0..5).map(big).collect());
        sink.start_save();
        assert_eq!(sink.in_flight_items.len(), 2);
        let (tx, rx) = mpsc::unbounded_channel();
        drop(tx);
        let finished = sink.run(rx).await;
        assert_eq!(finished.stats.saved, 5, "{:?}", finished.stats);
        assert_eq!(finished.stats.save_retries, 0, "{:?}", finished.stats);
        use itemsaver::ItemStore as _;
        assert_eq!(store.count().await.unwrap(), 5);
    }
}
