//! `itemsaver`: serve the item store, or query a running one.
//!
//! ```text
//! itemsaver [--port 1234] [--bind ADDR] [--data_dir DIR] [--config config.toml]
//!           [--es_url URL[,URL...] [--index NAME] [--es_username U --es_password P]
//!            [--es_api_key KEY] [--es_ca_cert PEM]]
//! itemsaver count [--itemsaver_host :1234]
//! itemsaver search "QUERY" [--from N] [--size N] [--itemsaver_host :1234]
//! itemsaver export [--query Q] [--format jsonl|csv] [--out FILE] [--fields a,b,c]
//!                  [--page_size N] [--itemsaver_host :1234]
//! ```
//!
//! All of them take the `[rpc]` flags (`--rpc_token_file`,
//! `--itemsaver_token_file`, `--tls_cert`, `--tls_ca`, ...; see
//! `config.toml`), `CRAWLER_RPC_TOKEN` and `CRAWLER_ITEMSAVER_TOKEN`, and
//! use the itemsaver token (or the shared one).

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use itemsaver::ItemsaverConfig;
use rpcsupport::{ClientSecurity, ConnectOptions, HostAddr, ItemSaverClient, SearchRequest};
use tarpc::context;

#[derive(Debug, Parser)]
#[command(
    name = "itemsaver",
    about = "Stores crawled items; serves them over RPC."
)]
struct Cli {
    #[command(flatten)]
    server: ServerFlags,
    /// Config file; its [itemsaver] section is read. Must exist only if given.
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    elastic: ElasticFlags,
    #[command(flatten)]
    limits: LimitFlags,
    /// Token and TLS for the RPC connections, served or made by `count` and
    /// `search` (override the `[rpc]` keys).
    #[command(flatten)]
    rpc: rpcsupport::RpcFlags,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Where the server listens and keeps its index (override the keys of
/// the same name).
#[derive(Debug, clap::Args)]
struct ServerFlags {
    /// Port to listen on (overrides `port` in the config file).
    #[arg(long)]
    port: Option<u16>,
    /// Address to bind (overrides `bind`).
    #[arg(long)]
    bind: Option<String>,
    /// Directory of the embedded index (overrides `data_dir`).
    #[arg(long = "data_dir")]
    data_dir: Option<PathBuf>,
}

/// Flags that select and reach an Elasticsearch store (override the
/// `es_*` and `index` keys).
#[derive(Debug, clap::Args)]
struct ElasticFlags {
    /// Store in Elasticsearch at these nodes (comma-separated, or repeat the
    /// flag) instead of the embedded index.
    #[arg(long = "es_url", value_delimiter = ',')]
    es_urls: Vec<String>,
    /// Elasticsearch index for the items (default crawler_items).
    #[arg(long)]
    index: Option<String>,
    /// Elasticsearch basic-auth user.
    #[arg(long = "es_username")]
    es_username: Option<String>,
    /// Elasticsearch basic-auth password (a config file keeps it out of `ps`).
    #[arg(long = "es_password")]
    es_password: Option<String>,
    /// Elasticsearch API key, `id:key` or the base64 encoded form.
    #[arg(long = "es_api_key")]
    es_api_key: Option<String>,
    /// PEM file of the CA that signed the cluster's certificate.
    #[arg(long = "es_ca_cert")]
    es_ca_cert: Option<PathBuf>,
}

/// Limits and metrics (override the keys of the same names).
#[derive(Debug, clap::Args)]
struct LimitFlags {
    /// Most items in one save (default 10000).
    #[arg(long = "max_batch_items")]
    max_batch_items: Option<usize>,
    /// Largest item, as JSON bytes (default 1 MiB).
    #[arg(long = "max_item_bytes")]
    max_item_bytes: Option<usize>,
    /// Largest RPC frame (default 64 MiB).
    #[arg(long = "max_frame_bytes")]
    max_frame_bytes: Option<usize>,
    /// Requests in progress per RPC connection (default 1024).
    #[arg(long = "max_concurrent_requests")]
    max_concurrent_requests: Option<usize>,
    /// Serve Prometheus metrics on this address, e.g. 127.0.0.1:9102.
    #[arg(long = "metrics_addr")]
    metrics_addr: Option<String>,
    /// Serve the search page on this address, e.g. 127.0.0.1:8080 (asks
    /// for the RPC token when one is set).
    #[arg(long = "http_addr")]
    http_addr: Option<String>,
}

impl LimitFlags {
    fn apply(self, config: &mut ItemsaverConfig) {
        rpcsupport::apply_flags!(
            self => config;
            max_batch_items,
            max_item_bytes,
            max_frame_bytes,
            max_concurrent_requests,
            metrics_addr,
            http_addr,
        );
    }
}

impl ElasticFlags {
    fn apply(self, config: &mut ItemsaverConfig) {
        if !self.es_urls.is_empty() {
            config.es_urls = self.es_urls;
        }
        rpcsupport::apply_flags!(self => config; index, es_username, es_password, es_api_key, es_ca_cert);
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print how many items a running itemsaver holds.
    Count {
        /// The itemsaver to ask: :PORT, HOST:PORT or [IPv6]:PORT.
        #[arg(long = "itemsaver_host", default_value = ":1234")]
        itemsaver_host: HostAddr,
    },
    /// Write every item matching a query, from a running itemsaver, as JSON
    /// lines or CSV.
    ///
    /// With --out FILE the items go to FILE.partial, which is renamed to
    /// FILE only once the export is whole: a FILE is always complete, and
    /// an interrupted export leaves only FILE.partial. Without --out they
    /// go to stdout. On a terminal, stderr shows the progress.
    Export {
        /// Free text, `field:value`, `age:[20 TO 30]`, AND/OR/NOT; empty exports all.
        #[arg(long, default_value = "")]
        query: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = FormatFlag::Jsonl)]
        format: FormatFlag,
        /// Output file (written as FILE.partial, then renamed); stdout if absent.
        #[arg(long)]
        out: Option<PathBuf>,
        /// CSV payload columns, in this order (after url, kind, id). Without
        /// it a first pass over the query collects every payload key.
        #[arg(long, value_delimiter = ',')]
        fields: Option<Vec<String>>,
        /// Items per page asked of the itemsaver (it caps pages itself).
        #[arg(long = "page_size", default_value_t = itemsaver::export::DEFAULT_PAGE_SIZE)]
        page_size: u32,
        /// The itemsaver to ask: :PORT, HOST:PORT or [IPv6]:PORT.
        #[arg(long = "itemsaver_host", default_value = ":1234")]
        itemsaver_host: HostAddr,
    },
    /// Search a running itemsaver and print the hits.
    Search {
        /// Free text, `field:value`, `age:[20 TO 30]`, AND/OR/NOT; empty lists all.
        query: String,
        /// Hits to skip.
        #[arg(long, default_value_t = 0)]
        from: u32,
        /// Hits to print.
        #[arg(long, default_value_t = 10)]
        size: u32,
        /// The itemsaver to ask: :PORT, HOST:PORT or [IPv6]:PORT.
        #[arg(long = "itemsaver_host", default_value = ":1234")]
        itemsaver_host: HostAddr,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FormatFlag {
    Jsonl,
    Csv,
}

fn main() -> std::process::ExitCode {
    rpcsupport::cli::run("itemsaver", || {
        tokio::runtime::Runtime::new()
            .context("starting the async runtime")?
            .block_on(dispatch(Cli::parse()))
    })
}

/// Serves, or runs the subcommand.
async fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        None => run_server(cli.server, cli.config, cli.elastic, cli.limits, &cli.rpc).await,
        Some(Command::Count { itemsaver_host }) => match client_security(cli.config, &cli.rpc) {
            Ok(security) => count(&itemsaver_host, security).await,
            Err(e) => Err(e),
        },
        Some(Command::Search {
            query,
            from,
            size,
            itemsaver_host,
        }) => match client_security(cli.config, &cli.rpc) {
            Ok(security) => search(&itemsaver_host, security, query, from, size).await,
            Err(e) => Err(e),
        },
        Some(Command::Export {
            query,
            format,
            out,
            fields,
            page_size,
            itemsaver_host,
        }) => match client_security(cli.config, &cli.rpc) {
            Ok(security) => {
                let options = itemsaver::export::ExportOptions {
                    query,
                    format: match format {
                        FormatFlag::Jsonl => itemsaver::export::Format::Jsonl,
                        FormatFlag::Csv => itemsaver::export::Format::Csv,
                    },
                    fields,
                    page_size,
                };
                export(&itemsaver_host, security, &options, out.as_deref()).await
            }
            Err(e) => Err(e),
        },
    }
}

/// Token and TLS for `count` and `search`, from `[rpc]`,
/// `CRAWLER_RPC_TOKEN` and the flags.
fn client_security(
    config_path_flag: Option<PathBuf>,
    flags: &rpcsupport::RpcFlags,
) -> Result<&'static ClientSecurity> {
    let file = rpcsupport::cli::ConfigFile::from_flag(config_path_flag.as_deref());
    // Only the itemsaver token: a store tool needs no worker token.
    Ok(file
        .rpc(flags)?
        .client_for(&[rpcsupport::Service::Itemsaver])?
        .leak())
}

