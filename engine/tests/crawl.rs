//! End-to-end crawls of the demo site over real TCP on 127.0.0.1.

mod common;

use std::future::pending;

use common::*;
use demosite::SiteConfig;
use rpcsupport::{connect_itemsaver, ConnectOptions, HostAddr, Value};
use tarpc::context;

/// The whole demo site is crawled through two workers into the itemsaver:
/// every profile stored exactly once with the right fields, every page
/// fetched once, and both workers used (issue 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawls_demo_site_into_store_exactly_once() {
    let (site, url, _site_stop) = start_site(SiteConfig {
        profiles: 3000,
        ..SiteConfig::default()
    })
    .await;
    let (w1, _s1) = start_worker().await;
    let (w2, _s2) = start_worker().await;
    let dir = tempfile::tempdir().unwrap();
    let (saver, _s3) = start_itemsaver(dir.path()).await;

    let settings = engine_config(&url, &[w1, w2], saver).validate().unwrap();
    let summary = engine::run(settings, pending()).await.expect("crawl runs");

    assert_eq!(summary.items_saved, 3000, "{summary}");
    assert_eq!(summary.pages, site.page_count(), "{summary}");
    assert!(summary.errors.is_empty(), "{summary}");
    assert!(
        summary.duplicates > 0,
        "recommendation links must be deduped: {summary}"
    );
    assert!(!summary.interrupted);
    for (worker, pages) in &summary.per_worker {
        assert!(*pages > 0, "worker {worker} served nothing: {summary}");
    }

    let client = connect_itemsaver(&HostAddr::from(saver), ConnectOptions::default())
        .await
        .unwrap();
    assert_eq!(
        client.count(context::current()).await.unwrap().unwrap(),
        3000
    );
    // Spot-check fields, including profiles served in GBK.
    for id in [1u64, 3, 13, 777, 2999, 3000] {
        let expected = site.profile(id).unwrap();
        let item = client
            .get(context::current(), id.to_string())
            .await
            .unwrap()
            .unwrap()
            .unwrap_or_else(|| panic!("profile {id} missing"));
        assert_eq!(item.kind, "profile");
        assert_eq!(
            item.payload["name"],
            Value::Str(expected.name.clone()),
            "profile {id}"
        );
        assert_eq!(
            item.payload["age"],
            Value::Int(expected.age as i64),
            "profile {id}"
        );
        assert_eq!(item.payload["height"], Value::Int(expected.height as i64));
        assert_eq!(item.payload["city"], Value::Str(expected.city.clone()));
        assert_eq!(
            item.payload["education"],
            Value::Str(expected.education.clone())
        );
    }
}

/// A crawl stopped by its shutdown future still flushes the items of the
/// pages it finished and says it was interrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_dispatch_and_flushes_items() {
    let (_site, url, _site_stop) = start_site(SiteConfig {
        profiles: 20_000,
        ..SiteConfig::default()
    })
    .await;
    let (w1, _s1) = start_worker().await;
    let dir = tempfile::tempdir().unwrap();
    let (saver, _s3) = start_itemsaver(dir.path()).await;

    let settings = engine_config(&url, &[w1], saver).validate().unwrap();
    // Stop once some items are stored: far from done with 20,000 profiles.
    let shutdown = async move {
        let client = connect_itemsaver(&HostAddr::from(saver), ConnectOptions::default())
            .await
            .unwrap();
        while client.count(context::current()).await.unwrap().unwrap() < 100 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let summary = engine::run(settings, shutdown).await.expect("crawl runs");
    assert!(summary.interrupted, "{summary}");
    assert!(summary.left_pending > 0, "{summary}");
    let client = connect_itemsaver(&HostAddr::from(saver), ConnectOptions::default())
        .await
        .unwrap();
    let stored = client.count(context::current()).await.unwrap().unwrap();
    assert_eq!(stored, summary.items_saved, "{summary}");
    assert!(stored > 0, "{summary}");
}

/// The metrics endpoint serves the crawl's counters, gauges and latency
/// histograms, and the counters match the summary (issue 7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_counts_the_crawl() {
    let (site, url, _site_stop) = start_site(SiteConfig {
        profiles: 200,
        ..SiteConfig::default()
    })
    .await;
    let (w1, _s1) = start_worker().await;
    let dir = tempfile::tempdir().unwrap();
    let (saver, _s3) = start_itemsaver(dir.path()).await;
    let settings = engine_config(&url, &[w1], saver).validate().unwrap();
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
