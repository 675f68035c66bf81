//! `worker`: serves the Crawl RPC until Ctrl-C or SIGTERM.
//!
//! Settings come from the `[worker]` and `[rpc]` sections of the config
//! file, then from flags (flags win). Prints `worker listening on ADDR` to stdout once it
//! accepts connections; logs go to stderr.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use worker::WorkerConfig;

/// Fetches pages and parses them for the crawl engine.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Config file; its `[worker]` section is read. Must exist if given;
    /// the default `config.toml` is optional.
    #[arg(long)]
    config: Option<PathBuf>,
    /// TCP port to serve on (0 = any free port) [config: port, default 9000].
    #[arg(long)]
    port: Option<u16>,
    /// Address to bind [config: bind, default 127.0.0.1].
    #[arg(long)]
    bind: Option<String>,
    /// Milliseconds to wait for a connection to a site [default 5000].
    #[arg(long = "connect_timeout_ms")]
    connect_timeout_ms: Option<u64>,
    /// Milliseconds for a whole fetch, body included [default 15000].
    #[arg(long = "timeout_ms")]
    timeout_ms: Option<u64>,
    /// User-Agent header [default crawler/0.1].
    #[arg(long = "user_agent")]
    user_agent: Option<String>,
    /// Largest body accepted, after decompression [default 10485760].
    #[arg(long = "max_body_bytes")]
    max_body_bytes: Option<u64>,
    /// Redirects followed per fetch [default 5].
    #[arg(long = "max_redirects")]
    max_redirects: Option<usize>,
    /// Largest RPC frame [default 16777216].
    #[arg(long = "max_frame_bytes")]
    max_frame_bytes: Option<usize>,
    /// Requests in progress per RPC connection [default 4096].
    #[arg(long = "max_concurrent_requests")]
    max_concurrent_requests: Option<usize>,
    /// Fetch policies kept per RPC connection, by id [default 8].
    #[arg(long = "policies_per_connection")]
    policies_per_connection: Option<usize>,
    /// Refuse internal addresses (loopback, private, link-local, metadata)
    /// except those in --allow_internal (true/false) [default true].
    #[arg(long = "block_private_addresses")]
    block_private_addresses: Option<bool>,
    /// Internal hosts this worker may fetch anyway, comma-separated: host
    /// names, IP addresses or CIDR blocks, e.g. 127.0.0.1 or 10.0.0.0/8
    /// [default: none]. No request can widen this.
    #[arg(long = "allow_internal", value_delimiter = ',')]
    allow_internal: Option<Vec<String>>,
    /// Links one page may yield [default 10000].
    #[arg(long = "max_links_per_page")]
    max_links_per_page: Option<usize>,
    /// Longest URL kept, and longest <base href> honoured [default 8192].
    #[arg(long = "max_url_bytes")]
    max_url_bytes: Option<usize>,
    /// Largest reply for one page; must be below --max_frame_bytes
    /// [default 8388608].
    #[arg(long = "max_result_bytes")]
    max_result_bytes: Option<usize>,
    /// Elements and attributes parsed per HTML page [default 250000].
    #[arg(long = "max_html_nodes")]
    max_html_nodes: Option<usize>,
    /// Deepest element nesting parsed [default 512].
    #[arg(long = "max_html_depth")]
    max_html_depth: Option<usize>,
    /// Bodies held in memory at once, across requests [default 67108864].
    #[arg(long = "max_buffered_body_bytes")]
    max_buffered_body_bytes: Option<u64>,
    /// Estimated memory of the parsed trees built at once [default 67108864].
    #[arg(long = "max_parse_bytes")]
    max_parse_bytes: Option<u64>,
    /// Parse `links` pages in one streaming pass, no tree (true/false)
    /// [default true].
    #[arg(long = "stream_parse")]
    stream_parse: Option<bool>,
    /// Bytes of a robots.txt read; the rest is ignored [default 524288].
    #[arg(long = "max_robots_bytes")]
    max_robots_bytes: Option<u64>,
    /// URLs one sitemap file may list [default 50000].
    #[arg(long = "max_sitemap_urls")]
    max_sitemap_urls: Option<usize>,
    /// Bytes of one sitemap read, uncompressed [default 52428800].
    #[arg(long = "max_sitemap_bytes")]
    max_sitemap_bytes: Option<u64>,
    /// Serve Prometheus metrics on this address, e.g. 127.0.0.1:9101 [default: none].
    #[arg(long = "metrics_addr")]
    metrics_addr: Option<String>,
    /// PEM file of extra CAs to trust for https fetches [default: none].
    #[arg(long = "tls_ca_file")]
    tls_ca_file: Option<String>,
    /// The headless browser for pages that need JavaScript: a path,
    /// "auto" (chromium, chromium-headless-shell or google-chrome on PATH)
    /// or "none" [default auto].
    #[arg(long)]
    browser: Option<String>,
    /// Browser tabs rendering at once [default 4].
    #[arg(long = "max_tabs")]
    max_tabs: Option<usize>,
    /// Pages one browser renders before a fresh one replaces it [default 500].
    #[arg(long = "recycle_after_pages")]
    recycle_after_pages: Option<u64>,
    /// Replace the browser once its processes' resident memory passes this
    /// (MiB) [default 1024].
    #[arg(long = "browser_max_rss_mb")]
    browser_max_rss_mb: Option<u64>,
    /// Milliseconds for one page's whole render [default 15000].
    #[arg(long = "render_timeout_ms")]
    render_timeout_ms: Option<u64>,
    /// Milliseconds of network quiet after the load event that settle a
    /// rendered page [default 500].
    #[arg(long = "render_idle_ms")]
    render_idle_ms: Option<u64>,
    /// Load images, media and fonts when rendering (true/false) [default false].
    #[arg(long = "render_load_images")]
    render_load_images: Option<bool>,
    /// Bytes one rendered page may fetch, subresources included [default 33554432].
    #[arg(long = "max_render_bytes")]
    max_render_bytes: Option<u64>,
    /// Requests one rendered page may make [default 200].
    #[arg(long = "max_render_requests")]
    max_render_requests: Option<usize>,
    /// Who may connect: token, TLS, connection limits (the `[rpc]` section).
    #[command(flatten)]
    rpc: rpcsupport::RpcFlags,
    /// A tool instead of serving.
    #[command(subcommand)]
    tool: Option<Tool>,
}

