//! The store contract: every test here runs against the embedded store and
//! against Elasticsearch (issue 3), so both keep the same promises and give
//! the same hits for the same query.
//!
//! The Elasticsearch half needs a server: set `CRAWLER_TEST_ES_URL` (e.g.
//! from `scripts/noida.sh`). Without it the Elasticsearch tests print a
//! notice and pass, except under CI (`CI` set), where they fail.

use std::collections::BTreeMap;
use std::sync::Arc;

use itemsaver::store::elastic::Settings;
use itemsaver::{ItemStore, StoreError};
use rpcsupport::{Item, SaveAck, ScanRequest, SearchRequest, Value};

/// What a contract test gets: a fresh, empty store.
struct Fixture {
    store: Arc<dyn ItemStore>,
    /// The embedded store's directory, removed on drop.
    _dir: Option<tempfile::TempDir>,
    /// The Elasticsearch index, deleted when the test passes.
    es_index: Option<(String, String)>,
}

fn embedded() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = itemsaver::open_embedded(dir.path()).unwrap();
    Fixture {
        store: Arc::new(store),
        _dir: Some(dir),
        es_index: None,
    }
}

/// An index name no other test (or earlier run) uses.
fn unique_index(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("contract-{test}-{}-{nanos}", std::process::id())
}

async fn elastic(test: &str) -> Option<Fixture> {
    let url = testsupport::elasticsearch_url(test)?;
    let index = unique_index(test);
    let settings = Settings {
        urls: vec![url.parse().unwrap()],
        index: index.clone(),
        auth: None,
        ca_cert: None,
    };
    let store = itemsaver::open_elastic(&settings).await.unwrap();
    Some(Fixture {
        store: Arc::new(store),
        _dir: None,
        es_index: Some((url, index)),
    })
}

impl Fixture {
    /// Deletes the test's index, if any; called once the test passed, so a
    /// failing one leaves its index to look at.
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

/// Runs each listed test function once per store, as `embedded::NAME` and
/// `elastic::NAME`.
macro_rules! contract {
    ($($test:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let fixture = super::embedded();
                    super::$test(&*fixture.store).await;
                    fixture.cleanup().await;
                }
            )*
        }
        mod elastic {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(fixture) = super::elastic(stringify!($test)).await else {
                        return;
                    };
                    super::$test(&*fixture.store).await;
                    fixture.cleanup().await;
                }
            )*
        }
    };
}

contract!(
    upsert_keeps_newest,
    resaving_is_idempotent,
    typed_payload_round_trips,
    field_range_and_boolean_queries,
    free_text_search_pages,
    bad_queries_are_reported,
    concurrent_batches_all_land,
    delete_counts_stored_keys,
    deleted_items_disappear_from_every_read,
    deleted_key_can_be_saved_again,
    saves_and_deletes_keep_their_order,
);

