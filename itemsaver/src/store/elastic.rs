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
//! the bulk answer comes after the translog is fsynced.
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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::response::Response;
use elasticsearch::http::transport::{
    MultiNodeConnectionPool, SingleNodeConnectionPool, TransportBuilder,
};
use elasticsearch::http::StatusCode;
use elasticsearch::indices::{
    IndicesCreateParts, IndicesExistsParts, IndicesGetMappingParts, IndicesGetSettingsParts,
    IndicesRefreshParts,
};
use elasticsearch::{
    BulkOperation, BulkParts, CountParts, Elasticsearch, GetParts, OpenPointInTimeParts,
    SearchParts,
};
use rpcsupport::{
    Item, Refusal, SaveAck, ScanCursor, ScanPage, ScanRequest, SearchRequest, SearchResponse,
};
use serde_json::{json, Value as Json};
use tantivy::query_grammar::{Occur, UserInputAst, UserInputBound, UserInputLeaf};
use url::Url;

use super::embedded::{collect_text, stored_json};
use super::{
    latest_per_key, query, ItemStore, Sort, StoreError, MAX_RESULT_WINDOW, MAX_SCAN_ITEMS,
    SCAN_KEEP_ALIVE, SCAN_PAGE_BYTES,
};

/// How often a bulk write is tried before the batch fails (and the engine,
/// which still holds the items, retries it later).
const WRITE_ATTEMPTS: u32 = 6;
/// First wait between write attempts; doubles each time, up to
/// [`MAX_BACKOFF`]. Six attempts wait about 3 s in all.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How often a read is tried; with several URLs, each try goes to the next
/// node, so one dead node does not fail a read.
const READ_ATTEMPTS: u32 = 3;
/// Deadline of one HTTP request. A bulk of 10 000 items fits well inside.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

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
    let client = client(settings)?;
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

