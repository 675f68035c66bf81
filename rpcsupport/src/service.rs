//! The tarpc services. `#[tarpc::service]` generates, for each trait, a
//! client (`CrawlClient`, `ItemSaverClient`) and a `serve()` adapter for
//! implementations.

use crate::error::{CrawlError, ParseError, SaveError};
use crate::types::{
    Item, ParseResult, PolicyRef, Request, SaveAck, ScanPage, ScanRequest, SearchRequest,
    SearchResponse, Shared, WorkerStatus,
};

/// Served by each worker: fetch and parse one page.
#[tarpc::service]
pub trait Crawl {
    /// Fetch `request.url` under `policy` (given here, or earlier on this
    /// connection) and run `request.parser` on it.
    async fn process(
        request: Shared<Request>,
        policy: PolicyRef,
    ) -> Result<ParseResult, CrawlError>;
    /// A cheap liveness check that touches no page, so the engine can tell a
    /// slow page from a dead worker.
    async fn status() -> WorkerStatus;
    /// Compile a rules file (its canonical JSON) and keep it for requests
    /// whose parser carries `ruleset = <the returned id>`.
    async fn load_rules(rules_json: String) -> Result<String, ParseError>;
}

/// Served by the itemsaver: durable storage of items, and reads over them.
#[tarpc::service]
pub trait ItemSaver {
    /// Store a batch; the answer comes only once every item is durable.
    /// Items are upserted by [`Item::key`], so resending a batch is safe.
    async fn save(items: Shared<Vec<Item>>) -> Result<SaveAck, SaveError>;
    /// One item by its key.
    async fn get(id: String) -> Result<Option<Item>, SaveError>;
    /// How many items are stored.
    async fn count() -> Result<u64, SaveError>;
    /// Query the stored items.
    async fn search(request: SearchRequest) -> Result<SearchResponse, SaveError>;
    /// One page of every item matching `request.query`, for export: pages
    /// follow each other by cursor, never by offset. An unknown or expired
    /// cursor is a `SaveError::BadQuery`.
    async fn scan(request: ScanRequest) -> Result<ScanPage, SaveError>;
    /// Remove items by key (pages that are gone on a recrawl), durable
    /// before the answer, like `save`. Keys not stored are no error. The
    /// answer is how many of the keys were stored.
    async fn delete(keys: Vec<String>) -> Result<u64, SaveError>;
}

/// The method a request or response message belongs to, so a client can
/// check that an answer is of the kind it asked for. tarpc's generated
/// clients do not: they meet a response of another method with
/// `unreachable!()`, so a bad server could panic the caller.
pub trait Method {
    /// The method's name, as in the service trait.
    fn method(&self) -> &'static str;
}

impl Method for CrawlRequest {
    fn method(&self) -> &'static str {
        match self {
            CrawlRequest::Process { .. } => "process",
            CrawlRequest::Status { .. } => "status",
            CrawlRequest::LoadRules { .. } => "load_rules",
        }
    }
}

impl Method for CrawlResponse {
    fn method(&self) -> &'static str {
        match self {
            CrawlResponse::Process(_) => "process",
            CrawlResponse::Status(_) => "status",
            CrawlResponse::LoadRules(_) => "load_rules",
        }
    }
}

impl Method for ItemSaverRequest {
    fn method(&self) -> &'static str {
        match self {
            ItemSaverRequest::Save { .. } => "save",
            ItemSaverRequest::Get { .. } => "get",
            ItemSaverRequest::Count { .. } => "count",
            ItemSaverRequest::Search { .. } => "search",
            ItemSaverRequest::Scan { .. } => "scan",
            ItemSaverRequest::Delete { .. } => "delete",
        }
    }
}

impl Method for ItemSaverResponse {
    fn method(&self) -> &'static str {
        match self {
            ItemSaverResponse::Save(_) => "save",
            ItemSaverResponse::Get(_) => "get",
            ItemSaverResponse::Count(_) => "count",
            ItemSaverResponse::Search(_) => "search",
            ItemSaverResponse::Scan(_) => "scan",
            ItemSaverResponse::Delete(_) => "delete",
        }
    }
}
