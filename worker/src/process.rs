//! A request's path through the worker: the parser it names, fetch (or
//! render), decode and parse, with the page's headers read and the
//! outcome counted. `auto` pages are parsed first and rendered only when
//! they turn out to need it ([`render::auto`]).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use rpcsupport::{
    CrawlError, FetchPolicy, PageMeta, ParseError, ParseResult, ParserSpec, Render, RenderReason,
    Request,
};

use crate::fetch::{Fetched, PageHeaders};
use crate::page::{self, panicked, parse_page, parse_permits, prepare};
use crate::parse::{self, Content, PageLimits, Parser};
use crate::render;
use crate::rules::{self, RuleSet};
use crate::Worker;

/// Bodies above this size are decoded and parsed on the blocking pool, so
/// one huge page cannot stall the runtime thread that also drives other
/// requests' I/O. Below it, a thread hop would cost more than the parse.
const INLINE_PARSE_BYTES: usize = 64 * 1024;

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

/// What runs on a fetched page: a built-in parser or a rule.
#[derive(Clone)]
pub(crate) enum Runner {
    Builtin(Parser),
    Rule(Arc<RuleSet>, String),
}

impl Runner {
    /// What the page must be: a rule always reads HTML.
    fn content(&self) -> Content {
        match self {
            Runner::Builtin(parser) => parser.content,
            Runner::Rule(..) => Content::Html,
        }
    }
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
        let content = runner.content();
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
        let rerender = if auto {
            self.auto_reason(&runner, &result, shell)
        } else {
            None
        };
        if let Some(reason) = rerender {
            let whole = whole.map(|w| render::Prefetched { headers, ..w });
            return self
                .render_and_parse(runner, request, policy, reason, whole.as_ref())
                .await;
        }
        let mut result = result?;
        stamp(&mut result.page, response);
        self.read_headers(&mut result, content, &headers, policy, &final_url);
        Ok(result)
    }

    /// Why an `auto` page parsed as `result` needs the browser after all,
    /// if it does: a script `shell`, or a parse that found nothing of what
    /// the parser extracts.
    fn auto_reason(
        &self,
        runner: &Runner,
        result: &Result<ParseResult, ParseError>,
        shell: bool,
    ) -> Option<RenderReason> {
        match result {
            _ if shell => Some(RenderReason::ScriptShell),
            // A parser that finds nothing it can read (the profile parser
            // without its table) says so with an error about the page.
            Err(ParseError::Page { .. }) => Some(RenderReason::Missing),
            Err(_) => None,
            Ok(result) if self.lacks(runner, result) => Some(RenderReason::Missing),
            Ok(_) => None,
        }
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
}

/// Copies what the response said of the page (its status, validators and
/// body hash) into the parsed page's meta.
fn stamp(page: &mut PageMeta, response: PageMeta) {
    page.status = response.status;
    page.etag = response.etag;
    page.last_modified = response.last_modified;
    page.content_hash = response.content_hash;
}
