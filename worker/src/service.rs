//! The tarpc face of a [`Worker`]: `process` and `status` delegate to it.
//! Kept apart so [`Worker`] stays usable in-process (benchmarks, tests)
//! without any RPC. Each connection gets its own [`CrawlService`], which
//! holds the fetch policies given on that connection ([`Policies`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use rpcsupport::{
    Crawl, CrawlError, FetchPolicy, ParseError, ParseResult, PolicyRef, Request, Shared,
    WorkerStatus,
};
use tarpc::context::Context;

use crate::Worker;

/// Implements [`Crawl`] over a [`Worker`] for one connection. Cloned per
/// request, cheaply.
#[derive(Clone)]
pub struct CrawlService {
    worker: Worker,
    policies: Arc<Policies>,
}

impl CrawlService {
    /// Serves `worker` on a new connection: no policy given yet.
    pub fn new(worker: Worker) -> Self {
        let limit = worker.config().policies_per_connection;
        CrawlService {
            worker,
            policies: Arc::new(Policies::new(limit)),
        }
    }
}

impl Crawl for CrawlService {
    async fn process(
        self,
        _: Context,
        request: Shared<Request>,
        policy: PolicyRef,
    ) -> Result<ParseResult, CrawlError> {
        let policy = self.policies.resolve(policy)?;
        self.worker
            .process_with(request.into_inner(), &policy)
            .await
    }

    async fn status(self, _: Context) -> WorkerStatus {
        self.worker.status()
    }

    async fn load_rules(self, _: Context, rules_json: String) -> Result<String, ParseError> {
        self.worker.load_rules(&rules_json)
    }
}

/// The fetch policies one connection gave by id: at most `limit`, the
/// oldest given forgotten first. Never shared between connections, so ids
/// are the caller's own.
#[derive(Debug)]
pub struct Policies {
    limit: usize,
    held: Mutex<VecDeque<(u64, Arc<FetchPolicy>)>>,
}

impl Policies {
    /// None held yet; at most `limit` (at least one) later.
    pub fn new(limit: usize) -> Self {
        Policies {
            limit: limit.max(1),
            held: Mutex::new(VecDeque::new()),
        }
    }

    /// The policy a call runs under: the one it gives (kept under its id,
    /// replacing an older one of that id), or the one it names.
    pub fn resolve(&self, policy: PolicyRef) -> Result<Arc<FetchPolicy>, CrawlError> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        match policy {
            PolicyRef::Known(id) => held
                .iter()
                .find(|(held_id, _)| *held_id == id)
                .map(|(_, p)| p.clone())
                .ok_or(CrawlError::UnknownPolicy(id)),
            PolicyRef::Given { id, policy } => {
                // Calls sent before the first answer all give the policy:
                // an equal one already held is kept as it is.
                if let Some((_, p)) = held.iter().find(|(h, p)| *h == id && **p == policy) {
                    return Ok(p.clone());
                }
                held.retain(|(held_id, _)| *held_id != id);
                if held.len() >= self.limit {
                    held.pop_front();
                }
                let policy = Arc::new(policy);
                held.push_back((id, policy.clone()));
                Ok(policy)
            }
        }
    }

    /// How many are held.
    pub fn len(&self) -> usize {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(domain: &str) -> FetchPolicy {
        FetchPolicy {
            allowed_domains: vec![domain.to_string()],
            ..FetchPolicy::default()
        }
    }

    fn given(id: u64, domain: &str) -> PolicyRef {
        PolicyRef::Given {
            id,
            policy: policy(domain),
        }
    }

    /// A named policy must have been given first; once given, the name
    /// gives it back.
    #[test]
    fn known_needs_given() {
        let p = Policies::new(8);
        assert_eq!(
            p.resolve(PolicyRef::Known(1)),
            Err(CrawlError::UnknownPolicy(1))
        );
        assert_eq!(*p.resolve(given(1, "a.test")).unwrap(), policy("a.test"));
        assert_eq!(*p.resolve(PolicyRef::Known(1)).unwrap(), policy("a.test"));
        assert_eq!(
            p.resolve(PolicyRef::Known(2)),
            Err(CrawlError::UnknownPolicy(2))
        );
    }

    /// Giving an id again replaces what it named; giving the same policy
    /// again (calls before the first answer) keeps one entry.
    #[test]
    fn given_again_replaces() {
        let p = Policies::new(8);
        p.resolve(given(1, "a.test")).unwrap();
        p.resolve(given(1, "a.test")).unwrap();
        assert_eq!(p.len(), 1);
        p.resolve(given(1, "b.test")).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(*p.resolve(PolicyRef::Known(1)).unwrap(), policy("b.test"));
    }

    /// Past the limit the oldest given is forgotten, so a connection holds
    /// at most `limit` policies whatever its caller sends.
    #[test]
    fn bounded_oldest_first() {
        let p = Policies::new(2);
        for id in 0..100 {
            p.resolve(given(id, &format!("h{id}.test"))).unwrap();
            assert!(p.len() <= 2);
        }
        assert!(p.resolve(PolicyRef::Known(97)).is_err());
        assert_eq!(
            *p.resolve(PolicyRef::Known(98)).unwrap(),
            policy("h98.test")
        );
        assert_eq!(
            *p.resolve(PolicyRef::Known(99)).unwrap(),
            policy("h99.test")
        );
    }
}
