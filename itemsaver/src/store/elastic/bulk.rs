//! Writes: one `_bulk` request per batch (of items to index, or of keys
//! to delete), operations that fail transiently sent again with backoff,
//! items refused for good named in the answer.

use std::collections::HashSet;

use elasticsearch::{BulkOperation, BulkParts};
use rpcsupport::cli::message;
use rpcsupport::{Item, Refusal};
use serde_json::Value as Json;

use super::client::{error_reason, reason, FIRST_BACKOFF, MAX_BACKOFF};
use super::mapping::document;
use super::Inner;
use crate::store::StoreError;

/// How often a bulk write is tried before the batch fails (and the engine,
/// which still holds the items, retries it later).
const WRITE_ATTEMPTS: u32 = 6;

/// Longest document `_id` Elasticsearch takes, in bytes. A longer key can
/// never be stored, and a delete naming one would fail its whole `_bulk`
/// request, so deletes skip such keys as not stored.
const MAX_ID_BYTES: usize = 512;

/// One operation's outcome in a bulk answer.
pub(super) enum ItemOutcome {
    /// Indexed, or deleted.
    Done,
    /// A delete of a document that is not there: 404 without an error
    /// (`result: "not_found"`), which is no failure.
    Missing,
    /// 429 or 5xx: send it again.
    Retry(String),
    /// Anything else: sending it again fails the same way.
    Refused(String),
}

/// An operation's outcome once retries are over.
enum Final {
    Done,
    Missing,
    Refused(String),
}

impl Inner {
    /// Stores every item, retrying the ones that fail transiently; returns
    /// the ones Elasticsearch refused for good.
    pub(super) async fn put_all(
        &self,
        items: Vec<(String, Item)>,
    ) -> Result<Vec<Refusal>, StoreError> {
        let docs: Vec<Json> = items
            .iter()
            .map(|(key, item)| document(key, item))
            .collect();
        let keys: Vec<&str> = items.iter().map(|(key, _)| key.as_str()).collect();
        let outcomes = self
            .bulk_with_retry(&keys, "stored", |i| {
                BulkOperation::index(docs[i].clone()).id(keys[i]).into()
            })
            .await?;
        let mut refused = Vec::new();
        for ((key, item), outcome) in items.iter().zip(outcomes) {
            if let Final::Refused(reason) = outcome {
                tracing::warn!(%key, url = %item.url, %reason, "Elasticsearch refused an item");
                refused.push(Refusal {
                    key: key.clone(),
                    reason,
                });
            }
        }
        Ok(refused)
    }

    /// Deletes the documents of `keys`, retrying the deletes that fail
    /// transiently; answers how many of the keys were stored.
    pub(super) async fn delete_all(&self, keys: &[String]) -> Result<u64, StoreError> {
        // Each key once: a second delete of a key would only answer
        // `not_found`. Keys no document can have are left out.
        let mut seen = HashSet::new();
        let keys: Vec<&str> = keys
            .iter()
            .map(String::as_str)
            .filter(|key| !key.is_empty() && key.len() <= MAX_ID_BYTES && seen.insert(*key))
            .collect();
        if keys.is_empty() {
            return Ok(0);
        }
        let outcomes = self
            .bulk_with_retry(&keys, "deleted", |i| BulkOperation::delete(keys[i]).into())
            .await?;
        let mut deleted = 0;
        for (key, outcome) in keys.iter().zip(outcomes) {
            match outcome {
                Final::Done => deleted += 1,
                Final::Missing => {}
                // A delete carries nothing that can be malformed, so this
                // is the cluster's state (a closed or read-only index),
                // not the key's fault: worth trying again later.
                Final::Refused(reason) => {
                    return Err(StoreError::Cluster(format!("delete of {key}: {reason}")))
                }
            }
        }
        Ok(deleted)
    }

