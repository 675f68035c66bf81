//! `spider-peer`: the spider-rs peer of the benchmark (issue 14). Crawls one
//! start URL with the `spider` crate, `--concurrency` requests at once, every
//! page handed to a subscriber (`Website::subscribe`), and prints one line in
//! the shape of our `fetchparse`:
//!
//! `spider pages=N items=N failed=N lagged=N secs=S pages_per_sec=R items_per_sec=R cpu_secs=S`
//!
//! With `--parse profile` (the demo site) the subscriber extracts from each
//! `/profile/{id}` page the fields our `profile` parser does
//! (worker/src/parse/profile.rs: `table.profile`, `[data-field]`, units
//! stripped from numbers), so both crawlers do the same work per page; with
//! `--parse links` (the toolchain's docs) it only counts pages, spider itself
//! follows the links. `lagged` counts pages the subscriber missed because the
//! broadcast channel overflowed: non-zero means the parse figures undercount.
//!
//! Not a member of the crawler's workspace (its own `[workspace]` table), so
//! CI never builds it; `PEERS=1 bash scripts/bench.sh` does.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use scraper::{Html, Selector};
use spider::website::Website;

/// The same selectors as our `profile` parser.
static TABLE: LazyLock<Selector> = LazyLock::new(|| Selector::parse("table.profile").unwrap());
static FIELDS: LazyLock<Selector> = LazyLock::new(|| Selector::parse("[data-field]").unwrap());

/// Payload fields and whether they are integers (as in profile.rs).
const FIELDS_SPEC: &[(&str, bool)] = &[
    ("name", false),
    ("gender", false),
    ("age", true),
    ("height", true),
    ("weight", true),
    ("income", false),
    ("marriage", false),
    ("education", false),
    ("occupation", false),
    ("city", false),
];

/// What the subscriber does with a page.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Parse {
    /// Profile pages become an item; every page is counted.
    Profile,
    /// Count the page; spider follows its links itself.
    Links,
}

struct Args {
    url: String,
    concurrency: usize,
    parse: Parse,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: String::new(),
        concurrency: 128,
        parse: Parse::Links,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => args.url = value()?,
            "--concurrency" => {
                args.concurrency = value()?
                    .parse()
                    .map_err(|_| "--concurrency: expected a positive integer")?
            }
            "--parse" => {
                args.parse = match value()?.as_str() {
                    "profile" => Parse::Profile,
                    "links" => Parse::Links,
                    other => return Err(format!("--parse: expected profile or links, got {other}")),
                }
            }
            other => {
                return Err(format!(
                    "unknown flag {other}; usage: spider-peer --url URL [--concurrency 128] [--parse profile|links]"
                ))
            }
        }
    }
    if args.url.is_empty() || args.concurrency == 0 {
        return Err("--url URL is required and --concurrency must be at least 1".into());
    }
    Ok(args)
}

#[derive(Default)]
struct Counts {
    pages: AtomicU64,
    items: AtomicU64,
    failed: AtomicU64,
    lagged: AtomicU64,
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("spider-peer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("spider-peer: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(crawl(args));
    ExitCode::SUCCESS
}

async fn crawl(args: Args) {
    let mut website = Website::new(&args.url);
    // robots.txt off (spider's default, said again): the benchmark site is
    // ours. No proxies, no subdomains or other TLDs: only the start host.
    website
        .with_respect_robots_txt(false)
        .with_subdomains(false)
        .with_tld(false)
        .with_proxies(None)
        .with_delay(0)
        .with_concurrency_limit(Some(args.concurrency));

    // The channel holds pages the subscriber has not taken yet; the loop
    // below only hands each page to a task, so it keeps up and 4096 slots
    // are plenty (a miss is counted as `lagged`, never silent).
    let mut rx = website.subscribe(4096);
    let counts = Arc::new(Counts::default());
    let parse = args.parse;
    let subscriber = {
        let counts = counts.clone();
        tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            loop {
                match rx.recv().await {
                    Ok(page) => {
                        let counts = counts.clone();
                        // Parsing is CPU work: on its own task, so the
                        // receiving loop never falls behind the crawl.
                        tasks.spawn(async move {
                            if !page.status_code.is_success() {
                                counts.failed.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                            counts.pages.fetch_add(1, Ordering::Relaxed);
                            if parse == Parse::Profile && is_profile(page.get_url()) {
                                let html = page.get_html_cow();
                                if let Some(item) = profile_item(&html) {
                                    black_box(item);
                                    counts.items.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        });
                        // Reap finished tasks so the set stays small.
                        while tasks.try_join_next().is_some() {}
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        counts.lagged.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
            while tasks.join_next().await.is_some() {}
        })
    };

    let cpu_start = cpu_time();
    let start = Instant::now();
    website.crawl().await;
    // Dropping the sender ends the subscriber once it has drained the channel.
    website.unsubscribe();
    drop(website);
    if let Err(e) = subscriber.await {
        eprintln!("spider-peer: the subscriber failed: {e}");
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu_secs = match (cpu_start, cpu_time()) {
        (Some(a), Some(b)) => format!("{:.2}", (b - a).as_secs_f64()),
        _ => "unknown".into(),
    };
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let (pages, items) = (get(&counts.pages), get(&counts.items));
    println!(
        "spider pages={pages} items={items} failed={} lagged={} secs={secs:.3} \
         pages_per_sec={:.1} items_per_sec={:.1} cpu_secs={cpu_secs}",
        get(&counts.failed),
        get(&counts.lagged),
        pages as f64 / secs,
        items as f64 / secs,
    );
}

fn is_profile(url: &str) -> bool {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split_once('/'))
        .is_some_and(|(_, path)| path.starts_with("profile/"))
}

/// A field's value, typed as our parser types it.
#[derive(Debug)]
#[allow(dead_code)] // read only through black_box
enum Value {
    Int(i64),
    Str(String),
}

/// The profile table as an item (id and payload), or `None` without one.
fn profile_item(html: &str) -> Option<(u64, BTreeMap<&'static str, Value>)> {
    let doc = Html::parse_document(html);
    let table = doc.select(&TABLE).next()?;
    let id = table.value().attr("data-id")?.trim().parse().ok()?;
    let mut payload = BTreeMap::new();
    for cell in table.select(&FIELDS) {
        let Some(field) = cell.value().attr("data-field") else {
            continue;
        };
        let Some(&(key, is_int)) = FIELDS_SPEC.iter().find(|(k, _)| *k == field) else {
            continue;
        };
        let text: String = cell.text().collect();
        let text = text.trim();
        let value = if is_int {
            let end = text
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(text.len());
            match text[..end].parse() {
                Ok(n) => Value::Int(n),
                Err(_) => continue,
            }
        } else if text.is_empty() {
            continue;
        } else {
            Value::Str(text.to_owned())
        };
        payload.entry(key).or_insert(value);
    }
    Some((id, payload))
}

/// User plus system CPU time of this process, from `/proc/self/stat`
/// (fields 14 and 15, in USER_HZ = 100 ticks a second on Linux).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}
