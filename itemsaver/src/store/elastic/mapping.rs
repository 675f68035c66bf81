//! The index: its settings and mapping, created at start or checked if it
//! exists, and the document an item becomes (and is read back from).

use elasticsearch::http::StatusCode;
use elasticsearch::indices::{
    IndicesCreateParts, IndicesExistsParts, IndicesGetMappingParts, IndicesGetSettingsParts,
};
use rpcsupport::Item;
use serde_json::{json, Value as Json};

use super::client::reason;
use super::Inner;
use crate::store::document::{collect_text, stored_json};
use crate::store::StoreError;

impl Inner {
    /// Creates the index with [`index_definition`] unless it exists; an
    /// existing index must have our `item` field.
    pub(super) async fn ensure_index(&self) -> Result<(), StoreError> {
        // Through `read`, so a dead node among several does not stop us.
        let exists = self
            .read(|| async {
                self.client
                    .indices()
                    .exists(IndicesExistsParts::Index(&[&self.index]))
                    .send()
                    .await
            })
            .await?;
        if exists.status_code() == StatusCode::NOT_FOUND {
            let response = self
                .read(|| async {
                    self.client
                        .indices()
                        .create(IndicesCreateParts::Index(&self.index))
                        .body(index_definition())
                        .send()
                        .await
                })
                .await?;
            let status = response.status_code();
            let body: Json = response.json().await.unwrap_or_default();
            if status.is_success() {
                tracing::info!(index = %self.index, "index created");
                return Ok(());
            }
            // Another itemsaver created it meanwhile: fine, check it below.
            if body["error"]["type"] != "resource_already_exists_exception" {
                return Err(StoreError::Cluster(format!(
                    "cannot create index {}: HTTP {status}: {}",
                    self.index,
                    reason(&body)
                )));
            }
        }
        self.check_existing_index().await
    }

    async fn check_existing_index(&self) -> Result<(), StoreError> {
        let response = self
            .read(|| async {
                self.client
                    .indices()
                    .get_mapping(IndicesGetMappingParts::Index(&[&self.index]))
                    .send()
                    .await
            })
            .await?;
        let body = self.ok_json(response).await?;
        let properties = body
            .as_object()
            .and_then(|indices| indices.values().next())
            .map(|index| &index["mappings"]["properties"]);
        if properties.is_none_or(|p| p.get("item").is_none()) {
            return Err(StoreError::Cluster(format!(
                "index {} exists but was not created by the itemsaver (no `item` field); \
                 choose another index name",
                self.index
            )));
        }
        // Only a warning: someone chose speed over durability on purpose.
        let response = self
            .read(|| async {
                self.client
                    .indices()
                    .get_settings(IndicesGetSettingsParts::Index(&[&self.index]))
                    .send()
                    .await
            })
            .await?;
        let settings: Json = response.json().await.unwrap_or_default();
        let durability = settings
            .as_object()
            .and_then(|indices| indices.values().next())
            .and_then(|index| index["settings"]["index"]["translog"]["durability"].as_str());
        if durability == Some("async") {
            tracing::warn!(
                index = %self.index,
                "index.translog.durability is async: acknowledged items can be lost in a crash"
            );
        }
        Ok(())
    }
}

/// The index's settings and mapping (see the module docs).
fn index_definition() -> Json {
    json!({
        "settings": {
            "index": {
                "translog": {"durability": "request"},
                "mapping": {"ignore_malformed": true}
            },
            "analysis": {
                // The embedded store's default tokenizer: runs of letters
                // and digits, lowercased.
                "tokenizer": {
                    "crawler_words": {"type": "pattern", "pattern": "[^\\p{L}\\p{N}]+"}
                },
                "analyzer": {
                    "crawler_text": {
                        "type": "custom",
                        "tokenizer": "crawler_words",
                        "filter": ["lowercase"]
                    }
                }
            }
        },
        "mappings": {
            // Only `payload` takes new fields; anything else is our bug.
            "dynamic": "strict",
            "date_detection": false,
            "dynamic_templates": [
                {"payload_floats": {
                    "path_match": "payload.*",
                    "match_mapping_type": "double",
                    "mapping": {"type": "double"}
                }},
                {"payload_strings": {
                    "path_match": "payload.*",
                    "match_mapping_type": "string",
                    "mapping": {"type": "text", "analyzer": "crawler_text"}
                }}
            ],
            "properties": {
                "id": {"type": "keyword"},
                "url": {"type": "keyword"},
                "kind": {"type": "keyword"},
                "payload": {"type": "object", "dynamic": true},
                "all": {"type": "text", "analyzer": "crawler_text"},
                "item": {"type": "keyword", "index": false, "doc_values": false}
            }
        }
    })
}

/// The document for `item`, stored under `key`.
pub(super) fn document(key: &str, item: &Item) -> Json {
    let mut all = String::new();
    for value in item.payload.values() {
        collect_text(value, &mut all);
    }
    json!({
        "id": key,
        "url": item.url,
        "kind": item.kind,
        "payload": item.payload_json(),
        "all": all,
        "item": stored_json(item),
    })
}

/// The item in a `get` answer or a search hit.
pub(super) fn decode_hit(hit: &Json) -> Result<Item, StoreError> {
    let id = hit["_id"].as_str().unwrap_or_default();
    let corrupt = |reason: &str| StoreError::Corrupt {
        id: id.to_owned(),
        reason: reason.to_owned(),
    };
    let stored = hit["_source"]["item"]
        .as_str()
        .ok_or_else(|| corrupt("no stored item"))?;
    let json: Json = serde_json::from_str(stored).map_err(|e| corrupt(&e.to_string()))?;
    Item::from_json(&json).ok_or_else(|| corrupt("not an item"))
}
