//! The cluster store: one Elasticsearch index (default `crawler_items`).
//!
//! Each item is one document, `_id` = [`Item::key`], so saving an item again
//! overwrites it:
//!
//! | field     | mapping                        | why                                          |
//! |-----------|--------------------------------|----------------------------------------------|
//! | `id`      | keyword                        | exact match; ties in search order            |
//! | `url`     | keyword                        | exact match, e.g. `url:"http://…"`           |
//! | `kind`    | keyword                        | exact match, e.g. `kind:profile`             |
//! | `payload` | object, dynamic                | `age:31`, `age:[20 TO 30]`, `city:shanghai`  |
//! | `all`     | text                           | the payload's strings, for free text         |
//! | `item`    | keyword, not indexed           | the whole item as JSON, returned by reads    |
//!
//! Payload keys are mapped on first sight: whole numbers as `long`, other
//! numbers as `double` (not ES's default 32-bit `float`), strings as text,
//! no date guessing. Text fields use the same word splitting as the
//! embedded store (runs of letters and digits, lowercased), so a query
//! finds the same items in both. Reads return the `item` string rather than
//! the indexed fields, so an `Int` stays `Int` and a `Float` stays `Float`
//! even when JSON would blur them (`3.0`). A value whose type clashes with
//! the mapping is kept, just not indexed in that field
//! (`index.mapping.ignore_malformed`), as the embedded store keeps
//! anything; only a clash ES cannot skip (an object where a plain value was
//! mapped, or the reverse) rejects the item.
//!
//! Writes: one `_bulk` request per batch. Items ES fails with 429 or 5xx are
//! sent again, alone, with backoff; items it refuses for good are named in
//! the acknowledgement ([`SaveAck::refused`]). A batch is acknowledged only
//! once every other item is stored, and a stored item is durable: the index is created with
//! `index.translog.durability: request` (ES's default, made explicit), so
//! the bulk answer comes after the translog is fsynced. Deletes go the
//! same way, one `_bulk` of delete actions per call, a `not_found` item
//! being no error.
//!
//! Visibility: ES makes writes searchable at its next refresh, up to a
//! second later. Instead of making every save wait for that
//! (`refresh=wait_for`, which would cap a crawl at one batch per refresh
//! interval), `count` and `search` refresh the index first when this store
//! has written since the last refresh; `get` is real-time in ES anyway. So
//! a count right after a save sees it, and saves stay fast. Writers in
//! other processes become visible within the refresh interval.
//!
//! Scans (for export) read a point in time opened at the first page,
//! sorted by `id`, each page continuing with `search_after` from the last
//! hit's sort values: never a deep `from`, which ES caps at 10 000 and
//! pays for in proportion. The cursor carries the point in time's id and
//! those sort values. (noida-db, the test server, supports both.)
//!
//! # Layout
//!
//! This file holds the store, its settings and its [`ItemStore`] impl; the
//! rest is split by concern:
//! - `client`: the HTTP client, the reachability check, reads retried
//!   across nodes, the refresh before counts and searches, ES error text.
//! - `mapping`: the index's settings and mapping, created or checked at
//!   start, and the document an item becomes.
//! - `bulk`: writes, one `_bulk` per batch, transient failures retried.
//! - `dsl`: the parsed query translated to query DSL.
//! - `scan`: export scans over a point in time with `search_after`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use elasticsearch::http::StatusCode;
use elasticsearch::{CountParts, Elasticsearch, GetParts, SearchParts};
use rpcsupport::{Item, SaveAck, ScanPage, ScanRequest, SearchRequest, SearchResponse};
use serde_json::{json, Value as Json};
use url::Url;

use super::{check_window, latest_per_key, query, ItemStore, Sort, StoreError};
use client::reason;
use dsl::to_dsl;
use mapping::decode_hit;

mod bulk;
mod client;
mod dsl;
mod mapping;
mod scan;

