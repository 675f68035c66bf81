//! Step 6: the RPC face. Checks each batch against the configured limits
//! (and items against the nesting both stores can read back,
//! `MAX_VALUE_DEPTH`), then hands it to the store; store errors become [`SaveError`]s, and items
//! refused (by a limit here or by the store) are named in the [`SaveAck`].
//! Deletes meet the same batch limit; an empty key in one is ignored, as no
//! item can be stored under it (`save` refuses it), so it is simply one of
//! the keys not stored, which `delete` does not count as an error.

use std::sync::Arc;

use rpcsupport::metrics::{Counter, Histogram, Registry};
use rpcsupport::types::MAX_VALUE_DEPTH;
use rpcsupport::{
    Item, ItemSaver, Refusal, SaveAck, SaveError, ScanPage, ScanRequest, SearchRequest,
    SearchResponse, Shared,
};
use tarpc::context::Context;

use crate::store::ItemStore;

/// Limits a batch must meet before it reaches the store.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most items in one `save`, and keys in one `delete`.
    pub max_batch_items: usize,
    /// Largest item, measured as its JSON text.
    pub max_item_bytes: usize,
}

/// Implements [`ItemSaver`] over any [`ItemStore`]. Cloned per request by
/// tarpc, so it holds only an `Arc`.
#[derive(Clone)]
pub struct ItemSaverService {
    store: Arc<dyn ItemStore>,
    limits: Limits,
    metrics: Arc<Registry>,
    saved: Counter,
    deleted: Counter,
    refused: Counter,
    batches: Counter,
    latency: Histogram,
}

impl ItemSaverService {
    /// A service storing into `store`, recording metrics into `metrics`.
    pub fn new(store: Arc<dyn ItemStore>, limits: Limits, metrics: Arc<Registry>) -> Self {
        ItemSaverService {
            store,
            limits,
            saved: metrics.counter(
                "itemsaver_items_saved_total",
                "Items stored (acknowledged).",
                &[],
            ),
            deleted: metrics.counter(
                "itemsaver_items_deleted_total",
                "Items deleted that were stored (acknowledged).",
                &[],
            ),
            refused: metrics.counter(
                "itemsaver_items_refused_total",
                "Items refused for good (a limit, or the store would not take them).",
                &[],
            ),
            batches: metrics.counter(
                "itemsaver_batches_total",
                "Batches stored (acknowledged).",
                &[],
            ),
            latency: metrics.histogram(
                "itemsaver_save_latency_seconds",
                "Time to store one batch durably.",
                &[],
            ),
            metrics,
        }
    }

    fn count_error(&self, e: &SaveError) {
        let kind = match e {
            SaveError::Store(_) => "store",
            SaveError::Rejected(_) => "rejected",
            SaveError::BatchTooLarge { .. } => "batch_too_large",
            SaveError::BadQuery(_) => "bad_query",
        };
        self.metrics
            .counter(
                "itemsaver_errors_total",
                "Failed calls, by kind.",
                &[("kind", kind)],
            )
            .inc();
    }

    /// The `BatchTooLarge` a call of `len` items or keys gets, if over the
    /// limit.
    fn check_batch(&self, len: usize) -> Result<(), SaveError> {
        if len > self.limits.max_batch_items {
            return Err(SaveError::BatchTooLarge {
                max_items: u32::try_from(self.limits.max_batch_items).unwrap_or(u32::MAX),
            });
        }
        Ok(())
    }

    /// Turns down a batch with too many items as a whole (the engine then
    /// sends smaller ones), and splits off the items that break a limit:
    /// they are refused by name and the rest of the batch is stored, so one
    /// bad item neither blocks its batch nor is resent forever.
    fn check(&self, items: Vec<Item>) -> Result<(Vec<Item>, Vec<Refusal>), SaveError> {
        self.check_batch(items.len())?;
        let mut refused = Vec::new();
        let mut kept = Vec::with_capacity(items.len());
        for item in items {
            let key = item.key();
            let reason = if key.is_empty() {
                format!("item at {} has an empty id", item.url)
            } else if item.deeper_than(MAX_VALUE_DEPTH) {
                // Both stores read items back through serde_json, whose
                // recursion limit a deeper item could break for every
                // search that touches it: refuse it now, by name.
                format!(
                    "item nests deeper than {MAX_VALUE_DEPTH} levels \
                     (rpcsupport::types::MAX_VALUE_DEPTH)"
                )
            } else if item.json_len() > self.limits.max_item_bytes {
                let bytes = item.json_len();
                format!(
                    "item is {bytes} bytes of JSON, at most {} allowed (max_item_bytes)",
                    self.limits.max_item_bytes
                )
            } else {
                kept.push(item);
                continue;
            };
            refused.push(Refusal { key, reason });
        }
        Ok((kept, refused))
    }
}

impl ItemSaver for ItemSaverService {
    async fn save(self, _: Context, items: Shared<Vec<Item>>) -> Result<SaveAck, SaveError> {
        let (items, mut refused) = match self.check(items.into_inner()) {
            Ok(split) => split,
            Err(e) => {
                self.count_error(&e);
                return Err(e);
            }
        };
        let count = items.len();
        let started = std::time::Instant::now();
        match self.store.put_batch(items).await {
            Ok(mut ack) => {
                tracing::debug!(items = count, "batch stored");
                self.latency.observe(started.elapsed());
                self.saved.add(u64::from(ack.stored));
                self.batches.inc();
                refused.append(&mut ack.refused);
                if !refused.is_empty() {
                    tracing::warn!(
                        refused = refused.len(),
                        first = %refused[0].key,
                        reason = %refused[0].reason,
                        "items refused"
                    );
                    self.refused.add(refused.len() as u64);
                }
                ack.refused = refused;
                Ok(ack)
            }
            Err(e) => {
                tracing::warn!(error = %e, items = count, "batch not stored");
                let e = SaveError::from(e);
                self.count_error(&e);
                Err(e)
            }
        }
    }

    async fn get(self, _: Context, id: String) -> Result<Option<Item>, SaveError> {
        Ok(self.store.get(&id).await?)
    }

    async fn count(self, _: Context) -> Result<u64, SaveError> {
        Ok(self.store.count().await?)
    }

    async fn search(self, _: Context, request: SearchRequest) -> Result<SearchResponse, SaveError> {
        Ok(self.store.search(&request).await?)
    }

    async fn scan(self, _: Context, request: ScanRequest) -> Result<ScanPage, SaveError> {
        Ok(self.store.scan(&request).await?)
    }

    async fn delete(self, _: Context, mut keys: Vec<String>) -> Result<u64, SaveError> {
        if let Err(e) = self.check_batch(keys.len()) {
            self.count_error(&e);
            return Err(e);
        }
        keys.retain(|key| !key.is_empty());
        let count = keys.len();
        match self.store.delete(&keys).await {
            Ok(deleted) => {
                tracing::debug!(keys = count, deleted, "delete stored");
                self.deleted.add(deleted);
                Ok(deleted)
            }
            Err(e) => {
                tracing::warn!(error = %e, keys = count, "delete not stored");
                let e = SaveError::from(e);
                self.count_error(&e);
                Err(e)
            }
        }
    }
}
