//! The engine's settings: `[engine]` in `config.toml`, then flags, then
//! validation into [`Settings`], the checked form the crawl uses.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use rpcsupport::{HostAddr, ParserSpec, Request};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use rpcsupport::rules::{parse_file, Builtins, Rules, RulesFile};

use crate::scheduler::{HostLimits, Politeness};
use crate::scope::Scope;

/// Limits for one domain, under `[engine.hosts."example.com"]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostOverride {
    /// Requests in flight at once to the domain's hosts.
    pub concurrency: Option<u32>,
    /// Milliseconds between request starts to one of its hosts.
    pub delay_ms: Option<u64>,
}

/// `[engine]` as written in `config.toml`. Every key is optional; the
/// defaults are documented on [`EngineConfig::default`] and in the shipped
/// `config.toml`. Flags of the same name override these.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Where the itemsaver listens.
    pub itemsaver_host: String,
    /// Where the workers listen; one RPC connection each.
    pub worker_hosts: Vec<String>,
    /// Start URLs.
    pub seeds: Vec<String>,
    /// Parser run on the seed pages.
    pub parser: String,
    /// Requests dispatched concurrently across all workers.
    pub worker_count: usize,
    /// Links followed from a seed before stopping; 0 means no limit.
    pub max_depth: u32,
    /// Items per save RPC to the itemsaver.
    pub item_batch_size: usize,
    /// How long a partial item batch may wait for more items.
    pub item_linger_ms: u64,
    /// Deadline of one `process` call on a worker.
    pub rpc_timeout_ms: u64,
    /// How long to wait for a TCP connection to a worker or the itemsaver.
    pub connect_timeout_ms: u64,
    /// Tries per request when the call to a worker fails while the worker
    /// stays up (deadline exceeded); after that the request is recorded as
    /// failed. Calls during which the worker was lost do not count: see
    /// [`crate::poison`].
    pub max_attempts: u32,
    /// How long the engine waits while every worker is down before it
    /// gives up the crawl.
    pub worker_wait_ms: u64,
    /// Items buffered in memory while the itemsaver is slow or down; more
    /// spill to a file on disk.
    pub item_buffer_items: usize,
    /// At the end of a crawl, how long to keep trying an itemsaver that is
    /// down before exiting with the items kept on disk.
    pub itemsaver_wait_ms: u64,
    /// On Ctrl-C, how long to wait for calls in flight before abandoning
    /// them (they stay pending in the state dir).
    pub shutdown_grace_ms: u64,
    /// Directory for the crawl's state; empty for none. With it, a stopped
    /// or killed engine resumes where it was when started again. Locked by
    /// the engine using it: one engine per directory.
    pub state_dir: String,
    /// How often the state is written.
    pub state_interval_ms: u64,
    /// Requests that finally failed and items the itemsaver refused are
    /// appended here as JSON lines; empty for none.
    pub failures_file: String,
    /// Requests in flight at once to one host (the whole pool together).
    pub per_host_concurrency: u32,
    /// Least milliseconds between two request starts to one host.
    pub per_host_delay_ms: u64,
    /// Per-domain overrides of the two limits above.
    pub hosts: BTreeMap<String, HostOverride>,
    /// Fetch robots.txt once per host and obey it.
    pub obey_robots: bool,
    /// The product token looked up in robots.txt.
    pub robots_user_agent: String,
    /// Seconds a fetched robots.txt is trusted.
    pub robots_ttl_s: u64,
    /// Cap on a robots.txt Crawl-delay, in milliseconds.
    pub max_crawl_delay_ms: u64,
    /// Slow a host down when its latency rises or it answers 429/503.
    pub autothrottle: bool,
    /// Ceiling of the adaptive delay, in milliseconds.
    pub autothrottle_max_delay_ms: u64,
    /// Retries of a fetch that failed transiently (timeout, connection,
    /// 429, 500, 502, 503, 504).
    pub retry_times: u32,
    /// First retry delay in milliseconds; doubles each time, with jitter.
    pub retry_backoff_ms: u64,
    /// Longest retry delay in milliseconds (also caps `Retry-After`).
    pub retry_max_backoff_ms: u64,
    /// Domains the crawl stays in (subdomains included); empty means the
    /// seeds' hosts, `"*"` means anywhere.
    pub allowed_domains: Vec<String>,
    /// Regexes a URL must match one of (empty: no constraint).
    pub include: Vec<String>,
    /// Regexes that exclude a URL.
    pub exclude: Vec<String>,
    /// Query parameters removed before dedup; `name*` matches a prefix.
    pub strip_query_params: Vec<String>,
    /// Stop after this many finished calls for crawl requests, whatever
    /// their outcome (pages, HTTP errors, timeouts: what the site saw);
    /// 0 for no limit.
    pub max_pages: u64,
    /// Stop after this many seconds; 0 for no limit.
    pub max_duration_s: u64,
    /// Requests the frontier keeps in memory; more wait in a file on disk
    /// (in the state dir, else the temp dir). 0 for no bound.
    pub queue_memory_tasks: usize,
    /// Address to serve Prometheus metrics on (e.g. `127.0.0.1:9100`); ""
    /// for none.
    pub metrics_addr: String,
    /// Milliseconds between progress log lines when stderr is not a
    /// terminal (on a terminal a status line is redrawn); 0 for none.
    pub progress_interval_ms: u64,
    /// After the crawl, how long (ms) the dashboard on `metrics_addr` stays
    /// up so a browser sees "finished" and the summary; 0 for none.
    pub dashboard_linger_ms: u64,
    /// A rules file of declarative parsers (see the README); "" for none.
    /// Without it, a `[rules]` section of the config file is used if present.
    pub rules: String,
    /// Rules given inline (the config file's `[rules]` section), set by the
    /// binary; not an `[engine]` key.
    #[serde(skip)]
    pub inline_rules: Option<RulesFile>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            itemsaver_host: ":1234".into(),
            worker_hosts: vec![":9000".into(), ":9001".into()],
            seeds: Vec::new(),
            parser: "city_list".into(),
            worker_count: 100,
            max_depth: 0,
            item_batch_size: 2000,
            item_linger_ms: 200,
            rpc_timeout_ms: 60_000,
            connect_timeout_ms: 5_000,
            max_attempts: 3,
            worker_wait_ms: 300_000,
            item_buffer_items: 100_000,
            itemsaver_wait_ms: 300_000,
            shutdown_grace_ms: 30_000,
            state_dir: String::new(),
            state_interval_ms: 5_000,
            failures_file: "data/failures.jsonl".into(),
            per_host_concurrency: 8,
            per_host_delay_ms: 0,
            hosts: BTreeMap::new(),
            obey_robots: true,
            robots_user_agent: "crawler".into(),
            robots_ttl_s: 86_400,
            max_crawl_delay_ms: 10_000,
            autothrottle: false,
            autothrottle_max_delay_ms: 30_000,
            retry_times: 3,
            retry_backoff_ms: 500,
            retry_max_backoff_ms: 60_000,
            allowed_domains: Vec::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            strip_query_params: ["utm_*", "gclid", "fbclid", "msclkid", "mc_cid", "mc_eid"]
                .map(String::from)
                .to_vec(),
            max_pages: 0,
            max_duration_s: 0,
            queue_memory_tasks: 1_000_000,
            metrics_addr: String::new(),
            progress_interval_ms: 10_000,
            dashboard_linger_ms: 5_000,
            rules: String::new(),
            inline_rules: None,
        }
    }
}