fn item(id: &str, payload: &[(&str, Value)]) -> Item {
    Item {
        url: format!("http://127.0.0.1:1/profile/{id}"),
        kind: "profile".into(),
        id: Some(id.into()),
        payload: payload
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

fn request(query: &str, from: u32, size: u32) -> SearchRequest {
    SearchRequest {
        query: query.into(),
        from,
        size,
    }
}

async fn total(store: &dyn ItemStore, query: &str) -> u64 {
    store
        .search(&request(query, 0, 10))
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"))
        .total
}

/// Saving an id again replaces the item: one item, the newer one, and the old text is gone.
async fn upsert_keeps_newest(store: &dyn ItemStore) {
    store
        .put_batch(vec![item("1", &[("name", "old".into())])])
        .await
        .unwrap();
    store
        .put_batch(vec![item("1", &[("name", "new".into())])])
        .await
        .unwrap();
    assert_eq!(store.count().await.unwrap(), 1);
    let got = store.get("1").await.unwrap().unwrap();
    assert_eq!(got.payload["name"], Value::from("new"));
    assert_eq!(total(store, "old").await, 0);
    assert_eq!(total(store, "new").await, 1);
}

/// Re-sending a batch changes nothing; within a batch the last item per key wins.
async fn resaving_is_idempotent(store: &dyn ItemStore) {
    let batch: Vec<Item> = (0..20)
        .map(|i| item(&i.to_string(), &[("n", Value::Int(i))]))
        .collect();
    assert_eq!(
        store.put_batch(batch.clone()).await.unwrap(),
        SaveAck::all(20)
    );
    assert_eq!(
        store.put_batch(batch.clone()).await.unwrap(),
        SaveAck::all(20)
    );
    assert_eq!(store.count().await.unwrap(), 20);
    assert_eq!(store.get("7").await.unwrap().unwrap(), batch[7]);
    assert_eq!(store.get("missing").await.unwrap(), None);

    let twice = vec![
        item("x", &[("v", Value::Int(1))]),
        item("y", &[("v", Value::Int(2))]),
        item("x", &[("v", Value::Int(3))]),
    ];
    assert_eq!(store.put_batch(twice).await.unwrap(), SaveAck::all(3));
    assert_eq!(store.count().await.unwrap(), 22);
    let got = store.get("x").await.unwrap().unwrap();
    assert_eq!(got.payload["v"], Value::Int(3));
}

/// Ints stay Int, floats stay Float (3.0 too), nested values, lists, nulls and a missing id come back exactly.
async fn typed_payload_round_trips(store: &dyn ItemStore) {
    let mut income = BTreeMap::new();
    income.insert("min".to_string(), Value::Int(-3));
    income.insert("max".to_string(), Value::Float(5.0));
    let mut original = item(
        "x",
        &[
            ("name", Value::from("安静的雪")),
            ("age", Value::Int(31)),
            ("height", Value::Float(172.5)),
            ("whole_float", Value::Float(3.0)),
            ("big", Value::Int(i64::MAX)),
            ("verified", Value::Bool(true)),
            ("when", Value::from("2024-01-02T03:04:05Z")),
            ("tags", Value::List(vec!["a".into(), Value::Null])),
            ("income", Value::Map(income)),
        ],
    );
    original.id = None;
    // A value of another type than earlier items had in the same field is
    // stored all the same.
    let odd = item("odd", &[("age", Value::from("unknown"))]);
    store
        .put_batch(vec![original.clone(), odd.clone()])
        .await
        .unwrap();
    let got = store.get(&original.key()).await.unwrap().unwrap();
    assert_eq!(got, original);
    assert_eq!(got.payload["whole_float"], Value::Float(3.0));
    assert_eq!(got.payload["big"], Value::Int(i64::MAX));
    assert_eq!(store.get("odd").await.unwrap(), Some(odd));
    let hits = store.search(&request("age:31", 0, 10)).await.unwrap();
    assert_eq!(hits.items, [original]);
}

/// Field values, numeric ranges (inclusive, exclusive, open), phrases and AND/OR/NOT give the same hits on every store.
async fn field_range_and_boolean_queries(store: &dyn ItemStore) {
    let batch: Vec<Item> = (0..10)
        .map(|i| {
            item(
                &i.to_string(),
                &[
                    ("name", Value::from(format!("user {i}"))),
                    ("age", Value::Int(20 + i)),
                    ("height", Value::Float(160.5 + i as f64)),
                    (
                        "city",
                        Value::from(if i < 3 { "Shanghai" } else { "Beijing" }),
                    ),
                ],
            )
        })
        .collect();
    store.put_batch(batch).await.unwrap();
    let cases: &[(&str, u64)] = &[
        ("age:25", 1),
        ("payload.age:25", 1),
        ("age:[22 TO 24]", 3),
        ("age:{22 TO 24]", 2),
        ("age:[22 TO 24}", 2),
        ("age:<23", 3),
        ("age:<=23", 4),
        ("age:>=27", 3),
        ("age:[27 TO *]", 3),
        ("height:[162 TO 164]", 2),
        ("height:>168.5", 1),
        ("age:abc", 0),
        ("city:shanghai", 3),
        ("city:SHANGHAI", 3),
        ("name:\"user 4\"", 1),
        ("kind:profile", 10),
        ("url:\"http://127.0.0.1:1/profile/3\"", 1),
        ("city:shanghai AND age:>20", 2),
        ("city:shanghai OR age:29", 4),
        ("city:shanghai age:>20", 2),
        ("beijing -age:29", 6),
        ("beijing AND NOT age:29", 6),
        ("NOT beijing", 3),
        ("shanghai AND (NOT age:20)", 2),
        ("(city:shanghai OR age:>=28) AND NOT age:20", 4),
        ("city:* AND age:<21", 1),
        ("nosuchfield:x", 0),
        ("user", 10),
        ("user AND beijing", 7),
        ("", 10),
    ];
    for &(query, expected) in cases {
        assert_eq!(total(store, query).await, expected, "query {query:?}");
    }
}

/// Free text matches payload strings; pages are disjoint, cover every hit, and size 0 only counts.
async fn free_text_search_pages(store: &dyn ItemStore) {
    let batch: Vec<Item> = (0..25)
        .map(|i| {
            let city = if i % 2 == 0 { "Shanghai" } else { "北京" };
            item(
                &i.to_string(),
                &[("city", city.into()), ("age", Value::Int(20 + i))],
            )
        })
        .collect();
    store.put_batch(batch).await.unwrap();

    let mut seen = Vec::new();
    for from in [0, 5, 10] {
        let page = store.search(&request("shanghai", from, 5)).await.unwrap();
        assert_eq!(page.total, 13);
        seen.extend(page.items.into_iter().map(|i| i.key()));
    }
    assert_eq!(seen.len(), 13, "the last page holds the last 3");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 13, "pages overlap");

    let none = store.search(&request("shanghai", 0, 0)).await.unwrap();
    assert_eq!((none.total, none.items.len()), (13, 0));
    assert_eq!(total(store, "北京").await, 12);
    let all = store.search(&request("", 20, 10)).await.unwrap();
    assert_eq!((all.total, all.items.len()), (25, 5));
}

/// Broken syntax, a range without a field and too deep a page are BadQuery errors.
async fn bad_queries_are_reported(store: &dyn ItemStore) {
    store
        .put_batch(vec![item("1", &[("age", Value::Int(1))])])
        .await
        .unwrap();
    for bad in ["age:[1 TO", "(unclosed", "[1 TO 2]", "item:x"] {
        let err = store.search(&request(bad, 0, 10)).await.unwrap_err();
        assert!(matches!(err, StoreError::BadQuery(_)), "{bad}: {err:?}");
    }
    let err = store.search(&request("x", 9_999, 10)).await.unwrap_err();
    assert!(matches!(err, StoreError::BadQuery(_)), "{err:?}");
}

/// Concurrent batches are all stored.
async fn concurrent_batches_all_land(store: &dyn ItemStore) {
    let batches = (0..16).map(|b| {
        let batch = (0..10)
            .map(|i| item(&format!("{b}-{i}"), &[("b", Value::Int(b))]))
            .collect();
        store.put_batch(batch)
    });
    for result in futures::future::join_all(batches).await {
        assert_eq!(result.unwrap(), SaveAck::all(10));
    }
    assert_eq!(store.count().await.unwrap(), 160);
    assert_eq!(total(store, "b:7").await, 10);
}

fn keys(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

/// Every key a scan of `query` reads, sorted.
async fn scanned(store: &dyn ItemStore, query: &str) -> Vec<String> {
    let mut request = ScanRequest {
        query: query.into(),
        after: None,
        size: 100,
    };
    let mut keys = Vec::new();
    loop {
        let page = store.scan(&request).await.unwrap();
        keys.extend(page.items.iter().map(Item::key));
        match page.next {
            Some(next) => request.after = Some(next),
            None => break,
        }
    }
    keys.sort();
    keys
}

/// Issue 13: delete answers how many of its keys were stored: missing keys, a repeated key and an empty batch count nothing.
async fn delete_counts_stored_keys(store: &dyn ItemStore) {
    let batch = ["a", "b", "c"].map(|id| item(id, &[])).to_vec();
    store.put_batch(batch).await.unwrap();
    let deleted = store.delete(&keys(&["a", "missing", "b", "a"])).await;
    assert_eq!(deleted.unwrap(), 2);
    assert_eq!(store.count().await.unwrap(), 1);
    assert_eq!(store.delete(&keys(&["a", "b"])).await.unwrap(), 0);
    assert_eq!(store.delete(&[]).await.unwrap(), 0);
    assert_eq!(store.delete(&keys(&["c"])).await.unwrap(), 1);
    assert_eq!(store.count().await.unwrap(), 0);
}

/// Issue 13: a deleted item is gone from get, count, search (free text and fields) and scan; the others stay.
async fn deleted_items_disappear_from_every_read(store: &dyn ItemStore) {
    let batch: Vec<Item> = (0..5)
        .map(|i| {
            let city = if i == 2 { "Atlantis" } else { "Shanghai" };
            item(
                &i.to_string(),
                &[("city", city.into()), ("age", Value::Int(i))],
            )
        })
        .collect();
    store.put_batch(batch).await.unwrap();
    assert_eq!(scanned(store, "").await.len(), 5);
    assert_eq!(store.delete(&keys(&["2", "4"])).await.unwrap(), 2);
    assert_eq!(store.get("2").await.unwrap(), None);
    assert_eq!(store.get("4").await.unwrap(), None);
    assert!(store.get("3").await.unwrap().is_some());
    assert_eq!(store.count().await.unwrap(), 3);
    assert_eq!(total(store, "atlantis").await, 0);
    assert_eq!(total(store, "age:4").await, 0);
    assert_eq!(total(store, "shanghai").await, 3);
    assert_eq!(total(store, "").await, 3);
    assert_eq!(scanned(store, "").await, ["0", "1", "3"]);
    assert_eq!(scanned(store, "age:>=2").await, ["3"]);
}

/// Issue 13: a deleted key saved again is stored anew, with only the new version's fields, and can be deleted again.
async fn deleted_key_can_be_saved_again(store: &dyn ItemStore) {
    let old = item("x", &[("name", "old".into())]);
    store.put_batch(vec![old]).await.unwrap();
    assert_eq!(store.delete(&keys(&["x"])).await.unwrap(), 1);
    let new = item("x", &[("name", "new".into())]);
    store.put_batch(vec![new.clone()]).await.unwrap();
    assert_eq!(store.get("x").await.unwrap(), Some(new));
    assert_eq!(store.count().await.unwrap(), 1);
    assert_eq!(
        (total(store, "old").await, total(store, "new").await),
        (0, 1)
    );
    assert_eq!(scanned(store, "").await, ["x"]);
    assert_eq!(store.delete(&keys(&["x"])).await.unwrap(), 1);
    assert_eq!(store.count().await.unwrap(), 0);
}

/// Issue 13: saves and deletes of the same keys, one after another in one session, end in the state the last one of each key says.
async fn saves_and_deletes_keep_their_order(store: &dyn ItemStore) {
    let v = |id: &str, n: i64| item(id, &[("v", Value::Int(n))]);
    store.put_batch(vec![v("p", 1), v("q", 1)]).await.unwrap();
    assert_eq!(store.delete(&keys(&["p"])).await.unwrap(), 1);
    store.put_batch(vec![v("p", 2), v("r", 1)]).await.unwrap();
    assert_eq!(store.delete(&keys(&["q", "r"])).await.unwrap(), 2);
    store.put_batch(vec![v("q", 3)]).await.unwrap();
    assert_eq!(store.get("p").await.unwrap(), Some(v("p", 2)));
    assert_eq!(store.get("q").await.unwrap(), Some(v("q", 3)));
    assert_eq!(store.get("r").await.unwrap(), None);
    assert_eq!(store.count().await.unwrap(), 2);
    assert_eq!(scanned(store, "").await, ["p", "q"]);
    assert_eq!(total(store, "v:1").await, 0);
}

/// Issue 13: a delete is durable once answered: after a reopen the item is still gone and the rest still there.
#[tokio::test]
async fn embedded_delete_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = itemsaver::open_embedded(dir.path()).unwrap();
        let batch = vec![item("gone", &[]), item("kept", &[])];
        store.put_batch(batch).await.unwrap();
        assert_eq!(store.delete(&keys(&["gone"])).await.unwrap(), 1);
    }
    let store = itemsaver::open_embedded(dir.path()).unwrap();
    assert_eq!(store.count().await.unwrap(), 1);
    assert_eq!(store.get("gone").await.unwrap(), None);
    assert!(store.get("kept").await.unwrap().is_some());
    assert_eq!(store.delete(&keys(&["gone"])).await.unwrap(), 0);
}

