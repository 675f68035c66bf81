//! End-to-end crawls of the demo site over real TCP on 127.0.0.1, into the
//! embedded store and into Elasticsearch (issue 3; that one needs
//! `CRAWLER_TEST_ES_URL`, see `scripts/noida.sh`: without it the test
//! prints a notice and passes, except under CI, where it fails).

use std::future::pending;

use crate::common::*;
use rpcsupport::{SearchRequest, Value};
use tarpc::context;

const PROFILES: u64 = 1000;

/// The whole demo site crawled through two workers into `store`, and
/// every check: each profile stored exactly once with the right fields
/// (the store's own count too), every page fetched once, both workers
/// used, and search finds profiles by a typed field.
async fn crawl_into(store: Store) {
    let cluster = Cluster::builder()
        .profiles(PROFILES)
        .workers(2)
        .store(store)
        .start()
        .await;
    let mut config = cluster.config();
    // Many batches (the default holds 2000 items), so every profile
    // stored exactly once is a claim about batching too.
    config.item_batch_size = 100;
    let summary = cluster.run(config).await;

    assert_eq!(summary.items_saved, PROFILES, "{summary}");
    assert_eq!(summary.pages, cluster.site.page_count(), "{summary}");
    assert!(summary.errors.is_empty(), "{summary}");
    assert!(
        summary.duplicates > 0,
        "recommendation links must be deduped: {summary}"
    );
    assert!(!summary.interrupted);
    assert_eq!(summary.per_worker.len(), 2, "{summary}");
    for (worker, pages) in &summary.per_worker {
        assert!(*pages > 0, "worker {worker} served nothing: {summary}");
    }

    // Counted by the store itself, then through the itemsaver.
    assert_eq!(cluster.store.count().await.unwrap(), PROFILES);
    let client = cluster.itemsaver().await;
    assert_eq!(
        client.count(context::current()).await.unwrap().unwrap(),
        PROFILES
    );
    assert_eq!(cluster.items().await.len() as u64, PROFILES);
    // Spot-check fields, including profiles served in GBK (ids ending in
    // 3) and under a `<base href>` (ids ending in 7).
    for id in [1u64, 3, 13, 777, 999, 1000] {
        cluster.assert_profile_stored(id).await;
    }

    let age = cluster.site.profile(777).unwrap().age;
    let hits = client
        .search(
            context::current(),
            SearchRequest {
                query: format!("kind:profile AND age:{age}"),
                from: 0,
                size: 10,
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert!(hits.total >= 1, "{hits:?}");
    assert!(hits
        .items
        .iter()
        .all(|i| i.payload["age"] == Value::Int(age as i64)));
}

/// The whole demo site is crawled through two workers into the itemsaver:
/// every profile stored exactly once with the right fields, every page
/// fetched once, and both workers used (issue 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawls_demo_site_into_store_exactly_once() {
    crawl_into(Store::Embedded).await;
}

/// The same crawl into Elasticsearch: the index holds exactly one document
/// per profile, with typed fields, and search finds them (issue 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawls_demo_site_into_elasticsearch() {
    let Some(store) = Store::elastic("Elasticsearch crawl test") else {
        return;
    };
    crawl_into(store).await;
}

/// A crawl stopped by its shutdown future still flushes the items of the
/// pages it finished and says it was interrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_dispatch_and_flushes_items() {
    let cluster = Cluster::builder().profiles(20_000).start().await;
    let settings = cluster.config().validate().unwrap();
    // Stop once some items are stored: far from done with 20,000 profiles.
    let client = cluster.itemsaver().await;
    let shutdown = async move {
        while client.count(context::current()).await.unwrap().unwrap() < 100 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let summary = engine::run(settings, shutdown).await.expect("crawl runs");
    assert!(summary.interrupted, "{summary}");
    assert!(summary.left_pending > 0, "{summary}");
    let stored = cluster.store.count().await.unwrap();
    assert_eq!(stored, summary.items_saved, "{summary}");
    assert!(stored > 0, "{summary}");
}

/// The metrics endpoint serves the crawl's counters, gauges and latency
/// histograms, and the counters match the summary (issue 7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_counts_the_crawl() {
    let cluster = Cluster::builder().profiles(200).start().await;
    let (site, w1) = (&cluster.site, cluster.workers[0]);
    let settings = cluster.config().validate().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = listener.local_addr().unwrap();
    tokio::spawn(rpcsupport::metrics::serve_metrics(
        listener,
        settings.metrics.clone(),
        pending(),
    ));

    let summary = engine::run(settings, pending()).await.unwrap();
    let body = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut conn = tokio::net::TcpStream::connect(metrics_addr).await.unwrap();
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        conn.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        response
    };
    let value = |name: &str| -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{body}"))
    };
    assert_eq!(value("crawler_pages_total"), site.page_count() as f64);
    assert_eq!(
        value("crawler_items_saved_total"),
        summary.items_saved as f64
    );
    assert_eq!(value("crawler_in_flight"), 0.0);
    let count = format!("crawler_rpc_latency_seconds_count{{worker=\"{w1}\"}}");
    assert!(value(&count) >= site.page_count() as f64, "{body}");
    assert!(body.contains("# TYPE crawler_rpc_latency_seconds histogram"));
    let (_, p50, _, p99) = &summary.per_worker_latency_ms[0];
    assert!(*p50 > 0.0 && p99 >= p50, "{summary}");
}
