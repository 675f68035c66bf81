//! A crawl worker: fetches one page and runs a named parser on it, served
//! over tarpc as the [`rpcsupport::Crawl`] service.
//!
//! A worker keeps no crawl state: the engine sends a [`Request`] (URL plus
//! parser name), the worker answers with a [`ParseResult`] (new requests and
//! items) or a typed [`CrawlError`]. Any number of workers can run side by
//! side.
//!
//! # Layout
//!
//! Modules in the order a request flows through them:
//!
//! - [`service`]: the tarpc [`Crawl`](rpcsupport::Crawl) implementation,
//!   a thin shell over [`Worker::process`] and [`Worker::status`].
//! - this file: [`WorkerConfig`] (the `[worker]` section of `config.toml`),
//!   [`Worker`] (fetch → decode → parse, with in-flight counters) and
//!   [`serve`].
//! - [`fetch`]: step 4, the shared HTTP client: timeouts, redirect limit,
//!   body cap while streaming, HTML-only; failures become
//!   [`FetchError`](rpcsupport::FetchError).
//! - [`guard`]: refuses loopback, private, link-local and metadata
//!   addresses (checked on the resolved address, every redirect hop)
//!   unless the crawl allowed the host explicitly.
//! - [`decode`]: bytes to text: charset from the header, else `<meta>`,
//!   else UTF-8.
//! - [`parse`]: step 5, the parser registry keyed by name, and the link
//!   helpers every parser uses (base href, relative URLs, junk links).
//!   One file per parser: [`parse::city_list`], [`parse::city`],
//!   [`parse::profile`]; [`parse::links`] (follow every link, for any
//!   site) and [`parse::robots`] (robots.txt as text, for the engine).
//! - [`rules`]: declarative parsers described in a rules file, sent by the
//!   engine, compiled once per worker and run like built-in ones.

pub mod decode;
pub mod fetch;
pub mod guard;
pub mod parse;
pub mod rules;

#[cfg(test)]
mod fuzz_tests;
pub mod service;

use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use rpcsupport::metrics;
use rpcsupport::{
    CrawlError, FetchPolicy, ParseError, ParseResult, ParserSpec, Request, ServeOptions,
    ServerSecurity, WorkerStatus,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::net::TcpListener;

use crate::fetch::{Fetched, Fetcher};
use crate::parse::{Content, Parser, Registry};
use crate::rules::RuleSet;

/// Bodies above this size are parsed on the blocking pool, so one huge page
/// cannot stall the runtime thread that also drives other requests' I/O.
/// Below it, a thread hop would cost more than the parse.
const INLINE_PARSE_BYTES: usize = 64 * 1024;

/// The `[worker]` section of `config.toml`. Every key is optional; flags
/// override the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// TCP port to serve RPC on (0 = any free port).
    pub port: u16,
    /// Address to bind.
    pub bind: String,
    /// Milliseconds to wait for a TCP connection to a site.
    pub connect_timeout_ms: u64,
    /// Milliseconds for a whole fetch: connect, redirects, headers, body.
    pub timeout_ms: u64,
    /// User-Agent header sent to sites.
    pub user_agent: String,
    /// Largest body accepted, after decompression.
    pub max_body_bytes: u64,
    /// Redirects followed before giving up with `TooManyRedirects`.
    pub max_redirects: usize,
    /// Largest RPC frame accepted or sent.
    pub max_frame_bytes: usize,
    /// Requests one RPC connection may have in progress at once.
    pub max_concurrent_requests: usize,
    /// Refuse to fetch from loopback, private, link-local and metadata
    /// addresses unless the crawl names the host in its allowed domains.
    pub block_private_addresses: bool,
    /// Address to serve Prometheus metrics on; "" for none.
    pub metrics_addr: String,
    /// A PEM file of extra CA certificates to trust for https fetches (an
    /// intranet CA), besides the system's; "" for none.
    pub tls_ca_file: String,
}

