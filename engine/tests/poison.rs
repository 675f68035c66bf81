//! A page that kills the worker processing it costs at most two worker
//! losses and is failed as `poison`; the calls that died beside it are sent
//! again without being failed (issue 11).

mod common;

use std::collections::HashSet;
use std::future::pending;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures::StreamExt as _;
use rpcsupport::{
    CrawlError, FetchPolicy, ParseError, ParseResult, ParserSpec, Request, ServeOptions,
    WorkerStatus,
};
use tarpc::context::Context;
use tarpc::server::Channel as _;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Pages of the synthetic site: `/p/1` .. `/p/PAGES`, a tree where page n
/// links to 10(n-1)+2 .. 10n+1.
const PAGES: u32 = 300;
const POISON: &str = "http://site.test/p/7";

/// What every fake worker saw, shared by the test.
#[derive(Default)]
struct Log {
    /// URLs answered with a page.
    answered: Mutex<Vec<String>>,
    /// Connections dropped (each a "worker died").
    kills: AtomicU32,
}

/// A worker that answers the synthetic site from memory (no fetch at all),
/// and drops its connection, like a process killed by the OOM killer,
/// whenever it is asked for [`POISON`].
#[derive(Clone)]
struct FakeWorker {
    log: Arc<Log>,
    /// Closes this connection.
    kill: Arc<Notify>,
}

impl rpcsupport::Crawl for FakeWorker {
    async fn process(
        self,
        _: Context,
        request: Request,
        _: FetchPolicy,
    ) -> Result<ParseResult, CrawlError> {
        if request.url == POISON {
            self.log.kills.fetch_add(1, Ordering::SeqCst);
            self.kill.notify_one();
            return pending().await;
        }
        // Long enough that many calls are in flight on each connection
        // when one dies.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let n: u32 = request
            .url
            .rsplit('/')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a synthetic page URL");
        let requests = (10 * (n - 1) + 2..=10 * n + 1)
            .filter(|&c| c <= PAGES)
            .map(|c| Request {
                url: format!("http://site.test/p/{c}"),
                parser: ParserSpec::named("fake"),
                depth: request.depth + 1,
                hints: Default::default(),
            })
            .collect();
        self.log.answered.lock().unwrap().push(request.url);
        Ok(ParseResult {
            requests,
            ..ParseResult::default()
        })
    }

    async fn status(self, _: Context) -> WorkerStatus {
        WorkerStatus {
            in_flight: 0,
            served: 0,
            parsers: vec!["fake".into()],
            can_render: false,
        }
    }

    async fn load_rules(self, _: Context, _: String) -> Result<String, ParseError> {
        Err(ParseError::BadRules("the fake worker has no rules".into()))
    }
}

/// Starts a fake worker on 127.0.0.1:0; it serves until the test ends.
async fn start_fake_worker(log: Arc<Log>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(rpcsupport::serve(
        listener,
        ServeOptions::default(),
        pending::<()>(),
        move |channel| {
            use rpcsupport::Crawl as _;
            let kill = Arc::new(Notify::new());
            let service = FakeWorker {
                log: log.clone(),
                kill: kill.clone(),
            };
            async move {
                let served = channel
                    .execute(service.serve())
                    .for_each(|response| async move {
                        tokio::spawn(response);
                    });
                // Dropping the channel closes the connection under every
                // call in flight on it.
                tokio::select! {
                    _ = served => {}
                    _ = kill.notified() => {}
                }
            }
        },
    ));
    addr
}

/// The killer page is failed as `poison` after at most two worker losses,
/// with its reason in the failures file; every other page is fetched and
/// none of the calls that died beside it is failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killer_page_is_poison_after_two_losses() {
    let log = Arc::new(Log::default());
    let w1 = start_fake_worker(log.clone()).await;
    let w2 = start_fake_worker(log.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (saver, _s) = start_itemsaver(&dir.path().join("store")).await;
    let failures = dir.path().join("failures.jsonl");

    let mut config = engine_config("http://site.test/p/1", &[w1, w2], saver);
    config.parser = "fake".into();
    config.obey_robots = false;
    config.failures_file = failures.display().to_string();
    let settings = config.validate().unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(60), engine::run(settings, pending()))
        .await
        .expect("the crawl ends")
        .expect("crawl runs");

    let kills = log.kills.load(Ordering::SeqCst);
    assert_eq!(
        kills, 2,
        "the poison page reached a worker {kills} times: {summary}"
    );
    assert_eq!(
        summary.errors,
        [("poison".to_string(), 1)].into(),
        "only the killer page fails: {summary}"
    );
    // Every page but the killer and the ten only it links to (62..=71).
    let unreachable = |n: u32| n == 7 || (62..=71).contains(&n);
    assert_eq!(summary.pages, u64::from(PAGES) - 11, "{summary}");
    let answered: HashSet<String> = log.answered.lock().unwrap().iter().cloned().collect();
    for n in 1..=PAGES {
        let url = format!("http://site.test/p/{n}");
        assert_eq!(answered.contains(&url), !unreachable(n), "{url}");
    }
    assert!(summary.retries > 0, "calls died beside it: {summary}");
    assert!(!summary.interrupted, "{summary}");

    let lines = std::fs::read_to_string(&failures).unwrap();
    let records: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 1, "{lines}");
    assert_eq!(records[0]["url"], POISON);
    assert_eq!(records[0]["kind"], "poison");
    let reason = records[0]["reason"].as_str().unwrap();
    assert!(reason.contains("lost twice"), "{reason}");
}
