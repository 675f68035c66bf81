//! `engine`: flags and config in, [`engine::run`] on them, summary out.

use std::path::PathBuf;
use std::process::ExitCode;

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use engine::EngineConfig;

/// Declares the flags, one per `[engine]` key of the same name (see
/// `config.toml` for what each means), and how they override the file.
/// One list, so a new key cannot get a flag that is never applied.
macro_rules! flags {
    (
        scalars { $( $(#[$sdoc:meta])* $scalar:ident : $sty:ty, )* }
        lists { $( $(#[$ldoc:meta])* $list:ident, )* }
    ) => {
        /// Runs a crawl over a pool of workers, storing items through an
        /// itemsaver. Every flag overrides the `[engine]` key of the same
        /// name in the config file (the RPC flags, the `[rpc]` keys).
        #[derive(Debug, Parser)]
        #[command(name = "engine", version)]
        struct Flags {
            /// Config file (default ./config.toml, if present).
            #[arg(long)]
            config: Option<PathBuf>,
            /// Seed URL; repeat for several (replaces engine.seeds).
            #[arg(long = "seed")]
            seeds: Vec<String>,
            /// Sitemap URL to start from; repeat or comma-separate for
            /// several (replaces engine.sitemaps; a rules file's add to them).
            #[arg(long = "sitemap", value_delimiter = ',')]
            sitemaps: Vec<String>,
            /// Token and TLS for the RPC connections (the `[rpc]` section).
            #[command(flatten)]
            rpc: rpcsupport::RpcFlags,
            /// Crawl again the finished crawl in --state_dir: the known URLs
            /// that are due, sent with their last validators (engine.recrawl).
            #[arg(long)]
            recrawl: bool,
            /// With --recrawl: every known URL is due (engine.recrawl_now).
            #[arg(long = "recrawl_now")]
            recrawl_now: bool,
            /// A tool instead of a crawl.
            #[command(subcommand)]
            tool: Option<Tool>,
            $( $(#[$sdoc])* #[arg(long = stringify!($scalar))] $scalar: Option<$sty>, )*
            $( $(#[$ldoc])* #[arg(long = stringify!($list), value_delimiter = ',')] $list: Option<Vec<String>>, )*
        }

        impl Flags {
            /// Flags win over the file. (The `[rpc]` flags are applied by
            /// `rpcsupport::security::load`.)
            fn apply(self, config: &mut EngineConfig) {
                if !self.seeds.is_empty() {
                    config.seeds = self.seeds;
                }
                // Switches, not `--key value`: they only turn a key on.
                config.recrawl |= self.recrawl;
                config.recrawl_now |= self.recrawl_now;
                if !self.sitemaps.is_empty() {
                    config.sitemaps = self.sitemaps;
                }
                rpcsupport::apply_flags!(self => config; $($scalar,)* $($list,)*);
            }
        }
    };
}

/// Tools for writing rules files.
#[derive(Debug, clap::Subcommand)]
enum Tool {
    /// Check a rules file (all but CSS selectors, which `worker
    /// check-rules` compiles) and print what it describes.
    #[command(name = "check-rules")]
    CheckRules {
        /// The rules file.
        file: PathBuf,
    },
    /// Moved: `worker try-rules` runs a rule on a page.
    #[command(name = "try-rules")]
    TryRules {
        /// Whatever was given; the message says where to give it.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

flags! {
    scalars {
        /// Itemsaver address: :PORT, HOST:PORT or [IPv6]:PORT.
        itemsaver_host: String,
        /// Parser for the seed pages.
        parser: String,
        /// Requests in flight at once across all workers.
        worker_count: usize,
        /// Link depth limit; 0 for none.
        max_depth: u32,
        /// Items per save call.
        item_batch_size: usize,
        /// Milliseconds a partial item batch may wait.
        item_linger_ms: u64,
        /// Deadline of one worker call, in milliseconds.
        rpc_timeout_ms: u64,
        /// TCP connect timeout, in milliseconds.
        connect_timeout_ms: u64,
        /// Tries per request when worker calls fail.
        max_attempts: u32,
        /// Milliseconds to wait while every worker is down before giving up.
        worker_wait_ms: u64,
        /// Items buffered in memory while the itemsaver is down (then on disk).
        item_buffer_items: usize,
        /// Milliseconds to wait for a down itemsaver at the end of the crawl.
        itemsaver_wait_ms: u64,
        /// Milliseconds Ctrl-C waits for calls in flight.
        shutdown_grace_ms: u64,
        /// Keep the crawl's state here; start again with the same dir to resume.
        state_dir: String,
        /// Milliseconds between state writes.
        state_interval_ms: u64,
        /// URL store changes held in memory at most (half commits early).
        state_commit_changes: usize,
        /// MiB the URL store may use to cache its file's pages.
        state_cache_mb: u64,
        /// With --recrawl: keep running, a round at most this far apart (90s, 10m, 1h, 1d).
        recrawl_every: String,
        /// Shortest recrawl interval of a URL, in seconds.
        recrawl_min_interval_s: u64,
        /// Longest recrawl interval of a URL, in seconds.
        recrawl_max_interval_s: u64,
        /// Recrawl interval after a first fetch, in seconds.
        recrawl_default_interval_s: u64,
        /// Interval factor when a refetch finds a page changed.
        recrawl_changed_factor: f64,
        /// Interval factor when a refetch finds a page unchanged.
        recrawl_unchanged_factor: f64,
        /// File to append finally failed requests to (JSON lines); "" for none.
        failures_file: String,
        /// Requests in flight at once to one host.
        per_host_concurrency: u32,
        /// Least milliseconds between request starts to one host.
        per_host_delay_ms: u64,
        /// Fetch and obey robots.txt (true/false).
        obey_robots: bool,
        /// Product token looked up in robots.txt.
        robots_user_agent: String,
        /// Seconds a robots.txt is trusted.
        robots_ttl_s: u64,
        /// Wait after a failed robots.txt fetch, in milliseconds (doubles).
        robots_retry_backoff_ms: u64,
        /// Cap on robots.txt Crawl-delay, in milliseconds.
        max_crawl_delay_ms: u64,
        /// Adapt host delays to latency and 429/503 (true/false).
        autothrottle: bool,
        /// Ceiling of the adaptive delay, in milliseconds.
        autothrottle_max_delay_ms: u64,
        /// Retries of transient fetch failures.
        retry_times: u32,
        /// First retry delay in milliseconds (doubles, with jitter).
        retry_backoff_ms: u64,
        /// Longest retry delay in milliseconds.
        retry_max_backoff_ms: u64,
        /// Stop after this many pages; 0 for no limit.
        max_pages: u64,
        /// Stop after this many seconds; 0 for no limit.
        max_duration_s: u64,
        /// Rules file of declarative parsers.
        rules: String,
        /// Requests kept in memory; more wait on disk. 0 for no bound.
        queue_memory_tasks: usize,
        /// Milliseconds between progress lines when stderr is not a terminal; 0 for none.
        progress_interval_ms: u64,
        /// Serve Prometheus metrics and the live dashboard on this address (e.g. 127.0.0.1:9100).
        metrics_addr: String,
        /// Milliseconds the dashboard stays up after the crawl ends; 0 for none.
        dashboard_linger_ms: u64,
        /// Obey robots meta and X-Robots-Tag (noindex, nofollow) (true/false).
        obey_robots_meta: bool,
        /// Skip rel="nofollow" links (true/false).
        obey_nofollow: bool,
        /// Follow the Sitemap: lines of robots.txt (true/false).
        use_sitemaps: bool,
        /// Parser for the pages sitemaps list ("" for the seed parser).
        sitemap_parser: String,
        /// Sitemap: lines read from one robots.txt.
        max_robots_sitemaps: usize,
        /// Host and parser pairs remembered as needing a browser.
        max_render_learnt: usize,
    }
    lists {
        /// Worker addresses, comma-separated.
        worker_hosts,
        /// Domains to stay in, comma-separated ("*" for any).
        allowed_domains,
        /// URL regexes to include, comma-separated.
        include,
        /// URL regexes to exclude, comma-separated.
        exclude,
        /// Query parameters to strip before dedup, comma-separated.
        strip_query_params,
    }
}

fn main() -> ExitCode {
    rpcsupport::cli::run("engine", real_main)
}

fn real_main() -> anyhow::Result<()> {
    let mut flags = Flags::parse();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match flags.tool.take() {
        Some(Tool::CheckRules { file }) => {
            print!("{}", engine::tools::check_rules(&file)?);
            return Ok(());
        }
        Some(Tool::TryRules { .. }) => {
            return Err(engine::tools::ToolError::TryRulesMoved.into());
        }
        None => {}
    }
    let file = rpcsupport::cli::ConfigFile::from_flag(flags.config.as_deref());
    let mut config: EngineConfig = file.section("engine")?;
    config.inline_rules = file.section("rules")?;
    let rpc = file.rpc(&flags.rpc)?;
    flags.apply(&mut config);
    let metrics_addr = config.metrics_addr.trim().to_owned();
    let linger = Duration::from_millis(config.dashboard_linger_ms);
    let mut settings = config.validate()?;
    settings.rpc_security = rpc.client()?.leak();
    let dashboard = (!metrics_addr.is_empty()).then(engine::dashboard::Dashboard::new);
    settings.dashboard = dashboard.clone();
    let summary = runtime.block_on(async {
        let routes = dashboard.as_ref().map(|d| d.routes());
        let bound = rpcsupport::metrics::spawn_endpoint_with(
            &metrics_addr,
            settings.metrics.clone(),
            routes,
        )
        .await
        .context("engine.metrics_addr")?;
        if let Some(addr) = bound {
            tracing::info!("dashboard at http://{addr}/");
        }
        let every = settings.recrawl.as_ref().and_then(|r| r.every);
        let summary = match every {
            Some(every) => {
                engine::run_every(settings, every, shutdown_signal()?, |s| print!("{s}")).await?
            }
            None => {
                let summary = engine::run(settings, shutdown_signal()?).await?;
                print!("{summary}");
                summary
            }
        };
        if let Some(addr) = bound.filter(|_| !linger.is_zero()) {
            // The page shows "finished" and the summary only while it is
            // served; give a browser a few polls to see it.
            eprintln!(
                "engine: dashboard stays up at http://{addr}/ for {linger:?} (Ctrl-C to quit now)"
            );
            let interrupted = rpcsupport::shutdown::signal().context("cannot listen for Ctrl-C")?;
            tokio::select! {
                _ = tokio::time::sleep(linger) => {}
                _ = interrupted => {}
            }
        }
        anyhow::Ok(summary)
    })?;
    if summary.items_unsaved > 0 {
        anyhow::bail!(
            "{} items could not be saved (itemsaver unreachable); they are kept on disk, see the log",
            summary.items_unsaved
        );
    }
    Ok(())
}

/// Completes on the first Ctrl-C or SIGTERM. A second one exits at once, for
/// when waiting for calls in flight takes longer than the user will.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let first = rpcsupport::shutdown::signal().context("cannot listen for Ctrl-C / SIGTERM")?;
    Ok(async move {
        first.await;
        eprintln!("engine: stopping; waiting for calls in flight (press Ctrl-C again to quit now)");
        match rpcsupport::shutdown::signal() {
            Ok(second) => {
                tokio::spawn(async move {
                    second.await;
                    eprintln!("engine: second interrupt; exiting now");
                    std::process::exit(130);
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for a second Ctrl-C"),
        }
    })
}
