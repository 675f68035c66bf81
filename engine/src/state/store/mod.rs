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
//! - `urls`: key (u64) -> the URL's fingerprint and its [`UrlRecord`]
//!   (`batch.rs`, `value`), one per URL ever queued. The key is the URL's
//!   place in discovery order ([`UrlStore::new_key`], carried by its
//!   task), not its fingerprint: a B-tree keyed by hashes spreads every
//!   commit over the whole file, one copied 4 KiB page per change once
//!   the tree is much larger than a commit (the `urlstore` bench queued
//!   6.7 million URLs in 600 s that way, and slowing). Keyed by
//!   discovery, new URLs append at the tree's right edge and pages done,
//!   fetched roughly in the order found, update a run of neighbouring
//!   keys: the same writes for 2 million URLs (queued, then done, commits
//!   of 10,000, a 16 MiB cache) took 123 s keyed by fingerprint and 7 s
//!   keyed by discovery. The crawl never looks a URL up by its URL: the
//!   seen set in memory answers that, rebuilt at start from the
//!   fingerprints stored beside each record.
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
//! one transaction, fsynced, every `state_interval_ms` or once half of
//! `state_commit_changes` changes wait, so a commit costs what changed
//! since the last one, not the size of the crawl. A kill loses the changes
//! not yet committed (the crawl loop keeps them within
//! `state_commit_changes`, see `crawl/durable.rs`): their pages are
//! fetched again. The crawl loop hands a batch
//! to a blocking thread ([`UrlStore::begin_commit`], [`CommitJob::run`])
//! and carries on; reads see the batch being written until it is done
//! ([`UrlStore::end_commit`]), and one commit runs at a time.
//!
//! Files: this one, the store and its reads; `batch.rs`, the changes a
//! commit writes and the transaction that writes them; `tests.rs`.

use std::collections::HashMap;
use std::fs::File;
use std::sync::Arc;

use redb::backends::FileBackend;
use redb::{
    Database, ReadableDatabase as _, ReadableTable as _, ReadableTableMetadata as _,
    TableDefinition,
};
use rpcsupport::Item;
use serde::{Deserialize, Serialize};

use super::record::UrlRecord;
use crate::scheduler::fingerprint;
use crate::summary::Summary;
use batch::{value, write, Batch};

mod batch;

const URLS: TableDefinition<u64, &[u8]> = TableDefinition::new("urls");
const UNACKED: TableDefinition<&str, &[u8]> = TableDefinition::new("unacked");
const DELETES: TableDefinition<&str, ()> = TableDefinition::new("deletes");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const META_KEY: &str = "meta";

/// Format of what is stored; a store of another version is refused
/// (4: keyed by discovery order, not by fingerprint).
pub const VERSION: u32 = 4;

/// Default MiB redb may use to cache pages of the file (read cache and
/// write buffer together; the `state_cache_mb` setting). redb's own
/// default is 1 GiB; the engine's memory is the seen set and the frontier,
/// and the store is mostly written, so a small cache is enough. Smaller
/// costs time at scale: with 4 MiB the `urlstore` bench's million URLs
/// took twice as long as with 16.
pub const DEFAULT_CACHE_MB: u64 = 16;

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
    /// The key [`UrlStore::new_key`] gives next: one past the largest
    /// key stored or given (keys start at 1; 0 is a task with no key).
    next_key: u64,
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
    /// Opens the store in `file` (created private by the caller), with a
    /// page cache of `cache_bytes`.
    pub fn open(file: File, cache_bytes: usize) -> std::io::Result<(UrlStore, Contents)> {
        let db = Database::builder()
            .set_cache_size(cache_bytes)
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
            next_key: 1,
            outstanding: HashMap::new(),
            in_table: Default::default(),
        };
        let contents = store.read_contents()?;
        store.next_key = store.last_key()?.map_or(1, |k| k + 1);
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

    /// The largest key committed.
    fn last_key(&self) -> std::io::Result<Option<u64>> {
        let tx = self.db.begin_read().map_err(io)?;
        let table = tx.open_table(URLS).map_err(io)?;
        let last = table.last().map_err(io)?.map(|(k, _)| k.value());
        Ok(last)
    }

    /// A key for a URL queued for the first time: each one follows the
    /// last (see the module's doc for why).
    pub fn new_key(&mut self) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        key
    }

    /// Calls `f` with every stored URL's key, fingerprint and record
    /// (decode it with [`UrlRecord::decode`], or read its status alone
    /// with [`UrlStatus::of`]), in key order, committed ones only. A value
    /// too short to hold a fingerprint is an error.
    pub fn scan(&self, mut f: impl FnMut(u64, u64, &[u8])) -> std::io::Result<()> {
        let tx = self.db.begin_read().map_err(io)?;
        let table = tx.open_table(URLS).map_err(io)?;
        for entry in table.iter().map_err(io)? {
            let (k, v) = entry.map_err(io)?;
            let (fp, record) = value(v.value())
                .ok_or_else(|| io(format!("URL record {} is truncated", k.value())))?;
            f(k.value(), fp, record);
        }
        Ok(())
    }

    /// URLs committed.
    pub fn url_count(&self) -> std::io::Result<u64> {
        let tx = self.db.begin_read().map_err(io)?;
        let n = tx.open_table(URLS).map_err(io)?.len().map_err(io)?;
        Ok(n)
    }

    /// The record under `key`: the latest change if there is one
    /// (pending, or being committed), else the committed one.
    pub fn get(&self, key: u64) -> std::io::Result<Option<UrlRecord>> {
        let changed = self
            .pending
            .url(key)
            .or_else(|| self.committing.as_ref()?.url(key));
        let decode = |bytes: &[u8]| {
            let (_, record) = value(bytes).ok_or_else(|| io("a URL record is truncated"))?;
            UrlRecord::decode(record).map_err(io)
        };
        if let Some(bytes) = changed {
            return decode(bytes).map(Some);
        }
        let tx = self.db.begin_read().map_err(io)?;
        let table = tx.open_table(URLS).map_err(io)?;
        match table.get(key).map_err(io)? {
            Some(v) => decode(v.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Records `record` under `key` (at the next commit), with the
    /// fingerprint of its URL (a normal form, as the seen set holds it).
    pub fn put(&mut self, key: u64, record: UrlRecord) {
        self.next_key = self.next_key.max(key + 1);
        self.pending
            .put_record(key, fingerprint(&record.url), &record);
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

#[cfg(test)]
mod tests;
