//! Step 7: where items end up. [`ItemStore`] is the whole interface the
//! service needs; the embedded tantivy index ([`embedded`]) and
//! Elasticsearch ([`elastic`]) both sit behind the same
//! `Arc<dyn ItemStore>`, both read queries through [`query`], and both
//! keep an item as `document.rs` lays it out.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::path::PathBuf;

use async_trait::async_trait;
use rpcsupport::{Item, SaveAck, SaveError, ScanPage, ScanRequest, SearchRequest, SearchResponse};
use thiserror::Error;

mod document;
pub mod elastic;
pub mod embedded;
pub mod query;

/// Largest `from + size` a search may ask for. Deep pages cost memory in
/// proportion to `from + size` (every skipped hit is still ranked), so a
/// client cannot make the store rank millions of hits; Elasticsearch has
/// the same limit, under the name `max_result_window`.
pub const MAX_RESULT_WINDOW: u64 = 10_000;

/// `from + size` of `request`, or the `BadQuery` a window past
/// [`MAX_RESULT_WINDOW`] is.
pub(crate) fn check_window(request: &SearchRequest) -> Result<u64, StoreError> {
    let window = u64::from(request.from) + u64::from(request.size);
    if window > MAX_RESULT_WINDOW {
        return Err(StoreError::BadQuery(format!(
            "from + size is {window}, at most {MAX_RESULT_WINDOW} allowed"
        )));
    }
    Ok(window)
}

/// Most items one scan page carries, whatever the client asks: a page is
/// held whole in memory on both sides.
pub const MAX_SCAN_ITEMS: u32 = 10_000;

/// A scan page stops growing once its items' JSON reaches this many bytes
/// (it always carries at least one item), so a page of large items stays
/// well inside the default 64 MiB `max_frame_bytes` and memory stays flat
/// whatever the items' size. Default 8 MiB.
pub const SCAN_PAGE_BYTES: usize = 8 * 1024 * 1024;

/// How long a store keeps a scan's snapshot open after a page (its
/// Elasticsearch point in time, or the embedded store's searcher). An
/// export that stalls longer finds its cursor refused. Default 5 minutes.
pub const SCAN_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(300);

/// How a sorted search orders its hits: by a numeric payload key, items
/// without it last, ties by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    /// The payload key, e.g. `age`.
    pub field: String,
    /// Largest first.
    pub descending: bool,
}

/// Durable storage of items, keyed by [`Item::key`].
///
/// Implementations are shared between connections, hence `Send + Sync`,
/// and are used as `Arc<dyn ItemStore>`.
#[async_trait]
pub trait ItemStore: Send + Sync + 'static {
    /// Upserts `items` by [`Item::key`]; within a batch the last item with a
    /// key wins. Answers only once every item it counts as stored is
    /// durable (an acknowledged batch survives a crash); items the store
    /// turns down for good are named in [`SaveAck::refused`] and the rest
    /// are still stored. An error means nothing can be counted on.
    async fn put_batch(&self, items: Vec<Item>) -> Result<SaveAck, StoreError>;

    /// The item stored under `id`, exactly as it was saved.
    async fn get(&self, id: &str) -> Result<Option<Item>, StoreError>;

    /// How many items are stored.
    async fn count(&self) -> Result<u64, StoreError>;

    /// The total number of hits for `request.query` and the page
    /// `from..from + size` of them, best first.
    async fn search(&self, request: &SearchRequest) -> Result<SearchResponse, StoreError>;

    /// Like [`ItemStore::search`], ordered by `sort` instead of relevance
    /// (the search page's `&sort=age`).
    async fn search_sorted(
        &self,
        request: &SearchRequest,
        sort: &Sort,
    ) -> Result<SearchResponse, StoreError>;

    /// One page of every item matching `request.query`, in a fixed order
    /// over a snapshot taken at the first page, continued by cursor: memory
    /// per page is bounded ([`MAX_SCAN_ITEMS`], [`SCAN_PAGE_BYTES`]) and no
    /// page skips over earlier hits, so an export of millions stays flat.
    async fn scan(&self, request: &ScanRequest) -> Result<ScanPage, StoreError>;

    /// Removes the items stored under `keys` and answers how many of the
    /// keys were stored (a key given twice counts once). Keys not stored
    /// are no error. Like [`ItemStore::put_batch`], answers only once the
    /// removal is durable, and is ordered with the writes of this store:
    /// a save handed over before the delete is removed by it, one handed
    /// over after it is kept. Afterwards `get`, `count`, `search` and new
    /// scans no longer see the items (a scan already open keeps its
    /// snapshot).
    async fn delete(&self, keys: &[String]) -> Result<u64, StoreError>;
}