/// How to reach the cluster; checked by `ItemsaverConfig::validate`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// One URL per node to talk to (round-robin); at least one.
    pub urls: Vec<Url>,
    /// The index holding the items.
    pub index: String,
    /// Credentials, if the cluster wants them.
    pub auth: Option<Auth>,
    /// PEM file of the CA that signed the cluster's certificate, for
    /// clusters with their own CA (ES 8's default); `None` trusts the
    /// usual web roots.
    pub ca_cert: Option<std::path::PathBuf>,
}

/// Credentials for the cluster.
#[derive(Clone)]
pub enum Auth {
    /// HTTP basic authentication.
    Basic {
        /// The user.
        username: String,
        /// Their password.
        password: String,
    },
    /// An API key: either `id:api_key` or the base64 `encoded` form ES
    /// prints when it creates a key.
    ApiKey(String),
}

impl std::fmt::Debug for Auth {
    /// Never prints secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Auth::ApiKey(_) => write!(f, "ApiKey(***)"),
        }
    }
}

/// Connects to the cluster, fails with a clear message if no node answers,
/// and creates the index with its mapping if it does not exist yet.
pub async fn connect(settings: &Settings) -> Result<ElasticStore, StoreError> {
    let client = client::client(settings)?;
    let urls = settings
        .urls
        .iter()
        .map(Url::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let store = ElasticStore {
        inner: Arc::new(Inner {
            client,
            index: settings.index.clone(),
            urls,
            // Unequal, so the first read refreshes: it then sees what an
            // earlier itemsaver wrote just before it stopped.
            writes: AtomicU64::new(1),
            refreshed: AtomicU64::new(0),
        }),
    };
    store.inner.check_reachable(settings.urls.len()).await?;
    store.inner.ensure_index().await?;
    Ok(store)
}

/// An Elasticsearch index. Cheap to clone; clones share the connections.
#[derive(Clone)]
pub struct ElasticStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ElasticStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElasticStore")
            .field("urls", &self.inner.urls)
            .field("index", &self.inner.index)
            .finish_non_exhaustive()
    }
}

impl ElasticStore {
    /// The index holding the items.
    pub fn index(&self) -> &str {
        &self.inner.index
    }

    /// The node URLs, comma-separated, for messages.
    pub fn urls(&self) -> &str {
        &self.inner.urls
    }
}

struct Inner {
    client: Elasticsearch,
    index: String,
    urls: String,
    /// Bulk requests answered so far (stored or not, something may have
    /// changed). Bumped after the answer, so a read that sees the new
    /// value and then refreshes sees the write.
    writes: AtomicU64,
    /// The value of `writes` the last refresh is known to cover.
    refreshed: AtomicU64,
}

#[async_trait]
impl ItemStore for ElasticStore {
    async fn put_batch(&self, items: Vec<Item>) -> Result<SaveAck, StoreError> {
        if items.is_empty() {
            return Ok(SaveAck::all(0));
        }
        let keys: Vec<String> = items.iter().map(Item::key).collect();
        let result = self.inner.put_all(latest_per_key(items)).await;
        self.inner.writes.fetch_add(1, Ordering::SeqCst);
        let refused = result?;
        // Every copy of a refused key counts as refused (only the last one
        // was sent).
        let stored = keys
            .iter()
            .filter(|key| !refused.iter().any(|r| &r.key == *key))
            .count();
        Ok(SaveAck {
            stored: u32::try_from(stored).unwrap_or(u32::MAX),
            refused,
        })
    }

