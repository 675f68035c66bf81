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
//! - [`fetch`]: step 4, the shared HTTP client: one deadline for the whole
//!   fetch (every redirect hop and the body), redirect limit, body cap
//!   while streaming (robots.txt is cut, not refused), HTML-only, and the
//!   bodies held at once bounded by `max_buffered_body_bytes`; failures
//!   become [`FetchError`](rpcsupport::FetchError).
//! - [`guard`]: refuses loopback, private, link-local and metadata
//!   addresses (checked on the resolved address, every redirect hop)
//!   except those the worker's own `allow_internal` lists; nothing in a
//!   request widens it.
//! - [`decode`]: bytes to text: charset from the header, else `<meta>`,
//!   else UTF-8.
//! - [`prescan`]: cuts an HTML page at `max_html_nodes` or `max_html_depth`
//!   before the parser sees it, so its tree and parse time are bounded;
//!   this file then weighs the page against `max_parse_bytes`.
//! - [`parse`]: step 5, the parser registry keyed by name, and the link
//!   helpers every parser uses (base href, relative URLs, junk links),
//!   which apply the page's budget ([`parse::limits`]: links per page, URL
//!   length, reply size, counted in the result's `limits`).
//!   One file per parser: [`parse::city_list`], [`parse::city`],
//!   [`parse::profile`]; [`parse::links`] (follow every link, for any
//!   site) and [`parse::robots`] (robots.txt as text, for the engine).
//! - [`rules`]: declarative parsers described in a rules file, sent by the
//!   engine, compiled once per worker and run like built-in ones, within
//!   the same budget.
//! - [`tools`]: `worker check-rules` and `worker try-rules`, for writing
//!   rules files: they compile selectors and fetch pages, as a worker does.

pub mod decode;
pub mod fetch;
pub mod guard;
pub mod parse;
pub mod prescan;
pub mod rules;

#[cfg(test)]
mod fuzz_tests;
pub mod service;
pub mod tools;

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
use crate::parse::{Budget, Content, PageLimits, Parser, Registry};
use crate::rules::RuleSet;

/// Bodies above this size are decoded and parsed on the blocking pool, so
/// one huge page cannot stall the runtime thread that also drives other
/// requests' I/O. Below it, a thread hop would cost more than the parse.
const INLINE_PARSE_BYTES: usize = 64 * 1024;

/// Memory the parsed tree takes per element or attribute, measured with
/// scraper 0.29 (160 to 256 bytes, the text nodes between tags included):
/// what a page weighs against `max_parse_bytes`.
const TREE_BYTES_PER_NODE: u64 = 256;

/// Room left in an RPC frame beside the page's result: tarpc's response
/// envelope and our `Result` tag take a few dozen bytes; the rest is slack.
const RESULT_MARGIN_BYTES: usize = 4096;

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
    /// addresses, except those in `allow_internal`.
    pub block_private_addresses: bool,
    /// Internal hosts this worker may fetch anyway: host names (with their
    /// subdomains), IP addresses or CIDR blocks. Only the worker's own
    /// configuration can allow an internal address; nothing in a request
    /// does.
    pub allow_internal: Vec<String>,
    /// Links one page may yield; the rest are counted as `links_truncated`.
    pub max_links_per_page: usize,
    /// Longest URL kept (bytes, as written and as resolved); longer links
    /// are dropped and counted, a longer `<base href>` is ignored.
    pub max_url_bytes: usize,
    /// Largest reply for one page (its requests and items, as encoded);
    /// what does not fit is left out and counted, so a reply never exceeds
    /// the RPC frame and costs the connection.
    pub max_result_bytes: usize,
    /// Elements and attributes parsed per HTML page; the rest of the page
    /// is ignored (counted as `page_truncated`). Bounds the parsed tree's
    /// memory whatever the markup.
    pub max_html_nodes: usize,
    /// Deepest element nesting parsed; the page is cut where it goes deeper
    /// (the HTML parser's time grows with nesting depth times tags).
    pub max_html_depth: usize,
    /// Bodies held in memory at once, across requests (bytes): as they
    /// download, and as their text while they are parsed. A fetch waits for
    /// room as its body grows (within `timeout_ms`).
    pub max_buffered_body_bytes: u64,
    /// Estimated memory (bytes) of the parsed trees being built at once;
    /// more pages wait for the parser instead of all building trees at the
    /// same time.
    pub max_parse_bytes: u64,
    /// Bytes of a robots.txt read; the rest is ignored (RFC 9309 asks
    /// crawlers to read at least 500 KiB).
    pub max_robots_bytes: u64,
    /// Address to serve Prometheus metrics on; "" for none.
    pub metrics_addr: String,
    /// A PEM file of extra CA certificates to trust for https fetches (an
    /// intranet CA), besides the system's; "" for none.
    pub tls_ca_file: String,
}

