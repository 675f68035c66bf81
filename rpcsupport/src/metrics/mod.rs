//! Prometheus metrics for every process: a small registry of counters,
//! gauges and histograms, and [`serve_endpoint`], which answers `GET
//! /metrics` in the text exposition format (`--metrics_addr`) and any
//! other [`Routes`] a binary serves beside it (the engine's dashboard).
//!
//! Handles are cheap clones around atomics: take one once (e.g. at start)
//! and bump it on the hot path without locking. Labelled families whose
//! label values are only known later (error kinds) go through
//! [`Registry::counter`] each time, a short lock and a lookup.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A counter: only goes up.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds 1.
    pub fn inc(&self) {
        self.add(1);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A gauge: a value that goes up and down.
#[derive(Debug, Clone, Default)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    /// Adds `d` (negative to subtract).
    pub fn add(&self, d: i64) {
        self.0.fetch_add(d, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Bucket upper bounds in seconds: 100 µs growing by half each step to
/// about two minutes, fine enough for percentiles of fetch and RPC latency.
fn bounds() -> &'static [f64] {
    static BOUNDS: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    BOUNDS.get_or_init(|| {
        let mut b = vec![0.0001];
        while *b.last().expect("non-empty") < 120.0 {
            let next = b.last().expect("non-empty") * 1.5;
            b.push(next);
        }
        b
    })
}

#[derive(Debug)]
struct HistogramInner {
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// A latency histogram.
#[derive(Debug, Clone)]
pub struct Histogram(Arc<HistogramInner>);

impl Default for Histogram {
    fn default() -> Self {
        Histogram(Arc::new(HistogramInner {
            buckets: bounds().iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }))
    }
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = bounds().iter().position(|&b| secs <= b) {
            self.0.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.0.count.fetch_add(1, Ordering::Relaxed);
        self.0
            .sum_nanos
            .fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }

    /// The `q` quantile (0..=1), as the upper bound of the bucket that holds
    /// it (so at most 1.5 times the true value); `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, b) in self.0.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= rank {
                return Some(Duration::from_secs_f64(bounds()[i]));
            }
        }
        // Above the last bucket.
        Some(Duration::from_secs_f64(
            *bounds().last().expect("non-empty"),
        ))
    }
}

#[derive(Debug, Clone)]
enum Metric {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

impl Metric {
    fn type_name(&self) -> &'static str {
        match self {
            Metric::Counter(_) => "counter",
            Metric::Gauge(_) => "gauge",
            Metric::Histogram(_) => "histogram",
        }
    }
}

#[derive(Debug, Default)]
struct Family {
    help: String,
    /// Series by their rendered label set, e.g. `{kind="timeout"}`.
    series: BTreeMap<String, Metric>,
}

/// Every metric of one process.
#[derive(Debug, Default)]
pub struct Registry {
    families: Mutex<BTreeMap<String, Family>>,
}

fn render_labels(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            )
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    fn get_or_insert(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        make: impl FnOnce() -> Metric,
    ) -> Metric {
        let mut families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let family = families.entry(name.to_owned()).or_insert_with(|| Family {
            help: help.to_owned(),
            series: BTreeMap::new(),
        });
        family
            .series
            .entry(render_labels(labels))
            .or_insert_with(make)
            .clone()
    }

    /// The counter `name{labels}`, created on first use.
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Counter {
        match self.get_or_insert(name, help, labels, || Metric::Counter(Counter::default())) {
            Metric::Counter(c) => c,
            other => panic!("metric {name} is a {}, not a counter", other.type_name()),
        }
    }

    /// The gauge `name{labels}`, created on first use.
    pub fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Gauge {
        match self.get_or_insert(name, help, labels, || Metric::Gauge(Gauge::default())) {
            Metric::Gauge(g) => g,
            other => panic!("metric {name} is a {}, not a gauge", other.type_name()),
        }
    }

    /// The histogram `name{labels}` (seconds), created on first use.
    pub fn histogram(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Histogram {
        match self.get_or_insert(name, help, labels, || {
            Metric::Histogram(Histogram::default())
        }) {
            Metric::Histogram(h) => h,
            other => panic!("metric {name} is a {}, not a histogram", other.type_name()),
        }
    }

    /// Everything, in the Prometheus text format.
    pub fn render(&self) -> String {
        let families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for (name, family) in families.iter() {
            let Some(first) = family.series.values().next() else {
                continue;
            };
            let _ = writeln!(out, "# HELP {name} {}", family.help);
            let _ = writeln!(out, "# TYPE {name} {}", first.type_name());
            for (labels, metric) in &family.series {
                match metric {
                    Metric::Counter(c) => {
                        let _ = writeln!(out, "{name}{labels} {}", c.get());
                    }
                    Metric::Gauge(g) => {
                        let _ = writeln!(out, "{name}{labels} {}", g.get());
                    }
                    Metric::Histogram(h) => render_histogram(&mut out, name, labels, h),
                }
            }
        }
        out
    }
}

