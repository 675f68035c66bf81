//! Issue 11, the client side: a fake server on 127.0.0.1:0 passes the
//! handshake, reads one request and answers with bad frames (random,
//! mutated, truncated, nested far too deep, lying about lengths, or of the
//! wrong method). `connect_crawl` and `connect_itemsaver` clients (what the
//! engine and the itemsaver tools use) get an error, never a crash.

use std::collections::BTreeMap;
use std::time::Duration;

use rpcsupport::codec::{decode, encode, DecodeLimits};
use rpcsupport::service::{CrawlRequest, CrawlResponse, ItemSaverRequest, ItemSaverResponse};
use rpcsupport::{
    ConnectOptions, HostAddr, Item, ParseResult, ParserSpec, PolicyRef, Request, Value,
    WorkerStatus,
};
use tarpc::context;
use testsupport::fuzz::{self, Rng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The marker string spliced out for a nesting bomb.
const MARKER: &str = "MARKER-0123456789";

/// A fake server for one connection: handshake, read one request frame,
/// write `reply(request id, method)`, close. Answers its address.
async fn fake_server<Req, F>(reply: F) -> HostAddr
where
    Req: serde::de::DeserializeOwned + rpcsupport::service::Method + Send + 'static,
    F: FnOnce(u64, &'static str) -> Vec<u8> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = HostAddr::from(listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        rpcsupport::handshake::server(&mut stream, None, || Some(()))
            .await
            .unwrap();
        let len = stream.read_u32().await.unwrap() as usize;
        let mut body = vec![0; len];
        stream.read_exact(&mut body).await.unwrap();
        let (id, method) = match decode::<tarpc::ClientMessage<Req>>(&body, DecodeLimits::default())
        {
            Ok(tarpc::ClientMessage::Request(r)) => (r.id, r.message.method()),
            _ => (0, "?"),
        };
        let _ = stream.write_all(&reply(id, method)).await;
        let _ = stream.flush().await;
        // Dropped: the client sees the close after the bad reply.
    });
    addr
}

fn response<T: serde::Serialize>(id: u64, message: T) -> Vec<u8> {
    encode(&tarpc::Response {
        request_id: id,
        message: Ok::<T, tarpc::ServerError>(message),
    })
    .unwrap()
}

fn marked_item() -> Item {
    Item {
        url: "http://127.0.0.1:1/".into(),
        kind: "k".into(),
        id: Some("1".into()),
        payload: BTreeMap::from([("x".to_string(), Value::from(MARKER))]),
    }
}

/// The bytes of `Value::Str(MARKER)` in a bincode body.
fn marker_bytes() -> Vec<u8> {
    encode(&Value::from(MARKER)).unwrap()
}

/// A bad reply to a crawl call: `kind` picks the shape, `rng` the noise.
fn bad_crawl_reply(kind: usize, rng: &mut Rng, id: u64) -> Vec<u8> {
    let status = response(
        id,
        CrawlResponse::Status(WorkerStatus {
            in_flight: 1,
            served: 2,
            parsers: vec!["links".into()],
            can_render: false,
        }),
    );
    let parsed = response(
        id,
        CrawlResponse::Process(Ok(ParseResult {
            items: vec![marked_item()],
            ..ParseResult::default()
        })),
    );
    match kind % 6 {
        0 => fuzz::frame(&rng.junk(0, 2048)),
        1 => fuzz::frame(&fuzz::mutate(rng, &status)),
        2 => fuzz::frame(&fuzz::mutate(rng, &parsed)),
        3 => {
            let mut f = fuzz::frame(&parsed);
            f.truncate(4 + rng.below(parsed.len()));
            f
        }
        4 => {
            let depth = [200, 5_000, 300_000][rng.below(3)];
            let bomb = fuzz::nested_value_lists(depth);
            fuzz::frame(&fuzz::splice(&parsed, &marker_bytes(), &bomb).unwrap())
        }
        _ => [0x7f, 0xff, 0xff, 0xff].to_vec(),
    }
}

fn request() -> Request {
    Request {
        url: "http://127.0.0.1:1/".into(),
        parser: ParserSpec::named("links"),
        depth: 0,
        hints: Default::default(),
    }
}

fn quick() -> ConnectOptions {
    ConnectOptions {
        connect_timeout: Duration::from_secs(2),
        ..ConnectOptions::default()
    }
}

