//! `seenset`: memory per URL of the engine's seen-URL set. Enqueues
//! `--urls` distinct profile URLs into an [`engine::scheduler::Scheduler`],
//! taking each straight back out so only the seen set grows, and prints the
//! growth of the resident set per URL, at checkpoints and at the end:
//!
//! `seenset urls=N rss_growth_bytes=B bytes_per_url=X`
//!
//! The hash table grows by doubling, so the figure jumps right after each
//! resize: the checkpoints show the spread, not just one lucky count.

use clap::Parser;
use std::time::Duration;

use engine::scheduler::{Next, Scheduler};
use rpcsupport::{ParserSpec, Request};
use tokio::time::Instant;

/// Memory per URL of the engine's seen-URL set.
#[derive(Debug, Parser)]
struct Args {
    /// Distinct URLs to insert.
    #[arg(long, default_value_t = 1_000_000)]
    urls: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let parser = ParserSpec::named("profile");
    // `default()`: no depth limit; unlike `new`, its signature does not
    // change when the scheduler gains settings.
    let mut scheduler = Scheduler::default();
    // Warm up the allocator and the parts of the scheduler that do not grow
    // with the URL count, so they do not count as per-URL cost.
    let url = |i: u64| format!("http://127.0.0.1:8080/profile/{i}");
    for i in 0..1_000 {
        enqueue(&mut scheduler, url(u64::MAX - i), &parser);
    }
    let before = bench::status_bytes("VmRSS").unwrap_or(0);
    let mut checkpoint = args.urls / 8;
    for i in 1..=args.urls {
        enqueue(&mut scheduler, url(i), &parser);
        if i == checkpoint || i == args.urls {
            report(i, before);
            checkpoint += args.urls / 8;
        }
    }
    anyhow::ensure!(
        scheduler.seen_count() as u64 == args.urls + 1_000,
        "the scheduler dropped URLs as duplicates: {} seen",
        scheduler.seen_count()
    );
    Ok(())
}

fn enqueue(scheduler: &mut Scheduler, url: String, parser: &ParserSpec) {
    let request = Request {
        url,
        parser: parser.clone(),
        depth: 1,
        hints: Default::default(),
    };
    // Every URL is distinct, so this only fails if normalization does.
    scheduler.enqueue(request).expect("a fresh, valid URL");
    // Take it straight back out so only the seen set grows.
    if let Next::Task(task) = scheduler.next(Instant::now()) {
        scheduler.done(&task, Duration::ZERO, false);
    }
}

fn report(urls: u64, before: u64) {
    let growth = bench::status_bytes("VmRSS")
        .unwrap_or(0)
        .saturating_sub(before);
    println!(
        "seenset urls={urls} rss_growth_bytes={growth} bytes_per_url={:.1}",
        growth as f64 / urls as f64
    );
}