/// Tools for writing rules files.
#[derive(Debug, clap::Subcommand)]
enum Tool {
    /// Check a rules file, CSS selectors included, and print what it
    /// describes.
    #[command(name = "check-rules")]
    CheckRules {
        /// The rules file.
        file: PathBuf,
    },
    /// Run one rule on one page (a URL, or a local HTML file) and print the
    /// links it would follow and the item it would extract.
    #[command(name = "try-rules")]
    TryRules {
        /// The rules file.
        file: PathBuf,
        /// An http(s) URL, or the path of a saved HTML page.
        page: String,
        /// The rule to run (default: the file's start parser).
        #[arg(long)]
        parser: Option<String>,
        /// For a local file: the URL it was saved from, to resolve its links.
        #[arg(long)]
        base: Option<String>,
    },
}

/// Runs `tool` and prints what it says.
async fn run_tool(tool: Tool) -> anyhow::Result<()> {
    let out = match tool {
        Tool::CheckRules { file } => worker::tools::check_rules(&file)?,
        Tool::TryRules {
            file,
            page,
            parser,
            base,
        } => worker::tools::try_rules(&file, &page, parser.as_deref(), base.as_deref()).await?,
    };
    print!("{out}");
    Ok(())
}

impl Args {
    /// The config file: `--config`, or ./config.toml if present.
    fn config_file(&self) -> rpcsupport::cli::ConfigFile {
        rpcsupport::cli::ConfigFile::from_flag(self.config.as_deref())
    }

    /// The `[rpc]` section, `CRAWLER_RPC_TOKEN` and the RPC flags, checked
    /// for serving.
    fn security(&self) -> anyhow::Result<rpcsupport::ServerSecurity> {
        let rpc = self.config_file().rpc(&self.rpc)?;
        // The worker token (or the shared one): the itemsaver's is not ours to check.
        Ok(rpc.server(rpcsupport::Service::Worker)?)
    }

    /// The file's settings with every given flag applied on top.
    fn config(&self) -> anyhow::Result<WorkerConfig> {
        let mut c: WorkerConfig = self.config_file().section("worker")?;
        rpcsupport::apply_flags!(
            self => c;
            port,
            bind,
            connect_timeout_ms,
            timeout_ms,
            user_agent,
            max_body_bytes,
            max_redirects,
            max_frame_bytes,
            max_concurrent_requests,
            policies_per_connection,
            block_private_addresses,
            allow_internal,
            max_links_per_page,
            max_url_bytes,
            max_result_bytes,
            max_html_nodes,
            max_html_depth,
            max_buffered_body_bytes,
            max_parse_bytes,
            stream_parse,
            max_robots_bytes,
            max_sitemap_urls,
            max_sitemap_bytes,
            metrics_addr,
            tls_ca_file,
            browser,
            max_tabs,
            recycle_after_pages,
            browser_max_rss_mb,
            render_timeout_ms,
            render_idle_ms,
            render_load_images,
            max_render_bytes,
            max_render_requests
        );
        c.validate()?;
        Ok(c)
    }
}

fn main() -> std::process::ExitCode {
    rpcsupport::cli::run("worker", || {
        tokio::runtime::Runtime::new()
            .context("starting the async runtime")?
            .block_on(serve(Args::parse()))
    })
}

/// Runs a rules tool, or serves until Ctrl-C or SIGTERM.
async fn serve(mut args: Args) -> anyhow::Result<()> {
    if let Some(tool) = args.tool.take() {
        return run_tool(tool).await;
    }
    let config = args.config()?;
    let security = args.security()?;
    let metrics = rpcsupport::metrics::Registry::new();
    let worker = worker::Worker::with_metrics(&config, metrics.clone())?;
    rpcsupport::metrics::spawn_endpoint(&config.metrics_addr, metrics)
        .await
        .context("worker.metrics_addr")?;
    let listener = tokio::net::TcpListener::bind((config.bind.as_str(), config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.bind, config.port))?;
    let shutdown = rpcsupport::shutdown::signal().context("cannot listen for Ctrl-C / SIGTERM")?;
    println!("worker listening on {}", listener.local_addr()?);
    worker::serve(
        listener,
        worker,
        worker::ServerOptions { security },
        shutdown,
    )
    .await
    .context("RPC server failed")?;
    tracing::info!("worker stopped");
    Ok(())
}
