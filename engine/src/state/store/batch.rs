//! The changes a commit writes: [`Batch`], coalesced per key, and
//! [`write`], the one transaction that puts a batch on disk; [`value`],
//! how a URL's value is laid out.

use std::collections::HashMap;

use redb::{Database, Durability};

use super::{io, Meta, DELETES, META, META_KEY, UNACKED, URLS, VERSION};
use crate::state::record::UrlRecord;

/// Changes not yet committed, coalesced per key.
#[derive(Debug, Default)]
pub(super) struct Batch {
    /// Records changed, by key: where its value (the URL's fingerprint,
    /// then its encoded record: [`value`]) lies in `records` (start,
    /// length).
    urls: HashMap<u64, (usize, usize)>,
    /// The values, one after another: a record held this way
    /// takes its 60 to 150 bytes of value and no allocation of its own,
    /// where a [`UrlRecord`] takes three times that in four or five
    /// allocations; and the commit writes them without encoding. A record
    /// changed twice leaves its first value here unused, within the
    /// batch's change count.
    records: Vec<u8>,
    /// Unacked items to write (`Some`, encoded: a fraction of an item's
    /// size in memory) or remove (`None`), by key.
    pub(super) unacked: HashMap<String, Option<Vec<u8>>>,
    /// Deletes to record (`true`) or forget, acknowledged (`false`).
    pub(super) deletes: HashMap<String, bool>,
    /// Changes made (each put or removal, before coalescing).
    pub(super) changes: usize,
}

impl Batch {
    /// Records `record`, whose URL has fingerprint `fp`, under `key`.
    pub(super) fn put_record(&mut self, key: u64, fp: u64, record: &UrlRecord) {
        let at = self.records.len();
        self.records.extend_from_slice(&fp.to_le_bytes());
        record.encode_into(&mut self.records);
        self.urls.insert(key, (at, self.records.len() - at));
    }

    /// Records `value` (as [`value`] reads it) under `key`.
    fn put_value(&mut self, key: u64, value: &[u8]) {
        let at = self.records.len();
        self.records.extend_from_slice(value);
        self.urls.insert(key, (at, value.len()));
    }

    /// The value of `key`, if this batch changed it.
    pub(super) fn url(&self, key: u64) -> Option<&[u8]> {
        let &(at, len) = self.urls.get(&key)?;
        Some(&self.records[at..at + len])
    }

    /// The records changed, in key order.
    fn sorted_urls(&self) -> Vec<(u64, &[u8])> {
        let mut out: Vec<(u64, &[u8])> = self
            .urls
            .iter()
            .map(|(&key, &(at, len))| (key, &self.records[at..at + len]))
            .collect();
        out.sort_unstable_by_key(|(key, _)| *key);
        out
    }

    /// Puts `older` under these changes: what this batch changed again
    /// wins (a failed commit's batch comes back this way).
    pub(super) fn absorb_older(&mut self, older: &Batch) {
        for (key, value) in older.sorted_urls() {
            if !self.urls.contains_key(&key) {
                self.put_value(key, value);
            }
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

/// A URL's value in the `urls` table: the fingerprint of its URL (8
/// bytes, little-endian: what the seen set is rebuilt from, without
/// decoding the record) and its encoded [`UrlRecord`]. `None` if shorter.
pub(super) fn value(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (fp, record) = bytes.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*fp), record))
}

/// Writes `batch` and `meta` in one durable transaction.
pub(super) fn write(db: &Database, batch: &Batch, meta: &Meta) -> std::io::Result<()> {
    let mut tx = db.begin_write().map_err(io)?;
    tx.set_durability(Durability::Immediate).map_err(io)?;
    {
        let mut urls = tx.open_table(URLS).map_err(io)?;
        // In key order: each B-tree page is visited once, in turn; and
        // keys follow discovery, so a batch's keys are the newest (queued
        // URLs, appended at the tree's right edge) and a run of older ones
        // (pages done, fetched in roughly the order found).
        for (key, value) in batch.sorted_urls() {
            urls.insert(key, value).map_err(io)?;
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
