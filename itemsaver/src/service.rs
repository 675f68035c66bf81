//! Step 6: the RPC face. Checks each batch against the configured limits,
//! then hands it to the store; store errors become [`SaveError`]s.

use std::sync::Arc;

use rpcsupport::metrics::{Counter, Histogram, Registry};
use rpcsupport::{Item, ItemSaver, SaveAck, SaveError, SearchRequest, SearchResponse};
use tarpc::context::Context;

use crate::store::ItemStore;

/// Limits a batch must meet before it reaches the store.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most items in one `save`.
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

    /// Rejects the whole batch if it or any item breaks a limit: storing
    /// part of it would acknowledge nothing and lose nothing, but the
    /// engine would resend the same bad batch forever, so say so plainly.
    fn check(&self, items: &[Item]) -> Result<(), SaveError> {
        if items.len() > self.limits.max_batch_items {
            return Err(SaveError::Rejected(format!(
                "batch of {} items, at most {} allowed (max_batch_items)",
                items.len(),
                self.limits.max_batch_items
            )));
        }
        for (position, item) in items.iter().enumerate() {
            let key = item.key();
            if key.is_empty() {
                return Err(SaveError::Rejected(format!(
                    "item {position} ({}) has an empty id",
                    item.url
                )));
            }
            let bytes = item.to_json().to_string().len();
            if bytes > self.limits.max_item_bytes {
                return Err(SaveError::Rejected(format!(
                    "item {position} ({key}) is {bytes} bytes of JSON, at most {} allowed (max_item_bytes)",
                    self.limits.max_item_bytes
                )));
            }
        }
        Ok(())
    }
}

impl ItemSaver for ItemSaverService {
    async fn save(self, _: Context, items: Vec<Item>) -> Result<SaveAck, SaveError> {
        if let Err(e) = self.check(&items) {
            self.count_error(&e);
            return Err(e);
        }
        let count = items.len();
        let started = std::time::Instant::now();
        match self.store.put_batch(items).await {
            Ok(stored) => {
                tracing::debug!(items = count, "batch stored");
                self.latency.observe(started.elapsed());
                self.saved.add(count as u64);
                self.batches.inc();
                Ok(SaveAck { stored })
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
}