async fn run_server(
    server: ServerFlags,
    config_path_flag: Option<PathBuf>,
    elastic: ElasticFlags,
    limits: LimitFlags,
    rpc: &rpcsupport::RpcFlags,
) -> Result<()> {
    let file = rpcsupport::cli::ConfigFile::from_flag(config_path_flag.as_deref());
    let mut config: ItemsaverConfig = file.section("itemsaver")?;
    let security = file.rpc(rpc)?.server(rpcsupport::Service::Itemsaver)?;
    rpcsupport::apply_flags!(server => config; port, bind, data_dir);
    elastic.apply(&mut config);
    limits.apply(&mut config);
    config.validate()?;

    let (store, description) = itemsaver::open_store(&config).await?;
    let items = store.count().await?;
    let listener = tokio::net::TcpListener::bind((config.bind.as_str(), config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.bind, config.port))?;
    let addr = listener.local_addr()?;
    // The one line on stdout: scripts and tests wait for it.
    // Signal handlers go in before the ready line, so a SIGTERM sent right
    // after it is a clean stop, not the default "terminate at once".
    let shutdown = rpcsupport::shutdown::signal().context("cannot listen for Ctrl-C / SIGTERM")?;
    println!("itemsaver listening on {addr} ({description}, {items} items)");
    let metrics = rpcsupport::metrics::Registry::new();
    rpcsupport::metrics::spawn_endpoint(&config.metrics_addr, metrics.clone())
        .await
        .context("itemsaver.metrics_addr")?;
    if !config.http_addr.is_empty() {
        let http = tokio::net::TcpListener::bind(config.http_addr.as_str())
            .await
            .with_context(|| {
                format!("itemsaver.http_addr: cannot listen on {}", config.http_addr)
            })?;
        let at = http.local_addr()?;
        tracing::info!("search page at http://{at}/");
        let (store, token) = (store.clone(), security.token.clone());
        // Ends with the process; the RPC side does the orderly shutdown.
        tokio::spawn(async move {
            if let Err(e) = itemsaver::http::serve(http, store, token, std::future::pending()).await
            {
                tracing::error!(error = %e, "search page stopped");
            }
        });
    }
    let options = itemsaver::ServerOptions {
        security,
        metrics,
        ..itemsaver::ServerOptions::from_config(&config)
    };
    itemsaver::serve(listener, store, options, shutdown).await?;
    // Dropping the store (the last Arc, once in-flight requests finish)
    // releases the index lock; commits already running complete first,
    // because the runtime waits for blocking tasks.
    tracing::info!("itemsaver stopped");
    Ok(())
}

