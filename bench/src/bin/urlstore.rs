//! `urlstore`: what the engine's URL store (`--state_dir`, see
//! [`engine::state`]) costs per URL. Simulates a crawl of `--urls`
//! distinct profile URLs through it, the way the crawl loop writes: each
//! URL recorded as queued (under the next key, in discovery order), then,
//! in the same order, as done with its validators, schedule and
//! one item key (the item itself unacked until a later ack), committed in
//! groups of `--commit_changes`; then reopens the directory and loads the
//! frontier as a resume does. Prints
//!
//! `urlstore urls=N commit_changes=K phase=P secs=S file_bytes=B disk_bytes_per_url=X rss_growth_bytes=R mem_bytes_per_url=Y`
//!
//! for the queued phase, the done phase and the resume. The store's
//! memory is its group-commit buffer (bounded by `--commit_changes`) and
//! redb's page cache (`--cache_mb`, the engine's `state_cache_mb`), so it
//! falls per URL as N grows; the resume's line adds the seen-URL set it
//! builds (the scheduler's, as `seenset` measures it alone), which grows
//! with N. Stops each phase after `--max_seconds` (reporting the URLs
//! done by then), so it always ends.

use std::time::{Duration, Instant};

use clap::Parser;
use engine::scheduler::{FrontierSnapshot, Scheduler, Task};
use engine::state::{Fetched, Meta, Requeue, StateDir, UrlRecord, UrlStatus, DEFAULT_CACHE_MB};
use rpcsupport::{Item, ParserSpec, Request};

/// Cost per URL of the engine's URL store.
#[derive(Debug, Parser)]
struct Args {
    /// Distinct URLs to push through the store.
    #[arg(long, default_value_t = 1_000_000)]
    urls: u64,
    /// Changes per commit (the engine's `state_commit_changes`).
    #[arg(long = "commit_changes", default_value_t = 10_000)]
    commit_changes: usize,
    /// MiB of page cache for the store (the engine's `state_cache_mb`).
    #[arg(long = "cache_mb", default_value_t = DEFAULT_CACHE_MB)]
    cache_mb: u64,
    /// Stop each phase after this long, reporting the URLs it reached.
    #[arg(long = "max_seconds", default_value_t = 240)]
    max_seconds: u64,
    /// Directory for the store (default: a temp dir, removed at the end).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let temp = tempfile::tempdir()?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| temp.path().join("state"));
    let limit = Duration::from_secs(args.max_seconds);
    let url = |i: u64| format!("http://127.0.0.1:8080/profile/{i}");
    let parser = ParserSpec::named("profile");
    let task = |i: u64| Task::new(Request::new(url(i), parser.clone(), 2));

    let cache = (args.cache_mb as usize) << 20;
    let (mut state, _) = StateDir::open_with_cache(&dir, cache)?;
    let before = bench::status_bytes("VmRSS").unwrap_or(0);
    let meta = Meta::default();

    // Phase 1: every URL discovered and queued.
    let start = Instant::now();
    let mut n = 0;
    for i in 1..=args.urls {
        let t = task(i);
        // Keys follow discovery, as the crawl gives them: URL i gets key i.
        let key = state.store.new_key();
        state.store.put(key, UrlRecord::queued(&t));
        n = i;
        if state.store.changes() >= args.commit_changes {
            state.commit(&meta)?;
            if start.elapsed() >= limit {
                break;
            }
        }
    }
    state.commit(&meta)?;
    let report = |urls: u64, phase: &str, start: Instant| {
        report(urls, args.commit_changes, phase, start, &dir, before)
    };
    report(n, "queued", start);

    // Phase 2: every URL fetched: validators, schedule, one item, acked
    // a commit later (as the sink acks while the loop goes on).
    let start = Instant::now();
    let mut acked: Vec<String> = Vec::new();
    let mut done = 0;
    for i in 1..=n {
        let t = task(i);
        let mut r = UrlRecord::queued(&t);
        r.status = UrlStatus::Done;
        r.fetched = Some(Fetched {
            http_status: 200,
            etag: Some(format!(
                "\"{:016x}\"",
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            )),
            last_modified: Some("Sat, 01 Jan 2000 00:00:00 GMT".into()),
            content_hash: Some(i.wrapping_mul(31)),
            fetched_at: 1_800_000_000,
            next_fetch: 1_800_086_400,
            interval_s: 86_400,
        });
        r.item_keys = vec![i.to_string()];
        state.store.put(i, r);
        let item = Item {
            url: t.request.url.clone(),
            kind: "profile".into(),
            id: Some(i.to_string()),
            payload: Default::default(),
        };
        state.store.items_sent(std::slice::from_ref(&item));
        acked.push(i.to_string());
        done = i;
        if state.store.changes() >= args.commit_changes {
            state.commit(&meta)?;
            state.store.items_acked(&acked);
            acked.clear();
            if start.elapsed() >= limit {
                break;
            }
        }
    }
    state.store.items_acked(&acked);
    state.commit(&meta)?;
    if done < n {
        println!("urlstore: done phase stopped by --max_seconds at {done} of {n} URLs");
    }
    report(n, "done", start);
    drop(state);

    // Phase 3: a restart: every fingerprint read back into the seen set.
    let start = Instant::now();
    let (state, _) = StateDir::open_with_cache(&dir, cache)?;
    let frontier = state.frontier(Requeue::Resume)?;
    anyhow::ensure!(
        frontier.seen.len() as u64 == n && frontier.pending.len() as u64 == n - done,
        "resume read {} URLs ({} pending), expected {n} ({} pending)",
        frontier.seen.len(),
        frontier.pending.len(),
        n - done
    );
    let mut scheduler = Scheduler::default();
    scheduler.restore(FrontierSnapshot {
        pending: frontier.pending,
        seen: frontier.seen,
    });
    anyhow::ensure!(scheduler.seen_count() as u64 == n, "seen set lost URLs");
    report(n, "resume", start);
    drop((state, scheduler));
    Ok(())
}

fn report(
    urls: u64,
    commit_changes: usize,
    phase: &str,
    start: Instant,
    dir: &std::path::Path,
    before: u64,
) {
    let file = std::fs::metadata(dir.join("urls.redb")).map_or(0, |m| m.len());
    let growth = bench::status_bytes("VmRSS")
        .unwrap_or(0)
        .saturating_sub(before);
    println!(
        "urlstore urls={urls} commit_changes={commit_changes} phase={phase} secs={:.1} file_bytes={file} disk_bytes_per_url={:.1} rss_growth_bytes={growth} mem_bytes_per_url={:.1}",
        start.elapsed().as_secs_f64(),
        file as f64 / urls.max(1) as f64,
        growth as f64 / urls.max(1) as f64
    );
}