fn client(settings: &Settings) -> Result<Elasticsearch, StoreError> {
    let builder = match settings.urls.as_slice() {
        [] => return Err(StoreError::Cluster("no Elasticsearch URL given".into())),
        [one] => TransportBuilder::new(SingleNodeConnectionPool::new(one.clone())),
        many => TransportBuilder::new(MultiNodeConnectionPool::round_robin(many.to_vec(), None)),
    };
    let mut builder = builder.timeout(REQUEST_TIMEOUT);
    match &settings.auth {
        Some(Auth::Basic { username, password }) => {
            builder = builder.auth(Credentials::Basic(username.clone(), password.clone()));
        }
        Some(Auth::ApiKey(key)) => {
            let credentials = match key.split_once(':') {
                Some((id, secret)) => Credentials::ApiKey(id.into(), secret.into()),
                None => Credentials::EncodedApiKey(key.clone()),
            };
            builder = builder.auth(credentials);
        }
        None => {}
    }
    if let Some(path) = &settings.ca_cert {
        let pem = std::fs::read(path).map_err(|e| {
            StoreError::Cluster(format!(
                "cannot read CA certificate {}: {e}",
                path.display()
            ))
        })?;
        let cert = Certificate::from_pem(&pem)
            .map_err(|e| StoreError::Cluster(format!("CA certificate {}: {e}", path.display())))?;
        builder = builder.cert_validation(CertificateValidation::Full(cert));
    }
    let transport = builder
        .build()
        .map_err(|e| StoreError::Cluster(format!("cannot set up the HTTP client: {e}")))?;
    Ok(Elasticsearch::new(transport))
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

/// One item's outcome in a bulk answer.
enum ItemOutcome {
    Stored,
    /// 429 or 5xx: send it again.
    Retry(String),
    /// Anything else: sending it again fails the same way.
    Refused(String),
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
        inner.refresh_if_written().await?;
        let response = inner
            .read(|| async {
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
}

impl ElasticStore {
    /// A search ordered by `sort` (query DSL's `sort`).
    async fn search_by(
        &self,
        request: &SearchRequest,
        sort: Json,
    ) -> Result<SearchResponse, StoreError> {
        let window = u64::from(request.from) + u64::from(request.size);
        if window > MAX_RESULT_WINDOW {
            return Err(StoreError::BadQuery(format!(
                "from + size is {window}, at most {MAX_RESULT_WINDOW} allowed"
            )));
        }
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
        inner.refresh_if_written().await?;
        let response = inner
            .read(|| async {
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

impl Inner {
    /// One page of a scan; see the module docs.
    async fn scan(&self, request: &ScanRequest) -> Result<ScanPage, StoreError> {
        let ast = query::parse(&request.query)?;
        let dsl = to_dsl(&ast)
            .map_err(|e| StoreError::BadQuery(format!("query {:?}: {e}", request.query)))?;
        let keep_alive = format!("{}s", SCAN_KEEP_ALIVE.as_secs());
        let bad_cursor = || StoreError::BadQuery("bad scan cursor".into());
        let (pit, after) = match &request.after {
            None => {
                self.refresh_if_written().await?;
                (self.open_point_in_time(&keep_alive).await?, None)
            }
            Some(ScanCursor(text)) => {
                let cursor: Json = serde_json::from_str(text).map_err(|_| bad_cursor())?;
                let pit = cursor["pit"].as_str().ok_or_else(bad_cursor)?.to_owned();
                (pit, Some(cursor["after"].clone()))
            }
        };
        let first = after.is_none();
        let size = request.size.clamp(1, MAX_SCAN_ITEMS);
        let mut body = json!({
            "query": dsl,
            "size": size,
            "pit": {"id": pit, "keep_alive": keep_alive},
            // `id` is unique, so the order is total (ES adds its own
            // `_shard_doc` tiebreaker to the sort values anyway).
            "sort": [{"id": "asc"}],
            "_source": ["item"],
            "track_total_hits": first,
        });
        if let Some(after) = after {
            body["search_after"] = after;
        }
        let response = self
            .read(|| async {
                self.client
                    .search(SearchParts::None)
                    .body(body.clone())
                    .send()
                    .await
            })
            .await?;
        let status = response.status_code();
        if status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND {
            // 404: the point in time expired (or never was).
            let body: Json = response.json().await.unwrap_or_default();
            return Err(StoreError::BadQuery(format!(
                "scan of {:?}: {} (a scan is kept {keep_alive} between pages)",
                request.query,
                reason(&body)
            )));
        }
        let body = self.ok_json(response).await?;
        // ES may hand out a new id for the same point in time.
        let pit = body["pit_id"].as_str().unwrap_or(&pit).to_owned();
        let hits = body["hits"]["hits"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut items = Vec::new();
        let mut bytes = 0;
        let mut last_sort = None;
        for hit in hits {
            if bytes >= SCAN_PAGE_BYTES {
                break;
            }
            let item = decode_hit(hit)?;
            bytes += item.json_len();
            items.push(item);
            last_sort = Some(hit["sort"].clone());
        }
        let full = items.len() < hits.len() || hits.len() as u64 >= u64::from(size);
        let next = match last_sort {
            Some(after) if full => {
                Some(ScanCursor(json!({"pit": pit, "after": after}).to_string()))
            }
            _ => {
                self.close_point_in_time(&pit).await;
                None
            }
        };
        let total = if first {
            Some(body["hits"]["total"]["value"].as_u64().ok_or_else(|| {
                StoreError::Cluster(format!("scan answer without a total: {body}"))
            })?)
        } else {
            None
        };
        Ok(ScanPage { items, next, total })
    }

    async fn open_point_in_time(&self, keep_alive: &str) -> Result<String, StoreError> {
        let response = self
            .read(|| async {
                self.client
                    .open_point_in_time(OpenPointInTimeParts::Index(&[&self.index]))
                    .keep_alive(keep_alive)
                    .send()
                    .await
            })
            .await?;
        let body = self.ok_json(response).await?;
        body["id"].as_str().map(str::to_owned).ok_or_else(|| {
            StoreError::Cluster(format!("point in time answer without an id: {body}"))
        })
    }

    /// Frees a finished scan's point in time at once; failing that, ES
    /// frees it when its keep-alive runs out, so a failure is only logged.
    async fn close_point_in_time(&self, pit: &str) {
        let sent = self
            .client
            .close_point_in_time()
            .body(json!({"id": pit}))
            .send()
            .await;
        match sent {
            Ok(response) if response.status_code().is_success() => {}
            Ok(response) => {
                tracing::debug!(status = %response.status_code(), "closing a point in time failed")
            }
            Err(e) => tracing::debug!(error = %e, "closing a point in time failed"),
        }
    }

    /// Asks every node for its version (the pool hands out nodes in turn);
    /// fine if at least one answers, with a warning for each that does not.
    async fn check_reachable(&self, nodes: usize) -> Result<(), StoreError> {
        let mut failures = Vec::new();
        let mut answered = false;
        for _ in 0..nodes {
            match self.client.info().send().await {
                Ok(response) if response.status_code().is_success() => {
                    let body: Json = response.json().await.unwrap_or_default();
                    tracing::info!(
                        version = %body["version"]["number"].as_str().unwrap_or("?"),
                        cluster = %body["cluster_name"].as_str().unwrap_or("?"),
                        "elasticsearch reachable"
                    );
                    answered = true;
                }
                Ok(response) => {
                    let status = response.status_code();
                    let body: Json = response.json().await.unwrap_or_default();
                    let hint = if status == StatusCode::UNAUTHORIZED {
                        " (check es_username / es_password / es_api_key)"
                    } else {
                        ""
                    };
                    failures.push(format!("HTTP {status}{hint}: {}", reason(&body)));
                }
                Err(e) => failures.push(error_chain(&e)),
            }
        }
        for failure in &failures {
            tracing::warn!(%failure, "an Elasticsearch node did not answer");
        }
        if answered {
            Ok(())
        } else {
            Err(StoreError::Cluster(format!(
                "cannot reach Elasticsearch at {}: {}",
                self.urls,
                failures.join("; ")
            )))
        }
    }

    /// Creates the index with [`index_definition`] unless it exists; an
    /// existing index must have our `item` field.
    async fn ensure_index(&self) -> Result<(), StoreError> {
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

    /// Stores every item, retrying the ones that fail transiently; returns
    /// the ones Elasticsearch refused for good.
    async fn put_all(&self, items: Vec<(String, Item)>) -> Result<Vec<Refusal>, StoreError> {
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

    /// Sends a read, again on transport errors, 429 and 5xx (with several
    /// URLs, each try goes to the next node).
    async fn read<F, Fut>(&self, send: F) -> Result<Response, StoreError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Response, elasticsearch::Error>>,
    {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let failure = match send().await {
                Ok(response) => {
                    let status = response.status_code().as_u16();
                    if status != 429 && status < 500 {
                        return Ok(response);
                    }
                    let body: Json = response.json().await.unwrap_or_default();
                    format!("HTTP {status}: {}", reason(&body))
                }
                Err(e) => error_chain(&e),
            };
            if attempt >= READ_ATTEMPTS {
                return Err(StoreError::Cluster(format!("{}: {failure}", self.urls)));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            attempt += 1;
        }
    }

    /// Makes writes answered so far visible to `count` and `search`; see
    /// the module docs.
    async fn refresh_if_written(&self) -> Result<(), StoreError> {
        let written = self.writes.load(Ordering::SeqCst);
        if self.refreshed.load(Ordering::SeqCst) >= written {
            return Ok(());
        }
        let response = self
            .read(|| async {
                self.client
                    .indices()
                    .refresh(IndicesRefreshParts::Index(&[&self.index]))
                    .send()
                    .await
            })
            .await?;
        self.ok_json(response).await?;
        self.refreshed.fetch_max(written, Ordering::SeqCst);
        Ok(())
    }

    /// The body of a successful answer, or the error it carries.
    async fn ok_json(&self, response: Response) -> Result<Json, StoreError> {
        let status = response.status_code();
        let body: Json = response
            .json()
            .await
            .map_err(|e| StoreError::Cluster(format!("HTTP {status}: unreadable answer: {e}")))?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(StoreError::Cluster(format!(
                "index {}: HTTP {status}: {}",
                self.index,
                reason(&body)
            )))
        }
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
fn document(key: &str, item: &Item) -> Json {
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
fn decode_hit(hit: &Json) -> Result<Item, StoreError> {
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

/// Translates a parsed query (see [`query`]) to query DSL with the meaning
/// the embedded store gives it: terms are ANDed unless OR is written, a
/// field value is a phrase of its words, free text looks in the payload's
/// strings (`all`) and matches `kind` or `url` exactly.
fn to_dsl(ast: &UserInputAst) -> Result<Json, String> {
    match ast {
        UserInputAst::Clause(clauses) => {
            if clauses.is_empty() {
                return Ok(json!({"match_none": {}}));
            }
            let (mut must, mut should, mut must_not) = (Vec::new(), Vec::new(), Vec::new());
            for (occur, clause) in clauses {
                let query = to_dsl(clause)?;
                match occur.unwrap_or(Occur::Must) {
                    Occur::Must => must.push(query),
                    Occur::Should => should.push(query),
                    Occur::MustNot => must_not.push(query),
                }
            }
            Ok(json!({"bool": {"must": must, "should": should, "must_not": must_not}}))
        }
        UserInputAst::Boost(inner, boost) => {
            Ok(json!({"bool": {"must": [to_dsl(inner)?], "boost": boost.into_inner()}}))
        }
        UserInputAst::Leaf(leaf) => leaf_to_dsl(leaf),
    }
}

fn leaf_to_dsl(leaf: &UserInputLeaf) -> Result<Json, String> {
    match leaf {
        UserInputLeaf::All => Ok(json!({"match_all": {}})),
        UserInputLeaf::Literal(literal) => {
            let text = literal.phrase.as_str();
            match literal.field_name.as_deref() {
                None => Ok(json!({"bool": {"should": [
                    phrase("all", text, literal.slop, literal.prefix),
                    {"term": {"kind": text}},
                    {"term": {"url": text}},
                ]}})),
                Some(field) => field_literal(field, text, literal.slop, literal.prefix),
            }
        }
        UserInputLeaf::Range {
            field,
            lower,
            upper,
        } => {
            let field = field
                .as_deref()
                .ok_or("a range needs a field, e.g. age:[20 TO 30]")?;
            check_indexed(field)?;
            let mut range = serde_json::Map::new();
            for (bound, inclusive, exclusive) in [(lower, "gte", "gt"), (upper, "lte", "lt")] {
                match bound {
                    UserInputBound::Inclusive(v) if v != "*" => {
                        range.insert(inclusive.into(), v.as_str().into());
                    }
                    UserInputBound::Exclusive(v) if v != "*" => {
                        range.insert(exclusive.into(), v.as_str().into());
                    }
                    _ => {}
                }
            }
            if range.is_empty() {
                return Ok(json!({"exists": {"field": field}}));
            }
            Ok(json!({"range": {field: range}}))
        }
        UserInputLeaf::Set { field, elements } => {
            let field = field
                .as_deref()
                .ok_or("a set needs a field, e.g. city: IN [shanghai beijing]")?;
            let any = elements
                .iter()
                .map(|e| field_literal(field, e, 0, false))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(json!({"bool": {"should": any}}))
        }
        UserInputLeaf::Exists { field } => {
            check_indexed(field)?;
            Ok(json!({"exists": {"field": field}}))
        }
        // The embedded store does not allow them either.
        UserInputLeaf::Regex { .. } => Err("regex queries are not allowed".into()),
    }
}

/// `field:text`. Keyword fields match the whole value; text and numeric
/// fields match the phrase of its words (a number as a number).
fn field_literal(field: &str, text: &str, slop: u32, prefix: bool) -> Result<Json, String> {
    check_indexed(field)?;
    Ok(match field {
        "id" | "url" | "kind" if prefix => json!({"prefix": {field: text}}),
        "id" | "url" | "kind" => json!({"term": {field: text}}),
        _ => phrase(field, text, slop, prefix),
    })
}

/// A phrase of `text`'s words in `field`; one word is a plain term. Lenient,
/// so `age:abc` on a numeric field finds nothing instead of failing, as in
/// the embedded store.
fn phrase(field: &str, text: &str, slop: u32, prefix: bool) -> Json {
    let kind = if prefix { "phrase_prefix" } else { "phrase" };
    // `payload` alone means any payload key.
    let field = if field == "payload" {
        "payload.*"
    } else {
        field
    };
    json!({"multi_match": {
        "query": text,
        "fields": [field],
        "type": kind,
        "slop": slop,
        "lenient": true,
    }})
}

fn check_indexed(field: &str) -> Result<(), String> {
    if field == "item" {
        Err("field `item` is not indexed".into())
    } else {
        Ok(())
    }
}

/// The `reason` of an ES error body, or the body itself.
fn reason(body: &Json) -> String {
    error_reason(Some(&body["error"]))
}

fn error_reason(error: Option<&Json>) -> String {
    match error {
        Some(Json::Object(e)) => {
            let kind = e.get("type").and_then(Json::as_str).unwrap_or("error");
            let reason = e.get("reason").and_then(Json::as_str).unwrap_or_default();
            let cause = e
                .get("caused_by")
                .and_then(|c| c.get("reason"))
                .and_then(Json::as_str);
            match cause {
                Some(cause) if cause != reason => format!("{kind}: {reason} ({cause})"),
                _ => format!("{kind}: {reason}"),
            }
        }
        Some(Json::String(s)) => s.clone(),
        Some(other) if !other.is_null() => other.to_string(),
        _ => "no reason given".into(),
    }
}

/// An error with its sources: reqwest's own message ("error sending
/// request") hides the useful part ("connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dsl(q: &str) -> Json {
        to_dsl(&query::parse(q).unwrap()).unwrap()
    }

    /// Payload fields get their prefix, ranges their bounds, keyword fields exact terms.
    #[test]
    fn translates_fields_and_ranges() {
        assert_eq!(
            dsl("age:[20 TO 30}"),
            json!({"range": {"payload.age": {"gte": "20", "lt": "30"}}})
        );
        assert_eq!(dsl("age:<30")["range"]["payload.age"], json!({"lt": "30"}));
        let q = dsl("kind:profile city:shanghai");
        assert_eq!(q["bool"]["must"][0], json!({"term": {"kind": "profile"}}));
        assert_eq!(
            q["bool"]["must"][1]["multi_match"]["fields"],
            json!(["payload.city"])
        );
    }

    /// OR becomes should, NOT must_not, and a pure negation excludes from everything.
    #[test]
    fn translates_boolean_operators() {
        let q = dsl("a OR b");
        assert_eq!(q["bool"]["should"].as_array().unwrap().len(), 2);
        let q = dsl("NOT a");
        assert_eq!(q["bool"]["must_not"].as_array().unwrap().len(), 1);
        assert_eq!(q["bool"]["must"][0], json!({"match_all": {}}));
    }

    /// Regexes and queries on the stored item are refused, as by the embedded store.
    #[test]
    fn refuses_what_the_embedded_store_refuses() {
        assert!(to_dsl(&query::parse("url:/http.*/").unwrap()).is_err());
        assert!(to_dsl(&query::parse("item:x").unwrap()).is_err());
        assert!(to_dsl(&query::parse("[1 TO 2]").unwrap()).is_err());
    }

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