async fn connect(host: &HostAddr, security: &'static ClientSecurity) -> Result<ItemSaverClient> {
    let opts = ConnectOptions {
        security,
        ..ConnectOptions::default()
    };
    rpcsupport::connect_itemsaver(host, opts)
        .await
        .with_context(|| format!("cannot reach itemsaver at {host}"))
}

async fn count(host: &HostAddr, security: &'static ClientSecurity) -> Result<()> {
    let client = connect(host, security).await?;
    let n = client
        .count(context::current())
        .await
        .with_context(|| format!("count request to {host} failed"))??;
    println!("{n}");
    Ok(())
}

async fn search(
    host: &HostAddr,
    security: &'static ClientSecurity,
    query: String,
    from: u32,
    size: u32,
) -> Result<()> {
    let client = connect(host, security).await?;
    let request = SearchRequest { query, from, size };
    let response = client
        .search(context::current(), request)
        .await
        .with_context(|| format!("search request to {host} failed"))??;
    let shown = response.items.len();
    if shown == 0 {
        println!("{} hits", response.total);
    } else {
        println!(
            "{} hits, showing {} to {}",
            response.total,
            from as u64 + 1,
            from as u64 + shown as u64
        );
    }
    for (n, item) in response.items.iter().enumerate() {
        println!();
        println!("[{}] id: {}", from as u64 + n as u64 + 1, item.key());
        println!("    kind: {}", item.kind);
        println!("    url: {}", item.url);
        for (key, value) in &item.payload {
            println!("    {key}: {value}");
        }
    }
    Ok(())
}

