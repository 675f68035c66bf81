//! `demosite`: serves the generated site until Ctrl-C or SIGTERM.
//!
//! Prints exactly one line to stdout once it accepts connections, which
//! scripts parse:
//! `demosite listening on http://127.0.0.1:PORT/ profiles=N pages=M`.
//! Logs go to stderr.

use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Parser;
use demosite::{Site, SiteConfig};

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    if args.cities == 0 || args.page_size == 0 {
        bail!("--cities and --page_size must be at least 1");
    }
    let site = Arc::new(Site::new(SiteConfig {
        profiles: args.profiles,
        cities: args.cities,
        page_size: args.page_size,
    }));
    let listener = tokio::net::TcpListener::bind((args.bind.as_str(), args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.bind, args.port))?;
    let addr = listener.local_addr()?;
    let shutdown = shutdown_signal()?;
    println!(
        "demosite listening on http://{addr}/ profiles={} pages={}",
        site.profile_count(),
        site.page_count()
    );
    demosite::serve_site(listener, site, shutdown)
        .await
        .context("server failed")?;
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