impl Default for WorkerConfig {
    /// Port 9000 on 127.0.0.1; 5 s to connect, 15 s per fetch; user agent
    /// `crawler/0.1`; bodies up to 10 MiB; 5 redirects; 16 MiB RPC frames;
    /// 4096 concurrent requests per connection; internal addresses blocked
    /// unless allowed by name.
    fn default() -> Self {
        WorkerConfig {
            port: 9000,
            bind: "127.0.0.1".into(),
            connect_timeout_ms: 5_000,
            timeout_ms: 15_000,
            user_agent: "crawler/0.1".into(),
            max_body_bytes: 10 * 1024 * 1024,
            max_redirects: 5,
            max_frame_bytes: rpcsupport::transport::DEFAULT_MAX_FRAME_BYTES,
            max_concurrent_requests: 4096,
            block_private_addresses: true,
            metrics_addr: String::new(),
            tls_ca_file: String::new(),
        }
    }
}

impl WorkerConfig {
    /// Checks values serde cannot: zero timeouts and limits, a user agent
    /// that is not a valid header value.
    pub fn validate(&self) -> Result<(), WorkerError> {
        let bad = |key: &'static str, reason: &str| {
            Err(WorkerError::Config {
                key,
                reason: reason.to_owned(),
            })
        };
        if self.bind.trim().is_empty() {
            return bad("bind", "must be an address such as 127.0.0.1");
        }
        if self.connect_timeout_ms == 0 {
            return bad("connect_timeout_ms", "must be at least 1");
        }
        if self.timeout_ms == 0 {
            return bad("timeout_ms", "must be at least 1");
        }
        if self.max_body_bytes == 0 {
            return bad("max_body_bytes", "must be at least 1");
        }
        if self.max_frame_bytes < 1024 {
            return bad("max_frame_bytes", "must be at least 1024");
        }
        if self.max_concurrent_requests == 0 {
            return bad("max_concurrent_requests", "must be at least 1");
        }
        if reqwest::header::HeaderValue::from_str(&self.user_agent).is_err() {
            return bad("user_agent", "must be printable ASCII without newlines");
        }
        Ok(())
    }

    /// The RPC limits for [`rpcsupport::serve`], open (no token, plain TCP).
    pub fn serve_options(&self) -> ServeOptions {
        ServeOptions {
            max_frame_bytes: self.max_frame_bytes,
            max_concurrent_requests: self.max_concurrent_requests,
            ..ServeOptions::default()
        }
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// Why a worker could not be set up. (Per-request failures are
/// [`CrawlError`]s, answered to the engine, not this.)
#[derive(Debug, Error)]
pub enum WorkerError {
    /// A configuration value is out of range.
    #[error("worker config: `{key}` {reason}")]
    Config {
        /// The offending key, as spelt in `config.toml` and on the command line.
        key: &'static str,
        /// What was expected.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build HTTP client: {0}")]
    Client(String),
}

/// Fetches and parses pages. Cheap to clone: clones share one HTTP client
/// (and so its connection pool), one parser registry and the counters.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    config: WorkerConfig,
    fetcher: Fetcher,
    registry: Registry,
    /// Requests inside `process` now; a u32 because that is what
    /// `WorkerStatus` carries, and 4 billion concurrent fetches won't happen.
    in_flight: AtomicU32,
    /// Requests that ran to completion, successful or not.
    served: AtomicU64,
    /// Compiled rule sets by id, as loaded by engines. A handful at most;
    /// the oldest is dropped past [`MAX_RULESETS`].
    rules: RwLock<Vec<Arc<RuleSet>>>,
    metrics: Arc<metrics::Registry>,
    latency: metrics::Histogram,
    in_flight_gauge: metrics::Gauge,
}

/// Rule sets a worker keeps at once (one per crawl using rules).
const MAX_RULESETS: usize = 16;

/// What runs on a fetched page: a built-in parser or a rule.
#[derive(Clone)]
enum Runner {
    Builtin(Parser),
    Rule(Arc<RuleSet>, String),
}

/// Decrements the in-flight count however `process` ends, including when
/// tarpc drops the future because the caller's deadline passed.
struct InFlight<'a>(&'a AtomicU32);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicU32) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        InFlight(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Worker {
    /// Validates `config` and builds the HTTP client and parser registry.
    pub fn new(config: &WorkerConfig) -> Result<Worker, WorkerError> {
        Worker::with_metrics(config, metrics::Registry::new())
    }

    /// Like [`Worker::new`], recording metrics into `metrics` (which the
    /// binary serves on `--metrics_addr`).
    pub fn with_metrics(
        config: &WorkerConfig,
        metrics: Arc<metrics::Registry>,
    ) -> Result<Worker, WorkerError> {
        config.validate()?;
        Ok(Worker {
            inner: Arc::new(Inner {
                config: config.clone(),
                fetcher: Fetcher::new(config)?,
                registry: Registry::standard(),
                in_flight: AtomicU32::new(0),
                served: AtomicU64::new(0),
                rules: RwLock::new(Vec::new()),
                latency: metrics.histogram(
                    "worker_request_latency_seconds",
                    "Time to fetch and parse one request.",
                    &[],
                ),
                in_flight_gauge: metrics.gauge(
                    "worker_in_flight",
                    "Requests being processed.",
                    &[],
                ),
                metrics,
            }),
        })
    }

    /// The worker's metrics.
    pub fn metrics(&self) -> &Arc<metrics::Registry> {
        &self.inner.metrics
    }

    /// The configuration the worker was built with.
    pub fn config(&self) -> &WorkerConfig {
        &self.inner.config
    }

    /// The parser registry.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Fetches `request.url` and runs `request.parser` on it, for callers
    /// in this process (benchmarks, tools): the request's own host counts as
    /// explicitly allowed, redirects may go anywhere. The parser is looked
    /// up first, so an unknown parser or bad arguments cost no fetch.
    pub async fn process(&self, request: Request) -> Result<ParseResult, CrawlError> {
        let host = url::Url::parse(&request.url)
            .ok()
            .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()));
        let policy = FetchPolicy {
            allowed_domains: host.into_iter().chain(["*".to_string()]).collect(),
        };
        self.process_with(request, &policy).await
    }

    /// Like [`Worker::process`], under the crawl's fetch `policy` (allowed
    /// domains for redirects).
    pub async fn process_with(
        &self,
        request: Request,
        policy: &FetchPolicy,
    ) -> Result<ParseResult, CrawlError> {
        let _in_flight = InFlight::enter(&self.inner.in_flight);
        self.inner.in_flight_gauge.add(1);
        let started = std::time::Instant::now();
        let result = self.process_inner(request.clone(), policy).await;
        self.inner.in_flight_gauge.add(-1);
        self.inner.latency.observe(started.elapsed());
        self.inner.served.fetch_add(1, Ordering::Relaxed);
        let outcome = match &result {
            Ok(_) => "ok".to_owned(),
            Err(e) => e.kind(),
        };
        self.inner
            .metrics
            .counter(
                "worker_requests_total",
                "Requests processed, by outcome.",
                &[("outcome", &outcome)],
            )
            .inc();
        // The engine logs each failed page once; here it is only debug, so
        // one bad page never costs more than one line at the default level.
        match &result {
            Ok(r) => tracing::debug!(
                url = %request.url,
                parser = %request.parser.name,
                requests = r.requests.len(),
                items = r.items.len(),
                "processed"
            ),
            Err(e) => tracing::debug!(
                url = %request.url,
                parser = %request.parser.name,
                kind = %e.kind(),
                error = %e,
                "request failed"
            ),
        }
        result
    }

    async fn process_inner(
        &self,
        request: Request,
        policy: &FetchPolicy,
    ) -> Result<ParseResult, CrawlError> {
        let runner = self.runner(&request.parser)?;
        let content = match &runner {
            Runner::Builtin(parser) => parser.content,
            Runner::Rule(..) => Content::Html,
        };
        let fetched = self
            .inner
            .fetcher
            .fetch(&request.url, policy, content)
            .await?;
        if fetched.body.len() <= INLINE_PARSE_BYTES {
            return Ok(parse_fetched(&runner, &request, &fetched)?);
        }
        let name = request.parser.name.clone();
        let url = request.url.clone();
        tokio::task::spawn_blocking(move || parse_fetched(&runner, &request, &fetched))
            .await
            .unwrap_or_else(|_| {
                Err(ParseError::Page {
                    parser: name,
                    url,
                    reason: "parser panicked".into(),
                })
            })
            .map_err(CrawlError::from)
    }

    /// The parser a request names: a rule of a loaded rule set when its
    /// args carry `ruleset`, else a built-in.
    fn runner(&self, spec: &ParserSpec) -> Result<Runner, ParseError> {
        let Some(id) = spec.args.get(rules::RULESET_ARG) else {
            return Ok(Runner::Builtin(*self.inner.registry.get(spec)?));
        };
        let sets = self.inner.rules.read().unwrap_or_else(|e| e.into_inner());
        let set = sets
            .iter()
            .find(|s| s.id() == id)
            .ok_or_else(|| ParseError::UnknownRuleset(id.clone()))?;
        if !set.has(&spec.name) {
            return Err(ParseError::UnknownParser(spec.name.clone()));
        }
        Ok(Runner::Rule(set.clone(), spec.name.clone()))
    }

    /// Compiles a rules file sent by an engine (canonical JSON) and keeps
    /// it; returns its id. Loading the same rules again is cheap.
    pub fn load_rules(&self, rules_json: &str) -> Result<String, ParseError> {
        let file: rules::RulesFile =
            serde_json::from_str(rules_json).map_err(|e| ParseError::BadRules(e.to_string()))?;
        let set = rules::compile(&file, &self.inner.registry.names())
            .map_err(|e| ParseError::BadRules(e.to_string()))?;
        let id = set.id().to_owned();
        let mut sets = self.inner.rules.write().unwrap_or_else(|e| e.into_inner());
        if !sets.iter().any(|s| s.id() == id) {
            if sets.len() >= MAX_RULESETS {
                sets.remove(0);
            }
            sets.push(Arc::new(set));
            tracing::info!(ruleset = %id, "rules loaded");
        }
        Ok(id)
    }

    /// Live counters, without touching any page.
    pub fn status(&self) -> WorkerStatus {
        WorkerStatus {
            in_flight: self.inner.in_flight.load(Ordering::Relaxed),
            served: self.inner.served.load(Ordering::Relaxed),
            parsers: self
                .inner
                .registry
                .names()
                .iter()
                .map(|n| n.to_string())
                .collect(),
        }
    }
}

