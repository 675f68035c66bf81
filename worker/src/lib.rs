//! A crawl worker: fetches one page and runs a named parser on it, served
//! over tarpc as the [`rpcsupport::Crawl`] service.
//!
//! A worker keeps no crawl state: the engine sends a
//! [`Request`](rpcsupport::Request) (URL plus parser name), the worker
//! answers with a [`ParseResult`](rpcsupport::ParseResult) (new requests
//! and items) or a typed [`CrawlError`](rpcsupport::CrawlError). Any
//! number of workers can run side by side.
//!
//! # Layout
//!
//! Modules in the order a request flows through them:
//!
//! - [`service`]: the tarpc [`Crawl`](rpcsupport::Crawl) implementation,
//!   a thin shell over [`Worker::process`] and [`Worker::status`], one per
//!   connection, holding the fetch policies given on it (by id).
//! - [`config`]: [`WorkerConfig`] (the `[worker]` section of
//!   `config.toml`), checked at start, and [`WorkerError`].
//! - this file: [`Worker`] (its shared parts and counters, the rule sets
//!   it loaded) and [`serve`].
//! - `process`: a request's path through [`Worker::process`]: the parser
//!   it names, fetch or render, decode and parse, counted; the private
//!   `page` module readies a fetched page for its parser and runs the
//!   parser with panics caught.
//! - [`fetch`]: step 4, the shared HTTP client: one deadline for the whole
//!   fetch (every redirect hop and the body), redirect limit, body cap
//!   while streaming (robots.txt and sitemaps are cut, not refused),
//!   HTML-only, and the bodies held at once bounded by
//!   `max_buffered_body_bytes`; failures become
//!   [`FetchError`](rpcsupport::FetchError). It sends the request's
//!   validators (`If-None-Match`, `If-Modified-Since`): a page that is
//!   unchanged (a 304, or a body hashing as last time) is answered as such
//!   without being parsed.
//! - [`guard`]: refuses loopback, private, link-local and metadata
//!   addresses (checked on the resolved address, every redirect hop)
//!   except those the worker's own `allow_internal` lists; nothing in a
//!   request widens it.
//! - [`decode`]: bytes to text: charset from the header, else `<meta>`,
//!   else UTF-8.
//! - [`prescan`]: cuts an HTML page at `max_html_nodes` or `max_html_depth`
//!   before the parser sees it, so its tree and parse time are bounded;
//!   `page` then weighs the page against `max_parse_bytes`.
//! - [`parse`]: step 5, the parser registry keyed by name, and the link
//!   helpers every parser uses (base href, relative URLs, junk links),
//!   which apply the page's budget ([`parse::limits`]: links per page, URL
//!   length, reply size, counted in the result's `limits`).
//!   One file per parser: [`parse::city_list`], [`parse::city`],
//!   [`parse::profile`]; [`parse::links`] (follow every link, for any
//!   site), [`parse::robots`] (robots.txt as text, for the engine) and
//!   [`parse::sitemap`] (XML, gzip and text sitemaps, streaming, within
//!   `max_sitemap_urls` / `max_sitemap_bytes`). [`parse::meta`] reads
//!   what any HTML page asks of crawlers (robots meta, `X-Robots-Tag`,
//!   `rel="nofollow"`) and its canonical URL, and obeys it as the crawl's
//!   policy says. [`parse::stream`] gives `links` and the demo parsers
//!   the same result in one pass over the text, with no tree
//!   (`stream_parse`; the demo parsers hand odd markup to the tree).
//! - [`render`]: pages that need JavaScript (a parser's `render` mode):
//!   a headless browser pool whose every request goes through [`fetch`],
//!   and the `auto` mode's test of whether a fetched page needs rendering;
//!   the rendered DOM goes to the same parsers.
//! - [`rules`]: declarative parsers described in a rules file, sent by the
//!   engine, compiled once per worker and run like built-in ones, within
//!   the same budget.
//! - [`tools`]: `worker check-rules` and `worker try-rules`, for writing
//!   rules files: they compile selectors and fetch pages, as a worker does.

pub mod config;
pub mod decode;
pub mod fetch;
pub mod guard;
pub mod parse;
pub mod prescan;
pub mod render;
pub mod rules;

#[cfg(test)]
mod fuzz_tests;
mod page;
mod process;
pub mod service;
pub mod tools;

use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use rpcsupport::metrics;
use rpcsupport::{ParseError, ServeOptions, ServerSecurity, WorkerStatus};
use tokio::net::TcpListener;

use crate::fetch::Fetcher;
use crate::guard::{Handoff, Lookup, SystemLookup};
use crate::parse::Registry;
use crate::render::Renderer;
use crate::rules::RuleSet;

pub use config::{WorkerConfig, WorkerError};
use page::parse_permits;
// `page` runs a request's parser, which `process` resolves.
use process::Runner;

/// Fetches and parses pages. Cheap to clone: clones share one HTTP client
/// (and so its connection pool), one parser registry and the counters.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    config: WorkerConfig,
    fetcher: Fetcher,
    /// The browser pool for pages that need rendering (launched lazily).
    renderer: Renderer,
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
        Worker::with_resolver(config, metrics, Arc::new(SystemLookup), None)
    }

    /// Like [`Worker::with_metrics`], resolving names with `lookup` and
    /// showing every address handed to the HTTP client to `handoff` (see
    /// [`Fetcher::with_lookup`]): tests of the address guard, for fetched
    /// and rendered pages alike.
    pub fn with_resolver(
        config: &WorkerConfig,
        metrics: Arc<metrics::Registry>,
        lookup: Arc<dyn Lookup>,
        handoff: Option<Handoff>,
    ) -> Result<Worker, WorkerError> {
        config.validate()?;
        Ok(Worker {
            inner: Arc::new(Inner {
                config: config.clone(),
                fetcher: Fetcher::with_lookup(config, lookup, handoff)?,
                renderer: Renderer::new(config, metrics.clone()),
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

    /// The browser pool (its launch count, whether it can render).
    pub fn renderer(&self) -> &Renderer {
        &self.inner.renderer
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
            can_render: self.inner.renderer.can_render(),
        }
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
    rpcsupport::serve(listener, options, shutdown, move |channel| {
        // A service per connection: the policies given on it are its own.
        let service = service::CrawlService::new(worker.clone());
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
