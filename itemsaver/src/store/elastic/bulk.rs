//! Writes: one `_bulk` request per batch, items that fail transiently sent
//! again with backoff, items refused for good named in the answer.

use elasticsearch::{BulkOperation, BulkParts};
use rpcsupport::{Item, Refusal};
use serde_json::Value as Json;

use super::client::{error_chain, error_reason, reason, FIRST_BACKOFF, MAX_BACKOFF};
use super::mapping::document;
use super::Inner;
use crate::store::StoreError;

/// How often a bulk write is tried before the batch fails (and the engine,
/// which still holds the items, retries it later).
const WRITE_ATTEMPTS: u32 = 6;

/// One item's outcome in a bulk answer.
pub(super) enum ItemOutcome {
    Stored,
    /// 429 or 5xx: send it again.
    Retry(String),
    /// Anything else: sending it again fails the same way.
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
        let mut pending: Vec<usize> = (0..items.len()).collect();
        let mut refused: Vec<Refusal> = Vec::new();
        let mut backoff = FIRST_BACKOFF;
        let mut last_failure = String::new();
        for attempt in 1..=WRITE_ATTEMPTS {
            if attempt > 1 {
                tracing::warn!(
                    items = pending.len(),
                    attempt,
                    reason = %last_failure,
                    "retrying items Elasticsearch did not store"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            let operations: Vec<BulkOperation<Json>> = pending
                .iter()
                .map(|&i| BulkOperation::index(docs[i].clone()).id(&items[i].0).into())
                .collect();
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
                let (key, item) = &items[i];
                match outcome {
                    ItemOutcome::Stored => {}
                    ItemOutcome::Retry(reason) => {
                        last_failure = format!("item {key}: {reason}");
                        retry.push(i);
                    }
                    ItemOutcome::Refused(reason) => {
                        tracing::warn!(%key, url = %item.url, %reason, "Elasticsearch refused an item");
                        refused.push(Refusal {
                            key: key.clone(),
                            reason,
                        });
                    }
                }
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
                "{} of {} items not stored after {WRITE_ATTEMPTS} attempts: {last_failure}",
                pending.len(),
                items.len()
            )));
        }
        Ok(refused)
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
            .map_err(|e| BulkFailure::Retry(error_chain(&e)))?;
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

/// One result of a bulk answer, `{"index": {"status": .., "error": ..}}`.
fn item_outcome(result: &Json) -> ItemOutcome {
    let result = result.as_object().and_then(|o| o.values().next());
    let status = result.and_then(|r| r["status"].as_u64()).unwrap_or(0);
    let error = result.map(|r| &r["error"]).filter(|e| !e.is_null());
    match (status, error) {
        (200..=299, None) => ItemOutcome::Stored,
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

    /// Bulk results: 2xx stored, 429 and 5xx retried, other errors refused.
    #[test]
    fn classifies_bulk_results() {
        let result =
            |status: u64, error: Json| json!({"index": {"status": status, "error": error}});
        let busy = json!({"type": "es_rejected_execution_exception", "reason": "queue full"});
        let bad = json!({"type": "document_parsing_exception", "reason": "object mapping"});
        assert!(matches!(
            item_outcome(&json!({"index": {"status": 201}})),
            ItemOutcome::Stored
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
