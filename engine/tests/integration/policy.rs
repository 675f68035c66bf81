//! The crawl's fetch policy goes to a worker connection whole only until
//! the connection holds it, then by id; a connection that forgot it, or a
//! new connection after a worker loss, is given it again, and no page is
//! lost or failed over it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::fake::{start_fake_worker_with, tree_page, FakePolicies, Reply, PARSER};
use crate::common::*;
use rpcsupport::Request;

/// Pages of the synthetic site ([`tree_page`]).
const PAGES: u32 = 300;
/// Calls in flight at most.
const IN_FLIGHT: usize = 16;

/// The synthetic page `request` names, from memory.
async fn page(request: Request) -> Reply {
    // Long enough that many calls are in flight before the first answer.
    tokio::time::sleep(Duration::from_millis(5)).await;
    Reply::Answer(Ok(tree_page(&request, PAGES)))
}

/// Crawls the synthetic site over one fake worker, which drops its
/// connection instead of answering where `dies` says so; every page must
/// be fetched, none failed.
async fn crawl(
    policies: Arc<FakePolicies>,
    dies: impl Fn(&Request) -> bool + Send + Sync + 'static,
) {
    let dies = Arc::new(dies);
    let fake = start_fake_worker_with(false, policies, move |r| {
        let die = dies(&r);
        async move {
            match die {
                true => Reply::Die,
                false => page(r).await,
            }
        }
    })
    .await;
    let cluster = Cluster::builder()
        .workers(0)
        .workers_at(vec![fake])
        .start()
        .await;
    let mut config = cluster.config();
    config.seeds = vec!["http://site.test/p/1".into()];
    config.parser = PARSER.into();
    config.obey_robots = false;
    config.worker_count = IN_FLIGHT;
    config.per_host_concurrency = IN_FLIGHT as u32;
    let summary = cluster.run(config).await;
    assert_eq!(summary.pages, u64::from(PAGES), "{summary}");
    assert!(summary.errors.is_empty(), "{summary}");
}

/// Whole on the calls sent before the connection's first answer, by id on
/// every call after it; and given again, once, after the worker forgot it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_until_held_then_named() {
    let policies = Arc::new(FakePolicies::default());
    let answered = Arc::new(AtomicU32::new(0));
    let forgetter = policies.clone();
    crawl(policies.clone(), move |_| {
        if answered.fetch_add(1, Ordering::SeqCst) == 100 {
            forgetter.forget();
        }
        false
    })
    .await;

    let calls = policies.calls();
    let given: Vec<usize> = (0..calls.len()).filter(|&i| calls[i].1).collect();
    let first_named = calls.iter().position(|c| !c.1).expect("some calls name it");
    assert!(
        given.iter().filter(|&&i| i < first_named).count() <= IN_FLIGHT,
        "only calls in flight before the first answer give it: {given:?}"
    );
    // Forgotten at the 101st call: the calls in flight then that named
    // it were refused and asked again, giving it; the rest named it.
    let after: Vec<usize> = given.iter().copied().filter(|&i| i > first_named).collect();
    assert!(
        !after.is_empty() && after.len() <= 2 * IN_FLIGHT,
        "given again after it was forgotten, and only then: {given:?}"
    );
    assert!(
        calls.iter().filter(|c| !c.1).count() > calls.len() / 2,
        "most calls name it: {} given of {}",
        given.len(),
        calls.len()
    );
}

/// A new connection (the worker was lost and came back) is given the
/// policy on its first call: the crawl does not name it there first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_connection_is_given_it() {
    let policies = Arc::new(FakePolicies::default());
    let died = Arc::new(Mutex::new(HashSet::new()));
    crawl(policies.clone(), move |r| {
        // The 50th page kills its connection, the first time only.
        r.url == "http://site.test/p/50" && died.lock().unwrap().insert(r.url.clone())
    })
    .await;

    let calls = policies.calls();
    let connections: HashSet<usize> = calls.iter().map(|c| c.0).collect();
    assert!(
        connections.len() >= 2,
        "the worker came back: {connections:?}"
    );
    for connection in connections {
        let first = calls.iter().find(|c| c.0 == connection).unwrap();
        assert!(first.1, "connection {connection} was first given it");
    }
}