async fn export(
    host: &HostAddr,
    security: &'static ClientSecurity,
    options: &itemsaver::export::ExportOptions,
    out: Option<&std::path::Path>,
) -> Result<()> {
    use std::io::IsTerminal as _;
    let client = connect(host, security).await?;
    let mut bar = ProgressLine::new(std::io::stderr().is_terminal());
    let mut progress = |p| bar.show(p);
    let summary = match out {
        Some(path) => itemsaver::export::export_to_file(&client, options, path, &mut progress)
            .await
            .with_context(|| {
                format!(
                    "export to {} failed; {} is incomplete",
                    path.display(),
                    itemsaver::export::partial_path(path).display()
                )
            })?,
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            itemsaver::export::export(&client, options, &mut out, &mut progress)
                .await
                .context("export failed")?
        }
    };
    bar.finish();
    let written = match out {
        Some(path) => format!(" to {}", path.display()),
        None => String::new(),
    };
    eprintln!("exported {} items{written}", summary.items);
    if summary.values_without_column > 0 {
        eprintln!(
            "warning: {} payload values had no CSV column (keys outside --fields, or new since \
             the first pass) and were left out",
            summary.values_without_column
        );
    }
    Ok(())
}

/// The progress of an export, redrawn in place on stderr; nothing when
/// stderr is not a terminal (a log file would fill with redraws).
struct ProgressLine {
    on: bool,
    drawn: Option<std::time::Instant>,
}

impl ProgressLine {
    fn new(on: bool) -> Self {
        ProgressLine { on, drawn: None }
    }

    fn show(&mut self, p: itemsaver::export::Progress) {
        // Ten redraws a second are plenty to watch and cost nothing.
        let due = self
            .drawn
            .is_none_or(|at| at.elapsed() >= std::time::Duration::from_millis(100));
        if !self.on || !due {
            return;
        }
        self.drawn = Some(std::time::Instant::now());
        let line = match p.total {
            Some(total) if total > 0 => {
                let width = 30;
                let filled = (p.done.min(total) * width / total) as usize;
                format!(
                    "{:>5} [{}{}] {}/{} ({}%)",
                    p.pass,
                    "#".repeat(filled),
                    "-".repeat(width as usize - filled),
                    p.done,
                    total,
                    p.done.min(total) * 100 / total
                )
            }
            _ => format!("{:>5} {}", p.pass, p.done),
        };
        eprint!("\r{line}\x1b[K");
    }

    fn finish(&mut self) {
        if self.on && self.drawn.is_some() {
            eprint!("\r\x1b[K");
        }
    }
}