/// Decode and parse, with any parser panic turned into a `ParseError` so one
/// odd page can never take the request (or the worker) down.
fn parse_fetched(
    runner: &Runner,
    request: &Request,
    fetched: &Fetched,
) -> Result<ParseResult, ParseError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let text = decode::decode(&fetched.body, fetched.content_type.as_deref());
        match runner {
            Runner::Builtin(parser) => parser.run(request, &fetched.url, &text.text),
            Runner::Rule(set, name) => set.run(name, request, &fetched.url, &text.text),
        }
    }))
    .unwrap_or_else(|_| {
        Err(ParseError::Page {
            parser: request.parser.name.clone(),
            url: request.url.clone(),
            reason: "parser panicked".into(),
        })
    })
}

/// Serves the [`Crawl`](rpcsupport::Crawl) service on `listener` with a new
/// [`Worker`] for `config`, until `shutdown` completes. A config that fails
/// [`WorkerConfig::validate`] is an `InvalidInput` error.
pub async fn serve(
    listener: TcpListener,
    config: WorkerConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let worker = Worker::new(&config)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    serve_worker(listener, worker, shutdown).await
}

/// Like [`serve`], for a worker the caller already built (e.g. to keep a
/// handle on its counters). Open to any client: no token, plain TCP.
pub async fn serve_worker(
    listener: TcpListener,
    worker: Worker,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_worker_with(listener, worker, ServerSecurity::default(), shutdown).await
}

/// Like [`serve_worker`], admitting only clients that pass `security` (the
/// `[rpc]` section: token, TLS, connection limits).
pub async fn serve_worker_with(
    listener: TcpListener,
    worker: Worker,
    security: ServerSecurity,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    use rpcsupport::Crawl;
    use tarpc::server::Channel;
    let options = ServeOptions {
        security,
        ..worker.config().serve_options()
    };
    let service = service::CrawlService::new(worker);
    rpcsupport::serve(listener, options, shutdown, move |channel| {
        let service = service.clone();
        async move {
            channel
                .execute(service.serve())
                // Each request runs as its own task, so one slow page does
                // not hold up the others on the same connection.
                .for_each(|response| async move {
                    tokio::spawn(response);
                })
                .await;
        }
    })
    .await
}
