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
//! - [`config`]: [`WorkerConfig`] (the `[worker]` section of
//!   `config.toml`), checked at start, and [`WorkerError`].
//! - this file: [`Worker`] (fetch → decode → parse, with in-flight
//!   counters) and [`serve`]; the private `page` module readies a fetched
//!   page for its parser and runs the parser with panics caught.
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
//!   policy says. [`parse::stream`] gives `links` the same result in one
//!   pass over the text, with no tree (`stream_parse`).
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
pub mod service;
pub mod tools;

use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use rpcsupport::metrics;
use rpcsupport::{
    CrawlError, FetchPolicy, ParseError, ParseResult, ParserSpec, Render, RenderReason, Request,
    ServeOptions, ServerSecurity, WorkerStatus,
};
use tokio::net::TcpListener;

use crate::fetch::{Fetched, Fetcher, PageHeaders};
use crate::guard::{Handoff, Lookup, SystemLookup};
use crate::parse::{Content, PageLimits, Parser, Registry};
use crate::render::Renderer;
use crate::rules::RuleSet;

pub use config::{WorkerConfig, WorkerError};
use page::{panicked, parse_page, parse_permits, prepare};

/// Bodies above this size are decoded and parsed on the blocking pool, so
/// one huge page cannot stall the runtime thread that also drives other
/// requests' I/O. Below it, a thread hop would cost more than the parse.
const INLINE_PARSE_BYTES: usize = 64 * 1024;

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

/// A fetched page, parsed.
struct Parsed {
    /// The parser's outcome.
    result: Result<ParseResult, ParseError>,
    /// For `auto`: whether the page is a script shell.
    shell: bool,
    /// For `auto`: the page, for the browser should it need rendering
    /// (`None` when only a prefix of it was kept).
    whole: Option<render::Prefetched>,
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

