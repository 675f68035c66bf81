//! `itemsaver export` (issue 15) against an itemsaver served on
//! 127.0.0.1:0, once over the embedded store and once over Elasticsearch:
//! what comes out equals what the store holds, over several scan pages.
//!
//! The Elasticsearch half needs `CRAWLER_TEST_ES_URL` (`source
//! scripts/noida.sh`); without it those tests print a notice and pass,
//! except under CI, where they fail.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use itemsaver::export::{self, ExportOptions, Format, Progress};
use itemsaver::store::elastic::Settings;
use itemsaver::store::Sort;
use itemsaver::{ItemStore, ServerOptions, StoreError};
use rpcsupport::{
    ConnectOptions, HostAddr, Item, ItemSaverClient, SaveAck, ScanPage, ScanRequest, SearchRequest,
    SearchResponse, Value,
};
use tokio::sync::oneshot;

/// More than two pages of [`PAGE`].
const ITEMS: usize = 2_500;
const PAGE: u32 = 1_000;

/// An itemsaver over `store`, served until dropped.
struct Served {
    client: ItemSaverClient,
    store: Arc<dyn ItemStore>,
    _stop: oneshot::Sender<()>,
    _dir: Option<tempfile::TempDir>,
    /// The Elasticsearch URL and index, deleted once the test passed.
    es_index: Option<(String, String)>,
}

impl Served {
    async fn cleanup(self) {
        if let Some((url, index)) = self.es_index {
            let transport = elasticsearch::http::transport::Transport::single_node(&url).unwrap();
            let client = elasticsearch::Elasticsearch::new(transport);
            let _ = client
                .indices()
                .delete(elasticsearch::indices::IndicesDeleteParts::Index(&[&index]))
                .send()
                .await;
        }
    }
}

async fn serve(store: Arc<dyn ItemStore>, dir: Option<tempfile::TempDir>) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = HostAddr::from(listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let served = store.clone();
    tokio::spawn(async move {
        itemsaver::serve(listener, served, ServerOptions::default(), async {
            let _ = stopped.await;
        })
        .await
    });
    let client = rpcsupport::connect_itemsaver(&addr, ConnectOptions::default())
        .await
        .unwrap();
    Served {
        client,
        store,
        _stop: stop,
        _dir: dir,
        es_index: None,
    }
}

async fn embedded() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(itemsaver::open_embedded(dir.path()).unwrap());
    serve(store, Some(dir)).await
}

async fn elastic(test: &str) -> Option<Served> {
    let url = testsupport::elasticsearch_url(test)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let index = format!(
        "export-{}-{}-{nanos}",
        test.replace('_', "-"),
        std::process::id()
    );
    let settings = Settings {
        urls: vec![url.parse().unwrap()],
        index: index.clone(),
        auth: None,
        ca_cert: None,
    };
    let store = Arc::new(itemsaver::open_elastic(&settings).await.unwrap());
    let mut served = serve(store, None).await;
    served.es_index = Some((url, index));
    Some(served)
}

/// Runs each test once per store, as `embedded::NAME` and `elastic::NAME`.
macro_rules! both_stores {
    ($($test:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(&super::embedded().await).await;
                }
            )*
        }
        mod elastic {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(served) = super::elastic(stringify!($test)).await else {
                        return;
                    };
                    super::$test(&served).await;
                    served.cleanup().await;
                }
            )*
        }
    };
}

both_stores!(
    jsonl_equals_the_store,
    csv_has_a_column_per_payload_key,
    csv_fields_pick_the_columns,
    a_query_filters_the_export,
    a_scan_reads_its_snapshot,
    sorted_search_orders_by_a_number,
    large_items_make_shorter_pages,
);

