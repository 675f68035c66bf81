//! `demosite`: serves the generated site until Ctrl-C or SIGTERM.
//!
//! Prints exactly one line to stdout once it accepts connections, which
//! scripts parse:
//! `demosite listening on http://127.0.0.1:PORT/ profiles=N pages=M hosts=H`.
//! With `--hosts H` the same site is served on H loopback addresses, the
//! `--bind` address and the ones after it (127.0.2.1, 127.0.2.2, ...), all
//! on the port of the first: a broad crawl of many hosts on one machine.
//! Logs go to stderr.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use demosite::{Site, SiteConfig, SiteOptions};

/// Most hosts `--hosts` serves (a /16 of loopback is plenty).
const MAX_HOSTS: u32 = 65_536;

/// A deterministic local dating-profile site to crawl.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// TCP port; 0 picks a free one (printed on the ready line).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// Number of profiles (ids 1..=N).
    #[arg(long, default_value_t = SiteConfig::default().profiles)]
    profiles: u64,
    /// Number of cities.
    #[arg(long, default_value_t = SiteConfig::default().cities)]
    cities: u32,
    /// Profiles per city list page.
    #[arg(long = "page_size", default_value_t = SiteConfig::default().page_size)]
    page_size: u32,
    /// Serve the site on this many loopback addresses, from --bind on.
    #[arg(long, default_value_t = 1)]
    hosts: u32,
    /// Every site page waits this many milliseconds before it answers (a
    /// far-away server).
    #[arg(long = "latency_ms", default_value_t = 0)]
    latency_ms: u64,
    /// The open web: sitemaps (and a robots.txt naming them), ETag /
    /// Last-Modified and 304s, the /meta/ pages, the sitemap-only profiles.
    #[arg(long = "open_web")]
    open_web: bool,
    /// Profiles after the linked ones that only the sitemaps list (needs
    /// --open_web).
    #[arg(long = "sitemap_only", default_value_t = 0)]
    sitemap_only: u64,
    /// URLs per profile sitemap.
    #[arg(long = "sitemap_page", default_value_t = demosite::open_web::DEFAULT_SITEMAP_PAGE)]
    sitemap_page: u64,
    /// Generation of edits to serve (changed and removed profiles);
    /// `POST /_site/generation/N` changes it while the site runs.
    #[arg(long, default_value_t = 0)]
    generation: u64,
    /// The /js/ section: pages a script builds.
    #[arg(long)]
    js: bool,
    /// Profiles the /js/ list links.
    #[arg(long = "js_profiles", default_value_t = demosite::site::DEFAULT_JS_PROFILES)]
    js_profiles: u64,
}

impl Args {
    /// The flags' values within their bounds, or which one is not.
    fn check(&self) -> anyhow::Result<()> {
        if self.cities == 0 || self.page_size == 0 {
            bail!("--cities and --page_size must be at least 1");
        }
        if self.sitemap_only > demosite::site::MAX_SITEMAP_ONLY {
            bail!(
                "--sitemap_only must be at most {}",
                demosite::site::MAX_SITEMAP_ONLY
            );
        }
        if self.generation > demosite::generation::MAX_GENERATION {
            bail!(
                "--generation must be at most {}",
                demosite::generation::MAX_GENERATION
            );
        }
        if self.sitemap_page == 0 {
            bail!("--sitemap_page must be at least 1");
        }
        if self.hosts == 0 || self.hosts > MAX_HOSTS {
            bail!("--hosts must be from 1 to {MAX_HOSTS}");
        }
        Ok(())
    }

    /// Binds `--bind:--port` and, with `--hosts N`, the next N-1 loopback
    /// addresses on the same port.
    async fn listen(&self) -> anyhow::Result<Vec<tokio::net::TcpListener>> {
        let listener = tokio::net::TcpListener::bind((self.bind.as_str(), self.port))
            .await
            .with_context(|| format!("cannot listen on {}:{}", self.bind, self.port))?;
        let addr = listener.local_addr()?;
        let mut listeners = vec![listener];
        if self.hosts > 1 {
            let first: Ipv4Addr = self
                .bind
                .parse()
                .ok()
                .filter(|ip: &Ipv4Addr| ip.is_loopback())
                .context("--hosts needs --bind to be an IPv4 loopback address, e.g. 127.0.2.1")?;
            for i in 1..self.hosts {
                let ip = Ipv4Addr::from(u32::from(first) + i);
                if !ip.is_loopback() {
                    bail!("--hosts {} from {first} leaves 127.0.0.0/8", self.hosts);
                }
                listeners.push(
                    tokio::net::TcpListener::bind((ip, addr.port()))
                        .await
                        .with_context(|| format!("cannot listen on {ip}:{}", addr.port()))?,
                );
            }
        }
        Ok(listeners)
    }
}

/// The site stands in for the web, yet on one machine its CPU is taken from
/// the crawler it serves, so it should cost little. glibc's malloc
/// cost it a third more CPU per page once thousands of requests wait
/// (`--latency_ms`; bench/NOTES.md, session 9); mimalloc does not, and the
/// site's memory is not measured against any target.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    args.check()?;
    let site = Arc::new(Site::new(SiteConfig {
        profiles: args.profiles,
        cities: args.cities,
        page_size: args.page_size,
    }));
    let listeners = args.listen().await?;
    let addr = listeners[0].local_addr()?;
    let options = SiteOptions {
        page_delay: Duration::from_millis(args.latency_ms),
        open_web: args.open_web,
        sitemap_only: args.sitemap_only,
        sitemap_page: args.sitemap_page,
        generation: demosite::Generation::new(args.generation),
        js: args.js,
        js_profiles: args.js_profiles,
        ..SiteOptions::default()
    };
    let (router, _log) = demosite::router_with(site.clone(), options);
    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown_signal()?));
    println!(
        "demosite listening on http://{addr}/ profiles={} pages={} hosts={}",
        site.profile_count(),
        site.page_count(),
        args.hosts
    );
    let servers = listeners
        .into_iter()
        .map(|l| demosite::serve_router(l, router.clone(), shutdown.clone()));
    for result in futures::future::join_all(servers).await {
        result.context("server failed")?;
    }
    tracing::info!("demosite stopped");
    Ok(())
}

/// Registers for Ctrl-C and, on Unix, SIGTERM (what `kill` and container
/// runtimes send), and returns a future that completes on either. The
/// handlers are installed here, before the ready line is printed, so a
/// signal sent right after it cannot hit the default "terminate" action.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("shutting down");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            tracing::info!("shutting down");
        })
    }
}
