//! `fetchparse`: the fetch+parse ceiling. Crawls a whole demo site with
//! [`worker::Worker::process`] in this one process (no RPC, no engine, no
//! item store), `--concurrency` requests at once, deduplicating links with
//! the engine's own URL normalization, and prints one line:
//!
//! `fetchparse pages=N items=N failed=N secs=S pages_per_sec=R items_per_sec=R cpu_secs=S`
//!
//! The site is either a running demosite (`--site URL`, what
//! `scripts/bench.sh` does, so the site costs the same as in the real crawl)
//! or one started inside this process (`--profiles N`). With `--parser
//! links` and a `--site` such as nginx serving the toolchain's HTML docs it
//! measures the generic link parse on real HTML; `--stream_parse false`
//! parses every page into a tree (the path before issue 14). Only links to
//! the start URL's own origin are followed. The line ends with
//! `peak_rss_mib=M`, this process's high-water mark.

use std::collections::{HashSet, VecDeque};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use clap::Parser;
use rpcsupport::{ParserSpec, Request};
use tokio::task::JoinSet;

/// Fetch and parse a whole demo site in one process, without RPC.
#[derive(Debug, Parser)]
struct Args {
    /// Root URL of a running demosite, e.g. http://127.0.0.1:8080/.
    #[arg(long)]
    site: Option<String>,
    /// Without --site: start a demo site of this many profiles in-process.
    #[arg(long, default_value_t = 20_000)]
    profiles: u64,
    /// Requests in flight at once (the engine's default worker_count).
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// Stop after this many pages (0 = the whole site); for profiling.
    #[arg(long, default_value_t = 0)]
    max_pages: u64,
    /// Parser of the start page (`links` for a site that is not a demosite).
    #[arg(long, default_value = "city_list")]
    parser: String,
    /// The worker's `stream_parse` (true/false).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    stream_parse: bool,
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fetchparse: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let site = match &args.site {
            Some(url) => url.clone(),
            None => start_site(args.profiles).await?,
        };
        crawl(&site, &args).await
    })
}

/// Serves a demo site on 127.0.0.1:0 in this runtime; it stops with the
/// process.
async fn start_site(profiles: u64) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let site = Arc::new(demosite::Site::new(demosite::SiteConfig {
        profiles,
        ..demosite::SiteConfig::default()
    }));
    tokio::spawn(demosite::serve_site(listener, site, std::future::pending()));
    Ok(format!("http://{addr}/"))
}

async fn crawl(site: &str, args: &Args) -> anyhow::Result<()> {
    // The benchmark crawls a demo site on this machine: loopback is the
    // internal range this in-process worker may fetch.
    let worker = worker::Worker::new(&worker::WorkerConfig {
        allow_internal: vec!["127.0.0.0/8".into(), "::1".into(), "localhost".into()],
        stream_parse: args.stream_parse,
        ..worker::WorkerConfig::default()
    })?;
    let mut seen: HashSet<String> = HashSet::new();
    let mut queue: VecDeque<Request> = VecDeque::new();
    let seed = engine::scope::normalize(site, &[])
        .map(String::from)
        .context("--site is not an http(s) URL")?;
    seen.insert(seed.clone());
    // Links elsewhere (the docs link to the web) are never fetched.
    let origin = url::Url::parse(&seed)
        .context("--site is not a URL")?
        .origin();
    queue.push_back(Request {
        url: seed,
        parser: ParserSpec::named(&args.parser),
        depth: 0,
        hints: Default::default(),
    });

    let (mut pages, mut items, mut failed, mut sent) = (0u64, 0u64, 0u64, 0u64);
    let mut in_flight = JoinSet::new();
    let cpu_start = bench::cpu_time();
    let start = Instant::now();
    loop {
        while in_flight.len() < args.concurrency && (args.max_pages == 0 || sent < args.max_pages) {
            let Some(request) = queue.pop_front() else {
                break;
            };
            let worker = worker.clone();
            sent += 1;
            in_flight.spawn(async move { worker.process(request).await });
        }
        let Some(joined) = in_flight.join_next().await else {
            break;
        };
        match joined.context("a fetch task panicked")? {
            Ok(result) => {
                pages += 1;
                items += result.items.len() as u64;
                for mut request in result.requests {
                    // Same dedup key as the engine's scheduler, so both crawl
                    // the same pages.
                    let Some(url) = engine::scope::normalize(&request.url, &[]).map(String::from)
                    else {
                        continue;
                    };
                    if url::Url::parse(&url).map(|u| u.origin()) != Ok(origin.clone()) {
                        continue;
                    }
                    if seen.insert(url.clone()) {
                        request.url = url;
                        queue.push_back(request);
                    }
                }
            }
            Err(e) => {
                failed += 1;
                if failed <= 5 {
                    eprintln!("fetchparse: failed: {e}");
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu_secs = match (cpu_start, bench::cpu_time()) {
        (Some(a), Some(b)) => format!("{:.2}", (b - a).as_secs_f64()),
        _ => "unknown".into(),
    };
    println!(
        "fetchparse pages={pages} items={items} failed={failed} secs={secs:.3} \
         pages_per_sec={:.1} items_per_sec={:.1} cpu_secs={cpu_secs} peak_rss_mib={}",
        pages as f64 / secs,
        items as f64 / secs,
        peak_rss_mib().map_or("unknown".into(), |m| m.to_string()),
    );
    Ok(())
}

/// This process's peak resident memory (`VmHWM`), in MiB, where `/proc`
/// tells it.
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024)
}
