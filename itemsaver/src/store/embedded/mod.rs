//! The default store: a tantivy index in a local directory.
//!
//! Each item is one document:
//!
//! | field     | options                | why                                          |
//! |-----------|------------------------|----------------------------------------------|
//! | `id`      | STRING, STORED         | the upsert key ([`Item::key`]), exact match  |
//! | `url`     | STRING, STORED         | exact match, e.g. `url:"http://…"`           |
//! | `kind`    | STRING, STORED         | exact match, e.g. `kind:profile`             |
//! | `payload` | JSON: TEXT, FAST       | `age:31`, `age:[20 TO 30]`, `city:shanghai`  |
//! | `all`     | TEXT                   | the payload's strings, for free text         |
//! | `item`    | STORED                 | the whole item as JSON, returned by reads    |
//!
//! Reads return the `item` field rather than rebuilding the item from the
//! indexed ones: tantivy turns date-like strings into dates and may widen
//! numbers, while `Item::to_json` / `Item::from_json` round-trip exactly
//! (integers stay `Int`, floats stay `Float`). So `payload` is not stored
//! a second time.
//!
//! Writes go through one `IndexWriter` behind a mutex and are group
//! committed: batches that arrive while a commit is running are queued and
//! all written by the next commit, so many small concurrent batches cost one
//! fsync instead of one each. Deletes take the same queue and the same
//! commit, so a delete is durable when answered and keeps its place among
//! the saves of its key.
//!
//! Scans (for export) hold the searcher of their first page, a snapshot
//! that later commits and merges do not change, so a cursor is simply
//! "segment, document" within it: each page seeks straight there, however
//! deep into the store it is, and no item is seen twice or skipped.
//!
//! - this file: [`open`], the schema, and [`ItemStore`] on top of the parts
//!   below, each of which runs on a blocking thread.
//! - `write.rs`: the queue of saves and deletes and the group commit.
//! - `read.rs`: `get`, `search` and `search_sorted`.
//! - `scan.rs`: the open scans and their cursors.
//! - `sorted.rs`: the collector that ranks hits by a payload number.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use rpcsupport::{Item, SaveAck, ScanPage, ScanRequest, SearchRequest, SearchResponse};
use tantivy::directory::MmapDirectory;
use tantivy::query::QueryParser;
use tantivy::schema::{Field, Schema, FAST, STORED, STRING, TEXT};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyError};
use tokio::sync::oneshot;

mod read;
mod scan;
mod sorted;
mod write;

use scan::Scans;
use write::{committed_answer, PendingWrite};

use super::{ItemStore, Sort, StoreError};

/// Memory the writer may use before it flushes a segment. Items are small
/// and every batch is committed at once, so buffers rarely fill; this only
/// bounds the worst case (a 10 000-item batch of large items).
const WRITER_MEMORY_BYTES: usize = 20_000_000;

/// One indexing thread. Batches are committed as they come, so a second
/// thread never gets a full arena of work, yet each thread's arena is
/// zeroed at every commit: profiling showed that memset alone cost 12% of
/// the itemsaver's CPU with tantivy's default of one thread per core.
const WRITER_THREADS: usize = 1;

/// Opens the index in `dir`, creating the directory and an empty index if
/// needed. Fails with [`StoreError::Locked`] if another writer has it open.
pub fn open(dir: &Path) -> Result<EmbeddedStore, StoreError> {
    let open_error = |reason: String| StoreError::Open {
        path: dir.to_owned(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|e| open_error(e.to_string()))?;
    let directory = MmapDirectory::open(dir).map_err(|e| open_error(e.to_string()))?;
    let (schema, fields) = schema();
    // Fails if the directory holds an index with a different schema.
    let index = Index::open_or_create(directory, schema).map_err(|e| open_error(e.to_string()))?;
    let writer: IndexWriter = index
        .writer_with_num_threads(WRITER_THREADS, WRITER_MEMORY_BYTES)
        .map_err(|e| match e {
            TantivyError::LockFailure(..) => StoreError::Locked {
                path: dir.to_owned(),
            },
            other => open_error(other.to_string()),
        })?;
    // Reloaded by hand after each commit, so a save is visible to reads as
    // soon as it is acknowledged (the default policy lags behind).
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
        .map_err(|e| open_error(e.to_string()))?;
    let mut parser = QueryParser::for_index(&index, vec![fields.all, fields.kind, fields.url]);
    // `red car` means both words, as in most search boxes.
    parser.set_conjunction_by_default();
    Ok(EmbeddedStore {
        inner: Arc::new(Inner {
            dir: dir.to_owned(),
            fields,
            reader,
            parser,
            writer: Mutex::new(writer),
            pending: Mutex::new(Vec::new()),
            scans: Mutex::new(Scans::default()),
        }),
    })
}

/// A tantivy index in a directory. Cheap to clone; clones share the index.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// The directory holding the index.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }
}

