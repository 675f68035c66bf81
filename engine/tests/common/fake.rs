//! Fake workers: tarpc servers of the worker's service that answer each
//! request from a closure, so a test scripts every reply (links, render
//! outcomes, a dying worker) and nothing is fetched.

use std::future::{pending, Future};
use std::net::SocketAddr;
use std::sync::Arc;

use futures::StreamExt as _;
use rpcsupport::{
    CrawlError, FetchPolicy, ParseError, ParseResult, Request, ServeOptions, WorkerStatus,
};
use tarpc::context::Context;
use tarpc::server::Channel as _;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// The one parser a fake worker says it has; crawls over fakes use it.
pub const PARSER: &str = "fake";

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
}

// By hand: a derive would ask for `F: Clone`, and only the `Arc` is cloned.
impl<F> Clone for FakeWorker<F> {
    fn clone(&self) -> Self {
        FakeWorker {
            answer: self.answer.clone(),
            can_render: self.can_render,
            kill: self.kill.clone(),
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
        request: Request,
        _: FetchPolicy,
    ) -> Result<ParseResult, CrawlError> {
        match (self.answer)(request).await {
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
