//! What the itemsaver answers: [`SaveAck`], searches and scans.

use serde::{Deserialize, Serialize};

use super::Item;

/// The itemsaver's answer to a batch: every item in it is durable, except
/// the ones named in `refused`, which the store turned down for good
/// (sending them again would fail the same way). The engine forgets the
/// whole batch on this answer and records the refused items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaveAck {
    /// Items written (upserted) by this batch.
    pub stored: u32,
    /// Items not stored, one entry per key, with the reason.
    pub refused: Vec<Refusal>,
}

impl SaveAck {
    /// Every one of `stored` items stored, none refused.
    pub fn all(stored: u32) -> SaveAck {
        SaveAck {
            stored,
            refused: Vec::new(),
        }
    }
}

/// One item a store will not take, named by its [`Item::key`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The item's key.
    pub key: String,
    /// Why, in the store's words.
    pub reason: String,
}

/// A search over stored items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchRequest {
    /// Query text: free text, `field:value`, AND/OR/NOT.
    pub query: String,
    /// Hits to skip (for paging).
    pub from: u32,
    /// Hits to return.
    pub size: u32,
}

/// One page of search hits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResponse {
    /// Hits for the whole query, not just this page.
    pub total: u64,
    /// The hits on this page, best first.
    pub items: Vec<Item>,
}

/// One page of a scan: every item matching `query`, in an order that stays
/// fixed for the whole scan, a page at a time. Unlike [`SearchRequest`]
/// it has no `from`, so the millionth item costs what the first does
/// (`itemsaver export` reads a whole store this way).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRequest {
    /// Query text, as in [`SearchRequest::query`]; empty means every item.
    pub query: String,
    /// Where the previous page ended ([`ScanPage::next`]); `None` starts
    /// a new scan.
    pub after: Option<ScanCursor>,
    /// Most items on the page. The store may send fewer (it caps both the
    /// count and the bytes of a page), so only [`ScanPage::next`] being
    /// `None` means the end.
    pub size: u32,
}

/// Where a scan goes on: opaque to clients, meaningful only to the store
/// that made it, and only for a while (the store keeps the scan's snapshot
/// open for some minutes after each page; a later page is refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanCursor(pub String);

/// One page of a scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanPage {
    /// The items on this page.
    pub items: Vec<Item>,
    /// Pass as [`ScanRequest::after`] for the next page; `None` once the
    /// scan is done.
    pub next: Option<ScanCursor>,
    /// How many items match, as of the snapshot the scan reads; set on the
    /// first page only (counting costs a pass over the hits).
    pub total: Option<u64>,
}
