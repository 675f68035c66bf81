//! The URL store: one redb file (`urls.redb`) in the state dir.
//!
//! redb rather than fjall or sled: it is pure Rust, one file, ACID with a
//! durability chosen per transaction, plain copy-on-write B-trees, and no
//! dependencies of its own, so it builds in seconds; fjall is an LSM tree
//! (journal, memtables, background compaction threads), more moving parts
//! than a store that commits a few thousand changes every few seconds
//! needs.
//!
//! Tables:
//! - `urls`: fingerprint (u64) -> [`UrlRecord`], one per URL ever queued.
//! - `unacked`: item key -> item (bincode), the items sent to the itemsaver
//!   and not yet acknowledged, written in the same transaction as the
//!   done status of the page that produced them and removed once acked.
//! - `deletes`: item key -> (), deletes of items of pages that are gone,
//!   kept until the itemsaver acknowledges them.
//! - `meta`: the format version, the crawl's counters, whether it
//!   finished.
//!
//! **Group commit**: changes wait in memory (coalesced per key: a URL
//! queued and done within one interval is one write) and go to disk in
//! one transaction, fsynced, every `state_interval_ms` or every
//! `state_commit_changes` changes, so a commit costs what changed since
//! the last one, not the size of the crawl. A kill loses at most those
//! changes: their pages are fetched again. The crawl loop hands a batch
//! to a blocking thread ([`UrlStore::begin_commit`], [`CommitJob::run`])
//! and carries on; reads see the batch being written until it is done
//! ([`UrlStore::end_commit`]), and one commit runs at a time.

use std::collections::HashMap;
use std::fs::File;
use std::sync::Arc;

use redb::backends::FileBackend;
use redb::{
    Database, Durability, ReadableDatabase as _, ReadableTable as _, ReadableTableMetadata as _,
    TableDefinition,
};
use rpcsupport::Item;
use serde::{Deserialize, Serialize};

use super::record::UrlRecord;
use crate::summary::Summary;

const URLS: TableDefinition<u64, &[u8]> = TableDefinition::new("urls");
const UNACKED: TableDefinition<&str, &[u8]> = TableDefinition::new("unacked");
const DELETES: TableDefinition<&str, ()> = TableDefinition::new("deletes");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const META_KEY: &str = "meta";

/// Format of what is stored; a store of another version is refused.
pub const VERSION: u32 = 3;

/// Memory redb may use to cache pages of the file (read cache and write
/// buffer together). redb's own default is 1 GiB; the engine's memory is
/// the seen set and the frontier, and the store is mostly written, so a
/// small cache is enough. Smaller costs time at scale: with 4 MiB the
/// `urlstore` bench's million URLs took twice as long as with 16.
pub const CACHE_BYTES: usize = 16 << 20;

/// An error of the store, as an I/O error (the state dir's error type).
pub(super) fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("url store: {e}"))
}

/// The crawl-wide part of the state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Meta {
    /// [`VERSION`] when written.
    pub version: u32,
    /// Counters so far.
    pub summary: Summary,
    /// The crawl ran to its end.
    pub finished: bool,
}

/// Changes not yet committed, coalesced per key.
#[derive(Debug, Default)]
struct Batch {
    /// Records changed, by fingerprint.
    urls: HashMap<u64, UrlRecord>,
    /// Unacked items to write (`Some`, encoded: a fraction of an item's
    /// size in memory) or remove (`None`), by key.
    unacked: HashMap<String, Option<Vec<u8>>>,
    /// Deletes to record (`true`) or forget, acknowledged (`false`).
    deletes: HashMap<String, bool>,
    /// Changes made (each put or removal, before coalescing).
    changes: usize,
}

