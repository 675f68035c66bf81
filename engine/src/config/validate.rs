//! Validation: [`EngineConfig`] as written, checked step by step into
//! [`Settings`], the form the crawl uses.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use rpcsupport::{HostAddr, ParserSpec, Request};
use thiserror::Error;

use rpcsupport::rules::{parse_file, Builtins, Rules};

use super::EngineConfig;
use crate::render::render_mode_of;
use crate::scheduler::{HostLimits, Politeness};
use crate::scope::Scope;

/// Largest `state_cache_mb`: redb's own default, 1 GiB.
const MAX_STATE_CACHE_MB: u64 = 1024;

/// Checked settings, built by [`EngineConfig::validate`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// Parsed itemsaver address.
    pub itemsaver: HostAddr,
    /// Parsed worker addresses, at least one, no duplicates.
    pub workers: Vec<HostAddr>,
    /// The seed requests (depth 0): the seeds, then the sitemaps given
    /// (`sitemaps`, the rules' `sitemaps`) with the sitemap parser.
    pub seeds: Vec<Request>,
    /// At least 1.
    pub worker_count: usize,
    /// `None` = unlimited.
    pub max_depth: Option<u32>,
    /// At least 1.
    pub item_batch_size: usize,
    /// Linger of a partial batch.
    pub item_linger: Duration,
    /// Deadline of one worker call.
    pub rpc_timeout: Duration,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// At least 1.
    pub max_attempts: u32,
    /// How long all workers may be down.
    pub worker_wait: Duration,
    /// At least 1.
    pub item_buffer_items: usize,
    /// How long to wait for a down itemsaver at the end.
    pub itemsaver_wait: Duration,
    /// How long Ctrl-C waits for calls in flight.
    pub shutdown_grace: Duration,
    /// Where state is kept, if anywhere.
    pub state_dir: Option<PathBuf>,
    /// At least 1 ms.
    pub state_interval: Duration,
    /// URL store changes held in memory at most, half of them a batch
    /// (at least 1).
    pub state_commit_changes: usize,
    /// Bytes of the URL store's page cache (1 MiB to 1 GiB).
    pub state_cache_bytes: usize,
    /// A recrawl of the state dir's crawl, if asked for (needs a state
    /// dir).
    pub recrawl: Option<super::Recrawl>,
    /// When known URLs are due again.
    pub recrawl_policy: crate::state::RecrawlPolicy,
    /// Where final failures are recorded, if anywhere.
    pub failures_file: Option<PathBuf>,
    /// What is crawled.
    pub scope: Scope,
    /// Per-host limits, robots.txt, throttle.
    pub politeness: Politeness,
    /// Retries of transient fetch failures.
    pub retry_times: u32,
    /// First retry delay.
    pub retry_backoff: Duration,
    /// Longest retry delay.
    pub retry_max_backoff: Duration,
    /// Page limit, if any.
    pub max_pages: Option<u64>,
    /// Time limit, if any.
    pub max_duration: Option<Duration>,
    /// Declarative parsers, checked but for CSS selectors (workers get
    /// them at connect, and compile the selectors or refuse the rules).
    pub rules: Option<Arc<Rules>>,
    /// Frontier memory bound in tasks; 0 for none.
    pub queue_memory_tasks: usize,
    /// Progress line interval; zero for none.
    pub progress_interval: Duration,
    /// Where the crawl's metrics go (the binary serves them on
    /// `--metrics_addr`; tests read them directly).
    pub metrics: Arc<rpcsupport::metrics::Registry>,
    /// The live dashboard the loop reports to, if one is served (the
    /// binary sets it when `metrics_addr` is set; tests may set their own).
    pub dashboard: Option<Arc<crate::dashboard::Dashboard>>,
    /// Token and TLS for the RPC connections, from the shared `[rpc]`
    /// section (not `[engine]`): the binary sets it after validation.
    /// Open (no token, plain TCP) by default.
    pub rpc_security: &'static rpcsupport::ClientSecurity,
    /// The parser of the pages sitemaps list (given ones and robots.txt's).
    pub sitemap_pages: ParserSpec,
    /// Bound on the host and parser pairs learnt to need rendering.
    pub max_render_learnt: usize,
}

/// A config value that cannot be used; names the key.
#[derive(Debug, Error, PartialEq)]
#[error("engine.{key}: {reason}")]
pub struct InvalidSetting {
    /// The key, without the `engine.` prefix.
    pub key: &'static str,
    /// What is wrong and what was expected.
    pub reason: String,
}

