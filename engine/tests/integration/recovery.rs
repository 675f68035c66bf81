//! Never lose work (issue 4): workers and the itemsaver are real processes,
//! killed with SIGKILL mid-crawl; the crawl still stores every profile
//! exactly once. Each test is bounded by its site size and explicit limits.

use std::future::pending;
use std::time::Duration;

use crate::common::procs::{stored, wait_for_items, Proc};
use crate::common::*;
use demosite::SiteConfig;
use rpcsupport::{connect_crawl, ConnectOptions, HostAddr};
use tarpc::context;

const PROFILES: u64 = 3000;
const LIMIT: Duration = Duration::from_secs(120);

async fn site() -> (std::sync::Arc<demosite::Site>, String, Stop) {
    start_site(SiteConfig {
        profiles: PROFILES,
        ..SiteConfig::default()
    })
    .await
}

/// The site with its request log, for tests that wait on the crawl's
/// progress as the site sees it.
async fn logged_site() -> (
    std::sync::Arc<demosite::Site>,
    String,
    std::sync::Arc<demosite::RequestLog>,
    Stop,
) {
    gated_site(None).await
}

/// [`logged_site`], serving pages only as `gate` gives permits (one per
/// page), if given: so a test knows the crawl cannot end before it acts.
async fn gated_site(
    gate: Option<std::sync::Arc<tokio::sync::Semaphore>>,
) -> (
    std::sync::Arc<demosite::Site>,
    String,
    std::sync::Arc<demosite::RequestLog>,
    Stop,
) {
    start_site_with(
        "127.0.0.1",
        SiteConfig {
            profiles: PROFILES,
            ..SiteConfig::default()
        },
        demosite::SiteOptions {
            gate,
            ..demosite::SiteOptions::default()
        },
    )
    .await
}

/// Pages the gated tests let the site serve before they act: enough for
/// 300 profiles' items (the list and the city pages come first), well
/// short of the whole site.
const FIRST_PAGES: usize = 1_000;

/// Opens the gate for good.
fn open_gate(gate: &tokio::sync::Semaphore) {
    gate.add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
}

