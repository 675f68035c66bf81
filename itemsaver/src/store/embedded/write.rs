//! Writes: saves and deletes queue up and are group committed, one fsync
//! for all that arrived during the commit before (see the module docs).

use std::collections::HashMap;
use std::sync::Arc;

use rpcsupport::Item;
use tantivy::collector::Count;
use tantivy::query::TermQuery;
use tantivy::schema::{IndexRecordOption, OwnedValue};
use tantivy::{IndexWriter, Searcher, TantivyDocument, Term};
use tokio::sync::oneshot;

use super::{lock, Inner};
use crate::store::document::{collect_text, stored_json};
use crate::store::StoreError;

/// One `put_batch` or `delete` waiting for its commit.
pub(super) enum PendingWrite {
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

impl Inner {
    /// Queues `write` for the next group commit and starts a commit.
    /// Queued synchronously, before the caller's first await, so writes
    /// handed over one after another keep that order.
    pub(super) fn queue(self: &Arc<Self>, write: PendingWrite) {
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
pub(super) async fn committed_answer<T>(
    committed: oneshot::Receiver<Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match committed.await {
        Ok(result) => result,
        // The sender is dropped unanswered only if the committing task
        // panicked.
        Err(_) => Err(StoreError::Task("commit task panicked".into())),
    }
}
