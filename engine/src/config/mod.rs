//! The engine's settings: `[engine]` in `config.toml`, then flags, then
//! validation into [`Settings`], the checked form the crawl uses.
//!
//! This file holds the keys as written; [`EngineConfig::validate`] checks
//! them, one named step per concern (in `validate.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use rpcsupport::rules::RulesFile;

mod recrawl;
mod validate;

pub use recrawl::Recrawl;
pub use validate::{InvalidSetting, Settings};

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
    /// gives up the crawl; and how long requests that need a browser wait
    /// for a worker that can render before they fail (`no_render_worker`).
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
    /// Wait after a failed robots.txt fetch (5xx, unreachable), in
    /// milliseconds; it doubles with each failure in a row, and after a few
    /// the host counts as disallowed.
    pub robots_retry_backoff_ms: u64,
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
    /// State changes (URL records, items, deletes) held in memory, not yet
    /// on disk: what a kill can lose. Half of it triggers a commit of the
    /// URL store before `state_interval_ms` is up; while it is written the
    /// other half gathers, and dispatch waits when that is full.
    pub state_commit_changes: usize,
    /// MiB of memory the URL store's database (redb) may use to cache the
    /// pages of its file, read cache and write buffer together (1 to 1024).
    /// Less saves the engine memory and costs time once the store is much
    /// bigger than the cache.
    pub state_cache_mb: u64,
    /// Crawl again the URLs of a finished crawl in `state_dir` that are
    /// due (see the `recrawl_*` keys), with the validators of their last
    /// fetch, instead of resuming or seeding.
    pub recrawl: bool,
    /// With `recrawl`: every known URL is due, whatever its schedule.
    pub recrawl_now: bool,
    /// With `recrawl`: keep running, one recrawl round after another, each
    /// waiting until the next URL is due or this long (`90s`, `10m`, `1h`,
    /// `1d`); "" for one round.
    pub recrawl_every: String,
    /// Shortest interval between two fetches of a URL, in seconds.
    pub recrawl_min_interval_s: u64,
    /// Longest interval between two fetches of a URL, in seconds.
    pub recrawl_max_interval_s: u64,
    /// Interval after the first fetch of a URL without a sitemap
    /// `<lastmod>`, in seconds (with one, the page's age is used).
    pub recrawl_default_interval_s: u64,
    /// Multiplies a URL's interval when a refetch finds it changed.
    pub recrawl_changed_factor: f64,
    /// Multiplies a URL's interval when a refetch finds it unchanged.
    pub recrawl_unchanged_factor: f64,
    /// Rules given inline (the config file's `[rules]` section), set by the
    /// binary; not an `[engine]` key.
    #[serde(skip)]
    pub inline_rules: Option<RulesFile>,

    // The open web: what pages ask of crawlers, sitemaps, rendering.
    /// Obey `<meta name="robots">` and `X-Robots-Tag` (`noindex`: no items
    /// from the page; `nofollow`: none of its links).
    pub obey_robots_meta: bool,
    /// Skip links marked `rel="nofollow"`.
    pub obey_nofollow: bool,
    /// Follow the `Sitemap:` lines of each host's robots.txt (which is
    /// fetched when `obey_robots` is on).
    pub use_sitemaps: bool,
    /// Sitemaps to start from, beside `seeds` (the `--sitemap` flag
    /// replaces them; a rules file's `sitemaps` add to them).
    pub sitemaps: Vec<String>,
    /// Parser for the pages sitemaps list; "" for the seed parser
    /// (`parser`, or the rules' `sitemap_parser`, else `start`).
    pub sitemap_parser: String,
    /// `Sitemap:` lines read from one robots.txt; more are ignored.
    pub max_robots_sitemaps: usize,
    /// Host and parser pairs remembered as needing a browser (pages that
    /// `render = "auto"` had to render); past it, no more are learnt.
    pub max_render_learnt: usize,
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
            robots_retry_backoff_ms: 1000,
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
            state_commit_changes: 10_000,
            state_cache_mb: crate::state::DEFAULT_CACHE_MB,
            recrawl: false,
            recrawl_now: false,
            recrawl_every: String::new(),
            recrawl_min_interval_s: 3_600,
            recrawl_max_interval_s: 30 * 86_400,
            recrawl_default_interval_s: 86_400,
            recrawl_changed_factor: 0.5,
            recrawl_unchanged_factor: 1.5,
            inline_rules: None,
            obey_robots_meta: true,
            obey_nofollow: true,
            use_sitemaps: true,
            sitemaps: Vec::new(),
            sitemap_parser: String::new(),
            max_robots_sitemaps: 50,
            max_render_learnt: 10_000,
        }
    }
}

/// Default location of the shared config file.
pub fn default_config_path() -> PathBuf {
    PathBuf::from("config.toml")
}

#[cfg(test)]
mod tests;
