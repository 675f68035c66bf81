//! One call to a worker, in its own task: pick a worker (any, or one that
//! can render), send the request, give the rules again to a worker that
//! restarted without them, and tell a failed call (the worker answers
//! `status`) from a lost worker. What it learnt goes back to the loop as an
//! [`Outcome`].

use std::sync::Arc;
use std::time::Duration;

use rpcsupport::{
    CrawlError, FetchPolicy, ParseError, ParseResult, PolicyRef, RenderError, Request, Shared,
};
use tarpc::client::RpcError;

use crate::pool::{deadline_in, ConnectionId, WorkerHandle, WorkerPool};

/// Which call in flight an outcome belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct CallId(pub(super) u64);

/// What a dispatch task reports back.
#[derive(Debug)]
pub(super) struct Outcome {
    /// The worker's position in the pool.
    pub(super) worker: usize,
    pub(super) result: CallResult,
}

#[derive(Debug)]
pub(super) enum CallResult {
    /// The worker answered (with a page or a page error).
    Answered(Result<ParseResult, CrawlError>),
    /// The call itself failed: deadline, disconnect.
    Failed {
        kind: &'static str,
        reason: String,
        /// The connection, when the pool found the worker lost with it
        /// (dropped, or not answering `status`); `None` when the worker
        /// is fine and only this call failed.
        lost: Option<ConnectionId>,
    },
    /// The request needs a browser and no worker that can render came up
    /// within `worker_wait`: nothing was sent (the outcome's worker index
    /// means nothing).
    NoRenderWorker { waited: Duration },
}

/// Which workers a call may go to.
#[derive(Debug, Clone, Copy)]
pub(super) enum Route {
    /// Any worker in rotation.
    Any,
    /// Only a worker that can render, waited for at most `wait` since
    /// render calls first found none.
    Render { wait: Duration },
}

/// One call to the next worker. A failed call is followed by a health check
/// so the pool can tell a slow page (worker answers `status`) from a dead
/// worker (it does not, or the connection is gone).
pub(super) async fn call(
    pool: Arc<WorkerPool>,
    request: Request,
    policy: Arc<FetchPolicy>,
    timeout: Duration,
    route: Route,
) -> Outcome {
    let worker = match route {
        Route::Any => pool.next().await,
        Route::Render { wait } => match pool.next_render(wait).await {
            Some(worker) => worker,
            None => {
                return Outcome {
                    worker: 0,
                    result: CallResult::NoRenderWorker { waited: wait },
                }
            }
        },
    };
    // One copy of the request for every attempt below, none per attempt.
    let request = Shared::new(request);
    let mut answer = process(&worker, &request, &policy, timeout).await;
    if let Ok(Err(CrawlError::Parse(ParseError::UnknownRuleset(_)))) = &answer {
        // Restarted since it got the rules: give them again, ask again.
        if let Err(e) = pool.reload_rules(&worker).await {
            tracing::warn!(worker = %worker.addr, error = %e, "could not reload rules");
        }
        answer = process(&worker, &request, &policy, timeout).await;
    }
    if let Ok(Err(CrawlError::Render(RenderError::Unavailable { .. }))) = &answer {
        // It has no browser (or lost it): no more render requests for it
        // until its status says otherwise; the loop sends this one again.
        pool.cannot_render(&worker);
    }
    let result = match answer {
        Ok(answer) => CallResult::Answered(answer),
        Err(e) => {
            let (kind, broken) = match &e {
                RpcError::DeadlineExceeded => ("rpc_deadline", false),
                RpcError::Server(_) => ("rpc_server", false),
                _ => ("rpc_disconnected", true),
            };
            let up = pool.check(&worker, broken).await;
            CallResult::Failed {
                kind,
                reason: format!("worker {}: {e}", worker.addr),
                lost: (!up).then(|| worker.connection()),
            }
        }
    };
    Outcome {
        worker: worker.index,
        result,
    }
}

/// One `process` call carrying the crawl's policy as the connection needs
/// it (whole until it holds it, by id after); a worker that answers it does
/// not know the policy is given it whole, once, at once.
async fn process(
    worker: &WorkerHandle,
    request: &Shared<Request>,
    policy: &FetchPolicy,
    timeout: Duration,
) -> Result<Result<ParseResult, CrawlError>, RpcError> {
    let mut sent = worker.policy_ref(policy);
    loop {
        let answer = worker
            .client
            .process(deadline_in(timeout), request.share(), sent.clone())
            .await;
        let unknown = matches!(answer, Ok(Err(CrawlError::UnknownPolicy(_))));
        if answer.is_ok() {
            worker.policy_answered(&sent, !unknown);
        }
        if !unknown || matches!(sent, PolicyRef::Given { .. }) {
            return answer;
        }
        sent = worker.policy_ref(policy);
    }
}