impl Default for WorkerConfig {
    /// Port 9000 on 127.0.0.1; 5 s to connect, 15 s per fetch; user agent
    /// `crawler/0.1`; bodies up to 10 MiB; 5 redirects; 16 MiB RPC frames;
    /// 4096 concurrent requests per connection; internal addresses blocked,
    /// none allowed. Per page: 10,000 links, 8 KiB URLs (the HTTP spec's
    /// suggested floor), 8 MiB replies, 250,000 HTML nodes, nesting 512
    /// deep (as Chrome's parser), 512 KiB of robots.txt. At once: 64 MiB
    /// of bodies, 64 MiB of parsed trees (one page's tree is at most
    /// 250,000 nodes of about 256 bytes).
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
            allow_internal: Vec::new(),
            max_links_per_page: 10_000,
            max_url_bytes: 8 * 1024,
            max_result_bytes: 8 * 1024 * 1024,
            max_html_nodes: 250_000,
            max_html_depth: 512,
            max_buffered_body_bytes: 64 * 1024 * 1024,
            max_parse_bytes: 64 * 1024 * 1024,
            max_robots_bytes: 512 * 1024,
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
        if let Err(reason) = guard::AllowInternal::parse(&self.allow_internal) {
            return bad("allow_internal", &reason);
        }
        for (key, value) in [
            ("max_links_per_page", self.max_links_per_page),
            ("max_url_bytes", self.max_url_bytes),
            ("max_html_nodes", self.max_html_nodes),
            ("max_html_depth", self.max_html_depth),
        ] {
            if value == 0 {
                return bad(key, "must be at least 1");
            }
        }
        if self.max_robots_bytes == 0 {
            return bad("max_robots_bytes", "must be at least 1");
        }
        if self.max_parse_bytes == 0 {
            return bad("max_parse_bytes", "must be at least 1");
        }
        // A body that could never fit would wait for room until it timed out.
        if self.max_buffered_body_bytes < self.max_body_bytes.max(self.max_robots_bytes) {
            return bad(
                "max_buffered_body_bytes",
                "must be at least max_body_bytes and max_robots_bytes",
            );
        }
        // The reply also carries the response envelope (ids, the result's
        // tag, the limit counts), hence the margin below the frame.
        if self.max_result_bytes == 0
            || self.max_result_bytes + RESULT_MARGIN_BYTES > self.max_frame_bytes
        {
            return bad(
                "max_result_bytes",
                &format!(
                    "must be at least 1 and at most max_frame_bytes - {RESULT_MARGIN_BYTES} ({})",
                    self.max_frame_bytes.saturating_sub(RESULT_MARGIN_BYTES)
                ),
            );
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
    /// `max_parse_bytes` as permits, one per byte of estimated parse
    /// memory: a page holds its weight from decode to the end of its parse,
    /// so big pages queue for the parser instead of all building trees at
    /// once. Never closed.
    parse_permits: tokio::sync::Semaphore,
    /// Big pages decoded or parsed at once: one per core. The work is CPU
    /// bound, so more would not finish sooner; and each blocking-pool
    /// thread that builds a big tree keeps its own malloc arena at its peak
    /// (measured: about 60 MiB more peak RSS with 18 pages in parallel).
    parse_slots: tokio::sync::Semaphore,
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
                parse_permits: tokio::sync::Semaphore::new(parse_permits(config) as usize),
                parse_slots: tokio::sync::Semaphore::new(
                    std::thread::available_parallelism().map_or(2, |n| n.get()),
                ),
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
    /// in this process (benchmarks, tools): redirects may go anywhere, and
    /// internal addresses are fetched only as `allow_internal` allows, as
    /// for any request. The parser is looked up first, so an unknown parser
    /// or bad arguments cost no fetch.
    pub async fn process(&self, request: Request) -> Result<ParseResult, CrawlError> {
        let policy = FetchPolicy {
            allowed_domains: vec!["*".to_string()],
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
        let config = &self.inner.config;
        let (max_nodes, max_depth) = (config.max_html_nodes, config.max_html_depth);
        let inline = fetched.body.len() <= INLINE_PARSE_BYTES;
        let page = if inline {
            prepare(fetched, content, max_nodes, max_depth)
        } else {
            let _slot = self.parse_slot().await;
            tokio::task::spawn_blocking(move || prepare(fetched, content, max_nodes, max_depth))
                .await
                .map_err(|_| panicked(&request))?
        };
        let weight = page.weight.min(parse_permits(config));
        // The semaphore is never closed, so acquiring cannot fail.
        let _permit = self
            .inner
            .parse_permits
            .acquire_many(weight as u32)
            .await
            .expect("parse semaphore is never closed");
        let limits = PageLimits::from_config(config);
        if inline {
            return Ok(parse_page(&runner, &request, &page, limits)?);
        }
        let failed = panicked(&request);
        let _slot = self.parse_slot().await;
        tokio::task::spawn_blocking(move || parse_page(&runner, &request, &page, limits))
            .await
            .unwrap_or(Err(failed))
            .map_err(CrawlError::from)
    }

    /// A turn on the blocking pool for a big page's decode or parse.
    async fn parse_slot(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.inner
            .parse_slots
            .acquire()
            .await
            .expect("parse slots are never closed")
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

/// `max_parse_bytes` as a permit count (a semaphore takes at most u32
/// permits at once).
fn parse_permits(config: &WorkerConfig) -> u64 {
    config.max_parse_bytes.min(u64::from(u32::MAX))
}

/// A fetched page ready for its parser: decoded, and cut where the parser
/// would cost more than the limits allow.
struct Prepared {
    /// Where the page came from, after redirects.
    url: url::Url,
    /// The text to parse.
    text: String,
    /// Whether `text` is only a prefix of the page.
    truncated: bool,
    /// Estimated memory of its parsed tree: against `max_parse_bytes`.
    weight: u64,
    /// The body's share of `max_buffered_body_bytes`, which the text
    /// (usually the body's own buffer) keeps until the parse ends.
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Decodes `fetched` (freeing the body as it goes) and, for HTML, cuts it at
/// `max_nodes` elements and attributes or `max_depth` nesting
/// ([`prescan`]).
fn prepare(fetched: Fetched, content: Content, max_nodes: usize, max_depth: usize) -> Prepared {
    let Fetched {
        url,
        content_type,
        body,
        truncated,
        permit,
    } = fetched;
    let mut text = decode::decode_owned(body, content_type.as_deref()).text;
    let mut cut = truncated;
    let mut nodes = 0;
    if content == Content::Html {
        let prefix = prescan::html_prefix(&text, max_nodes, max_depth);
        if prefix.is_cut(&text) {
            text.truncate(prefix.end);
            cut = true;
        }
        nodes = prefix.nodes as u64;
    }
    Prepared {
        // The tree holds a copy of the text (attribute values, text nodes)
        // besides its nodes; a text parser (robots.txt) builds no tree.
        weight: if content == Content::Html {
            text.len() as u64 + nodes * TREE_BYTES_PER_NODE
        } else {
            0
        },
        url,
        text,
        truncated: cut,
        _permit: permit,
    }
}

/// Parses within `limits`, with any parser panic turned into a
/// `ParseError` so one odd page can never take the request (or the worker)
/// down.
fn parse_page(
    runner: &Runner,
    request: &Request,
    page: &Prepared,
    limits: PageLimits,
) -> Result<ParseResult, ParseError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let budget = Budget::new(limits);
        if page.truncated {
            budget.count(|c| c.page_truncated = 1);
        }
        match runner {
            Runner::Builtin(parser) => parser.run_with(request, &page.url, &page.text, &budget),
            Runner::Rule(set, name) => set.run_with(name, request, &page.url, &page.text, &budget),
        }
    }))
    .unwrap_or_else(|_| Err(panicked(request)))
}

fn panicked(request: &Request) -> ParseError {
    ParseError::Page {
        parser: request.parser.name.clone(),
        url: request.url.clone(),
        reason: "parser panicked".into(),
    }
}

/// How [`serve`] serves, besides the limits of the worker's own config
/// (`max_frame_bytes`, `max_concurrent_requests`). The default is open to
/// any client: no token, plain TCP.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Who may connect: token, TLS, connection limits (the `[rpc]` section).
    pub security: ServerSecurity,
}

/// Serves the [`Crawl`](rpcsupport::Crawl) service on `listener` with
/// `worker` (built by the caller, who may keep a clone to read its
/// counters), until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    worker: Worker,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    use rpcsupport::Crawl;
    use tarpc::server::Channel;
    let options = ServeOptions {
        security: options.security,
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
