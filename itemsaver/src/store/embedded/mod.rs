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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use rpcsupport::{Item, SaveAck, ScanPage, ScanRequest, SearchRequest, SearchResponse};
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{Query, QueryParser, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, OwnedValue, Schema, Value as _, FAST, STORED, STRING, TEXT,
};
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument,
    TantivyError, Term,
};
use tokio::sync::oneshot;

mod scan;
mod sorted;

use scan::Scans;
use sorted::ByNumber;

use super::document::{collect_text, stored_json};
use super::{query, ItemStore, Sort, StoreError, MAX_RESULT_WINDOW};

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

/// One `put_batch` or `delete` waiting for its commit.
enum PendingWrite {
    Save {
        items: Vec<Item>,
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    Delete {
        keys: Vec<String>,
        /// Answered with how many of `keys` were stored.
        done: oneshot::Sender<Result<u64, StoreError>>,
    },
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

impl Inner {
    /// Queues `write` for the next group commit and starts a commit.
    /// Queued synchronously, before the caller's first await, so writes
    /// handed over one after another keep that order.
    fn queue(self: &Arc<Self>, write: PendingWrite) {
        lock(&self.pending).push(write);
        let inner = self.clone();
        // This task may find our write already taken by an earlier task's
        // group commit; it then has nothing to do. Either way, some task
        // that starts after our push commits our write.
        tokio::task::spawn_blocking(move || inner.commit_pending());
    }

    /// Writes and commits every pending write, then answers each.
    /// Takes the `Arc` so it can let go of it before answering: a caller
    /// told "stored" that drops its store then holds the last reference,
    /// and the index lock goes with it (so reopening the directory at once
    /// works).
    fn commit_pending(self: Arc<Self>) {
        let mut writer = match self.writer.lock() {
            Ok(writer) => writer,
            Err(poisoned) => {
                // A commit panicked halfway; drop whatever it had added so
                // it is not committed with the next group.
                self.writer.clear_poison();
                let mut writer = poisoned.into_inner();
                if let Err(e) = writer.rollback() {
                    tracing::error!(error = %e, "rollback after a panicked commit failed");
                }
                writer
            }
        };
        // Taken only now that we hold the writer, so batches that queued up
        // during the previous commit all go into this one.
        let group = std::mem::take(&mut *lock(&self.pending));
        if group.is_empty() {
            return;
        }
        let result = self.write_group(&mut writer, &group);
        if let Err(e) = &result {
            tracing::error!(error = %e, writes = group.len(), "commit failed");
            // Otherwise the failed group's documents would be committed
            // with the next one, after its callers were told it failed.
            if let Err(e) = writer.rollback() {
                tracing::error!(error = %e, "rollback after a failed commit failed");
            }
        }
        drop(writer);
        drop(self);
        // The caller may have gone away (client disconnected); the writes
        // are committed regardless, so a failed send is ignored.
        for (at, write) in group.into_iter().enumerate() {
            let answer = match &result {
                Ok(deleted) => Ok(deleted[at]),
                Err(e) => Err(e.clone()),
            };
            match write {
                PendingWrite::Save { done, .. } => {
                    let _ = done.send(answer.map(|_| ()));
                }
                PendingWrite::Delete { done, .. } => {
                    let _ = done.send(answer);
                }
            }
        }
    }

    /// Writes `group` in one commit and answers, per write, how many keys
    /// it deleted that were stored (0 for saves).
    fn write_group(
        &self,
        writer: &mut IndexWriter,
        group: &[PendingWrite],
    ) -> Result<Vec<u64>, StoreError> {
        // Each key's state at the end of the group, in first-seen order:
        // the item to write, or `None` for deleted. Writes are queued in
        // arrival order, so the last save or delete of a key wins, and
        // each key is written once.
        let mut last: Vec<(String, Option<&Item>)> = Vec::new();
        let mut position: HashMap<String, usize> = HashMap::new();
        // Taken while we hold the writer, so it shows every commit so far.
        let searcher = self.reader.searcher();
        let mut deleted = Vec::with_capacity(group.len());
        for write in group {
            match write {
                PendingWrite::Save { items, .. } => {
                    for item in items {
                        set_state(&mut last, &mut position, item.key(), Some(item));
                    }
                    deleted.push(0);
                }
                PendingWrite::Delete { keys, .. } => {
                    let mut stored = 0;
                    for key in keys {
                        let was_stored = match position.get(key.as_str()) {
                            Some(&at) => last[at].1.is_some(),
                            None => self.is_stored(&searcher, key)?,
                        };
                        if was_stored {
                            stored += 1;
                        }
                        set_state(&mut last, &mut position, key.clone(), None);
                    }
                    deleted.push(stored);
                }
            }
        }
        for (key, item) in last {
            // A delete only affects documents added before it, so the new
            // version added right after survives.
            writer.delete_term(Term::from_field_text(self.fields.id, &key));
            if let Some(item) = item {
                writer.add_document(self.document(&key, item))?;
            }
        }
        // Returns once segment files and meta.json are fsynced.
        writer.commit()?;
        self.reader.reload()?;
        Ok(deleted)
    }

    /// Whether a live document has the id `key` in `searcher`'s snapshot.
    fn is_stored(&self, searcher: &Searcher, key: &str) -> Result<bool, StoreError> {
        let query = TermQuery::new(
            Term::from_field_text(self.fields.id, key),
            IndexRecordOption::Basic,
        );
        Ok(searcher.search(&query, &Count)? > 0)
    }

    fn document(&self, key: &str, item: &Item) -> TantivyDocument {
        let f = &self.fields;
        let mut doc = TantivyDocument::new();
        doc.add_text(f.id, key);
        doc.add_text(f.url, &item.url);
        doc.add_text(f.kind, &item.kind);
        let payload = OwnedValue::from(item.payload_json());
        doc.add_field_value(f.payload, &payload);
        let mut text = String::new();
        for value in item.payload.values() {
            collect_text(value, &mut text);
        }
        doc.add_text(f.all, &text);
        doc.add_text(f.item, stored_json(item));
        doc
    }

    fn get(&self, id: &str) -> Result<Option<Item>, StoreError> {
        let searcher = self.reader.searcher();
        let query = TermQuery::new(
            Term::from_field_text(self.fields.id, id),
            IndexRecordOption::Basic,
        );
        // Upserts keep at most one live document per id.
        let hits = searcher.search(&query, &TopDocs::with_limit(1).order_by_score())?;
        match hits.first() {
            Some(&(_, address)) => self.load(&searcher, address).map(Some),
            None => Ok(None),
        }
    }

    fn search(&self, request: &SearchRequest) -> Result<SearchResponse, StoreError> {
        let window = u64::from(request.from) + u64::from(request.size);
        if window > MAX_RESULT_WINDOW {
            return Err(StoreError::BadQuery(format!(
                "from + size is {window}, at most {MAX_RESULT_WINDOW} allowed"
            )));
        }
        let query = self.parse_query(&request.query)?;
        let searcher = self.reader.searcher();
        let (total, hits) = if request.size == 0 {
            // TopDocs cannot collect zero hits; the caller only wants a count.
            let total = searcher.search(&query, &Count).map_err(run_error)?;
            (total, Vec::new())
        } else {
            let top = TopDocs::with_limit(request.size as usize)
                .and_offset(request.from as usize)
                .order_by_score();
            searcher.search(&query, &(Count, top)).map_err(run_error)?
        };
        let items = hits
            .into_iter()
            .map(|(_, address)| self.load(&searcher, address))
            .collect::<Result<_, _>>()?;
        Ok(SearchResponse {
            total: total as u64,
            items,
        })
    }

    /// [`ItemStore::search_sorted`]: as [`Inner::search`], ranked by a
    /// payload number ([`ByNumber`]) instead of the score.
    fn search_sorted(
        &self,
        request: &SearchRequest,
        sort: &Sort,
    ) -> Result<SearchResponse, StoreError> {
        let window = u64::from(request.from) + u64::from(request.size);
        if window > MAX_RESULT_WINDOW {
            return Err(StoreError::BadQuery(format!(
                "from + size is {window}, at most {MAX_RESULT_WINDOW} allowed"
            )));
        }
        let query = self.parse_query(&request.query)?;
        let searcher = self.reader.searcher();
        let top = ByNumber {
            column: format!("payload.{}", sort.field),
            descending: sort.descending,
            limit: window as usize,
        };
        let (total, hits) = searcher.search(&query, &(Count, top)).map_err(run_error)?;
        let items = hits
            .into_iter()
            .skip(request.from as usize)
            .map(|(_, address)| self.load(&searcher, address))
            .collect::<Result<_, _>>()?;
        Ok(SearchResponse {
            total: total as u64,
            items,
        })
    }

    /// Parses the query language of [`super::query`] (which also routes
    /// payload keys: `age:31` means `payload.age:31`) and builds tantivy's
    /// query from the tree.
    fn parse_query(&self, text: &str) -> Result<Box<dyn Query>, StoreError> {
        let ast = query::parse(text)?;
        self.parser
            .build_query_from_user_input_ast(ast)
            .map_err(|e| StoreError::BadQuery(format!("query {text:?}: {e}")))
    }

    fn load(&self, searcher: &Searcher, address: DocAddress) -> Result<Item, StoreError> {
        let doc: TantivyDocument = searcher.doc(address)?;
        let text = |field| doc.get_first(field).and_then(|v| v.as_str());
        let id = text(self.fields.id).unwrap_or_default().to_owned();
        let corrupt = |reason: &str| StoreError::Corrupt {
            id: id.clone(),
            reason: reason.to_owned(),
        };
        let stored = text(self.fields.item).ok_or_else(|| corrupt("no stored item"))?;
        let json: serde_json::Value =
            serde_json::from_str(stored).map_err(|e| corrupt(&e.to_string()))?;
        Item::from_json(&json).ok_or_else(|| corrupt("not an item"))
    }
}

/// Records `item` (`None`: deleted) as `key`'s latest state in
/// [`Inner::write_group`]'s list, keeping the key's first-seen place.
fn set_state<'a>(
    last: &mut Vec<(String, Option<&'a Item>)>,
    position: &mut HashMap<String, usize>,
    key: String,
    item: Option<&'a Item>,
) {
    match position.get(&key) {
        Some(&at) => last[at].1 = item,
        None => {
            position.insert(key.clone(), last.len());
            last.push((key, item));
        }
    }
}

/// What the committing task answered a queued write.
async fn committed_answer<T>(
    committed: oneshot::Receiver<Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match committed.await {
        Ok(result) => result,
        // The sender is dropped unanswered only if the committing task
        // panicked.
        Err(_) => Err(StoreError::Task("commit task panicked".into())),
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