impl Batch {
    /// Puts `older` under these changes: what this batch changed again
    /// wins (a failed commit's batch comes back this way).
    fn absorb_older(&mut self, older: &Batch) {
        for (k, v) in &older.urls {
            self.urls.entry(*k).or_insert_with(|| v.clone());
        }
        for (k, v) in &older.unacked {
            self.unacked.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in &older.deletes {
            self.deletes.entry(k.clone()).or_insert(*v);
        }
        self.changes += older.changes;
    }
}

/// The store and the changes not yet committed.
pub struct UrlStore {
    db: Arc<Database>,
    /// Changes since the last commit began.
    pending: Batch,
    /// The batch a commit is writing, if one is under way.
    committing: Option<Arc<Batch>>,
    /// Copies of each unacked key not yet acknowledged: a key produced
    /// again (a page fetched twice) stays until every copy is acked.
    outstanding: HashMap<String, u32>,
    /// Keys in the unacked table (committed, or being committed): an ack
    /// of any other key needs no write at all, which is the common case
    /// (the itemsaver acks within `item_linger_ms`, commits come seconds
    /// apart).
    in_table: std::collections::HashSet<String>,
}

/// One commit's work, to run off the crawl loop.
pub struct CommitJob {
    db: Arc<Database>,
    batch: Arc<Batch>,
    meta: Meta,
}

impl CommitJob {
    /// Writes the batch and the counters in one durable transaction.
    pub fn run(&self) -> std::io::Result<()> {
        write(&self.db, &self.batch, &self.meta)
    }
}

/// What a store held when opened.
#[derive(Debug, Default)]
pub struct Contents {
    /// The crawl's counters, if a crawl ever committed.
    pub meta: Option<Meta>,
    /// Unacked items.
    pub unacked: Vec<Item>,
    /// Item keys still to delete.
    pub deletes: Vec<String>,
}

impl UrlStore {
    /// Opens the store in `file` (created private by the caller).
    pub fn open(file: File) -> std::io::Result<(UrlStore, Contents)> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create_with_backend(FileBackend::new(file).map_err(io)?)
            .map_err(io)?;
        // Create the tables, so reads never meet a missing one.
        let tx = db.begin_write().map_err(io)?;
        {
            tx.open_table(URLS).map_err(io)?;
            tx.open_table(UNACKED).map_err(io)?;
            tx.open_table(DELETES).map_err(io)?;
            tx.open_table(META).map_err(io)?;
        }
        tx.commit().map_err(io)?;
        let mut store = UrlStore {
            db: Arc::new(db),
            pending: Batch::default(),
            committing: None,
            outstanding: HashMap::new(),
            in_table: Default::default(),
        };
        let contents = store.read_contents()?;
        for item in &contents.unacked {
            *store.outstanding.entry(item.key()).or_default() += 1;
            store.in_table.insert(item.key());
        }
        Ok((store, contents))
    }

    fn read_contents(&self) -> std::io::Result<Contents> {
        let tx = self.db.begin_read().map_err(io)?;
        let meta = match tx.open_table(META).map_err(io)?.get(META_KEY).map_err(io)? {
            Some(v) => {
                let meta: Meta = bincode::deserialize(v.value()).map_err(io)?;
                if meta.version != VERSION {
                    return Err(io(format!(
                        "store version {} (this engine reads {VERSION})",
                        meta.version
                    )));
                }
                Some(meta)
            }
            None => None,
        };
        let mut unacked = Vec::new();
        for entry in tx.open_table(UNACKED).map_err(io)?.iter().map_err(io)? {
            let (_, v) = entry.map_err(io)?;
            unacked.push(bincode::deserialize(v.value()).map_err(io)?);
        }
        let mut deletes = Vec::new();
        for entry in tx.open_table(DELETES).map_err(io)?.iter().map_err(io)? {
            deletes.push(entry.map_err(io)?.0.value().to_owned());
        }
        Ok(Contents {
            meta,
            unacked,
            deletes,
        })
    }

    /// Calls `f` with every stored URL's fingerprint and value (decode it
    /// with [`UrlRecord::decode`], or read its status alone with
    /// [`UrlStatus::of`]), committed ones only.
    pub fn scan(&self, mut f: impl FnMut(u64, &[u8])) -> std::io::Result<()> {
        let tx = self.db.begin_read().map_err(io)?;
        let table = tx.open_table(URLS).map_err(io)?;
        for entry in table.iter().map_err(io)? {
            let (k, v) = entry.map_err(io)?;
            f(k.value(), v.value());
        }
        Ok(())
    }

    /// URLs committed.
    pub fn url_count(&self) -> std::io::Result<u64> {
        let tx = self.db.begin_read().map_err(io)?;
        let n = tx.open_table(URLS).map_err(io)?.len().map_err(io)?;
        Ok(n)
    }

    /// The record of `fp`: the latest change if there is one (pending,
    /// or being committed), else the committed one.
    pub fn get(&self, fp: u64) -> std::io::Result<Option<UrlRecord>> {
        let changed = self
            .pending
            .urls
            .get(&fp)
            .or_else(|| self.committing.as_ref()?.urls.get(&fp));
        if let Some(r) = changed {
            return Ok(Some(r.clone()));
        }
        let tx = self.db.begin_read().map_err(io)?;
        let table = tx.open_table(URLS).map_err(io)?;
        match table.get(fp).map_err(io)? {
            Some(v) => Ok(Some(UrlRecord::decode(v.value()).map_err(io)?)),
            None => Ok(None),
        }
    }

    /// Records `record` under `fp` (at the next commit).
    pub fn put(&mut self, fp: u64, record: UrlRecord) {
        self.pending.urls.insert(fp, record);
        self.pending.changes += 1;
    }