/// An item Elasticsearch cannot take (an object where the mapping has a
/// plain value) is refused by name, with Elasticsearch's reason, and the
/// rest of its batch is stored and acknowledged; every copy of the refused
/// key counts as refused.
#[tokio::test]
async fn elastic_rejects_unmappable_items_by_name() {
    let Some(fixture) = elastic("rejects").await else {
        return;
    };
    let store = &*fixture.store;
    store
        .put_batch(vec![item("a", &[("income", Value::Int(3))])])
        .await
        .unwrap();
    let nested = Value::Map([("min".to_string(), Value::Int(1))].into());
    let batch = vec![
        item("bad", &[("income", Value::Int(5))]),
        item("b", &[("income", Value::Int(4))]),
        item("bad", &[("income", nested)]),
        item("c", &[("income", Value::Int(6))]),
    ];
    let ack = store.put_batch(batch).await.unwrap();
    assert_eq!(ack.stored, 2, "{ack:?}");
    assert_eq!(ack.refused.len(), 1, "{ack:?}");
    assert_eq!(ack.refused[0].key, "bad");
    assert!(ack.refused[0].reason.contains("income"), "{ack:?}");
    assert_eq!(store.count().await.unwrap(), 3);
    assert!(store.get("c").await.unwrap().is_some());
    assert!(store.get("b").await.unwrap().is_some());
    assert_eq!(store.get("bad").await.unwrap(), None);
    fixture.cleanup().await;
}