    async fn get(&self, id: &str) -> Result<Option<Item>, StoreError> {
        let inner = &self.inner;
        let response = inner
            .read(|| async {
                inner
                    .client
                    .get(GetParts::IndexId(&inner.index, id))
                    ._source_includes(&["item"])
                    .send()
                    .await
            })
            .await?;
        if response.status_code() == StatusCode::NOT_FOUND {
            let body: Json = response.json().await.unwrap_or_default();
            // A missing document says `found: false`; a missing index is an
            // error body instead.
            return match body.get("found") {
                Some(_) => Ok(None),
                None => Err(StoreError::Cluster(format!(
                    "index {} not found: {}",
                    inner.index,
                    reason(&body)
                ))),
            };
        }
        let body = inner.ok_json(response).await?;
        decode_hit(&body).map(Some)
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let inner = &self.inner;
        let response = inner
            .read_fresh(|| async {
                inner
                    .client
                    .count(CountParts::Index(&[&inner.index]))
                    .send()
                    .await
            })
            .await?;
        let body = inner.ok_json(response).await?;
        body["count"]
            .as_u64()
            .ok_or_else(|| StoreError::Cluster(format!("count answer without a count: {body}")))
    }

    async fn search(&self, request: &SearchRequest) -> Result<SearchResponse, StoreError> {
        // Best first; equal scores in a fixed order, so pages neither
        // repeat nor skip items.
        self.search_by(request, json!(["_score", {"id": "asc"}]))
            .await
    }

    async fn search_sorted(
        &self,
        request: &SearchRequest,
        sort: &Sort,
    ) -> Result<SearchResponse, StoreError> {
        let order = if sort.descending { "desc" } else { "asc" };
        let field = format!("payload.{}", sort.field);
        // `unmapped_type`: a key no item has yet sorts every hit as lacking
        // it, instead of failing the search; items without it go last, as
        // in the embedded store. A text key fails (ES cannot sort text),
        // which the page shows as a bad query.
        let by = json!([
            {field: {"order": order, "missing": "_last", "unmapped_type": "double"}},
            {"id": "asc"}
        ]);
        self.search_by(request, by).await
    }

    async fn scan(&self, request: &ScanRequest) -> Result<ScanPage, StoreError> {
        self.inner.scan(request).await
    }

    /// Counts the per-item `result: "deleted"` answers; `not_found` is no
    /// error. Ordered with this store's other writes only as far as
    /// Elasticsearch orders requests: one handed over after an earlier
    /// answer comes after it, ones in flight together in any order.
    async fn delete(&self, keys: &[String]) -> Result<u64, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let result = self.inner.delete_all(keys).await;
        // As after a save: the next count or search refreshes first.
        self.inner.writes.fetch_add(1, Ordering::SeqCst);
        result
    }
}

impl ElasticStore {
    /// A search ordered by `sort` (query DSL's `sort`).
    async fn search_by(
        &self,
        request: &SearchRequest,
        sort: Json,
    ) -> Result<SearchResponse, StoreError> {
        check_window(request)?;
        let ast = query::parse(&request.query)?;
        let dsl = to_dsl(&ast)
            .map_err(|e| StoreError::BadQuery(format!("query {:?}: {e}", request.query)))?;
        let body = json!({
            "query": dsl,
            "from": request.from,
            "size": request.size,
            // Exact totals: by default ES stops counting at 10 000.
            "track_total_hits": true,
            "sort": sort,
            "_source": ["item"],
        });
        let inner = &self.inner;
        let response = inner
            .read_fresh(|| async {
                inner
                    .client
                    .search(SearchParts::Index(&[&inner.index]))
                    .body(body.clone())
                    .send()
                    .await
            })
            .await?;
        if response.status_code() == StatusCode::BAD_REQUEST {
            let body: Json = response.json().await.unwrap_or_default();
            return Err(StoreError::BadQuery(format!(
                "query {:?}: {}",
                request.query,
                reason(&body)
            )));
        }
        let body = inner.ok_json(response).await?;
        let total = body["hits"]["total"]["value"]
            .as_u64()
            .ok_or_else(|| StoreError::Cluster(format!("search answer without a total: {body}")))?;
        let items = body["hits"]["hits"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(decode_hit)
            .collect::<Result<_, _>>()?;
        Ok(SearchResponse { total, items })
    }
}
