//! The data that crosses the wire between engine, workers and itemsaver.
//!
//! Everything here is encoded with bincode, which cannot decode
//! self-describing values such as `serde_json::Value` (it needs
//! `deserialize_any`). Payload values are therefore our own [`Value`] enum,
//! which bincode round-trips and which keeps numbers as numbers, so a store
//! can range-query them. [`Value::to_json`] / [`Value::from_json`] convert at
//! the edges (stores, printing).
//!
//! - `request.rs`: engine to worker: [`Request`], [`ParserSpec`],
//!   [`FetchHints`], [`Render`], [`FetchPolicy`].
//! - `result.rs`: worker to engine: [`ParseResult`], [`PageMeta`],
//!   [`ParseLimits`], [`content_hash`].
//! - `item.rs`: [`Item`], its key and JSON, [`MAX_VALUE_DEPTH`] and the
//!   FNV hashes ([`fnv1a64`]).
//! - `value.rs`: [`Value`], the typed payload value, and the JSON writers.
//! - `store.rs`: engine and tools to itemsaver: [`SaveAck`], searches and
//!   scans.
//! - `shared.rs`: [`Shared`], an argument the caller keeps (a request, a
//!   batch of items) sent without copying it, on the wire as itself.
//! - this file: [`WorkerStatus`], the health check's answer.

use serde::{Deserialize, Serialize};

mod item;
mod request;
mod result;
mod shared;
mod store;
mod value;

pub use item::{fnv1a64, Item, MAX_VALUE_DEPTH};
pub use request::{
    host_in_domain, FetchHints, FetchPolicy, ParserSpec, PolicyRef, Render, RenderReason, Request,
    SITEMAP_PARSER,
};
pub use result::{content_hash, PageMeta, ParseLimits, ParseResult};
pub use shared::Shared;
pub use store::{
    Refusal, SaveAck, ScanCursor, ScanPage, ScanRequest, SearchRequest, SearchResponse,
};
pub use value::Value;

/// A worker's answer to a health check: cheap, independent of any page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStatus {
    /// Requests being processed right now.
    pub in_flight: u32,
    /// Requests finished since the worker started.
    pub served: u64,
    /// Its built-in parsers, so the engine can check names at start.
    pub parsers: Vec<String>,
    /// Whether it has a browser and can serve requests that need rendering.
    pub can_render: bool,
}

#[cfg(test)]
mod tests;
