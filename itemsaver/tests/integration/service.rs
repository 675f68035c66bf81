//! The itemsaver served on 127.0.0.1:0, driven through the real RPC client.

use std::collections::BTreeMap;
use std::sync::Arc;

use itemsaver::{ItemStore, ItemsaverConfig, ServerOptions};
use rpcsupport::{
    ConnectOptions, HostAddr, Item, ItemSaverClient, SaveError, SearchRequest, Value,
};
use tarpc::context;
use tokio::sync::oneshot;

struct Server {
    client: ItemSaverClient,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The server's metrics.
    metrics: Arc<rpcsupport::metrics::Registry>,
    _dir: tempfile::TempDir,
}

/// Starts an itemsaver over a fresh embedded store with `config`'s limits.
async fn start_server(config: ItemsaverConfig) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ItemStore> = Arc::new(itemsaver::open_embedded(dir.path()).unwrap());
    start_server_over(store, config, dir).await
}

/// Starts an itemsaver over `store`; `dir` lives as long as the server.
async fn start_server_over(
    store: Arc<dyn ItemStore>,
    config: ItemsaverConfig,
    dir: tempfile::TempDir,
) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = HostAddr::from(listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let options = ServerOptions::from_config(&config);
    let metrics = options.metrics.clone();
    let task = tokio::spawn(async move {
        itemsaver::serve(listener, store, options, async {
            let _ = stopped.await;
        })
        .await
    });
    let client = rpcsupport::connect_itemsaver(&addr, ConnectOptions::default())
        .await
        .unwrap();
    Server {
        client,
        stop: Some(stop),
        task,
        metrics,
        _dir: dir,
    }
}

fn profile(id: usize, city: &str) -> Item {
    let mut payload = BTreeMap::new();
    payload.insert("name".to_string(), Value::from(format!("user {id}")));
    payload.insert("city".to_string(), Value::from(city));
    payload.insert("age".to_string(), Value::Int(20 + id as i64));
    payload.insert("height".to_string(), Value::Float(170.25));
    Item {
        url: format!("http://127.0.0.1:1/profile/{id}"),
        kind: "profile".into(),
        id: Some(id.to_string()),
        payload,
    }
}