/// Waits until the site has answered at least `n` requests.
async fn wait_for_requests(log: &demosite::RequestLog, n: usize) {
    let start = std::time::Instant::now();
    while log.entries().len() < n {
        assert!(
            start.elapsed() < LIMIT,
            "the site did not see {n} requests within {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn saver_proc(dir: &std::path::Path, port: &str) -> Proc {
    Proc::start(
        "itemsaver",
        &[
            "--config",
            "/dev/null",
            "--port",
            port,
            "--data_dir",
            dir.to_str().unwrap(),
        ],
    )
}

fn worker_proc(port: &str) -> Proc {
    Proc::start(
        "worker",
        &[
            "--config",
            "/dev/null",
            "--port",
            port,
            "--allow_internal",
            "127.0.0.1",
        ],
    )
}

fn config(url: &str, workers: &[&Proc], saver: &Proc) -> engine::EngineConfig {
    engine::EngineConfig {
        itemsaver_host: saver.addr.clone(),
        worker_hosts: workers.iter().map(|w| w.addr.clone()).collect(),
        seeds: vec![url.to_owned()],
        item_linger_ms: 50,
        // Small batches, so the item count the tests wait for tracks the
        // crawl's progress (a default 2000-item batch of 3000 profiles
        // would land when the crawl is nearly done, and a kill then may
        // come after the last call to that worker).
        item_batch_size: 100,
        per_host_concurrency: 32,
        failures_file: String::new(),
        ..engine::EngineConfig::default()
    }
}

/// SIGKILL one of two workers mid-crawl: its requests go to the other one
/// and every profile is stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_mid_crawl_loses_nothing() {
    // The site stops after FIRST_PAGES until the worker is dead, so the
    // kill always strikes mid-crawl, with calls of that worker waiting.
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(FIRST_PAGES));
    let (site, url, _log, _s) = gated_site(Some(gate.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let saver = saver_proc(dir.path(), "0");
    let mut w1 = worker_proc("0");
    let w2 = worker_proc("0");
    let settings = config(&url, &[&w1, &w2], &saver).validate().unwrap();
    let crawl = tokio::spawn(engine::run(settings, pending()));

    wait_for_items(&saver.addr, 300, LIMIT).await;
    w1.kill9();
    open_gate(&gate);
    let summary = tokio::time::timeout(LIMIT, crawl)
        .await
        .expect("crawl ends")
        .unwrap()
        .unwrap();

    assert_eq!(stored(&saver.addr).await, Some(PROFILES), "{summary}");
    assert_eq!(summary.items_saved, PROFILES, "{summary}");
    assert_eq!(summary.pages, site.page_count(), "{summary}");
    assert!(summary.errors.is_empty(), "{summary}");
    assert!(summary.worker_outages >= 1, "{summary}");
}

/// A worker killed and restarted on the same port rejoins the pool by
/// itself and receives requests again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_worker_receives_requests_again() {
    // The site stops after FIRST_PAGES until the worker is back, so most
    // of the crawl is left for it to rejoin.
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(FIRST_PAGES));
    let (_site, url, _log, _s) = gated_site(Some(gate.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let saver = saver_proc(dir.path(), "0");
    let mut w1 = worker_proc("0");
    let w2 = worker_proc("0");
    let settings = config(&url, &[&w1, &w2], &saver).validate().unwrap();
    let crawl = tokio::spawn(engine::run(settings, pending()));

    wait_for_items(&saver.addr, 200, LIMIT).await;
    let port = w1.port();
    w1.kill9();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let w1 = worker_proc(&port);
    open_gate(&gate);
    let summary = tokio::time::timeout(LIMIT, crawl)
        .await
        .expect("crawl ends")
        .unwrap()
        .unwrap();

    assert_eq!(stored(&saver.addr).await, Some(PROFILES), "{summary}");
    let client = connect_crawl(
        &w1.addr.parse::<HostAddr>().unwrap(),
        ConnectOptions::default(),
    )
    .await
    .unwrap();
    let status = client.status(context::current()).await.unwrap();
    assert!(
        status.served > 0,
        "the restarted worker got no requests: {summary}"
    );
}

/// The itemsaver is killed mid-crawl and started again on the same port
/// and data dir once the crawl has gone on without it for a while: the
/// engine buffers items meanwhile, and every profile is stored exactly
/// once; the wait shows in the summary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn itemsaver_outage_loses_nothing() {
    // The site stops after FIRST_PAGES until the itemsaver is down, so
    // the crawl has pages left to fetch during the outage.
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(FIRST_PAGES));
    let (_site, url, log, _s) = gated_site(Some(gate.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let mut saver = saver_proc(dir.path(), "0");
    let w1 = worker_proc("0");
    let w2 = worker_proc("0");
    let mut config = config(&url, &[&w1, &w2], &saver);
    // Small memory buffer, so the outage also exercises the disk spill.
    config.item_buffer_items = 200;
    config.state_dir = tempfile::tempdir()
        .unwrap()
        .keep()
        .to_str()
        .unwrap()
        .to_owned();
    let settings = config.validate().unwrap();
    let crawl = tokio::spawn(engine::run(settings, pending()));

    wait_for_items(&saver.addr, 300, LIMIT).await;
    let port = saver.port();
    saver.kill9();
    // Down while the crawl fetches another few hundred pages (more than
    // the 200 items the sink keeps in memory), not for a fixed time.
    let seen = log.entries().len();
    open_gate(&gate);
    wait_for_requests(&log, seen + 400).await;
    let saver = saver_proc(dir.path(), &port);
    let summary = tokio::time::timeout(LIMIT, crawl)
        .await
        .expect("crawl ends")
        .unwrap()
        .unwrap();

    assert_eq!(stored(&saver.addr).await, Some(PROFILES), "{summary}");
    assert_eq!(summary.items_unsaved, 0, "{summary}");
    assert!(summary.save_retries > 0, "{summary}");
    assert!(summary.waited_for_itemsaver > Duration::ZERO, "{summary}");
    let text = summary.to_string();
    assert!(
        text.contains("waited") && text.contains("for the itemsaver"),
        "{text}"
    );
}

/// Requests in flight at once in the kill test (one host): what a killed
/// engine may have sent without its outcome being kept.
const IN_FLIGHT: u64 = 32;
/// `state_commit_changes` in the kill test: the changes not on disk at any
/// time (the commit being written and those behind it); a page done makes
/// at least one (its record), so at most this many done pages are lost.
const COMMIT_CHANGES: u64 = 300;

/// SIGKILL the engine mid-crawl and start it again with the same state dir
/// (issue 13): every profile stored exactly once, every page counted once,
/// and the pages fetched twice (by the summary and by the site's own log)
/// at most the calls in flight plus one commit interval's worth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_killed_and_resumed_loses_nothing() {
    let (site, url, log, _s) = logged_site().await;
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let saver = saver_proc(dir.path(), "0");
    let w1 = worker_proc("0");
    let w2 = worker_proc("0");
    let hosts = format!("{},{}", w1.addr, w2.addr);
    let in_flight = IN_FLIGHT.to_string();
    let changes = COMMIT_CHANGES.to_string();
    let args: Vec<String> = [
        "--config",
        "/dev/null",
        "--seed",
        &url,
        "--worker_hosts",
        &hosts,
        "--itemsaver_host",
        &saver.addr,
        "--state_dir",
        state.path().to_str().unwrap(),
        // Commits come from the changes bound, not the clock, so the
        // bound on refetches does not depend on the machine's speed.
        "--state_interval_ms",
        "600000",
        "--state_commit_changes",
        &changes,
        "--failures_file",
        "",
        "--per_host_concurrency",
        &in_flight,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut first = std::process::Command::new(crate::common::procs::bin("engine"))
        .args(&args)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Mid-crawl as the site sees it: a third of its pages served.
    wait_for_requests(&log, (site.page_count() / 3) as usize).await;
    first.kill().unwrap();
    first.wait().unwrap();
    let before = log.entries().len();
    assert!(
        (before as u64) < site.page_count(),
        "killed too late to test anything"
    );

    let second = tokio::task::spawn_blocking(move || {
        std::process::Command::new(crate::common::procs::bin("engine"))
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    });
    let out = tokio::time::timeout(LIMIT, second)
        .await
        .expect("resumed crawl ends")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stored(&saver.addr).await, Some(PROFILES), "{text}");
    assert!(
        text.contains(&format!("pages          {} ", site.page_count())),
        "{text}"
    );
    let refetched: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("resumed        yes; "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no resume line: {text}"));
    // The site's view: paths it served more than once (robots.txt is
    // fetched once per run by design).
    let mut served = std::collections::HashMap::<String, u64>::new();
    for e in log.entries() {
        *served.entry(e.path).or_default() += 1;
    }
    let twice = served
        .iter()
        .filter(|(p, n)| **n > 1 && p.as_str() != "/robots.txt")
        .count() as u64;
    // A commit (at most half the changes bound) runs off the loop while
    // the next half gathers, and the loop stops sending once that one and
    // the calls in flight fill it: a kill loses at most the bound's worth
    // of pages done, plus those in flight.
    let bound = IN_FLIGHT + COMMIT_CHANGES;
    println!(
        "engine killed after {before} requests: {refetched} pages fetched twice by the summary, {twice} paths served twice by the site; bound {bound} ({IN_FLIGHT} in flight + {COMMIT_CHANGES} changes not on disk)"
    );
    assert!(
        refetched <= bound,
        "{refetched} pages fetched twice: {text}"
    );
    assert!(twice <= bound, "{twice} paths served twice: {text}");
}

/// A page slower than the RPC deadline is not mistaken for a dead worker:
/// the worker stays in the pool (it answers the status check) and the
/// request ends as a counted failure after its attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_page_does_not_take_worker_out() {
    let (_site, url, _s) = site().await;
    let dir = tempfile::tempdir().unwrap();
    let (saver, _s2) = start_itemsaver(dir.path()).await;
    let (w1, _s3) = start_worker().await;
    let slow = format!("{url}fault/slow/1500");
    let mut config = engine_config(&slow, &[w1], saver);
    config.parser = "profile".into();
    config.rpc_timeout_ms = 300;
    config.max_attempts = 2;
    config.failures_file = dir
        .path()
        .join("failures.jsonl")
        .to_str()
        .unwrap()
        .to_owned();
    let summary = engine::run(config.validate().unwrap(), pending())
        .await
        .expect("a slow page is no reason to fail the crawl");
    assert_eq!(summary.errors.get("rpc_deadline"), Some(&1), "{summary}");
    assert_eq!(summary.retries, 1, "{summary}");
    assert_eq!(
        summary.worker_outages, 0,
        "a slow page took its worker out: {summary}"
    );
    let failures = std::fs::read_to_string(dir.path().join("failures.jsonl")).unwrap();
    assert!(
        failures.contains("fault/slow/1500") && failures.contains("rpc_deadline"),
        "{failures}"
    );
    assert_eq!(failures.lines().count(), 1);
}