/// One item per key, the last one, keyed, in first-seen order: the "last
/// item with a key wins" rule of [`ItemStore::put_batch`], for owned items
/// or references. Writing each key once also saves a store from writing
/// versions it would overwrite at once, and a retry from resending an
/// older version after a newer one.
pub(crate) fn latest_per_key<T: Borrow<Item>>(
    items: impl IntoIterator<Item = T>,
) -> Vec<(String, T)> {
    let mut latest: Vec<(String, T)> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    for item in items {
        let key = item.borrow().key();
        match position.get(&key) {
            Some(&at) => latest[at].1 = item,
            None => {
                position.insert(key.clone(), latest.len());
                latest.push((key, item));
            }
        }
    }
    latest
}

/// Why a store operation failed.
///
/// `Clone` because one failed commit answers every batch that was waiting
/// on it.
#[derive(Debug, Clone, Error)]
pub enum StoreError {
    /// Another process (or another store in this one) has the index open
    /// for writing.
    #[error("store at {path} is locked by another writer (is another itemsaver running on it?)")]
    Locked {
        /// The data directory.
        path: PathBuf,
    },
    /// The data directory cannot be created or is not a usable index.
    #[error("cannot open store at {path}: {reason}")]
    Open {
        /// The data directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The index failed while reading or writing.
    #[error("index error: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// The search query cannot be parsed or run.
    #[error("{0}")]
    BadQuery(String),
    /// A stored item cannot be decoded; the index was written by something
    /// else or is damaged.
    #[error("stored item {id:?} is unreadable: {reason}")]
    Corrupt {
        /// The item's key.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The background task doing the work panicked or was cancelled.
    #[error("store task failed: {0}")]
    Task(String),
    /// Elasticsearch could not be reached or failed the request as a whole
    /// (after retries, for writes); trying again later may succeed.
    #[error("elasticsearch: {0}")]
    Cluster(String),
    /// The batch is larger than the store accepts in one request; smaller
    /// batches, of at most `max_items`, may pass.
    #[error("batch too large for the store; at most {max_items} items per batch")]
    BatchTooLarge {
        /// A batch size worth trying.
        max_items: u32,
    },
    /// The store refused the batch as a whole, for good (e.g. a single item
    /// larger than the cluster accepts in one request).
    #[error("{0}")]
    Rejected(String),
}

impl From<StoreError> for SaveError {
    /// A bad query or a rejected item is the caller's fault and stays one;
    /// anything else may pass (disk full, lock released, cluster back), so
    /// the engine should retry.
    fn from(e: StoreError) -> SaveError {
        match e {
            StoreError::BadQuery(message) => SaveError::BadQuery(message),
            StoreError::Rejected(message) => SaveError::Rejected(message),
            StoreError::BatchTooLarge { max_items } => SaveError::BatchTooLarge { max_items },
            other => SaveError::Store(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpcsupport::Value;

    /// The last item per key wins, in first-seen order.
    #[test]
    fn latest_per_key_keeps_last() {
        let item = |id: &str, v: i64| Item {
            url: "u".into(),
            kind: "k".into(),
            id: Some(id.into()),
            payload: [("v".to_string(), Value::Int(v))].into(),
        };
        let kept = latest_per_key(vec![item("a", 1), item("b", 2), item("a", 3)]);
        let kept: Vec<(String, i64)> = kept
            .into_iter()
            .map(|(k, i)| (k, i.payload["v"].as_i64().unwrap()))
            .collect();
        assert_eq!(kept, [("a".into(), 3), ("b".into(), 2)]);
    }
}
