//! Issue 11: a real itemsaver on 127.0.0.1:0 gets random, truncated and
//! mutated frames, nesting bombs and lying length headers, before and
//! after a valid handshake, for a bounded time (a fixed seed, then two
//! random ones). It must not crash, and a good client, asking between the
//! attacks, must be served throughout.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use itemsaver::ItemStore;
use rpcsupport::codec::encode;
use rpcsupport::service::ItemSaverRequest;
use rpcsupport::{ConnectOptions, HostAddr, Item, SearchRequest, Value};
use tarpc::context;
use testsupport::fuzz;

const MARKER: &str = "MARKER-0123456789";

/// A tarpc request frame body carrying `message`.
fn body(id: u64, message: ItemSaverRequest) -> Vec<u8> {
    encode(&tarpc::ClientMessage::Request(tarpc::Request {
        context: context::current(),
        id,
        message,
    }))
    .unwrap()
}

fn item(id: &str, value: Value) -> Item {
    Item {
        url: "http://127.0.0.1:1/p".into(),
        kind: "profile".into(),
        id: Some(id.into()),
        payload: BTreeMap::from([
            ("city".to_string(), Value::from("beijing")),
            ("x".to_string(), value),
        ]),
    }
}

/// The fuzz run against an itemsaver over a fresh embedded store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn itemsaver_survives_hostile_frames() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ItemStore> = Arc::new(itemsaver::open_embedded(dir.path()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        itemsaver::serve(
            listener,
            store,
            itemsaver::ServerOptions::default(),
            std::future::pending(),
        )
        .await
    });
    let good = rpcsupport::connect_itemsaver(&HostAddr::from(addr), ConnectOptions::default())
        .await
        .unwrap();

    let valid = vec![
        body(
            1,
            ItemSaverRequest::Save {
                items: vec![item("a", Value::Int(1)), item("b", Value::from(MARKER))].into(),
            },
        ),
        body(2, ItemSaverRequest::Get { id: "a".into() }),
        body(3, ItemSaverRequest::Count {}),
        body(
            4,
            ItemSaverRequest::Search {
                request: SearchRequest {
                    query: "city:beijing AND (x:1 OR NOT x:2)".into(),
                    from: 0,
                    size: 10,
                },
            },
        ),
    ];
    // Nesting bombs where the marker value is: some deep enough to be
    // refused by name (decodable), the rest far past the decoder's limit.
    let marker = encode(&Value::from(MARKER)).unwrap();
    let deep: Vec<Vec<u8>> = [70, 120, 5_000, 200_000]
        .into_iter()
        .map(|depth| fuzz::splice(&valid[0], &marker, &fuzz::nested_value_lists(depth)).unwrap())
        .collect();

    let seeds = fuzz::seeds("itemsaver_survives_hostile_frames", 2);
    let handle = tokio::runtime::Handle::current();
    let rounds = tokio::task::spawn_blocking(move || {
        fuzz::hammer(addr, &seeds, &valid, &deep, b"", |round| {
            let count = handle.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), good.count(context::current())).await
            });
            assert!(
                matches!(count, Ok(Ok(Ok(_)))),
                "round {round}: the good client was not served: {count:?}"
            );
        })
    })
    .await
    .unwrap();
    eprintln!("{rounds} rounds");
    assert!(rounds > 0);
    assert!(!server.is_finished(), "the server stopped: {server:?}");
    // A new client connects and is served too.
    let fresh = rpcsupport::connect_itemsaver(&HostAddr::from(addr), ConnectOptions::default())
        .await
        .unwrap();
    assert!(fresh.count(context::current()).await.unwrap().is_ok());
}