fn invalid(key: &'static str, reason: impl Into<String>) -> InvalidSetting {
    InvalidSetting {
        key,
        reason: reason.into(),
    }
}

impl EngineConfig {
    /// Checks every value and builds [`Settings`]. The steps run in a fixed
    /// order, so of several bad values the first one in that order is the
    /// one reported.
    pub fn validate(&self) -> Result<Settings, InvalidSetting> {
        let (itemsaver, workers) = self.addresses()?;
        let rules = self.load_rules()?;
        let (mut seeds, seed_parser) = self.seed_requests(rules.as_deref())?;
        let sitemap_pages = self.sitemap_pages(rules.as_deref(), seed_parser)?;
        seeds.extend(self.sitemap_requests(rules.as_deref(), &sitemap_pages)?);
        self.check_minimums()?;
        let scope = self
            .scope(&seeds)?
            .with_robots_meta(self.obey_robots_meta, self.obey_nofollow);
        let mut politeness = self.politeness()?;
        politeness.sitemaps = self
            .use_sitemaps
            .then(|| ParserSpec::sitemap(&sitemap_pages));
        let (recrawl, recrawl_policy) = self.recrawl_settings()?;
        let path = |s: &str| (!s.trim().is_empty()).then(|| PathBuf::from(s.trim()));
        Ok(Settings {
            itemsaver,
            workers,
            seeds,
            worker_count: self.worker_count,
            max_depth: (self.max_depth > 0).then_some(self.max_depth),
            item_batch_size: self.item_batch_size,
            item_linger: Duration::from_millis(self.item_linger_ms),
            rpc_timeout: Duration::from_millis(self.rpc_timeout_ms),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            max_attempts: self.max_attempts,
            worker_wait: Duration::from_millis(self.worker_wait_ms),
            item_buffer_items: self.item_buffer_items,
            itemsaver_wait: Duration::from_millis(self.itemsaver_wait_ms),
            shutdown_grace: Duration::from_millis(self.shutdown_grace_ms),
            state_dir: path(&self.state_dir),
            state_interval: Duration::from_millis(self.state_interval_ms),
            state_commit_changes: self.state_commit_changes,
            state_cache_bytes: (self.state_cache_mb as usize) << 20,
            recrawl,
            recrawl_policy,
            failures_file: path(&self.failures_file),
            scope,
            politeness,
            retry_times: self.retry_times,
            retry_backoff: Duration::from_millis(self.retry_backoff_ms),
            retry_max_backoff: Duration::from_millis(self.retry_max_backoff_ms),
            max_pages: (self.max_pages > 0).then_some(self.max_pages),
            max_duration: (self.max_duration_s > 0)
                .then(|| Duration::from_secs(self.max_duration_s)),
            rpc_security: &rpcsupport::ClientSecurity::OPEN,
            rules,
            queue_memory_tasks: self.queue_memory_tasks,
            progress_interval: Duration::from_millis(self.progress_interval_ms),
            metrics: rpcsupport::metrics::Registry::new(),
            dashboard: None,
            sitemap_pages,
            max_render_learnt: self.max_render_learnt,
        })
    }

    /// The itemsaver's address and the workers': at least one worker, none
    /// listed twice (a duplicate would silently double its share of work).
    fn addresses(&self) -> Result<(HostAddr, Vec<HostAddr>), InvalidSetting> {
        let itemsaver = self
            .itemsaver_host
            .parse()
            .map_err(|e: rpcsupport::HostError| invalid("itemsaver_host", e.to_string()))?;
        if self.worker_hosts.is_empty() {
            return Err(invalid(
                "worker_hosts",
                "at least one worker host is needed",
            ));
        }
        let mut workers: Vec<HostAddr> = Vec::new();
        for host in &self.worker_hosts {
            let addr: HostAddr = host
                .parse()
                .map_err(|e: rpcsupport::HostError| invalid("worker_hosts", e.to_string()))?;
            if workers.contains(&addr) {
                return Err(invalid("worker_hosts", format!("{addr} is listed twice")));
            }
            workers.push(addr);
        }
        Ok((itemsaver, workers))
    }

