//! The engine owns a crawl: it decides what to fetch, hands each request to
//! a worker, feeds the links that come back into its queue and sends items
//! on to the itemsaver, until nothing is left.
//!
//! # Layout
//!
//! In the order a request travels:
//!
//! - [`config`]: `[engine]` of `config.toml` plus flags, validated into
//!   [`Settings`] (seeds, worker and itemsaver addresses, limits).
//! - [`scope`]: URL normalization (the form dedup uses) and what is in
//!   scope: allowed domains, include/exclude patterns.
//! - [`scheduler`]: step 2, the frontier, behind a small interface
//!   (enqueue, next, done / retry, idle): one queue per host served
//!   round-robin under per-host limits and autothrottle, robots.txt
//!   ([`robots`]) fetched through a worker and obeyed (its `Sitemap:`
//!   lines followed), delayed retries,
//!   URL dedup (over [`seen`], a compact fingerprint set), depth limit;
//!   one file per part under `scheduler/`.
//! - [`pool`]: step 3, one tarpc client per worker host, handed out
//!   round-robin through a channel; requests that need a browser go only
//!   to workers that say they can render.
//! - [`render`]: which requests need a browser (hint, rule, parser
//!   argument), and the host and parser pairs learnt to need one.
//! - [`crawl`]: the loop that ties them together, a state machine on one
//!   clock (`tokio::time::Instant`): dispatches up to `worker_count` calls
//!   at once (and no more than `max_pages` allows), feeds results back,
//!   decides when the crawl is done, and stops cleanly on shutdown
//!   (`crawl/`: the loop, its decisions, what a page says about itself —
//!   robots meta counts, canonical URL, sitemap depth, rendering learnt —,
//!   the stop sequence, reporting).
//! - [`poison`]: requests in flight when a worker was lost: sent again one
//!   at a time, failed as `poison` at a second loss, so a page that kills
//!   workers cannot take down the pool.
//! - [`items`]: items out, batched to the itemsaver; buffered in memory and
//!   then on disk while it is down, forgotten only once acknowledged; and
//!   the deletes of a recrawl's gone pages.
//! - [`failures`]: the failures file: requests given up on and items the
//!   itemsaver refused, one JSON line each.
//! - [`spill`]: `SpillQueue`, the one "memory first, then a file" FIFO,
//!   for what does not fit in memory (items while the itemsaver is down,
//!   the far end of a huge frontier); its files are private to the
//!   engine: in the state dir or a 0700 temp dir of its own.
//! - [`state`]: the crawl's state on disk (`--state_dir`): a durable URL
//!   store (redb) with a record per URL (status, validators, schedule,
//!   item keys), the unacknowledged items and pending deletes,
//!   group-committed, so a stopped or killed engine resumes and a finished
//!   crawl can be recrawled (conditional requests, adaptive intervals);
//!   locked, so only one engine uses a directory at a time.
//! - [`progress`]: the live status line (terminal) or periodic log line.
//! - [`dashboard`]: the same numbers and more (charts, workers, hosts,
//!   latest failures, the final summary) as a web page beside `/metrics`.
//! - [`summary`]: the counts printed at the end.
//! - [`tools`]: `check-rules`, for writing rules files (`try-rules` is the
//!   worker's: it needs the HTML parser and the fetcher).

pub mod config;
pub mod crawl;
pub mod dashboard;
pub mod failures;
pub mod items;
pub mod poison;
pub mod pool;
pub mod progress;
pub mod render;
pub mod robots;
pub mod scheduler;
pub mod scope;
pub mod seen;
pub mod spill;
pub mod state;
pub mod summary;
pub mod tools;

pub use config::{EngineConfig, Settings};
pub use crawl::{run, run_every, EngineError};
pub use summary::Summary;