/// Whatever a worker answers, a crawl client's call ends with an error or
/// (for a mutation that still reads as a status) an answer: never a panic,
/// never a hang.
#[tokio::test]
async fn crawl_client_survives_bad_replies() {
    for seed in fuzz::seeds("crawl_client_survives_bad_replies", 2) {
        let mut rng = Rng::new(seed);
        for round in 0..36 {
            let reply = bad_crawl_reply(round, &mut rng, 0);
            // Made for request id 0: a new client's first call.
            let addr = fake_server::<CrawlRequest, _>(move |_, _| reply).await;
            let client = rpcsupport::connect_crawl(&addr, quick()).await.unwrap();
            let mut ctx = context::current();
            ctx.deadline = std::time::Instant::now() + Duration::from_secs(5);
            let call = client.process(ctx, request().into(), PolicyRef::default());
            let outcome = tokio::time::timeout(Duration::from_secs(10), call)
                .await
                .expect("the client gives up by its deadline at the latest");
            if round % 6 != 1 && round % 6 != 2 {
                assert!(outcome.is_err(), "seed {seed} round {round}: {outcome:?}");
            }
        }
    }
}

/// A nesting bomb in a reply with the right request id is refused by the
/// decoder (the call fails), not decoded into a stack overflow.
#[tokio::test]
async fn nested_reply_is_an_error() {
    let addr = fake_server::<CrawlRequest, _>(|id, _| {
        let parsed = response(
            id,
            CrawlResponse::Process(Ok(ParseResult {
                items: vec![marked_item()],
                ..ParseResult::default()
            })),
        );
        let bomb = fuzz::nested_value_lists(1_000_000);
        fuzz::frame(&fuzz::splice(&parsed, &marker_bytes(), &bomb).unwrap())
    })
    .await;
    let client = rpcsupport::connect_crawl(&addr, quick()).await.unwrap();
    let outcome = client
        .process(context::current(), request().into(), PolicyRef::default())
        .await;
    assert!(outcome.is_err(), "{outcome:?}");
}

/// A reply of another method (a status answer to a process call, a count
/// answer to a search) is a server error for that call, not the panic
/// tarpc's generated client would meet it with.
#[tokio::test]
async fn reply_of_the_wrong_method_is_an_error() {
    let addr = fake_server::<CrawlRequest, _>(|id, method| {
        assert_eq!(method, "process");
        fuzz::frame(&response(
            id,
            CrawlResponse::Status(WorkerStatus {
                in_flight: 0,
                served: 0,
                parsers: vec![],
                can_render: false,
            }),
        ))
    })
    .await;
    let client = rpcsupport::connect_crawl(&addr, quick()).await.unwrap();
    let outcome = client
        .process(context::current(), request().into(), PolicyRef::default())
        .await;
    match outcome {
        Err(tarpc::client::RpcError::Server(e)) => {
            assert!(e.detail.contains("process call"), "{e}")
        }
        other => panic!("expected a server error, got {other:?}"),
    }

    let addr = fake_server::<ItemSaverRequest, _>(|id, method| {
        assert_eq!(method, "search");
        fuzz::frame(&response(id, ItemSaverResponse::Count(Ok(3))))
    })
    .await;
    let client = rpcsupport::connect_itemsaver(&addr, quick()).await.unwrap();
    let outcome = client
        .search(
            context::current(),
            rpcsupport::SearchRequest {
                query: String::new(),
                from: 0,
                size: 1,
            },
        )
        .await;
    assert!(
        matches!(outcome, Err(tarpc::client::RpcError::Server(_))),
        "{outcome:?}"
    );
}

/// Bad replies to an itemsaver client (random, mutated, truncated, nested)
/// end its call with an error or an answer, never a panic or a hang.
#[tokio::test]
async fn itemsaver_client_survives_bad_replies() {
    for seed in fuzz::seeds("itemsaver_client_survives_bad_replies", 2) {
        let mut rng = Rng::new(seed);
        for round in 0..24 {
            let got = response(0, ItemSaverResponse::Get(Ok(Some(marked_item()))));
            let reply = match round % 4 {
                0 => fuzz::frame(&rng.junk(0, 1024)),
                1 => fuzz::frame(&fuzz::mutate(&mut rng, &got)),
                2 => {
                    let mut f = fuzz::frame(&got);
                    f.truncate(4 + rng.below(got.len()));
                    f
                }
                _ => {
                    let bomb = fuzz::nested_value_lists(100_000);
                    fuzz::frame(&fuzz::splice(&got, &marker_bytes(), &bomb).unwrap())
                }
            };
            let addr = fake_server::<ItemSaverRequest, _>(move |_, _| reply).await;
            let client = rpcsupport::connect_itemsaver(&addr, quick()).await.unwrap();
            let mut ctx = context::current();
            ctx.deadline = std::time::Instant::now() + Duration::from_secs(5);
            let call = client.get(ctx, "1".into());
            let outcome = tokio::time::timeout(Duration::from_secs(10), call)
                .await
                .expect("the client gives up by its deadline at the latest");
            if round % 4 != 1 {
                assert!(outcome.is_err(), "seed {seed} round {round}: {outcome:?}");
            }
        }
    }
}
