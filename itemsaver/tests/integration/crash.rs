//! SIGKILL right after an acknowledge loses nothing acknowledged (issue 3):
//! the real `itemsaver` binary on the embedded store, killed and restarted
//! on the same data directory.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use rpcsupport::{ConnectOptions, HostAddr, Item, Value};
use tarpc::context;
use testsupport::Server;

const BIN: &str = env!("CARGO_BIN_EXE_itemsaver");

/// Starts the itemsaver on a free port and waits for its ready line; the
/// returned server is SIGKILLed on drop, so a failing test leaves nothing behind.
fn start(work_dir: &Path, data_dir: &Path) -> Server {
    Server::start(
        Command::new(BIN)
            .args(["--port", "0", "--data_dir"])
            .arg(data_dir)
            .current_dir(work_dir)
            .stderr(Stdio::null()),
        "itemsaver listening on ",
    )
}

fn item(round: usize, batch: usize, i: usize) -> Item {
    let id = format!("{round}-{batch}-{i}");
    let mut payload = BTreeMap::new();
    payload.insert("round".to_string(), Value::Int(round as i64));
    payload.insert("text".to_string(), Value::from(format!("item {id}")));
    payload.insert("score".to_string(), Value::Float(i as f64 / 3.0));
    Item {
        url: format!("http://127.0.0.1:1/item/{id}"),
        kind: "crash".into(),
        id: Some(id),
        payload,
    }
}

/// Three rounds of: save batches from two concurrent senders, SIGKILL the
/// itemsaver the moment the 8th batch is acknowledged (others still in
/// flight), restart it on the same directory; every acknowledged item is
/// then there, exactly as saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_ack_loses_nothing_acknowledged() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("items");
    let mut acked: Vec<Item> = Vec::new();
    for round in 0..3 {
        let mut server = start(work.path(), &data);
        let host: HostAddr = server.addr().parse().unwrap();
        let client = rpcsupport::connect_itemsaver(&host, ConnectOptions::default())
            .await
            .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for sender in 0..2 {
            let client = client.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                for batch in (sender..).step_by(2).take(100) {
                    let items: Vec<Item> = (0..50).map(|i| item(round, batch, i)).collect();
                    match client.save(context::current(), items.clone().into()).await {
                        Ok(Ok(_)) => {
                            if tx.send(items).is_err() {
                                return;
                            }
                        }
                        // The server was killed under this call.
                        _ => return,
                    }
                }
            });
        }
        drop(tx);
        let mut acks = 0;
        while let Some(items) = rx.recv().await {
            acked.extend(items);
            acks += 1;
            if acks == 8 {
                server.kill9();
                break;
            }
        }
        assert_eq!(
            acks, 8,
            "round {round}: the server stopped acknowledging early"
        );
        // Acks that raced with the kill were sent before it died: count them too.
        while let Ok(items) = rx.try_recv() {
            acked.extend(items);
        }
        drop(server);

        let server = start(work.path(), &data);
        let host: HostAddr = server.addr().parse().unwrap();
        let client = rpcsupport::connect_itemsaver(&host, ConnectOptions::default())
            .await
            .unwrap();
        let count = client.count(context::current()).await.unwrap().unwrap();
        assert!(
            count >= acked.len() as u64,
            "round {round}: {count} stored, {} acknowledged",
            acked.len()
        );
        for expected in &acked {
            let got = client
                .get(context::current(), expected.key())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(got.as_ref(), Some(expected), "round {round}");
        }
    }
}
