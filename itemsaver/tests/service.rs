//! The itemsaver served on 127.0.0.1:0, driven through the real RPC client.

use std::collections::BTreeMap;
use std::sync::Arc;

use itemsaver::{ItemStore, ItemsaverConfig};
use rpcsupport::{
    ConnectOptions, HostAddr, Item, ItemSaverClient, SaveError, SearchRequest, Value,
};
use tarpc::context;
use tokio::sync::oneshot;

struct Server {
    client: ItemSaverClient,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

/// Starts an itemsaver over a fresh embedded store with `config`'s limits.
async fn start_server(config: ItemsaverConfig) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ItemStore> = Arc::new(itemsaver::open_embedded(dir.path()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = HostAddr::from(listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        itemsaver::serve(listener, store, &config, async {
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
        .save(context::current(), batch.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ack.stored, 6);
    client
        .save(context::current(), batch.clone())
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
    let result = client.save(context::current(), too_many).await.unwrap();
    assert_eq!(result, Err(SaveError::BatchTooLarge { max_items: 3 }));

    let mut huge = profile(9, "x");
    huge.payload
        .insert("bio".into(), Value::from("a".repeat(5_000)));
    let huge_key = huge.key();
    let mut empty = profile(7, "x");
    empty.id = Some(String::new());
    let ack = client
        .save(context::current(), vec![profile(8, "x"), huge, empty])
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