    /// Sends the operations `op(0..keys.len())` (on the documents `keys`)
    /// in `_bulk` requests, sending the ones that fail transiently again
    /// with backoff, up to [`WRITE_ATTEMPTS`] times; answers each one's
    /// outcome, in order. `done` says what a done operation did, for
    /// messages.
    async fn bulk_with_retry(
        &self,
        keys: &[&str],
        done: &str,
        op: impl Fn(usize) -> BulkOperation<Json>,
    ) -> Result<Vec<Final>, StoreError> {
        let mut finals: Vec<Option<Final>> = keys.iter().map(|_| None).collect();
        let mut pending: Vec<usize> = (0..keys.len()).collect();
        let mut backoff = FIRST_BACKOFF;
        let mut last_failure = String::new();
        for attempt in 1..=WRITE_ATTEMPTS {
            if attempt > 1 {
                tracing::warn!(
                    items = pending.len(),
                    attempt,
                    reason = %last_failure,
                    "retrying items Elasticsearch has not {done}"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            let operations: Vec<BulkOperation<Json>> = pending.iter().map(|&i| op(i)).collect();
            let outcomes = match self.bulk(operations, pending.len()).await {
                Ok(outcomes) => outcomes,
                Err(BulkFailure::Retry(reason)) => {
                    last_failure = reason;
                    continue;
                }
                Err(BulkFailure::Fatal(e)) => return Err(e),
            };
            let mut retry = Vec::new();
            for (&i, outcome) in pending.iter().zip(outcomes) {
                finals[i] = match outcome {
                    ItemOutcome::Done => Some(Final::Done),
                    ItemOutcome::Missing => Some(Final::Missing),
                    ItemOutcome::Refused(reason) => Some(Final::Refused(reason)),
                    ItemOutcome::Retry(reason) => {
                        last_failure = format!("item {}: {reason}", keys[i]);
                        retry.push(i);
                        None
                    }
                };
            }
            pending = retry;
            if pending.is_empty() {
                break;
            }
        }
        if !pending.is_empty() {
            // Worth retrying later, so this wins over refusals: the engine
            // keeps the batch, and the refusals come back on its next try.
            return Err(StoreError::Cluster(format!(
                "{} of {} items not {done} after {WRITE_ATTEMPTS} attempts: {last_failure}",
                pending.len(),
                keys.len()
            )));
        }
        // Every operation ended Done, Missing or Refused, or is pending.
        Ok(finals.into_iter().flatten().collect())
    }

    /// One `_bulk` request; the outcome of each operation, in order.
    async fn bulk(
        &self,
        operations: Vec<BulkOperation<Json>>,
        count: usize,
    ) -> Result<Vec<ItemOutcome>, BulkFailure> {
        let response = self
            .client
            .bulk(BulkParts::Index(&self.index))
            .body(operations)
            .send()
            .await
            .map_err(|e| BulkFailure::Retry(message(&e)))?;
        let status = response.status_code();
        let body: Json = match response.json().await {
            Ok(body) => body,
            Err(e) => return Err(BulkFailure::Retry(format!("HTTP {status}: {e}"))),
        };
        if !status.is_success() {
            let message = format!("bulk request: HTTP {status}: {}", reason(&body));
            return Err(match status.as_u16() {
                429 | 500..=599 => BulkFailure::Retry(message),
                // Too large: half as many items may pass; one item alone
                // never will.
                413 if count > 1 => BulkFailure::Fatal(StoreError::BatchTooLarge {
                    max_items: u32::try_from(count / 2).unwrap_or(u32::MAX),
                }),
                413 => BulkFailure::Fatal(StoreError::Rejected(message)),
                // Wrong credentials, missing rights, a closed index: no use
                // retrying now, but the items are fine, so the engine keeps
                // them and tries again later.
                _ => BulkFailure::Fatal(StoreError::Cluster(message)),
            });
        }
        let results = body["items"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if results.len() != count {
            return Err(BulkFailure::Retry(format!(
                "bulk answer has {} results for {count} items",
                results.len()
            )));
        }
        Ok(results.iter().map(item_outcome).collect())
    }
}

enum BulkFailure {
    /// The request as a whole failed in a way that may pass.
    Retry(String),
    /// Give up on this batch now.
    Fatal(StoreError),
}

/// One result of a bulk answer, `{"index": {"status": .., "error": ..}}`
/// (or `"delete"`).
fn item_outcome(result: &Json) -> ItemOutcome {
    let result = result.as_object().and_then(|o| o.values().next());
    let status = result.and_then(|r| r["status"].as_u64()).unwrap_or(0);
    let error = result.map(|r| &r["error"]).filter(|e| !e.is_null());
    match (status, error) {
        (200..=299, None) => ItemOutcome::Done,
        (404, None) => ItemOutcome::Missing,
        (429 | 500..=599, _) => {
            ItemOutcome::Retry(format!("HTTP {status}: {}", error_reason(error)))
        }
        _ => ItemOutcome::Refused(format!("HTTP {status}: {}", error_reason(error))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Bulk results: 2xx done, a 404 without an error missing (a delete), 429 and 5xx retried, other errors refused.
    #[test]
    fn classifies_bulk_results() {
        let result =
            |status: u64, error: Json| json!({"index": {"status": status, "error": error}});
        let busy = json!({"type": "es_rejected_execution_exception", "reason": "queue full"});
        let bad = json!({"type": "document_parsing_exception", "reason": "object mapping"});
        assert!(matches!(
            item_outcome(&json!({"index": {"status": 201}})),
            ItemOutcome::Done
        ));
        let gone = json!({"delete": {"status": 404, "result": "not_found"}});
        assert!(matches!(item_outcome(&gone), ItemOutcome::Missing));
        let no_index = json!({"type": "index_not_found_exception", "reason": "no such index"});
        assert!(matches!(
            item_outcome(&json!({"delete": {"status": 404, "error": no_index}})),
            ItemOutcome::Refused(_)
        ));
        assert!(
            matches!(item_outcome(&result(429, busy.clone())), ItemOutcome::Retry(r) if r.contains("queue full"))
        );
        assert!(matches!(
            item_outcome(&result(503, busy)),
            ItemOutcome::Retry(_)
        ));
        assert!(
            matches!(item_outcome(&result(400, bad)), ItemOutcome::Refused(r) if r.contains("object mapping"))
        );
        assert!(matches!(item_outcome(&json!({})), ItemOutcome::Refused(_)));
    }
}
