//! The tarpc face of a [`Worker`]: `process` and `status` delegate to it.
//! Kept apart so [`Worker`] stays usable in-process (benchmarks, tests)
//! without any RPC.

use rpcsupport::{Crawl, CrawlError, FetchPolicy, ParseError, ParseResult, Request, WorkerStatus};
use tarpc::context::Context;

use crate::Worker;

/// Implements [`Crawl`] over a [`Worker`]. Cloned per request, cheaply.
#[derive(Clone)]
pub struct CrawlService {
    worker: Worker,
}

impl CrawlService {
    /// Serves `worker`.
    pub fn new(worker: Worker) -> Self {
        CrawlService { worker }
    }
}

impl Crawl for CrawlService {
    async fn process(
        self,
        _: Context,
        request: Request,
        policy: FetchPolicy,
    ) -> Result<ParseResult, CrawlError> {
        self.worker.process_with(request, &policy).await
    }

    async fn status(self, _: Context) -> WorkerStatus {
        self.worker.status()
    }

    async fn load_rules(self, _: Context, rules_json: String) -> Result<String, ParseError> {
        self.worker.load_rules(&rules_json)
    }
}