fn render_histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    // `le` joins the family's own labels.
    let with_le = |le: &str| match labels.strip_suffix('}') {
        Some(open) => format!("{open},le=\"{le}\"}}"),
        None => format!("{{le=\"{le}\"}}"),
    };
    let mut cumulative = 0;
    for (bound, bucket) in bounds().iter().zip(&h.0.buckets) {
        cumulative += bucket.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "{name}_bucket{} {cumulative}",
            with_le(&format!("{bound:.6}"))
        );
    }
    let count = h.count();
    let _ = writeln!(out, "{name}_bucket{} {count}", with_le("+Inf"));
    let sum = h.0.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
    let _ = writeln!(out, "{name}_sum{labels} {sum}");
    let _ = writeln!(out, "{name}_count{labels} {count}");
}

/// One page a route of [`serve_endpoint`] answers with.
#[derive(Debug, Clone)]
pub struct Page {
    /// The `Content-Type` header.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

/// More pages served beside `/metrics` on the same address (the engine's
/// dashboard): given the request path (with its query), a page or `None`
/// for "not mine".
pub type Routes = Arc<dyn Fn(&str) -> Option<Page> + Send + Sync>;

/// For binaries: binds `addr` (`--metrics_addr`; empty means no endpoint)
/// and serves `registry` there in the background for the life of the
/// process. Returns the bound address.
pub async fn spawn_endpoint(
    addr: &str,
    registry: Arc<Registry>,
) -> io::Result<Option<std::net::SocketAddr>> {
    spawn_endpoint_with(addr, registry, None).await
}

/// [`spawn_endpoint`] with `routes` served beside `/metrics`.
pub async fn spawn_endpoint_with(
    addr: &str,
    registry: Arc<Registry>,
    routes: Option<Routes>,
) -> io::Result<Option<std::net::SocketAddr>> {
    let addr = addr.trim();
    if addr.is_empty() {
        return Ok(None);
    }
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("metrics_addr: cannot listen on {addr}: {e}"),
        )
    })?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, "serving metrics at /metrics");
    tokio::spawn(serve_endpoint(
        listener,
        registry,
        routes,
        std::future::pending(),
    ));
    Ok(Some(bound))
}

/// Serves `GET /metrics` on `listener` until `shutdown`.
pub async fn serve_metrics(
    listener: TcpListener,
    registry: Arc<Registry>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    serve_endpoint(listener, registry, None, shutdown).await
}

/// Largest request head the endpoint reads; it only needs the first line.
const MAX_HEAD_BYTES: usize = 8192;

/// Serves `GET /metrics`, and whatever `routes` answers, on `listener`
/// until `shutdown`. A tiny HTTP/1.1 responder (one request per
/// connection): metrics scrapers and a polling dashboard need no more, and
/// it keeps an HTTP server framework out of every binary.
pub async fn serve_endpoint(
    listener: TcpListener,
    registry: Arc<Registry>,
    routes: Option<Routes>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (mut stream, _) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let registry = registry.clone();
        let routes = routes.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_HEAD_BYTES];
            let mut len = 0;
            // Read the request head, bounded in size and time.
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while len < buf.len() {
                    let n = stream.read(&mut buf[len..]).await?;
                    if n == 0 {
                        break;
                    }
                    len += n;
                    if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                Ok::<_, io::Error>(())
            })
            .await;
            if !matches!(read, Ok(Ok(()))) {
                return;
            }
            let head = String::from_utf8_lossy(&buf[..len]);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let page = if !head.starts_with("GET ") {
                None
            } else if path == "/metrics" || path.starts_with("/metrics?") {
                Some(Page {
                    content_type: "text/plain; version=0.0.4; charset=utf-8",
                    body: registry.render(),
                })
            } else {
                routes.as_ref().and_then(|r| r(path))
            };
            let (status, page) = match page {
                Some(page) => ("200 OK", page),
                None => (
                    "404 Not Found",
                    Page {
                        content_type: "text/plain; charset=utf-8",
                        body: "not found; try /metrics\n".to_owned(),
                    },
                ),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n{}",
                page.content_type,
                page.body.len(),
                page.body
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests;
