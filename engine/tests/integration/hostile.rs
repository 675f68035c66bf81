//! A hostile site costs a bounded amount, never the pool (issue 11): two
//! real worker processes crawl every `/hostile/...` page of the demo site
//! (a 500,000-link flood, a 1 MB `<base href>` over 5,000 relative links,
//! links over 8 KiB, a 10 MB attribute, 100,000-deep nesting, a trickle, a
//! slow redirect chain, a 100 MB robots.txt) and each page gets its outcome
//! with no worker outage and each worker under 256 MiB resident.

use std::collections::BTreeMap;

use crate::common::procs::Proc;
use crate::common::*;
use demosite::SiteOptions;

/// Each worker's peak resident memory must stay below this.
const MAX_WORKER_RSS: u64 = 256 * 1024 * 1024;
/// The workers' fetch timeout: each slow redirect hop (`HOP_MS`) fits in it,
/// the whole chain (4 hops) does not, and the trickle (a byte a second)
/// outlasts it. Each slow page costs two tries of it (4 s), alongside the
/// flood's parse, about 3 s in a debug worker, so a shorter one saves
/// little; and 1.5 s timed out the 10 MB page's fetch on a busy machine.
const TIMEOUT_MS: u64 = 2_000;
const HOP_MS: u64 = 700;
const TRICKLE_BYTES: u64 = 30;

fn worker_proc() -> Proc {
    Proc::start(
        "worker",
        &[
            "--config",
            "/dev/null",
            "--port",
            "0",
            "--allow_internal",
            "127.0.0.1",
            "--timeout_ms",
            &TIMEOUT_MS.to_string(),
        ],
    )
}

/// Every hostile page gets its outcome (a page, or a failure with a
/// reason), no worker drops out, and each stays under 256 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_pages_cost_a_bounded_amount() {
    let workers = [worker_proc(), worker_proc()];
    let cluster = Cluster::builder()
        .options(SiteOptions {
            robots_bytes: Some(100_000_000),
            ..SiteOptions::default()
        })
        .workers(0)
        .workers_at(workers.iter().map(|w| w.addr.parse().unwrap()))
        .start()
        .await;
    let url = &cluster.url;
    let failures = cluster.path("failures.jsonl");
    let config = engine::EngineConfig {
        seeds: vec![format!(
            "{url}hostile/?hop_ms={HOP_MS}&trickle={TRICKLE_BYTES}"
        )],
        parser: "links".into(),
        // The index, then the hostile pages it links to; their own links
        // are parsed (that is the attack) but not followed.
        max_depth: 1,
        retry_times: 1,
        retry_backoff_ms: 100,
        failures_file: failures.to_str().unwrap().into(),
        // The defaults of a real crawl (8 per host, not the tests' 32):
        // the memory bound is for them.
        per_host_concurrency: engine::EngineConfig::default().per_host_concurrency,
        ..cluster.config()
    };
    let summary = cluster.run(config).await;

    let rss: Vec<u64> = workers
        .iter()
        .map(|w| w.peak_rss().expect("worker still running"))
        .collect();
    println!("{summary}\npeak worker RSS: {rss:?}");
    assert_eq!(summary.worker_outages, 0, "{summary}");
    for (w, rss) in workers.iter().zip(&rss) {
        assert!(
            *rss < MAX_WORKER_RSS,
            "worker {} peaked at {} MiB",
            w.addr,
            rss >> 20
        );
    }

    // Outcomes: the failures file names each failed URL; the rest were pages.
    let failed: BTreeMap<String, String> = std::fs::read_to_string(&failures)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["url"].as_str().unwrap_or_default().to_owned(),
                v["kind"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let paths = demosite::hostile::hostile_paths(HOP_MS, TRICKLE_BYTES);
    let slow = [
        format!("{url}hostile/trickle/{TRICKLE_BYTES}"),
        format!("{url}hostile/slow-redirects/4/{HOP_MS}"),
    ];
    for s in &slow {
        assert!(
            failed.get(s).is_some_and(|k| k.contains("timeout")),
            "{s} should time out: {failed:?}"
        );
    }
    assert_eq!(
        failed.len(),
        slow.len(),
        "only the slow pages fail: {failed:?}"
    );
    // The index and every hostile page that is not slow were parsed.
    assert_eq!(
        summary.pages as usize,
        1 + paths.len() - slow.len(),
        "{summary}"
    );
    let served = cluster.log.entries();
    for p in &paths {
        assert!(served.iter().any(|e| &e.path == p), "{p} was never fetched");
    }
    // Nothing behind the hostile pages was fetched (depth 1), and robots.txt
    // only once per try.
    assert!(
        served.iter().all(|e| !e.path.starts_with("/hostile/void")),
        "links of hostile pages were followed"
    );
    // The flood is cut before parsing (max_html_nodes); of what is parsed,
    // all but max_links_per_page links are dropped and counted.
    assert!(summary.limits.links_truncated >= 100_000, "{summary}");
    // The flood, the deep page and the 100 MB robots.txt are read in part.
    assert!(summary.limits.page_truncated >= 3, "{summary}");
    assert_eq!(summary.limits.urls_too_long, 1_000, "{summary}");
    assert_eq!(summary.limits.base_href_ignored, 1, "{summary}");
}