/// Profile `n`: every third lives in beijing, every tenth has a nested
/// list, every hundredth a name with a comma and a quote.
fn profile(n: usize) -> Item {
    let mut payload = BTreeMap::new();
    let name = if n.is_multiple_of(100) {
        format!("user {n}, \"the {n}th\"")
    } else {
        format!("user {n}")
    };
    payload.insert("name".to_string(), Value::from(name));
    let city = if n.is_multiple_of(3) {
        "beijing"
    } else {
        "shanghai"
    };
    payload.insert("city".to_string(), Value::from(city));
    payload.insert("age".to_string(), Value::Int(18 + (n % 60) as i64));
    if n.is_multiple_of(10) {
        payload.insert(
            "tags".to_string(),
            Value::List(vec![Value::from("a"), Value::from(format!("t{n}"))]),
        );
    }
    Item {
        url: format!("http://127.0.0.1:1/profile/{n}"),
        kind: "profile".into(),
        id: Some(format!("p{n:05}")),
        payload,
    }
}

async fn fill(store: &dyn ItemStore) -> Vec<Item> {
    let items: Vec<Item> = (0..ITEMS).map(profile).collect();
    let ack = store.put_batch(items.clone()).await.unwrap();
    assert_eq!(ack, SaveAck::all(ITEMS as u32));
    items
}

fn options(query: &str, format: Format, fields: Option<&[&str]>) -> ExportOptions {
    ExportOptions {
        query: query.into(),
        format,
        fields: fields.map(|f| f.iter().map(|s| s.to_string()).collect()),
        page_size: PAGE,
    }
}

/// Exports into a file in a fresh directory; returns its text and the
/// progress reports.
async fn export_text(served: &Served, options: &ExportOptions) -> (String, Vec<Progress>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("items.out");
    let mut reports = Vec::new();
    export::export_to_file(&served.client, options, &path, &mut |p| reports.push(p))
        .await
        .unwrap();
    assert!(
        !export::partial_path(&path).exists(),
        "the .partial is renamed"
    );
    (std::fs::read_to_string(&path).unwrap(), reports)
}

/// Splits CSV text (RFC 4180, CRLF line ends) into records.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let (mut record, mut cell) = (Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut cell));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => cell.push(c),
        }
    }
    records
}

/// A JSON lines export holds every stored item exactly once, as `get` returns it, over three pages.
async fn jsonl_equals_the_store(served: &Served) {
    let saved = fill(&*served.store).await;
    let (text, reports) = export_text(served, &options("", Format::Jsonl, None)).await;
    let mut exported: Vec<Item> = text
        .lines()
        .map(|line| Item::from_json(&serde_json::from_str(line).unwrap()).unwrap())
        .collect();
    exported.sort_by_key(Item::key);
    assert_eq!(exported.len(), ITEMS);
    assert_eq!(exported, saved, "content equals what was saved");
    let stored = served.store.get("p00010").await.unwrap().unwrap();
    assert_eq!(exported[10], stored, "and what the store returns");
    assert!(reports.len() >= 3, "one report per page: {reports:?}");
    assert_eq!(reports[0].total, Some(ITEMS as u64));
    assert_eq!(reports.last().unwrap().done, ITEMS as u64);
}

/// CSV: url, kind, id, then every payload key sorted; nested values as JSON, commas and quotes survive.
async fn csv_has_a_column_per_payload_key(served: &Served) {
    fill(&*served.store).await;
    let (text, reports) = export_text(served, &options("", Format::Csv, None)).await;
    let records = parse_csv(&text);
    assert_eq!(
        records[0],
        ["url", "kind", "id", "age", "city", "name", "tags"]
    );
    assert_eq!(records.len(), ITEMS + 1);
    let row = records
        .iter()
        .find(|r| r[2] == "p00100")
        .expect("p00100 is exported");
    assert_eq!(row[0], "http://127.0.0.1:1/profile/100");
    assert_eq!(row[1], "profile");
    assert_eq!(row[3], "58");
    assert_eq!(row[5], "user 100, \"the 100th\"");
    assert_eq!(row[6], "[\"a\",\"t100\"]");
    let plain = records.iter().find(|r| r[2] == "p00001").unwrap();
    assert_eq!(plain[6], "", "a missing key is an empty cell");
    assert!(reports.iter().any(|p| p.pass == "keys"), "a first pass ran");
}

