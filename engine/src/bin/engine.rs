//! `engine`: flags and config in, [`engine::run`] on them, summary out.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use engine::EngineConfig;

/// Runs a crawl over a pool of workers, storing items through an itemsaver.
#[derive(Debug, Parser)]
#[command(name = "engine", version)]
struct Flags {
    /// Config file; its [engine] section gives defaults for every flag below.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Itemsaver address: :PORT, HOST:PORT or [IPv6]:PORT.
    #[arg(long = "itemsaver_host")]
    itemsaver_host: Option<String>,
    /// Worker addresses, comma-separated.
    #[arg(long = "worker_hosts", value_delimiter = ',')]
    worker_hosts: Option<Vec<String>>,
    /// Seed URL; repeat for several.
    #[arg(long = "seed")]
    seeds: Vec<String>,
    /// Parser for the seed pages.
    #[arg(long)]
    parser: Option<String>,
    /// Requests in flight at once across all workers.
    #[arg(long = "worker_count")]
    worker_count: Option<usize>,
    /// Link depth limit; 0 for none.
    #[arg(long = "max_depth")]
    max_depth: Option<u32>,
    /// Items per save call.
    #[arg(long = "item_batch_size")]
    item_batch_size: Option<usize>,
    /// Milliseconds a partial item batch may wait.
    #[arg(long = "item_linger_ms")]
    item_linger_ms: Option<u64>,
    /// Deadline of one worker call, in milliseconds.
    #[arg(long = "rpc_timeout_ms")]
    rpc_timeout_ms: Option<u64>,
    /// TCP connect timeout, in milliseconds.
    #[arg(long = "connect_timeout_ms")]
    connect_timeout_ms: Option<u64>,
    /// Tries per request when worker calls fail.
    #[arg(long = "max_attempts")]
    max_attempts: Option<u32>,
    /// Milliseconds to wait while every worker is down before giving up.
    #[arg(long = "worker_wait_ms")]
    worker_wait_ms: Option<u64>,
    /// Items buffered in memory while the itemsaver is down (then on disk).
    #[arg(long = "item_buffer_items")]
    item_buffer_items: Option<usize>,
    /// Milliseconds to wait for a down itemsaver at the end of the crawl.
    #[arg(long = "itemsaver_wait_ms")]
    itemsaver_wait_ms: Option<u64>,
    /// Milliseconds Ctrl-C waits for calls in flight.
    #[arg(long = "shutdown_grace_ms")]
    shutdown_grace_ms: Option<u64>,
    /// Keep the crawl's state here; start again with the same dir to resume.
    #[arg(long = "state_dir")]
    state_dir: Option<String>,
    /// Milliseconds between state writes.
    #[arg(long = "state_interval_ms")]
    state_interval_ms: Option<u64>,
    /// File to append finally failed requests to (JSON lines); "" for none.
    #[arg(long = "failures_file")]
    failures_file: Option<String>,
}

impl Flags {
    /// Flags win over the file.
    fn apply(self, config: &mut EngineConfig) {
        fn set<T>(slot: &mut T, flag: Option<T>) {
            if let Some(v) = flag {
                *slot = v;
            }
        }
        set(&mut config.itemsaver_host, self.itemsaver_host);
        set(&mut config.worker_hosts, self.worker_hosts);
        if !self.seeds.is_empty() {
            config.seeds = self.seeds;
        }
        set(&mut config.parser, self.parser);
        set(&mut config.worker_count, self.worker_count);
        set(&mut config.max_depth, self.max_depth);
        set(&mut config.item_batch_size, self.item_batch_size);
        set(&mut config.item_linger_ms, self.item_linger_ms);
        set(&mut config.rpc_timeout_ms, self.rpc_timeout_ms);
        set(&mut config.connect_timeout_ms, self.connect_timeout_ms);
        set(&mut config.max_attempts, self.max_attempts);
        set(&mut config.worker_wait_ms, self.worker_wait_ms);
        set(&mut config.item_buffer_items, self.item_buffer_items);
        set(&mut config.itemsaver_wait_ms, self.itemsaver_wait_ms);
        set(&mut config.shutdown_grace_ms, self.shutdown_grace_ms);
        set(&mut config.state_dir, self.state_dir);
        set(&mut config.state_interval_ms, self.state_interval_ms);
        set(&mut config.failures_file, self.failures_file);
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("engine: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    let (path, required) = match &flags.config {
        Some(p) => (p.clone(), true),
        None => (engine::config::default_config_path(), false),
    };
    let mut config: EngineConfig = rpcsupport::config::load_section(&path, "engine", required)?;
    flags.apply(&mut config);
    let settings = config.validate()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let summary = runtime.block_on(engine::run(settings, shutdown_signal()))?;
    print!("{summary}");
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
async fn shutdown_signal() {
    wait_for_signal().await;
    eprintln!("engine: stopping; waiting for calls in flight (press Ctrl-C again to quit now)");
    tokio::spawn(async {
        wait_for_signal().await;
        eprintln!("engine: second interrupt; exiting now");
        std::process::exit(130);
    });
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