/// save, count, get and search work end to end, and re-saving is idempotent.
#[tokio::test]
async fn save_count_get_search() {
    let mut server = start_server(ItemsaverConfig::default()).await;
    let client = &server.client;
    let batch: Vec<Item> = (0..6)
        .map(|i| profile(i, if i < 2 { "Shanghai" } else { "Beijing" }))
        .collect();

    let ack = client
        .save(context::current(), batch.clone().into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ack.stored, 6);
    client
        .save(context::current(), batch.clone().into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.count(context::current()).await.unwrap(), Ok(6));

    let got = client
        .get(context::current(), "3".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.as_ref(), Some(&batch[3]));
    assert_eq!(got.unwrap().payload["age"], Value::Int(23));

    let hits = client
        .search(
            context::current(),
            SearchRequest {
                query: "shanghai".into(),
                from: 0,
                size: 10,
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hits.total, 2);
    let mut ids: Vec<String> = hits.items.iter().map(Item::key).collect();
    ids.sort();
    assert_eq!(ids, ["0", "1"]);

    let bad = client
        .search(
            context::current(),
            SearchRequest {
                query: "age:[1 TO".into(),
                from: 0,
                size: 10,
            },
        )
        .await
        .unwrap();
    assert!(matches!(bad, Err(SaveError::BadQuery(_))), "{bad:?}");

    server.stop.take().unwrap().send(()).unwrap();
    server.task.await.unwrap().unwrap();
}

/// A batch over max_batch_items is turned down whole, saying how many items
/// a batch may hold; an oversized item or an
/// empty id is refused by name while the rest of its batch is stored.
#[tokio::test]
async fn limits_refuse_batches_and_items() {
    let config = ItemsaverConfig {
        max_batch_items: 3,
        max_item_bytes: 2_000,
        ..ItemsaverConfig::default()
    };
    let server = start_server(config).await;
    let client = &server.client;

    let too_many: Vec<Item> = (0..4).map(|i| profile(i, "x")).collect();
    let result = client
        .save(context::current(), too_many.into())
        .await
        .unwrap();
    assert_eq!(result, Err(SaveError::BatchTooLarge { max_items: 3 }));

    let mut huge = profile(9, "x");
    huge.payload
        .insert("bio".into(), Value::from("a".repeat(5_000)));
    let huge_key = huge.key();
    let mut empty = profile(7, "x");
    empty.id = Some(String::new());
    let ack = client
        .save(
            context::current(),
            vec![profile(8, "x"), huge, empty].into(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ack.stored, 1, "{ack:?}");
    assert_eq!(ack.refused.len(), 2, "{ack:?}");
    assert_eq!(ack.refused[0].key, huge_key);
    assert!(ack.refused[0].reason.contains("max_item_bytes"), "{ack:?}");
    assert_eq!(ack.refused[1].key, "");
    assert!(ack.refused[1].reason.contains("empty id"), "{ack:?}");

    // Only the good item is stored.
    assert_eq!(client.count(context::current()).await.unwrap(), Ok(1));
    let kept = profile(8, "x");
    assert_eq!(
        client.get(context::current(), kept.key()).await.unwrap(),
        Ok(Some(kept))
    );
}

/// Issue 13: delete over the wire answers how many keys were stored, ignores an empty key, takes the items out of get/count/search and counts itemsaver_items_deleted_total.
#[tokio::test]
async fn delete_over_rpc() {
    let server = start_server(ItemsaverConfig::default()).await;
    let client = &server.client;
    let batch: Vec<Item> = (0..4).map(|i| profile(i, "Shanghai")).collect();
    client
        .save(context::current(), batch.into())
        .await
        .unwrap()
        .unwrap();
    let keys = ["1", "", "3", "missing", "1"].map(String::from).to_vec();
    let deleted = client.delete(context::current(), keys).await.unwrap();
    assert_eq!(deleted, Ok(2));
    assert_eq!(client.count(context::current()).await.unwrap(), Ok(2));
    assert_eq!(
        client.get(context::current(), "1".into()).await.unwrap(),
        Ok(None)
    );
    let hits = client
        .search(
            context::current(),
            SearchRequest {
                query: "shanghai".into(),
                from: 0,
                size: 10,
            },
        )
        .await
        .unwrap()
        .unwrap();
    let mut ids: Vec<String> = hits.items.iter().map(Item::key).collect();
    ids.sort();
    assert_eq!(ids, ["0", "2"]);
    let again = client.delete(context::current(), vec!["1".into()]).await;
    assert_eq!(again.unwrap(), Ok(0));
    let counter = |name: &str| server.metrics.counter(name, "", &[]).get();
    assert_eq!(counter("itemsaver_items_deleted_total"), 2);
    assert_eq!(counter("itemsaver_items_saved_total"), 4);
}

/// Issue 13: a delete of more keys than max_batch_items is turned down whole, like a save, and deletes nothing.
#[tokio::test]
async fn delete_batch_limit() {
    let config = ItemsaverConfig {
        max_batch_items: 3,
        ..ItemsaverConfig::default()
    };
    let server = start_server(config).await;
    let client = &server.client;
    let batch: Vec<Item> = (0..3).map(|i| profile(i, "x")).collect();
    client
        .save(context::current(), batch.into())
        .await
        .unwrap()
        .unwrap();
    let four: Vec<String> = (0..4).map(|i| i.to_string()).collect();
    let result = client.delete(context::current(), four.clone()).await;
    assert_eq!(
        result.unwrap(),
        Err(SaveError::BatchTooLarge { max_items: 3 })
    );
    assert_eq!(client.count(context::current()).await.unwrap(), Ok(3));
    let three = four[..3].to_vec();
    let result = client.delete(context::current(), three).await;
    assert_eq!(result.unwrap(), Ok(3));
    assert_eq!(client.count(context::current()).await.unwrap(), Ok(0));
    let errors =
        server
            .metrics
            .counter("itemsaver_errors_total", "", &[("kind", "batch_too_large")]);
    assert_eq!(errors.get(), 1);
}

/// `depth` lists around a string: a payload value `depth` levels deep.
fn nested(depth: usize) -> Value {
    let mut v = Value::from("deep");
    for _ in 1..depth {
        v = Value::List(vec![v]);
    }
    v
}

/// Issue 11: over the wire, into `store`, items nested deeper than
/// MAX_VALUE_DEPTH are refused by name (even ones far deeper), the rest of
/// the batch is stored, and the deepest accepted item reads back through
/// get and search.
async fn too_deep_items_are_refused_by_name(store: Arc<dyn ItemStore>) {
    use rpcsupport::types::MAX_VALUE_DEPTH;
    let server = start_server_over(
        store,
        ItemsaverConfig::default(),
        tempfile::tempdir().unwrap(),
    )
    .await;
    let client = &server.client;
    let with = |id: usize, depth: usize| {
        let mut item = profile(id, "deep");
        item.payload.insert("tree".into(), nested(depth));
        item
    };
    let (ok, over, far) = (
        with(1, MAX_VALUE_DEPTH),
        with(2, MAX_VALUE_DEPTH + 1),
        with(3, 110),
    );
    let ack = client
        .save(
            context::current(),
            vec![ok.clone(), over.clone(), far.clone()].into(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ack.stored, 1, "{ack:?}");
    let refused: Vec<&str> = ack.refused.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(refused, [over.key(), far.key()]);
    assert!(ack.refused[0].reason.contains("MAX_VALUE_DEPTH"), "{ack:?}");
    assert_eq!(
        client.get(context::current(), ok.key()).await.unwrap(),
        Ok(Some(ok.clone()))
    );
    let hits = client
        .search(
            context::current(),
            SearchRequest {
                query: "city:deep".into(),
                from: 0,
                size: 10,
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hits.items, [ok]);
}

/// The deep-item refusal, over the embedded store.
#[tokio::test]
async fn too_deep_items_are_refused_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(itemsaver::open_embedded(dir.path()).unwrap());
    too_deep_items_are_refused_by_name(store).await;
}

/// The deep-item refusal, over Elasticsearch (skipped without
/// CRAWLER_TEST_ES_URL, except under CI).
#[tokio::test]
async fn too_deep_items_are_refused_elastic() {
    let Some(url) = testsupport::elasticsearch_url("too_deep_items_are_refused_elastic") else {
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let settings = itemsaver::store::elastic::Settings {
        urls: vec![url.parse().unwrap()],
        index: format!("service-deep-{}-{nanos}", std::process::id()),
        auth: None,
        ca_cert: None,
    };
    let store = Arc::new(itemsaver::open_elastic(&settings).await.unwrap());
    too_deep_items_are_refused_by_name(store).await;
}

/// Issue 11: a search of 100 000 `(` or of text over the length limit is a
/// BadQuery over the wire, and the server goes on serving.
#[tokio::test]
async fn hostile_queries_are_bad_queries() {
    let server = start_server(ItemsaverConfig::default()).await;
    for query in ["(".repeat(100_000), "(".repeat(1000), "NOT ".repeat(1000)] {
        let answer = server
            .client
            .search(
                context::current(),
                SearchRequest {
                    query,
                    from: 0,
                    size: 10,
                },
            )
            .await
            .unwrap();
        assert!(matches!(answer, Err(SaveError::BadQuery(_))), "{answer:?}");
    }
    assert_eq!(
        server.client.count(context::current()).await.unwrap(),
        Ok(0)
    );
}

/// Starts an itemsaver over a fresh embedded store that asks for
/// `security`; answers its address (the server stops with the runtime).
async fn start_secured(security: rpcsupport::ServerSecurity) -> (HostAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ItemStore> = Arc::new(itemsaver::open_embedded(dir.path()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = HostAddr::from(listener.local_addr().unwrap());
    tokio::spawn(async move {
        let options = ServerOptions {
            security,
            ..ServerOptions::default()
        };
        itemsaver::serve(listener, store, options, std::future::pending()).await
    });
    (addr, dir)
}

async fn connect_with(
    addr: &HostAddr,
    security: rpcsupport::ClientSecurity,
) -> std::io::Result<ItemSaverClient> {
    let opts = ConnectOptions {
        security: security.leak(),
        ..ConnectOptions::default()
    };
    rpcsupport::connect_itemsaver(addr, opts).await
}

/// Issue 11: with its own itemsaver_token the itemsaver refuses a client
/// holding only the worker token (a compromised worker machine), even one
/// presenting it as its itemsaver token; the engine's settings, with both,
/// are served; a single shared `token` serves alone.
#[tokio::test]
async fn worker_token_cannot_reach_the_store() {
    use rpcsupport::{ClientSecurity, RpcConfig, Service, Token};
    let split = RpcConfig {
        worker_token: "worker secret".into(),
        itemsaver_token: "store secret".into(),
        ..RpcConfig::default()
    };
    let (addr, _dir) = start_secured(split.server(Service::Itemsaver).unwrap()).await;
    let worker_machine = split.client_for(&[Service::Worker]).unwrap();
    let e = connect_with(&addr, worker_machine)
        .await
        .expect_err("refused");
    assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
    let replayed = ClientSecurity {
        itemsaver_token: Some(Token::new("worker secret").unwrap()),
        ..ClientSecurity::OPEN
    };
    let e = connect_with(&addr, replayed).await.expect_err("refused");
    assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
    let engine = connect_with(&addr, split.client().unwrap()).await.unwrap();
    assert_eq!(engine.count(context::current()).await.unwrap(), Ok(0));

    let shared = RpcConfig {
        token: "one secret".into(),
        ..RpcConfig::default()
    };
    let (addr, _dir) = start_secured(shared.server(Service::Itemsaver).unwrap()).await;
    let client = connect_with(&addr, shared.client().unwrap()).await.unwrap();
    assert_eq!(client.count(context::current()).await.unwrap(), Ok(0));
}