/// `--fields` sets the payload columns and their order; other keys are counted as left out.
async fn csv_fields_pick_the_columns(served: &Served) {
    fill(&*served.store).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("items.csv");
    let options = options("", Format::Csv, Some(&["name", "age"]));
    let summary = export::export_to_file(&served.client, &options, &path, &mut |_| {})
        .await
        .unwrap();
    let records = parse_csv(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(records[0], ["url", "kind", "id", "name", "age"]);
    assert_eq!(summary.items, ITEMS as u64);
    // city on every item, tags on every tenth.
    assert_eq!(summary.values_without_column, (ITEMS + ITEMS / 10) as u64);
}

/// A query exports exactly its hits, as many as `search` counts.
async fn a_query_filters_the_export(served: &Served) {
    fill(&*served.store).await;
    let query = "city:beijing AND age:[20 TO 29]";
    let total = served
        .store
        .search(&SearchRequest {
            query: query.into(),
            from: 0,
            size: 0,
        })
        .await
        .unwrap()
        .total;
    assert!(total > 0 && total < ITEMS as u64);
    let (text, _) = export_text(served, &options(query, Format::Jsonl, None)).await;
    let exported: Vec<Item> = text
        .lines()
        .map(|line| Item::from_json(&serde_json::from_str(line).unwrap()).unwrap())
        .collect();
    assert_eq!(exported.len() as u64, total);
    assert!(exported.iter().all(|item| {
        let age = item.payload["age"].as_i64().unwrap();
        item.payload["city"].as_str() == Some("beijing") && (20..=29).contains(&age)
    }));
}

/// Items saved after a scan began are not in it, and a scan's pages never repeat an item.
async fn a_scan_reads_its_snapshot(served: &Served) {
    fill(&*served.store).await;
    let store = &served.store;
    let mut request = ScanRequest {
        query: String::new(),
        after: None,
        size: PAGE,
    };
    let first = store.scan(&request).await.unwrap();
    assert_eq!(first.total, Some(ITEMS as u64));
    assert_eq!(first.items.len(), PAGE as usize);
    let late: Vec<Item> = (ITEMS..ITEMS + 10).map(profile).collect();
    store.put_batch(late).await.unwrap();
    let mut keys: Vec<String> = first.items.iter().map(Item::key).collect();
    request.after = first.next;
    while request.after.is_some() {
        let page: ScanPage = store.scan(&request).await.unwrap();
        assert_eq!(page.total, None, "the total comes on the first page only");
        keys.extend(page.items.iter().map(Item::key));
        request.after = page.next;
    }
    let count = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!((count, keys.len()), (ITEMS, ITEMS));
}

/// A sorted search ranks by a payload number, either way, and pages keep that order.
async fn sorted_search_orders_by_a_number(served: &Served) {
    fill(&*served.store).await;
    let store = &served.store;
    let ages = |response: SearchResponse| -> Vec<i64> {
        response
            .items
            .iter()
            .map(|i| i.payload["age"].as_i64().unwrap())
            .collect()
    };
    let request = |from| SearchRequest {
        query: "city:beijing".into(),
        from,
        size: 50,
    };
    let up = Sort {
        field: "age".into(),
        descending: false,
    };
    let down = Sort {
        descending: true,
        ..up.clone()
    };
    let first = store.search_sorted(&request(0), &up).await.unwrap();
    assert_eq!(first.total, (ITEMS as u64).div_ceil(3));
    let mut seen = ages(first);
    seen.extend(ages(store.search_sorted(&request(50), &up).await.unwrap()));
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert_eq!(seen[0], 18);
    let top = ages(store.search_sorted(&request(0), &down).await.unwrap());
    assert_eq!(top[0], 75);
    assert!(top.windows(2).all(|w| w[0] >= w[1]), "{top:?}");
}

/// Pages of large items stop at the byte budget, not the item count, and the scan still ends whole.
async fn large_items_make_shorter_pages(served: &Served) {
    // About 1 MiB each: a page holds about SCAN_PAGE_BYTES / 1 MiB of them.
    let big: Vec<Item> = (0..12)
        .map(|n| {
            let mut item = profile(n);
            item.payload
                .insert("blob".into(), Value::from("x".repeat(1 << 20)));
            item
        })
        .collect();
    served.store.put_batch(big).await.unwrap();
    let mut request = ScanRequest {
        query: String::new(),
        after: None,
        size: PAGE,
    };
    let mut pages = Vec::new();
    loop {
        let page = served.store.scan(&request).await.unwrap();
        pages.push(page.items.len());
        match page.next {
            Some(next) => request.after = Some(next),
            None => break,
        }
    }
    let per_page = itemsaver::store::SCAN_PAGE_BYTES / (1 << 20) + 1;
    assert!(pages.iter().all(|&n| n <= per_page), "{pages:?}");
    assert!(pages.len() >= 2, "{pages:?}");
    assert_eq!(pages.iter().sum::<usize>(), 12);
}

/// A store that fails every scan page after the first, as an itemsaver
/// that goes away mid-export would.
struct FailingScans {
    inner: Arc<dyn ItemStore>,
    pages: AtomicU32,
}

#[async_trait]
impl ItemStore for FailingScans {
    async fn put_batch(&self, items: Vec<Item>) -> Result<SaveAck, StoreError> {
        self.inner.put_batch(items).await
    }
    async fn get(&self, id: &str) -> Result<Option<Item>, StoreError> {
        self.inner.get(id).await
    }
    async fn count(&self) -> Result<u64, StoreError> {
        self.inner.count().await
    }
    async fn search(&self, request: &SearchRequest) -> Result<SearchResponse, StoreError> {
        self.inner.search(request).await
    }
    async fn search_sorted(
        &self,
        request: &SearchRequest,
        sort: &Sort,
    ) -> Result<SearchResponse, StoreError> {
        self.inner.search_sorted(request, sort).await
    }
    async fn scan(&self, request: &ScanRequest) -> Result<ScanPage, StoreError> {
        if self.pages.fetch_add(1, Ordering::SeqCst) >= 1 {
            return Err(StoreError::Task("the disk went away".into()));
        }
        self.inner.scan(request).await
    }
    async fn delete(&self, keys: &[String]) -> Result<u64, StoreError> {
        self.inner.delete(keys).await
    }
}

/// An export that fails halfway leaves no FILE (an older one stays as it was), only FILE.partial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_export_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(itemsaver::open_embedded(&dir.path().join("index")).unwrap());
    fill(&*inner).await;
    let store = Arc::new(FailingScans {
        inner,
        pages: AtomicU32::new(0),
    });
    let served = serve(store, None).await;
    let path = dir.path().join("items.jsonl");
    let error = export::export_to_file(
        &served.client,
        &options("", Format::Jsonl, None),
        &path,
        &mut |_| {},
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("the disk went away"), "{error}");
    assert!(!path.exists(), "no FILE after a failed export");
    let partial = std::fs::read_to_string(export::partial_path(&path)).unwrap();
    assert_eq!(
        partial.lines().count(),
        PAGE as usize,
        "the first page only"
    );

    // Every scan fails from now on: an older FILE survives a failed export.
    std::fs::write(&path, "older export\n").unwrap();
    export::export_to_file(
        &served.client,
        &options("", Format::Jsonl, None),
        &path,
        &mut |_| {},
    )
    .await
    .unwrap_err();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "older export\n");
}

/// A cursor the store did not make, or one of a finished scan, is a bad query, not a crash.
#[tokio::test]
async fn unknown_cursors_are_refused() {
    let served = embedded().await;
    served.store.put_batch(vec![profile(1)]).await.unwrap();
    let mut request = ScanRequest {
        query: String::new(),
        after: Some(rpcsupport::ScanCursor("nonsense".into())),
        size: 10,
    };
    let err = served.store.scan(&request).await.unwrap_err();
    assert!(matches!(err, StoreError::BadQuery(_)), "{err:?}");
    request.after = Some(rpcsupport::ScanCursor("99:0:0".into()));
    let err = served.store.scan(&request).await.unwrap_err();
    assert!(err.to_string().contains("over or expired"), "{err}");
}