    /// Items sent to the itemsaver: kept until acknowledged.
    pub fn items_sent(&mut self, items: &[Item]) {
        for item in items {
            let key = item.key();
            // Plain data into a Vec: cannot fail.
            let bytes = bincode::serialize(item).expect("an item serializes");
            *self.outstanding.entry(key.clone()).or_default() += 1;
            self.pending.unacked.insert(key, Some(bytes));
            self.pending.changes += 1;
        }
    }

    /// The itemsaver acknowledged (stored or refused for good) items with
    /// these keys.
    pub fn items_acked(&mut self, keys: &[String]) {
        for key in keys {
            let Some(n) = self.outstanding.get_mut(key) else {
                continue;
            };
            *n -= 1;
            if *n == 0 {
                self.outstanding.remove(key);
                if self.in_table.contains(key) {
                    self.pending.unacked.insert(key.clone(), None);
                } else {
                    // Never written: forgetting it is the whole ack.
                    self.pending.unacked.remove(key);
                }
                self.pending.changes += 1;
            }
        }
    }

    /// Items to delete from the itemsaver: kept until it acknowledges.
    pub fn deletes_queued(&mut self, keys: &[String]) {
        for key in keys {
            self.pending.deletes.insert(key.clone(), true);
            self.pending.changes += 1;
        }
    }

    /// The itemsaver acknowledged these deletes.
    pub fn deletes_acked(&mut self, keys: &[String]) {
        for key in keys {
            self.pending.deletes.insert(key.clone(), false);
            self.pending.changes += 1;
        }
    }

    /// Changes waiting for the next commit.
    pub fn changes(&self) -> usize {
        self.pending.changes
    }

    /// Whether a commit is under way.
    pub fn committing(&self) -> bool {
        self.committing.is_some()
    }

    /// Takes the pending changes for a commit with `meta`, unless one is
    /// under way. Until [`UrlStore::end_commit`], reads see them.
    pub fn begin_commit(&mut self, meta: &Meta) -> Option<CommitJob> {
        if self.committing.is_some() {
            return None;
        }
        let batch = Arc::new(std::mem::take(&mut self.pending));
        // From now on an ack of these keys must remove them from the
        // table (a failed commit leaves extra keys here: their removal is
        // then a harmless no-op).
        for (key, item) in &batch.unacked {
            match item {
                Some(_) => self.in_table.insert(key.clone()),
                None => self.in_table.remove(key),
            };
        }
        self.committing = Some(batch.clone());
        Some(CommitJob {
            db: self.db.clone(),
            batch,
            meta: meta.clone(),
        })
    }

    /// The commit begun last is over; if it failed, its changes go back
    /// under the pending ones, for the next commit.
    pub fn end_commit(&mut self, ok: bool) {
        let Some(batch) = self.committing.take() else {
            return;
        };
        if !ok {
            self.pending.absorb_older(&batch);
        }
    }

    /// Writes every pending change and `meta` in one durable transaction,
    /// here and now (a commit under way is waited for by the caller
    /// first). On an error nothing is lost from memory: the next commit
    /// tries again.
    pub fn commit(&mut self, meta: &Meta) -> std::io::Result<()> {
        let job = self
            .begin_commit(meta)
            .ok_or_else(|| io("a commit is already under way"))?;
        let result = job.run();
        self.end_commit(result.is_ok());
        result
    }
}

