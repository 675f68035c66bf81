//! [`Item`], the record a page yields, its key, its JSON, and the
//! stable hashes the contract uses.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::value::JsonItem;
use super::Value;

/// A structured record extracted from a page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The page the item came from.
    pub url: String,
    /// What sort of record this is, e.g. `profile`.
    pub kind: String,
    /// Identity used to upsert; `None` means "derive one from url and kind"
    /// (see [`Item::key`]).
    pub id: Option<String>,
    /// The record's fields, typed.
    pub payload: BTreeMap<String, Value>,
}

/// Deepest [`Value`] a store takes: a payload's own values are depth 1, the
/// elements of a list among them depth 2, and so on. Both stores keep an
/// item as JSON and read it back with serde_json, whose recursion limit
/// (128) counts the item's own object and its payload too; 64 leaves room
/// to spare and is far more than any page's data needs. The itemsaver
/// refuses a deeper item by name; the wire decoder
/// ([`crate::codec::DEFAULT_MAX_DECODE_DEPTH`]) lets such an item arrive,
/// so it can be.
pub const MAX_VALUE_DEPTH: usize = 64;

impl Item {
    /// Whether any payload value nests deeper than `max` (see
    /// [`MAX_VALUE_DEPTH`]). Stops descending at `max`, so the check itself
    /// is bounded whatever the item.
    pub fn deeper_than(&self, max: usize) -> bool {
        self.payload.values().any(|v| v.deeper_than(max))
    }

    /// The id a store files this item under: its own id, or a stable one
    /// derived from kind and URL, so re-saving an id-less item still
    /// overwrites rather than duplicates.
    pub fn key(&self) -> String {
        match &self.id {
            Some(id) => id.clone(),
            None => format!(
                "h{:032x}",
                fnv1a128(&[self.kind.as_bytes(), b"\n", self.url.as_bytes()])
            ),
        }
    }

    /// The whole item as a JSON object (`url`, `kind`, `id`, `payload`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "url": self.url,
            "kind": self.kind,
            "id": self.key(),
            "payload": self.payload_json(),
        })
    }

    /// The payload as a JSON object (as in [`Item::to_json`]).
    pub fn payload_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.payload
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        )
    }

    /// The text of [`Item::to_json`] with `id` in place of the key (`None`
    /// writes `null`): what a store keeps to give back exactly what was
    /// saved. Written straight from the item, without building the JSON
    /// tree first (several times cheaper).
    pub fn json_text_with_id(&self, id: Option<&str>) -> String {
        serde_json::to_string(&JsonItem { item: self, id }).expect("writing to a String")
    }

    /// The length in bytes of `to_json().to_string()`, counted without
    /// writing it anywhere.
    pub fn json_len(&self) -> usize {
        struct Count(usize);
        impl std::io::Write for Count {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0 += buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut count = Count(0);
        let key = self.key();
        serde_json::to_writer(
            &mut count,
            &JsonItem {
                item: self,
                id: Some(&key),
            },
        )
        .expect("counting cannot fail");
        count.0
    }

    /// Inverse of [`Item::to_json`]; `None` if a required key is missing.
    pub fn from_json(json: &serde_json::Value) -> Option<Item> {
        let text = |k: &str| json.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let payload = match json.get("payload").map(Value::from_json) {
            Some(Value::Map(m)) => m,
            None | Some(Value::Null) => BTreeMap::new(),
            Some(_) => return None,
        };
        Some(Item {
            url: text("url")?,
            kind: text("kind")?,
            id: text("id"),
            payload,
        })
    }
}

/// FNV-1a, 64 bits: tiny and stable across versions, platforms and runs
/// (unlike `std`'s hasher), so what it hashes can be saved and compared
/// between processes: the engine's URL fingerprints, rule-set ids.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// FNV-1a, 128 bits: tiny, stable across versions and platforms (unlike
/// `std`'s hasher), and wide enough that derived ids do not collide in
/// practice.
fn fnv1a128(parts: &[&[u8]]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let mut h = OFFSET;
    for part in parts {
        for &b in *part {
            h ^= b as u128;
            h = h.wrapping_mul(PRIME);
        }
    }
    h
}
