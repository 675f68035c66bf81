//! The item sink against no itemsaver and real ones on 127.0.0.1:0:
//! nothing lost, refused items recorded, batches that fit.

use super::*;
use std::collections::BTreeMap;

fn item(i: u64) -> Item {
    Item {
        url: format!("http://h/{i}"),
        kind: "t".into(),
        id: Some(i.to_string()),
        payload: BTreeMap::from([("n".to_string(), rpcsupport::Value::Int(i as i64))]),
    }
}

/// With no itemsaver at all, items are neither lost nor counted saved:
/// they come back from `finish` after the timeout, spill included.
#[tokio::test]
async fn unreachable_itemsaver_hands_items_back() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let opts = SinkOptions {
        addr: format!(":{port}").parse().unwrap(),
        connect: ConnectOptions::default(),
        batch_size: 3,
        linger: Duration::from_millis(10),
        rpc_timeout: Duration::from_secs(1),
        memory_items: 4,
        spill_dir: dir.path().to_owned(),
        finish_timeout: Duration::from_millis(300),
        saved: Default::default(),
        failures: FailureLog::new(None),
        acked: None,
    };
    let sink = ItemSink::spawn(None, opts, vec![item(0)]);
    sink.send((1..10).map(item).collect());
    assert_eq!(sink.unacked().await.len(), 10);
    let finished = sink.finish().await;
    assert_eq!(finished.stats.saved, 0);
    let mut ids: Vec<u64> = finished
        .unsaved
        .iter()
        .map(|i| i.id.as_ref().unwrap().parse().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, (0..10).collect::<Vec<_>>());
    assert!(finished.stats.save_retries > 0);
}

/// An itemsaver with `config` on 127.0.0.1:0 over an embedded store in
/// `dir`: its address, the store, and the sender that stops it.
async fn start_itemsaver(
    dir: &std::path::Path,
    config: itemsaver::ItemsaverConfig,
) -> (
    HostAddr,
    std::sync::Arc<itemsaver::EmbeddedStore>,
    oneshot::Sender<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string().parse().unwrap();
    let store = std::sync::Arc::new(itemsaver::open_embedded(&dir.join("store")).unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn({
        let store = store.clone();
        async move {
            itemsaver::serve(
                listener,
                store,
                itemsaver::ServerOptions::from_config(&config),
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .unwrap()
        }
    });
    (addr, store, stop)
}

fn options(addr: HostAddr, dir: &std::path::Path, batch_size: usize) -> SinkOptions {
    SinkOptions {
        addr,
        connect: ConnectOptions::default(),
        batch_size,
        linger: Duration::from_millis(10),
        // Generous: a debug-build store indexing megabytes on a loaded
        // machine must not hit the deadline (a retry would fail the
        // tests that count none).
        rpc_timeout: Duration::from_secs(30),
        memory_items: 100,
        spill_dir: dir.to_owned(),
        finish_timeout: Duration::from_secs(5),
        saved: Default::default(),
        failures: FailureLog::new(Some(dir.join("failures.jsonl"))),
        acked: None,
    }
}

/// Items the itemsaver refuses (here: over its `max_item_bytes`) are
/// counted as rejected and written to the failures file; the rest of
/// their batches is saved, and nothing is sent twice.
#[tokio::test]
async fn refused_items_go_to_the_failures_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = itemsaver::ItemsaverConfig {
        max_item_bytes: 500,
        ..itemsaver::ItemsaverConfig::default()
    };
    let (addr, store, _stop) = start_itemsaver(dir.path(), config).await;
    // Every third item is too big for the itemsaver.
    let items: Vec<Item> = (0..10)
        .map(|i| {
            let mut it = item(i);
            if i % 3 == 0 {
                it.payload
                    .insert("bio".into(), rpcsupport::Value::from("x".repeat(1_000)));
            }
            it
        })
        .collect();
    let sink = ItemSink::spawn(None, options(addr, dir.path(), 4), Vec::new());
    sink.send(items);
    let finished = sink.finish().await;
    assert_eq!(finished.stats.saved, 6, "{:?}", finished.stats);
    assert_eq!(finished.stats.rejected, 4, "{:?}", finished.stats);
    assert_eq!(finished.stats.save_retries, 0, "{:?}", finished.stats);
    assert!(finished.unsaved.is_empty());

    let text = std::fs::read_to_string(dir.path().join("failures.jsonl")).unwrap();
    let mut refused: Vec<String> = text
        .lines()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(record["kind"], crate::failures::ITEM_REFUSED, "{line}");
            let reason = record["reason"].as_str().unwrap();
            assert!(reason.contains("max_item_bytes"), "{line}");
            record["item"]["id"].as_str().unwrap().to_owned()
        })
        .collect();
    refused.sort();
    assert_eq!(refused, ["0", "3", "6", "9"]);

    use itemsaver::ItemStore as _;
    assert_eq!(store.count().await.unwrap(), 6);
    assert_eq!(store.get("3").await.unwrap(), None);
    assert_eq!(store.get("4").await.unwrap(), Some(item(4)));
}

/// An itemsaver that takes fewer items per batch than the engine sends
/// gets smaller batches: everything is saved, nothing is refused.
#[tokio::test]
async fn batches_shrink_to_what_the_itemsaver_takes() {
    let dir = tempfile::tempdir().unwrap();
    let config = itemsaver::ItemsaverConfig {
        max_batch_items: 3,
        ..itemsaver::ItemsaverConfig::default()
    };
    let (addr, store, _stop) = start_itemsaver(dir.path(), config).await;
    let sink = ItemSink::spawn(None, options(addr, dir.path(), 10), Vec::new());
    sink.send((0..20).map(item).collect());
    let finished = sink.finish().await;
    assert_eq!(finished.stats.saved, 20, "{:?}", finished.stats);
    assert_eq!(finished.stats.rejected, 0, "{:?}", finished.stats);
    assert!(finished.stats.save_retries >= 1, "{:?}", finished.stats);
    assert!(finished.unsaved.is_empty());
    use itemsaver::ItemStore as _;
    assert_eq!(store.count().await.unwrap(), 20);
    assert!(!dir.path().join("failures.jsonl").exists());
}

/// Big items make smaller batches: a batch never carries more than
/// `MAX_BATCH_BYTES` (unless one item alone does), and all arrive.
#[tokio::test]
async fn big_items_make_smaller_batches() {
    let dir = tempfile::tempdir().unwrap();
    let config = itemsaver::ItemsaverConfig {
        max_item_bytes: 4 << 20,
        ..itemsaver::ItemsaverConfig::default()
    };
    let (addr, store, _stop) = start_itemsaver(dir.path(), config).await;
    // 3 MiB each: at most two per batch.
    let big = |i: u64| {
        let mut it = item(i);
        it.payload
            .insert("blob".into(), rpcsupport::Value::from("x".repeat(3 << 20)));
        it
    };
    let mut sink = Sink::new(None, options(addr, dir.path(), 100));
    sink.push((0..5).map(big).collect());
    sink.start_save();
    assert_eq!(sink.in_flight_items.len(), 2);
    let (tx, rx) = mpsc::unbounded_channel();
    drop(tx);
    let finished = sink.run(rx).await;
    assert_eq!(finished.stats.saved, 5, "{:?}", finished.stats);
    assert_eq!(finished.stats.save_retries, 0, "{:?}", finished.stats);
    use itemsaver::ItemStore as _;
    assert_eq!(store.count().await.unwrap(), 5);
}
