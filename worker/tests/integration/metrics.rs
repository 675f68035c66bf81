//! The worker's metrics move with its work (issue 7).

use std::sync::Arc;

use crate::common::{local, request};
use demosite::{Site, SiteConfig};

/// Requests are counted by outcome and timed.
#[tokio::test]
async fn requests_are_counted_and_timed() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let site = Arc::new(Site::new(SiteConfig::default()));
    tokio::spawn(demosite::serve_site(listener, site, std::future::pending()));
    let registry = rpcsupport::metrics::Registry::new();
    let worker = worker::Worker::with_metrics(&local(), registry.clone()).unwrap();
    let page = |path: &str| request(format!("http://{addr}{path}"), "city_list");
    worker.process(page("/")).await.unwrap();
    worker.process(page("/nope")).await.unwrap_err();
    let text = registry.render();
    assert!(
        text.contains("worker_requests_total{outcome=\"ok\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("worker_requests_total{outcome=\"http_404\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("worker_request_latency_seconds_count 2"),
        "{text}"
    );
    assert!(text.contains("worker_in_flight 0"), "{text}");
}
