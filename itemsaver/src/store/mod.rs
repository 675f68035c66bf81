//! Step 7: where items end up. [`ItemStore`] is the whole interface the
//! service needs; the embedded tantivy index ([`embedded`]) and
//! Elasticsearch ([`elastic`]) both sit behind the same
//! `Arc<dyn ItemStore>`, and both read queries through [`query`].

use std::path::PathBuf;

use async_trait::async_trait;
use rpcsupport::{Item, SaveAck, SaveError, SearchRequest, SearchResponse};
use thiserror::Error;

pub mod elastic;
pub mod embedded;
pub mod query;

/// Largest `from + size` a search may ask for. Deep pages cost memory in
/// proportion to `from + size` (every skipped hit is still ranked), so a
/// client cannot make the store rank millions of hits; Elasticsearch has
/// the same limit, under the name `max_result_window`.
pub const MAX_RESULT_WINDOW: u64 = 10_000;

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
