//! Counters, histograms and the Prometheus text they render to.

use super::*;

/// Counters, gauges and histograms render in the exposition format,
/// labels escaped.
#[test]
fn renders_prometheus_text() {
    let r = Registry::new();
    r.counter("pages_total", "Pages.", &[]).add(3);
    r.counter("errors_total", "Errors.", &[("kind", "http_404")])
        .inc();
    r.counter("errors_total", "Errors.", &[("kind", "a\"b")])
        .inc();
    r.gauge("queue", "Queued.", &[]).set(7);
    let h = r.histogram("latency_seconds", "Latency.", &[("worker", "w1")]);
    h.observe(Duration::from_millis(2));
    h.observe(Duration::from_millis(200));
    let text = r.render();
    assert!(
        text.contains("# TYPE pages_total counter\npages_total 3\n"),
        "{text}"
    );
    assert!(text.contains("errors_total{kind=\"http_404\"} 1"), "{text}");
    assert!(text.contains("errors_total{kind=\"a\\\"b\"} 1"), "{text}");
    assert!(text.contains("queue 7"), "{text}");
    assert!(
        text.contains("latency_seconds_bucket{worker=\"w1\",le=\"+Inf\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("latency_seconds_count{worker=\"w1\"} 2"),
        "{text}"
    );
}

/// Quantiles come from the buckets, never below the true value and at
/// most one bucket (x1.5) above it.
#[test]
fn quantiles() {
    let h = Histogram::default();
    assert_eq!(h.quantile(0.5), None);
    for ms in 1..=100 {
        h.observe(Duration::from_millis(ms));
    }
    let p50 = h.quantile(0.5).unwrap();
    assert!(
        p50 >= Duration::from_millis(50) && p50 <= Duration::from_millis(75),
        "{p50:?}"
    );
    let p99 = h.quantile(0.99).unwrap();
    assert!(
        p99 >= Duration::from_millis(99) && p99 <= Duration::from_millis(150),
        "{p99:?}"
    );
}

/// The whole response to `GET path`.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// The endpoint serves /metrics and 404s anything else.
#[tokio::test]
async fn serves_over_http() {
    let r = Registry::new();
    r.counter("hits_total", "Hits.", &[]).add(5);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_metrics(listener, r, std::future::pending()));
    let get = |path: &'static str| http_get(addr, path);
    let ok = get("/metrics").await;
    assert!(
        ok.starts_with("HTTP/1.1 200 OK") && ok.contains("hits_total 5"),
        "{ok}"
    );
    assert!(get("/other").await.starts_with("HTTP/1.1 404"));
}

/// Extra routes are served beside /metrics, which they cannot shadow.
#[tokio::test]
async fn serves_extra_routes() {
    let r = Registry::new();
    r.counter("hits_total", "Hits.", &[]).add(1);
    let routes: Routes = Arc::new(|path: &str| {
        (path == "/" || path == "/metrics").then(|| Page {
            content_type: "text/html; charset=utf-8",
            body: "<p>dash</p>".into(),
        })
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_endpoint(
        listener,
        r,
        Some(routes),
        std::future::pending(),
    ));
    let get = |path: &'static str| http_get(addr, path);
    let page = get("/").await;
    assert!(
        page.contains("Content-Type: text/html") && page.ends_with("<p>dash</p>"),
        "{page}"
    );
    assert!(get("/metrics").await.contains("hits_total 1"));
    assert!(get("/nope").await.starts_with("HTTP/1.1 404"));
}