    /// The seed requests (depth 0), each an http(s) URL with its parser,
    /// and that parser. No seed is fine when sitemaps are given.
    fn seed_requests(
        &self,
        rules: Option<&Rules>,
    ) -> Result<(Vec<Request>, ParserSpec), InvalidSetting> {
        // Seeds and their parser travel together: the engine's own, or, when
        // it has none, the rules file's seeds with its start parser.
        let (seed_urls, parser) = match rules {
            Some(set) if self.seeds.is_empty() && !set.file().seeds.is_empty() => (
                set.file().seeds.clone(),
                set.file().start.clone().unwrap_or_default(),
            ),
            _ => (self.seeds.clone(), self.parser.trim().to_owned()),
        };
        let rule_sitemaps = rules.is_some_and(|r| !r.file().sitemaps.is_empty());
        if seed_urls.is_empty() && self.sitemaps.is_empty() && !rule_sitemaps {
            return Err(invalid(
                "seeds",
                "no seed URL: pass --seed URL (or --sitemap URL) or set engine.seeds (or seeds in the rules)",
            ));
        }
        if parser.is_empty() {
            return Err(invalid("parser", "empty parser name"));
        }
        let parser_spec = match rules {
            Some(set) => set.spec(&parser),
            None => ParserSpec::named(&parser),
        };
        render_mode_of(rules, &parser_spec).map_err(|e| invalid("parser", e))?;
        let mut seeds = Vec::new();
        for seed in &seed_urls {
            let url = url::Url::parse(seed)
                .map_err(|e| invalid("seeds", format!("{seed:?} is not a URL: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(invalid("seeds", format!("{seed:?} is not an http(s) URL")));
            }
            seeds.push(Request {
                url: url.to_string(),
                parser: parser_spec.clone(),
                depth: 0,
                hints: Default::default(),
            });
        }
        Ok((seeds, parser_spec))
    }

    /// The parser of the pages sitemaps list: `sitemap_parser`, else the
    /// rules' `sitemap_parser`, else the seed parser.
    fn sitemap_pages(
        &self,
        rules: Option<&Rules>,
        seed_parser: ParserSpec,
    ) -> Result<ParserSpec, InvalidSetting> {
        let named = match (self.sitemap_parser.trim(), rules) {
            ("", Some(set)) => set.file().sitemap_parser.clone(),
            ("", None) => None,
            (name, _) => Some(name.to_owned()),
        };
        let spec = match (named, rules) {
            (Some(name), Some(set)) => set.spec(&name),
            (Some(name), None) => ParserSpec::named(name),
            (None, _) => seed_parser,
        };
        render_mode_of(rules, &spec).map_err(|e| invalid("sitemap_parser", e))?;
        Ok(spec)
    }

    /// The sitemaps to start from (`sitemaps`, then the rules'), as depth-0
    /// requests for the sitemap parser; each must be an http(s) URL.
    fn sitemap_requests(
        &self,
        rules: Option<&Rules>,
        pages: &ParserSpec,
    ) -> Result<Vec<Request>, InvalidSetting> {
        let from_rules = rules.map_or(&[][..], |r| &r.file().sitemaps[..]);
        let spec = ParserSpec::sitemap(pages);
        let mut out = Vec::new();
        for sitemap in self.sitemaps.iter().chain(from_rules) {
            match url::Url::parse(sitemap.trim()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {
                    out.push(Request::new(u.to_string(), spec.clone(), 0))
                }
                _ => {
                    return Err(invalid(
                        "sitemaps",
                        format!("{sitemap:?} is not an http(s) URL"),
                    ))
                }
            }
        }
        Ok(out)
    }

    /// The counts and durations that make no sense at zero.
    fn check_minimums(&self) -> Result<(), InvalidSetting> {
        let at_least_one = |key, v: u64| {
            if v == 0 {
                Err(invalid(key, "must be at least 1"))
            } else {
                Ok(())
            }
        };
        at_least_one("worker_count", self.worker_count as u64)?;
        at_least_one("item_batch_size", self.item_batch_size as u64)?;
        at_least_one("rpc_timeout_ms", self.rpc_timeout_ms)?;
        at_least_one("connect_timeout_ms", self.connect_timeout_ms)?;
        at_least_one("max_attempts", self.max_attempts as u64)?;
        at_least_one("item_buffer_items", self.item_buffer_items as u64)?;
        at_least_one("state_interval_ms", self.state_interval_ms)?;
        at_least_one("state_commit_changes", self.state_commit_changes as u64)?;
        if !(1..=MAX_STATE_CACHE_MB).contains(&self.state_cache_mb) {
            return Err(invalid(
                "state_cache_mb",
                format!("must be 1 to {MAX_STATE_CACHE_MB} (MiB)"),
            ));
        }
        at_least_one("per_host_concurrency", self.per_host_concurrency as u64)?;
        Ok(())
    }

    /// What is crawled: the allowed domains (by default the seeds' hosts),
    /// the include and exclude regexes, and the query parameters stripped.
    fn scope(&self, seeds: &[Request]) -> Result<Scope, InvalidSetting> {
        let regexes = |key: &'static str, list: &[String]| {
            list.iter()
                .map(|r| Regex::new(r).map_err(|e| invalid(key, format!("bad regex {r:?}: {e}"))))
                .collect::<Result<Vec<_>, _>>()
        };
        let allowed_domains = if self.allowed_domains.is_empty() {
            // The seeds' hosts: a crawl stays on the sites it was pointed at.
            let mut hosts: Vec<String> = seeds
                .iter()
                .filter_map(|r| url::Url::parse(&r.url).ok()?.host_str().map(str::to_owned))
                .collect();
            hosts.dedup();
            hosts
        } else {
            for d in &self.allowed_domains {
                if d.trim().is_empty() || d.contains(['/', ':', ' ']) {
                    return Err(invalid(
                        "allowed_domains",
                        format!("{d:?} is not a domain name (write example.com, or \"*\")"),
                    ));
                }
            }
            self.allowed_domains.clone()
        };
        Ok(Scope::new(
            allowed_domains,
            regexes("include", &self.include)?,
            regexes("exclude", &self.exclude)?,
            self.strip_query_params.clone(),
        ))
    }

    /// Per-host limits (the default and each `[engine.hosts."…"]`),
    /// robots.txt and the autothrottle.
    fn politeness(&self) -> Result<Politeness, InvalidSetting> {
        let default_limits = HostLimits {
            concurrency: self.per_host_concurrency,
            delay: Duration::from_millis(self.per_host_delay_ms),
        };
        let mut overrides = Vec::new();
        for (domain, o) in &self.hosts {
            if o.concurrency == Some(0) {
                return Err(invalid(
                    "hosts",
                    format!("{domain}: concurrency must be at least 1"),
                ));
            }
            overrides.push((
                domain.clone(),
                HostLimits {
                    concurrency: o.concurrency.unwrap_or(default_limits.concurrency),
                    delay: o
                        .delay_ms
                        .map_or(default_limits.delay, Duration::from_millis),
                },
            ));
        }
        // Most specific domain first, so `a.example.com` beats `example.com`.
        overrides.sort_by_key(|(d, _)| std::cmp::Reverse(d.len()));
        if self.robots_user_agent.trim().is_empty() {
            return Err(invalid("robots_user_agent", "empty product token"));
        }
        Ok(Politeness {
            default: default_limits,
            overrides,
            obey_robots: self.obey_robots,
            robots_agent: self.robots_user_agent.trim().to_owned(),
            robots_ttl: Duration::from_secs(self.robots_ttl_s),
            robots_backoff: Duration::from_millis(self.robots_retry_backoff_ms),
            max_crawl_delay: Duration::from_millis(self.max_crawl_delay_ms),
            autothrottle: self.autothrottle,
            max_delay: Duration::from_millis(self.autothrottle_max_delay_ms),
            // Set by `validate`, which knows the sitemap parser.
            sitemaps: None,
            max_robots_sitemaps: self.max_robots_sitemaps,
        })
    }
}

impl EngineConfig {
    /// The rules file named by `rules`, else the inline `[rules]`, checked.
    /// Parser names outside the file and CSS selectors are left to the
    /// workers: they alone know their parsers and compile selectors, and
    /// the crawl stops at start if one refuses the rules.
    fn load_rules(&self) -> Result<Option<Arc<Rules>>, InvalidSetting> {
        let file = if !self.rules.trim().is_empty() {
            let path = self.rules.trim();
            let text = std::fs::read_to_string(path)
                .map_err(|e| invalid("rules", format!("cannot read {path}: {e}")))?;
            parse_file(&text).map_err(|e| invalid("rules", format!("{path}: {e}")))?
        } else if let Some(inline) = &self.inline_rules {
            inline.clone()
        } else {
            return Ok(None);
        };
        let set =
            Rules::check(file, Builtins::Unchecked).map_err(|e| invalid("rules", e.to_string()))?;
        Ok(Some(Arc::new(set)))
    }
}