struct Inner {
    dir: PathBuf,
    fields: Fields,
    reader: IndexReader,
    parser: QueryParser,
    /// The only writer; tantivy allows one per index. Locked only on
    /// blocking threads, for the length of one group commit.
    writer: Mutex<IndexWriter>,
    /// Writes waiting for the next commit, in arrival order. Whoever holds
    /// `writer` next takes all of them.
    pending: Mutex<Vec<PendingWrite>>,
    /// Scans between pages.
    scans: Mutex<Scans>,
}

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    url: Field,
    kind: Field,
    payload: Field,
    all: Field,
    item: Field,
}

/// The schema in the module docs. Changing it makes existing data
/// directories fail to open (tantivy compares schemas), so do it with a
/// migration, not casually.
fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let fields = Fields {
        id: builder.add_text_field("id", STRING | STORED),
        url: builder.add_text_field("url", STRING | STORED),
        kind: builder.add_text_field("kind", STRING | STORED),
        // FAST because tantivy range queries on JSON fields need it.
        payload: builder.add_json_field("payload", TEXT | FAST),
        all: builder.add_text_field("all", TEXT),
        item: builder.add_text_field("item", STORED),
    };
    (builder.build(), fields)
}

#[async_trait]
impl ItemStore for EmbeddedStore {
    /// The index takes any item, so none is ever refused.
    async fn put_batch(&self, items: Vec<Item>) -> Result<SaveAck, StoreError> {
        if items.is_empty() {
            return Ok(SaveAck::all(0));
        }
        let accepted = u32::try_from(items.len()).unwrap_or(u32::MAX);
        let (done, committed) = oneshot::channel();
        self.inner.queue(PendingWrite::Save { items, done });
        committed_answer(committed)
            .await
            .map(|()| SaveAck::all(accepted))
    }

    /// Checks each key against the index as it stands before the delete
    /// (its committed state plus the writes queued ahead in the same
    /// commit), so the count is exact.
    async fn delete(&self, keys: &[String]) -> Result<u64, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let (done, committed) = oneshot::channel();
        self.inner.queue(PendingWrite::Delete {
            keys: keys.to_vec(),
            done,
        });
        committed_answer(committed).await
    }

    async fn get(&self, id: &str) -> Result<Option<Item>, StoreError> {
        let inner = self.inner.clone();
        let id = id.to_owned();
        blocking(move || inner.get(&id)).await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        // Reads segment metadata only; no need for a blocking thread.
        Ok(self.inner.reader.searcher().num_docs())
    }

    async fn search(&self, request: &SearchRequest) -> Result<SearchResponse, StoreError> {
        let inner = self.inner.clone();
        let request = request.clone();
        blocking(move || inner.search(&request)).await
    }

    async fn search_sorted(
        &self,
        request: &SearchRequest,
        sort: &Sort,
    ) -> Result<SearchResponse, StoreError> {
        let inner = self.inner.clone();
        let (request, sort) = (request.clone(), sort.clone());
        blocking(move || inner.search_sorted(&request, &sort)).await
    }

    async fn scan(&self, request: &ScanRequest) -> Result<ScanPage, StoreError> {
        let inner = self.inner.clone();
        let request = request.clone();
        blocking(move || inner.scan(&request)).await
    }
}

/// A tantivy error while running a query.
fn run_error(e: TantivyError) -> StoreError {
    match e {
        // Raised while building the query's weight, e.g. a range over a
        // field that cannot be ranged: still the query's fault.
        TantivyError::InvalidArgument(message) => StoreError::BadQuery(message),
        other => StoreError::Index(other),
    }
}

/// Runs blocking index work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

/// Locks a mutex whose data stays consistent even if a holder panicked
/// (the pending queue is only ever pushed to or taken whole).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests;