/// Checked settings, built by [`EngineConfig::validate`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// Parsed itemsaver address.
    pub itemsaver: HostAddr,
    /// Parsed worker addresses, at least one, no duplicates.
    pub workers: Vec<HostAddr>,
    /// The seed requests (depth 0).
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
    /// Checks every value and builds [`Settings`].
    pub fn validate(&self) -> Result<Settings, InvalidSetting> {
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
        let rules = self.load_rules()?;
        // Seeds and their parser travel together: the engine's own, or, when
        // it has none, the rules file's seeds with its start parser.
        let (seed_urls, parser) = match &rules {
            Some(set) if self.seeds.is_empty() && !set.file().seeds.is_empty() => (
                set.file().seeds.clone(),
                set.file().start.clone().unwrap_or_default(),
            ),
            _ => (self.seeds.clone(), self.parser.trim().to_owned()),
        };
        if seed_urls.is_empty() {
            return Err(invalid(
                "seeds",
                "no seed URL: pass --seed URL or set engine.seeds (or seeds in the rules)",
            ));
        }
        if parser.is_empty() {
            return Err(invalid("parser", "empty parser name"));
        }
        let parser_spec = match &rules {
            Some(set) => set.spec(&parser),
            None => ParserSpec::named(&parser),
        };
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
            });
        }
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
        at_least_one("per_host_concurrency", self.per_host_concurrency as u64)?;
        let path = |s: &str| (!s.trim().is_empty()).then(|| PathBuf::from(s.trim()));
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
        let scope = Scope::new(
            allowed_domains,
            regexes("include", &self.include)?,
            regexes("exclude", &self.exclude)?,
            self.strip_query_params.clone(),
        );
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
        let politeness = Politeness {
            default: default_limits,
            overrides,
            obey_robots: self.obey_robots,
            robots_agent: self.robots_user_agent.trim().to_owned(),
            robots_ttl: Duration::from_secs(self.robots_ttl_s),
            max_crawl_delay: Duration::from_millis(self.max_crawl_delay_ms),
            autothrottle: self.autothrottle,
            max_delay: Duration::from_millis(self.autothrottle_max_delay_ms),
        };
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