/// Writes `batch` and `meta` in one durable transaction.
fn write(db: &Database, batch: &Batch, meta: &Meta) -> std::io::Result<()> {
    let mut tx = db.begin_write().map_err(io)?;
    tx.set_durability(Durability::Immediate).map_err(io)?;
    {
        let mut urls = tx.open_table(URLS).map_err(io)?;
        // In key order: each B-tree page is visited once, in turn, rather
        // than the pages hopping at random (fingerprints are hashes).
        let mut records: Vec<(&u64, &UrlRecord)> = batch.urls.iter().collect();
        records.sort_unstable_by_key(|(fp, _)| **fp);
        for (fp, record) in records {
            urls.insert(*fp, record.encode().as_slice()).map_err(io)?;
        }
        let mut unacked = tx.open_table(UNACKED).map_err(io)?;
        for (key, item) in &batch.unacked {
            match item {
                Some(bytes) => {
                    unacked.insert(key.as_str(), bytes.as_slice()).map_err(io)?;
                }
                None => {
                    unacked.remove(key.as_str()).map_err(io)?;
                }
            }
        }
        let mut deletes = tx.open_table(DELETES).map_err(io)?;
        for (key, add) in &batch.deletes {
            if *add {
                deletes.insert(key.as_str(), ()).map_err(io)?;
            } else {
                deletes.remove(key.as_str()).map_err(io)?;
            }
        }
        let mut table = tx.open_table(META).map_err(io)?;
        let meta = Meta {
            version: VERSION,
            ..meta.clone()
        };
        let bytes = bincode::serialize(&meta).map_err(io)?;
        table.insert(META_KEY, bytes.as_slice()).map_err(io)?;
    }
    tx.commit().map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::record::UrlStatus;
    use super::*;
    use crate::scheduler::Task;
    use rpcsupport::{ParserSpec, Request};
    use std::path::Path;

    fn file(dir: &Path) -> File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("urls.redb"))
            .unwrap()
    }

    fn record(i: u64) -> UrlRecord {
        UrlRecord::queued(&Task::new(Request::new(
            format!("http://h/{i}"),
            ParserSpec::named("p"),
            1,
        )))
    }

    fn item(key: &str) -> Item {
        Item {
            url: "http://h/".into(),
            kind: "t".into(),
            id: Some(key.into()),
            payload: Default::default(),
        }
    }

    /// Nothing reaches the file before a commit; after it, records, unacked
    /// items, deletes and the counters come back on reopen.
    #[test]
    fn group_commit_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, contents) = UrlStore::open(file(dir.path())).unwrap();
        assert!(contents.meta.is_none());
        for i in 0..10 {
            store.put(i, record(i));
        }
        store.items_sent(&[item("a"), item("b")]);
        store.deletes_queued(&["gone".into()]);
        assert_eq!(store.changes(), 13);
        assert_eq!(store.url_count().unwrap(), 0, "not committed yet");
        assert_eq!(store.get(3).unwrap().unwrap().url, "http://h/3");
        let meta = Meta {
            summary: Summary {
                pages: 4,
                ..Summary::default()
            },
            ..Meta::default()
        };
        store.commit(&meta).unwrap();
        assert_eq!(store.changes(), 0);
        store.items_acked(&["a".into()]);
        // Dropped without a commit: the ack of "a" is lost, so "a" is
        // still unacked (sent again: the itemsaver upserts).
        drop(store);
        let (store, contents) = UrlStore::open(file(dir.path())).unwrap();
        assert_eq!(store.url_count().unwrap(), 10);
        assert_eq!(contents.meta.unwrap().summary.pages, 4);
        let mut keys: Vec<String> = contents.unacked.iter().map(Item::key).collect();
        keys.sort();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(contents.deletes, ["gone"]);
        let mut seen = 0;
        store
            .scan(|_, v| {
                assert_eq!(UrlStatus::of(v), Some(UrlStatus::Queued));
                seen += 1;
            })
            .unwrap();
        assert_eq!(seen, 10);
    }

    /// A commit under way leaves the store usable: reads see its batch,
    /// new changes wait for the next one, and a failed commit's changes
    /// come back for the next try.
    #[test]
    fn background_commit_and_failed_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = UrlStore::open(file(dir.path())).unwrap();
        store.put(1, record(1));
        let job = store.begin_commit(&Meta::default()).unwrap();
        assert!(
            store.begin_commit(&Meta::default()).is_none(),
            "one at a time"
        );
        assert!(store.commit(&Meta::default()).is_err());
        store.put(2, record(2));
        assert_eq!(
            store.get(1).unwrap().unwrap().url,
            "http://h/1",
            "being written"
        );
        assert_eq!(store.changes(), 1);
        // This one "fails": its record comes back under the newer change.
        drop(job);
        store.end_commit(false);
        assert_eq!(store.changes(), 2);
        let job = store.begin_commit(&Meta::default()).unwrap();
        job.run().unwrap();
        store.end_commit(true);
        assert_eq!(store.url_count().unwrap(), 2);
        assert_eq!(store.changes(), 0);
    }

    /// An item key sent twice stays unacked until both copies are acked;
    /// acked deletes are forgotten.
    #[test]
    fn acks_remove_unacked_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = UrlStore::open(file(dir.path())).unwrap();
        store.items_sent(&[item("k"), item("k"), item("j")]);
        store.deletes_queued(&["d1".into(), "d2".into()]);
        store.commit(&Meta::default()).unwrap();
        store.items_acked(&["k".into(), "j".into()]);
        store.deletes_acked(&["d1".into()]);
        store.commit(&Meta::default()).unwrap();
        drop(store);
        let (mut store, contents) = UrlStore::open(file(dir.path())).unwrap();
        assert_eq!(
            contents.unacked.iter().map(Item::key).collect::<Vec<_>>(),
            ["k"]
        );
        assert_eq!(contents.deletes, ["d2"]);
        store.items_acked(&["k".into()]);
        store.commit(&Meta::default()).unwrap();
        drop(store);
        let (_, contents) = UrlStore::open(file(dir.path())).unwrap();
        assert!(contents.unacked.is_empty());
    }
}
