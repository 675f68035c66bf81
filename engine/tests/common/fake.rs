//! Fake workers: tarpc servers of the worker's service that answer each
//! request from a closure, so a test scripts every reply (links, render
//! outcomes, a dying worker) and nothing is fetched.

use std::future::{pending, Future};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use rpcsupport::{
    CrawlError, ParseError, ParseResult, PolicyRef, Request, ServeOptions, Shared, WorkerStatus,
};
use tarpc::context::Context;
use tarpc::server::Channel as _;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use worker::service::Policies;

/// The one parser a fake worker says it has; crawls over fakes use it.
pub const PARSER: &str = "fake";

/// Page `request` of a synthetic tree site of `pages` pages,
/// `http://site.test/p/1` .. `/p/{pages}`, where page n links to
/// 10(n-1)+2 ..= 10n+1: its links, from memory.
pub fn tree_page(request: &Request, pages: u32) -> ParseResult {
    let n: u32 = request
        .url
        .rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a synthetic page URL");
    let requests = (10 * (n - 1) + 2..=10 * n + 1)
        .filter(|&c| c <= pages)
        .map(|c| Request {
            url: format!("http://site.test/p/{c}"),
            parser: rpcsupport::ParserSpec::named(PARSER),
            depth: request.depth + 1,
            hints: Default::default(),
        })
        .collect();
    ParseResult {
        requests,
        ..ParseResult::default()
    }
}

/// What a fake worker does with one request.
// Unboxed: a reply lives only from the closure to the RPC answer.
#[allow(clippy::large_enum_variant)]
pub enum Reply {
    /// Answers with this.
    Answer(Result<ParseResult, CrawlError>),
    /// Drops its connection under every call in flight on it, as a worker
    /// process killed by the OOM killer would, and never answers.
    Die,
}

struct FakeWorker<F> {
    answer: Arc<F>,
    can_render: bool,
    /// Closes this connection.
    kill: Arc<Notify>,
    /// Which connection of this fake, from 0.
    connection: usize,
    policies: Arc<FakePolicies>,
}

/// Policies a fake worker's connection holds, as a default worker does.
const POLICIES_HELD: usize = 8;

/// The fetch policies a fake worker's calls carried, and those its
/// connections hold, as a real worker holds them ([`worker::service::Policies`]).
#[derive(Default)]
pub struct FakePolicies {
    held: Mutex<Vec<Arc<Policies>>>,
    /// Each call's connection and whether it gave the policy whole.
    calls: Mutex<Vec<(usize, bool)>>,
}

impl FakePolicies {
    fn record(&self, connection: usize, policy: &PolicyRef) {
        let given = matches!(policy, PolicyRef::Given { .. });
        self.calls.lock().unwrap().push((connection, given));
    }

    fn resolve(&self, connection: usize, policy: PolicyRef) -> Result<(), CrawlError> {
        let held = self.held.lock().unwrap()[connection].clone();
        held.resolve(policy).map(drop)
    }

    fn open(&self) -> usize {
        let mut held = self.held.lock().unwrap();
        held.push(Arc::new(Policies::new(POLICIES_HELD)));
        held.len() - 1
    }

    /// Every connection forgets the policies it holds, as a worker would
    /// that keeps fewer than its callers give.
    pub fn forget(&self) {
        for p in self.held.lock().unwrap().iter_mut() {
            *p = Arc::new(Policies::new(POLICIES_HELD));
        }
    }

    /// Each call so far: its connection, and whether it gave the policy.
    pub fn calls(&self) -> Vec<(usize, bool)> {
        self.calls.lock().unwrap().clone()
    }
}

// By hand: a derive would ask for `F: Clone`, and only the `Arc` is cloned.
impl<F> Clone for FakeWorker<F> {
    fn clone(&self) -> Self {
        FakeWorker {
            answer: self.answer.clone(),
            can_render: self.can_render,
            kill: self.kill.clone(),
            connection: self.connection,
            policies: self.policies.clone(),
        }
    }
}

impl<F, Fut> rpcsupport::Crawl for FakeWorker<F>
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    async fn process(
        self,
        _: Context,
        request: Shared<Request>,
        policy: PolicyRef,
    ) -> Result<ParseResult, CrawlError> {
        self.policies.record(self.connection, &policy);
        self.policies.resolve(self.connection, policy)?;
        match (self.answer)(request.into_inner()).await {
            Reply::Answer(result) => result,
            Reply::Die => {
                self.kill.notify_one();
                pending().await
            }
        }
    }

    async fn status(self, _: Context) -> WorkerStatus {
        WorkerStatus {
            in_flight: 0,
            served: 0,
            parsers: vec![PARSER.into()],
            can_render: self.can_render,
        }
    }

    async fn load_rules(self, _: Context, _: String) -> Result<String, ParseError> {
        Err(ParseError::BadRules("a fake worker has no rules".into()))
    }
}

/// Starts a fake worker on 127.0.0.1:0 that answers each request with
/// `answer(request)` and says in its status whether it `can_render`; it
/// serves until the test ends.
pub async fn start_fake_worker<F, Fut>(can_render: bool, answer: F) -> SocketAddr
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    start_fake_worker_with(can_render, Arc::default(), answer).await
}

/// [`start_fake_worker`], with the record of the policies its calls carry.
pub async fn start_fake_worker_with<F, Fut>(
    can_render: bool,
    policies: Arc<FakePolicies>,
    answer: F,
) -> SocketAddr
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let answer = Arc::new(answer);
    tokio::spawn(rpcsupport::serve(
        listener,
        ServeOptions::default(),
        pending::<()>(),
        move |channel| {
            use rpcsupport::Crawl as _;
            let kill = Arc::new(Notify::new());
            let service = FakeWorker {
                answer: answer.clone(),
                can_render,
                kill: kill.clone(),
                connection: policies.open(),
                policies: policies.clone(),
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
