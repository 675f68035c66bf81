//! A page that kills the worker processing it costs at most two worker
//! losses and is failed as `poison`; the calls that died beside it are sent
//! again without being failed (issue 11).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::fake::{start_fake_worker, tree_page, Reply, PARSER};
use crate::common::*;
use rpcsupport::Request;

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

/// A worker's answer to `request`: the synthetic site from memory (no
/// fetch at all), and a dropped connection, like a process killed by the
/// OOM killer, whenever it is asked for [`POISON`].
async fn answer(log: Arc<Log>, request: Request) -> Reply {
    if request.url == POISON {
        log.kills.fetch_add(1, Ordering::SeqCst);
        return Reply::Die;
    }
    // Long enough that many calls are in flight on each connection when
    // one dies.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let page = tree_page(&request, PAGES);
    log.answered.lock().unwrap().push(request.url);
    Reply::Answer(Ok(page))
}

/// The killer page is failed as `poison` after at most two worker losses,
/// with its reason in the failures file; every other page is fetched and
/// none of the calls that died beside it is failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killer_page_is_poison_after_two_losses() {
    let log = Arc::new(Log::default());
    let mut fakes = Vec::new();
    for _ in 0..2 {
        let log = log.clone();
        fakes.push(start_fake_worker(false, move |r| answer(log.clone(), r)).await);
    }
    let cluster = Cluster::builder()
        .workers(0)
        .workers_at(fakes)
        .start()
        .await;
    let failures = cluster.path("failures.jsonl");

    // The demo site is idle: the fakes answer for site.test.
    let mut config = cluster.config();
    config.seeds = vec!["http://site.test/p/1".into()];
    config.parser = PARSER.into();
    config.obey_robots = false;
    config.failures_file = failures.display().to_string();
    let summary = cluster.run(config).await;

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