/// A second store on the same index finds the first one's items and mapping.
#[tokio::test]
async fn elastic_reopens_an_existing_index() {
    let Some(fixture) = elastic("reopen").await else {
        return;
    };
    let (url, index) = fixture.es_index.clone().unwrap();
    fixture
        .store
        .put_batch(vec![item("keep", &[("age", Value::Int(40))])])
        .await
        .unwrap();
    let settings = Settings {
        urls: vec![url.parse().unwrap(), url.parse().unwrap()],
        index,
        auth: None,
        ca_cert: None,
    };
    let again = itemsaver::open_elastic(&settings).await.unwrap();
    assert_eq!(again.count().await.unwrap(), 1);
    assert_eq!(total(&again, "age:40").await, 1);
    fixture.cleanup().await;
}

/// With one of two nodes dead, saves and reads still succeed: each retry goes to the next node.
#[tokio::test]
async fn elastic_survives_a_dead_node() {
    let Some(url) = testsupport::elasticsearch_url("dead_node") else {
        return;
    };
    let settings = Settings {
        urls: vec!["http://127.0.0.1:1".parse().unwrap(), url.parse().unwrap()],
        index: unique_index("dead_node"),
        auth: None,
        ca_cert: None,
    };
    let store = itemsaver::open_elastic(&settings).await.unwrap();
    for i in 0..4 {
        let batch = vec![item(&i.to_string(), &[("age", Value::Int(i))])];
        assert_eq!(store.put_batch(batch).await.unwrap(), SaveAck::all(1));
        assert_eq!(store.count().await.unwrap(), i as u64 + 1);
        assert!(store.get(&i.to_string()).await.unwrap().is_some());
    }
    Fixture {
        store: Arc::new(store),
        _dir: None,
        es_index: Some((url, settings.index)),
    }
    .cleanup()
    .await;
}

/// An unreachable cluster is a clear error at start, not a hang.
#[tokio::test]
async fn elastic_unreachable_is_a_clear_error() {
    let settings = Settings {
        // Port 1 on 127.0.0.1: nothing listens there in a test environment.
        urls: vec!["http://127.0.0.1:1".parse().unwrap()],
        index: "crawler_items".into(),
        auth: None,
        ca_cert: None,
    };
    let err = itemsaver::open_elastic(&settings).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot reach Elasticsearch at http://127.0.0.1:1"),
        "{err}"
    );
}