/// Default location of the shared config file.
pub fn default_config_path() -> PathBuf {
    PathBuf::from("config.toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_seed() -> EngineConfig {
        EngineConfig {
            seeds: vec!["http://127.0.0.1:8080/".into()],
            ..EngineConfig::default()
        }
    }

    /// The defaults plus one seed validate.
    #[test]
    fn defaults_with_a_seed_are_valid() {
        let s = with_seed().validate().unwrap();
        assert_eq!(s.workers.len(), 2);
        assert_eq!(s.itemsaver.to_string(), "127.0.0.1:1234");
        assert_eq!(s.max_depth, None);
        assert_eq!(s.seeds[0].parser.name, "city_list");
        assert_eq!(
            s.scope.policy.allowed_domains,
            vec!["127.0.0.1".to_string()]
        );
        assert!(s.politeness.obey_robots);
    }

    /// Rules given inline (a `[rules]` section) are used when no rules file
    /// is named, seeds and start parser included.
    #[test]
    fn inline_rules_section() {
        let text = "[rules]\nseeds = [\"http://127.0.0.1:9/\"]\nstart = \"home\"\n[rules.parsers.home]\nfollow = [{ parser = \"home\" }]\n";
        let inline: Option<RulesFile> = rpcsupport::config::parse_section(text, "rules").unwrap();
        let config = EngineConfig {
            inline_rules: inline,
            ..EngineConfig::default()
        };
        let s = config.validate().unwrap();
        let set = s.rules.unwrap();
        assert_eq!(s.seeds[0].url, "http://127.0.0.1:9/");
        assert_eq!(s.seeds[0].parser, set.spec("home"));
    }

    /// Each bad value is reported under its own key.
    #[test]
    fn bad_values_name_their_key() {
        let cases: Vec<(EngineConfig, &str)> = vec![
            (
                EngineConfig {
                    worker_hosts: vec!["nonsense".into()],
                    ..with_seed()
                },
                "worker_hosts",
            ),
            (
                EngineConfig {
                    worker_hosts: vec![],
                    ..with_seed()
                },
                "worker_hosts",
            ),
            (
                EngineConfig {
                    worker_hosts: vec![":1".into(), "127.0.0.1:1".into()],
                    ..with_seed()
                },
                "worker_hosts",
            ),
            (
                EngineConfig {
                    itemsaver_host: "x:y".into(),
                    ..with_seed()
                },
                "itemsaver_host",
            ),
            (EngineConfig::default(), "seeds"),
            (
                EngineConfig {
                    seeds: vec!["ftp://x/".into()],
                    ..with_seed()
                },
                "seeds",
            ),
            (
                EngineConfig {
                    seeds: vec!["not a url".into()],
                    ..with_seed()
                },
                "seeds",
            ),
            (
                EngineConfig {
                    worker_count: 0,
                    ..with_seed()
                },
                "worker_count",
            ),
            (
                EngineConfig {
                    parser: " ".into(),
                    ..with_seed()
                },
                "parser",
            ),
        ];
        for (config, key) in cases {
            let err = config.validate().unwrap_err();
            assert_eq!(err.key, key, "{err}");
            assert!(err.to_string().starts_with(&format!("engine.{key}: ")));
        }
    }
}
