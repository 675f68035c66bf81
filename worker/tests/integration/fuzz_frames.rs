//! Issue 11: a real worker on 127.0.0.1:0 gets random, truncated and
//! mutated frames, nesting bombs and lying length headers, before and
//! after a valid handshake, for a bounded time (a fixed seed, then two
//! random ones). It must not crash, and a good client, asking between the
//! attacks, must be served throughout.
//!
//! No frame asks for a fetch: the valid frames mutated are `status`,
//! `load_rules` and cancellations (a `process` frame, mutated, could name a
//! host to resolve, and no test may send a packet off this machine).

use std::time::Duration;

use rpcsupport::codec::encode;
use rpcsupport::service::CrawlRequest;
use rpcsupport::{ConnectOptions, HostAddr};
use tarpc::context;
use testsupport::fuzz;
use worker::{Worker, WorkerConfig};

const MARKER: &str = "MARKER-0123456789";

/// A tarpc request frame body carrying `message`.
fn body(id: u64, message: CrawlRequest) -> Vec<u8> {
    encode(&tarpc::ClientMessage::Request(tarpc::Request {
        context: context::current(),
        id,
        message,
    }))
    .unwrap()
}

/// The fuzz run against a worker with the default configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_survives_hostile_frames() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let worker = Worker::new(&WorkerConfig::default()).unwrap();
    let server = tokio::spawn(worker::serve(
        listener,
        worker,
        worker::ServerOptions::default(),
        std::future::pending(),
    ));
    let good = rpcsupport::connect_crawl(&HostAddr::from(addr), ConnectOptions::default())
        .await
        .unwrap();

    let rules = format!("{{\"name\":\"{MARKER}\",\"parsers\":{{}}}}");
    let valid = vec![
        body(1, CrawlRequest::Status {}),
        body(2, CrawlRequest::LoadRules { rules_json: rules }),
        body(
            3,
            CrawlRequest::LoadRules {
                rules_json: MARKER.into(),
            },
        ),
        encode(&tarpc::ClientMessage::<CrawlRequest>::Cancel {
            trace_context: Default::default(),
            request_id: 2,
        })
        .unwrap(),
    ];
    // Nesting bombs and length lies where the marker string is.
    let marker = encode(MARKER).unwrap();
    let deep: Vec<Vec<u8>> = [
        fuzz::nested_value_lists(100_000),
        fuzz::varint(u64::MAX),
        [fuzz::varint(1 << 30), b"x".to_vec()].concat(),
    ]
    .into_iter()
    .map(|bomb| fuzz::splice(&valid[2], &marker, &bomb).unwrap())
    .collect();

    let seeds = fuzz::seeds("worker_survives_hostile_frames", 2);
    let handle = tokio::runtime::Handle::current();
    let rounds = tokio::task::spawn_blocking(move || {
        fuzz::hammer(addr, &seeds, &valid, &deep, b"", |round| {
            let status = handle.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), good.status(context::current())).await
            });
            assert!(
                matches!(status, Ok(Ok(_))),
                "round {round}: the good client was not served: {status:?}"
            );
        })
    })
    .await
    .unwrap();
    eprintln!("{rounds} rounds");
    assert!(rounds > 0);
    assert!(!server.is_finished(), "the server stopped: {server:?}");
    let fresh = rpcsupport::connect_crawl(&HostAddr::from(addr), ConnectOptions::default())
        .await
        .unwrap();
    fresh.status(context::current()).await.unwrap();
}