    /// Fetches `request.url` and runs `request.parser` on it, for callers
    /// in this process (benchmarks, tools): redirects may go anywhere, and
    /// internal addresses are fetched only as `allow_internal` allows, as
    /// for any request. The parser is looked up first, so an unknown parser
    /// or bad arguments cost no fetch.
    pub async fn process(&self, request: Request) -> Result<ParseResult, CrawlError> {
        let policy = FetchPolicy {
            allowed_domains: vec!["*".to_string()],
            obey_robots_meta: false,
            obey_nofollow: false,
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
        // Only HTML is rendered: a robots.txt or a sitemap runs nothing.
        let (mode, learnt) = match content {
            Content::Html => self.render_mode(&runner, &request)?,
            _ => (Render::Never, false),
        };
        if mode == Render::Always {
            let reason = if learnt {
                RenderReason::Learnt
            } else {
                RenderReason::Always
            };
            return self
                .render_and_parse(runner, request, policy, reason, None)
                .await;
        }
        let fetched = self
            .inner
            .fetcher
            .fetch_with(&request.url, policy, content, &request.hints)
            .await?;
        // A revisit of a page that has not changed ends here, unparsed.
        let response = fetched.page_meta(&request.hints);
        if response.unchanged {
            return Ok(ParseResult {
                page: response,
                ..ParseResult::default()
            });
        }
        let (headers, final_url) = (fetched.headers.clone(), fetched.url.clone());
        let auto = mode == Render::Auto;
        // For `auto`, the page is kept (`whole`) for the browser, should it
        // need rendering: the site is not asked for it twice.
        let Parsed {
            result,
            shell,
            whole,
        } = self
            .parse_fetched(
                runner.clone(),
                request.clone(),
                fetched,
                content,
                policy,
                auto,
            )
            .await?;
        if auto {
            let reason = match &result {
                _ if shell => Some(RenderReason::ScriptShell),
                // A parser that finds nothing it can read (the profile
                // parser without its table) says so with an error about
                // the page.
                Err(ParseError::Page { .. }) => Some(RenderReason::Missing),
                Err(_) => None,
                Ok(result) if self.lacks(&runner, result) => Some(RenderReason::Missing),
                Ok(_) => None,
            };
            if let Some(reason) = reason {
                let whole = whole.map(|w| render::Prefetched { headers, ..w });
                return self
                    .render_and_parse(runner, request, policy, reason, whole.as_ref())
                    .await;
            }
        }
        let mut result = result?;
        result.page.status = response.status;
        result.page.etag = response.etag;
        result.page.last_modified = response.last_modified;
        result.page.content_hash = response.content_hash;
        self.read_headers(&mut result, content, &headers, policy, &final_url);
        Ok(result)
    }

    /// What an HTML page's response headers say of it (`X-Robots-Tag`, a
    /// canonical `Link`), added to `result` and obeyed as `policy` asks
    /// ([`parse::meta::finish`]).
    fn read_headers(
        &self,
        result: &mut ParseResult,
        content: Content,
        headers: &PageHeaders,
        policy: &FetchPolicy,
        url: &url::Url,
    ) {
        if content == Content::Html {
            let config = &self.inner.config;
            let agent = parse::meta::agent_token(&config.user_agent);
            parse::meta::finish(result, headers, policy, url, config.max_url_bytes, agent);
        }
    }

    /// How `request` is rendered, and whether that was the engine's hint
    /// (it learnt that such pages need it): the hint, else the rule's
    /// `render` key or the parser's `render` argument.
    fn render_mode(
        &self,
        runner: &Runner,
        request: &Request,
    ) -> Result<(Render, bool), ParseError> {
        if let Some(mode) = request.hints.render {
            return Ok((mode, mode == Render::Always));
        }
        let mode = match runner {
            Runner::Rule(set, _) => set.rules().render_of(&request.parser),
            Runner::Builtin(_) => rpcsupport::rules::render_arg(&request.parser),
        };
        let mode = mode.map_err(|reason| ParseError::BadArgs {
            parser: request.parser.name.clone(),
            reason,
        })?;
        Ok((mode, false))
    }

    /// Whether a fetched page's `result` lacks what its parser extracts
    /// (see [`render::auto`]).
    fn lacks(&self, runner: &Runner, result: &ParseResult) -> bool {
        match runner {
            Runner::Builtin(_) => render::auto::builtin_lacks(result),
            Runner::Rule(set, name) => set
                .rules()
                .file()
                .parsers
                .get(name)
                .is_some_and(|rule| render::auto::rule_lacks(rule, result)),
        }
    }

    /// Renders `request.url` in the browser (its document from
    /// `prefetched` when given) and parses the DOM it built.
    async fn render_and_parse(
        &self,
        runner: Runner,
        request: Request,
        policy: &FetchPolicy,
        reason: RenderReason,
        prefetched: Option<&render::Prefetched>,
    ) -> Result<ParseResult, CrawlError> {
        let rendered = self
            .inner
            .renderer
            .render(&self.inner.fetcher, &request.url, policy, prefetched)
            .await?;
        self.inner
            .metrics
            .counter(
                "worker_renders_total",
                "Pages rendered in a browser, by why.",
                &[("reason", reason.kind())],
            )
            .inc();
        let status = rendered.status;
        // The hash of what was parsed: the DOM, not the shell the server
        // sent (which stays the same while the data its script loads
        // changes). The shell's validators are left out for that reason:
        // a revisit sends none, and the page is rendered again.
        let hash = rpcsupport::content_hash(rendered.html.as_bytes());
        let url = rendered.url.clone();
        let subrequests = rendered.subrequests;
        let fetched = Fetched {
            url: rendered.url,
            status,
            headers: PageHeaders::default(),
            // The DOM came out of the browser as a string: UTF-8, whatever
            // the page's own charset was.
            content_type: Some("text/html; charset=utf-8".into()),
            body: rendered.html.into_bytes(),
            truncated: false,
            // The DOM is at most max_body_bytes, and at most max_tabs of
            // them exist at once.
            permit: None,
        };
        let mut result = self
            .parse_fetched(runner, request, fetched, Content::Html, policy, false)
            .await?
            .result?;
        result.page.rendered = Some(reason);
        result.page.subrequests = subrequests;
        result.page.status = status;
        result.page.content_hash = Some(hash);
        // The document's X-Robots-Tag and canonical Link still apply.
        self.read_headers(&mut result, Content::Html, &rendered.headers, policy, &url);
        Ok(result)
    }

    /// Decodes and parses a fetched page with `runner` (skipping
    /// `rel="nofollow"` links if `policy` says so): the parser's outcome
    /// and, for `auto` (`for_auto`), whether the page is a script shell and
    /// the page itself, for the browser should it need rendering. The outer
    /// error is the worker's own (a decode that panicked).
    async fn parse_fetched(
        &self,
        runner: Runner,
        request: Request,
        fetched: Fetched,
        content: Content,
        policy: &FetchPolicy,
        for_auto: bool,
    ) -> Result<Parsed, CrawlError> {
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
        let weight = page
            .weight(&runner, config.stream_parse)
            .min(parse_permits(config));
        // The semaphore is never closed, so acquiring cannot fail.
        let _permit = self
            .inner
            .parse_permits
            .acquire_many(weight as u32)
            .await
            .expect("parse semaphore is never closed");
        let limits = PageLimits::from_config(config);
        let agent = parse::meta::agent_token(&config.user_agent).to_owned();
        let obey_nofollow = policy.obey_nofollow;
        let finish = move |result, page: page::Prepared| {
            if !for_auto {
                return Parsed {
                    result,
                    shell: false,
                    whole: None,
                };
            }
            let shell = render::auto::is_script_shell(page.text());
            let whole = page
                .into_whole()
                .map(|(url, text, permit)| render::Prefetched {
                    url,
                    text,
                    permit,
                    headers: PageHeaders::default(),
                });
            Parsed {
                result,
                shell,
                whole,
            }
        };
        if inline {
            let result = parse_page(&runner, &request, &page, limits, obey_nofollow, &agent);
            return Ok(finish(result, page));
        }
        let failed = panicked(&request);
        let _slot = self.parse_slot().await;
        Ok(tokio::task::spawn_blocking(move || {
            let result = parse_page(&runner, &request, &page, limits, obey_nofollow, &agent);
            finish(result, page)
        })
        .await
        .unwrap_or(Parsed {
            result: Err(failed),
            shell: false,
            whole: None,
        }))
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
            // `render` is the worker's argument, not the parser's.
            if spec.args.contains_key(Render::ARG) {
                let mut bare = spec.clone();
                bare.args.remove(Render::ARG);
                return Ok(Runner::Builtin(*self.inner.registry.get(&bare)?));
            }
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
