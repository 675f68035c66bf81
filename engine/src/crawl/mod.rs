//! The crawl loop: seeds -> scheduler -> worker pool -> results back into
//! the scheduler, items out to the sink, until nothing is queued or in
//! flight.
//!
//! One task owns all crawl state (queue, seen set, in-flight table,
//! counters), so none of it needs a lock; each call to a worker runs in its
//! own task and reports back. Like a MapReduce coordinator, the loop knows
//! every request's state: queued, in flight (until its outcome arrives),
//! done or failed. A call that fails at the transport level while its
//! worker stays up (a deadline) puts its request back in the queue for
//! another worker, and a request that failed so `max_attempts` times is
//! recorded as failed; a call during which the worker was lost makes its
//! request a suspect, sent again one at a time and failed as `poison` at a
//! second loss ([`crate::poison`]). A request whose page itself failed is
//! recorded as failed (after its retries, if the failure is transient).
//!
//! `max_pages` bounds what the sites see: every finished call for a crawl
//! request counts (a page, a 404, a timeout, a lost worker: each may have
//! reached the server), and a call is dispatched only while the calls
//! counted plus those in flight are under the limit. robots.txt fetches do
//! not count toward `max_pages` (at most one per host per `robots_ttl_s`,
//! plus its retries), so a site sees at most `max_pages` requests plus its
//! robots.txt fetches.
//!
//! # Layout
//!
//! The loop is a state machine on one clock (`tokio::time::Instant`, so
//! its decisions run under paused time in tests):
//!
//! - this file: [`run`]: set-up (state dir, workers, itemsaver), then
//!   `drive`, a short `select!` that feeds events to the machine, then its
//!   shutdown.
//! - `call.rs`: one worker call in its own task, and the `Outcome` it
//!   reports back.
//! - `machine.rs`: the `Crawl` value that owns all loop state; its methods
//!   are the events: `dispatch`, `on_outcome`, `on_tick`, `begin_stop`
//!   (the first two in `machine/dispatch.rs` and `machine/on_outcome.rs`).
//! - `outcome.rs`: what an outcome means: retry, skip, fail, robots answer,
//!   backoff.
//! - `durable.rs`: what goes into the URL store (queued, done, failed,
//!   gone, items, acknowledgements, commits) and what a recrawl finds
//!   (new, unchanged, changed, gone).
//! - `page.rs`: what a page said about itself (robots meta counts,
//!   canonical URL, sitemap depth, rendering learnt), applied before its
//!   links and items go on.
//! - `routing.rs`: render requests: the warning while they wait for a
//!   rendering worker, giving up, sending again.
//! - `stop.rs`: the shutdown sequence: abandon what is in flight, flush
//!   items, write the state, report.
//! - `report.rs`: metrics, the progress line and the dashboard's tick.
//! - `rounds.rs`: [`run_every`], recrawl rounds one after another
//!   (`--recrawl_every`).
//! - `tests.rs` (helpers) and `tests/` (one file per decision): the
//!   decisions, driven under `start_paused` time with outcomes fed in as
//!   values (no worker, no site).

mod call;
mod durable;
mod machine;
mod outcome;
mod page;
mod report;
mod rounds;
mod routing;
mod stop;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use rpcsupport::{connect_itemsaver, ConnectOptions, ParseError, Request, SITEMAP_PARSER};
use thiserror::Error;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::Settings;
use crate::items::{Ack, DeleteOptions, Deleter, ItemSink, SinkOptions};
use crate::pool::{deadline_in, NoWorkers, WorkerPool};
use crate::render::needs_browser;
use crate::spill::PrivateDir;
use crate::state::{unix_now, Loaded, OpenError, Requeue, StateDir};
use crate::summary::Summary;
use call::{call, CallId, CallResult, Outcome, Route};
use machine::{Crawl, Step, Tick};
pub use rounds::run_every;

/// Why a crawl could not run or had to stop.
#[derive(Debug, Error)]
pub enum EngineError {
    /// No worker answered at start.
    #[error(transparent)]
    NoWorkers(#[from] NoWorkers),
    /// A worker refused the crawl's rules at start (a CSS selector it
    /// cannot compile, a parser it does not have).
    #[error("worker {worker} refused the rules: {error}")]
    RulesRefused {
        /// The worker.
        worker: rpcsupport::HostAddr,
        /// What it said.
        error: ParseError,
    },
    /// The itemsaver did not answer at start.
    #[error("itemsaver at {addr} could not be reached: {reason}")]
    ItemsaverUnreachable {
        /// Its address.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// A request named a parser the workers do not have: a configuration
    /// mistake that would fail every page, so the crawl stops.
    #[error("unknown parser {name:?} (requested for {url}); check engine.parser / --parser, or the rules")]
    UnknownParser {
        /// The parser name.
        name: String,
        /// The request that named it.
        url: String,
    },
    /// Every worker stayed down longer than `worker_wait_ms`.
    #[error("every worker has been down for {0:?}; giving up (pending work is kept in the state dir, if one is set)")]
    WorkersGone(Duration),
    /// Another engine is running on the state directory.
    #[error("state dir {} is in use by another engine{}; stop it or choose another --state_dir", path.display(), pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    StateDirLocked {
        /// The directory.
        path: PathBuf,
        /// The other engine's pid, where it could be read.
        pid: Option<u32>,
    },
    /// The state directory cannot be read or written.
    #[error("state dir {path}: {source}")]
    State {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// How often progress, metrics, the dashboard, the worker wait, the stop
/// deadline and the state file are looked at.
const TICK: Duration = Duration::from_millis(200);

/// Runs one crawl to the end, or until `shutdown` completes; then stops
/// dispatching, waits up to `shutdown_grace` for calls in flight, flushes
/// items and writes the state before returning the summary.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary, EngineError> {
    let connect = ConnectOptions {
        connect_timeout: settings.connect_timeout,
        security: settings.rpc_security,
        ..ConnectOptions::default()
    };
    // The state dir first: a second engine on it stops here, before it
    // talks to any worker.
    let (state, loaded) = open_state(&settings)?;
    // Removed (with the spill files in it) when `_private` drops at the
    // end of `run`.
    let (spill_dir, _private) = spill_dir(&settings)?;
    let rules_json = settings.rules.as_ref().map(|r| r.to_json());
    let pool = Arc::new(WorkerPool::connect(&settings.workers, connect, rules_json).await?);
    check_seed_parsers(&settings, &pool.builtin_parsers())?;
    let settings = follow_sitemaps_if_parsed(settings, &pool.builtin_parsers());
    let saver = connect_checked_saver(&settings, connect).await?;

    let mut crawl = Crawl::new(&settings, &pool.addrs(), spill_dir.clone(), state);
    let carried_items = crawl.resume_or_seed(loaded);
    // Acknowledgements of items and deletes, for the URL store. The crawl
    // keeps `acked` itself, so the channel never closes under `drive`.
    let (acked, mut acks) = tokio::sync::mpsc::unbounded_channel();
    let durable = crawl.state.is_some();
    let deleter = durable.then(|| {
        Deleter::spawn(
            DeleteOptions {
                addr: settings.itemsaver.clone(),
                connect,
                rpc_timeout: settings.rpc_timeout,
                finish_timeout: settings.itemsaver_wait,
                acked: acked.clone(),
            },
            crawl.take_deletes(),
        )
    });
    let sink = ItemSink::spawn(
        Some(saver),
        SinkOptions {
            addr: settings.itemsaver.clone(),
            connect,
            batch_size: settings.item_batch_size,
            linger: settings.item_linger,
            rpc_timeout: settings.rpc_timeout,
            memory_items: settings.item_buffer_items,
            spill_dir,
            finish_timeout: settings.itemsaver_wait,
            saved: crawl.items_saved_counter(),
            failures: crawl.failures().clone(),
            acked: durable.then(|| acked.clone()),
        },
        carried_items,
    );
    tracing::info!(
        workers = pool.len(),
        itemsaver = %settings.itemsaver,
        queued = crawl.queued(),
        "crawl starting"
    );
    drive(
        &mut crawl,
        &pool,
        &sink,
        deleter.as_ref(),
        &mut acks,
        shutdown,
    )
    .await;
    drop(acked);
    crawl.finish(&pool, sink, deleter, acks).await
}

/// The loop: feeds the machine its events (room to send, an outcome, the
/// shutdown signal, a wake-up time, the tick) until it is done or
/// abandons what is in flight.
async fn drive(
    crawl: &mut Crawl<'_>,
    pool: &Arc<WorkerPool>,
    sink: &ItemSink,
    deleter: Option<&Deleter>,
    acks: &mut tokio::sync::mpsc::UnboundedReceiver<Ack>,
    shutdown: impl Future<Output = ()>,
) {
    let policy = Arc::new(crawl.settings.scope.policy.clone());
    let rpc_timeout = crawl.settings.rpc_timeout;
    let worker_wait = crawl.settings.worker_wait;
    let rules = crawl.settings.rules.clone();
    let mut calls = JoinSet::new();
    // The URL store commit under way, on a blocking thread: the loop
    // carries on meanwhile (one at a time; see state/store.rs).
    let mut commit: Option<tokio::task::JoinHandle<std::io::Result<()>>> = None;
    let start_commit = |crawl: &mut Crawl<'_>, commit: &mut Option<_>| {
        if commit.is_none() {
            if let Some(job) = crawl.begin_commit(Instant::now()) {
                *commit = Some(tokio::task::spawn_blocking(move || job.run()));
            }
        }
    };
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        let send = |id: CallId, request: &Request| {
            let route = match needs_browser(request, rules.as_deref()) {
                true => Route::Render { wait: worker_wait },
                false => Route::Any,
            };
            // Boxed: the call's future is ~10 KB (the RPC client's state)
            // and spawning moves it several times; a callgrind profile of
            // the docs crawl found 46% of the engine's instructions in
            // those copies (bench/NOTES.md). A pointer moves instead.
            let call = Box::pin(call(
                pool.clone(),
                request.clone(),
                policy.clone(),
                rpc_timeout,
                route,
            ));
            // A panic in a call is an outcome too (nothing learnt), so its
            // request is not lost with the task.
            calls.spawn(async move { (id, AssertUnwindSafe(call).catch_unwind().await.ok()) });
        };
        let wake = match crawl.dispatch(Instant::now(), send) {
            Step::Done => break,
            Step::Wait(wake) => wake,
        };
        tokio::select! {
            biased;
            // Calls are only aborted after the loop, so a join error here
            // cannot happen; were it to, its request stays in flight and
            // the stop deadline abandons it as pending.
            Some(Ok((id, outcome))) = calls.join_next() => {
                if let Some(items) = crawl.on_outcome(id, outcome, Instant::now()) {
                    sink.send(items);
                }
                if let Some(deleter) = deleter {
                    deleter.send(crawl.take_deletes());
                }
                if crawl.commit_due() {
                    start_commit(crawl, &mut commit);
                }
            }
            Some(ack) = acks.recv() => crawl.on_ack(ack),
            done = async { commit.as_mut().expect("guarded").await }, if commit.is_some() => {
                commit = None;
                crawl.end_commit(done);
                // Half a batch may have gathered meanwhile: write it now,
                // before dispatch lets more gather behind it.
                if crawl.commit_due() {
                    start_commit(crawl, &mut commit);
                }
            }
            _ = &mut shutdown, if !crawl.stop_begun() => {
                crawl.begin_stop("stopped by signal", Instant::now());
            }
            _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {}
            _ = tick.tick() => {
                let now = Instant::now();
                crawl.report(pool, now);
                crawl.on_render_tick(pool.render_waiting(), pool.render_up_count());
                match crawl.on_tick(now, pool.up_count()) {
                    Tick::Abandon => break,
                    Tick::WriteState => start_commit(crawl, &mut commit),
                    Tick::Continue => {}
                }
            }
        }
    }
    calls.abort_all();
    // The stop sequence commits what is left; this one first.
    if let Some(task) = commit {
        crawl.end_commit(task.await);
    }
}

/// Where spill files go: the state dir, or a private dir of this run
/// (returned too: it is removed when dropped).
fn spill_dir(settings: &Settings) -> Result<(PathBuf, Option<PrivateDir>), EngineError> {
    if let Some(dir) = &settings.state_dir {
        return Ok((dir.clone(), None));
    }
    let private = PrivateDir::create().map_err(|source| EngineError::State {
        path: std::env::temp_dir(),
        source,
    })?;
    Ok((private.path().to_owned(), Some(private)))
}

/// Opens (and locks) `dir` with the crawl's cache size, its errors as the
/// engine's: for a crawl, and for a recrawl round's look at what is due.
fn open_state_dir(settings: &Settings, dir: &Path) -> Result<(StateDir, Loaded), EngineError> {
    StateDir::open_with_cache(dir, settings.state_cache_bytes).map_err(|e| match e {
        OpenError::Locked { dir, pid } => EngineError::StateDirLocked { path: dir, pid },
        OpenError::Io(source) => EngineError::State {
            path: dir.to_owned(),
            source,
        },
    })
}

/// Opens (and locks) the state dir, if one is set, with what it holds.
fn open_state(settings: &Settings) -> Result<(Option<StateDir>, Option<Loaded>), EngineError> {
    let Some(dir) = &settings.state_dir else {
        return Ok((None, None));
    };
    let (state, mut loaded) = open_state_dir(settings, dir)?;
    let requeue = match &settings.recrawl {
        Some(r) => Requeue::Recrawl {
            now: unix_now(),
            all: r.all,
        },
        None => Requeue::Resume,
    };
    loaded.frontier = state
        .frontier(requeue)
        .map_err(|source| EngineError::State {
            path: dir.clone(),
            source,
        })?;
    Ok((Some(state), Some(loaded)))
}

/// A seed parser the workers do not know would fail every page: say so
/// now, before anything is fetched. For a sitemap seed, the parser of the
/// pages it lists too.
fn check_seed_parsers(settings: &Settings, builtins: &[String]) -> Result<(), EngineError> {
    for seed in &settings.seeds {
        let pages = seed.parser.sitemap_pages();
        for p in std::iter::once(&seed.parser).chain(pages.as_ref()) {
            if !p.args.contains_key(rpcsupport::RULESET_ARG)
                && !builtins.iter().any(|b| b == &p.name)
            {
                return Err(EngineError::UnknownParser {
                    name: p.name.clone(),
                    url: seed.url.clone(),
                });
            }
        }
    }
    Ok(())
}

/// robots.txt `Sitemap:` lines are followed by default; workers without
/// the sitemap parser (older ones) would fail each sitemap as an unknown
/// parser, which stops the crawl. Such a crawl follows none, and says so.
fn follow_sitemaps_if_parsed(mut settings: Settings, builtins: &[String]) -> Settings {
    if settings.politeness.sitemaps.is_some() && !builtins.iter().any(|b| b == SITEMAP_PARSER) {
        tracing::warn!(
            "the workers have no {SITEMAP_PARSER:?} parser; robots.txt Sitemap: lines are not followed"
        );
        settings.politeness.sitemaps = None;
    }
    settings
}

async fn connect_checked_saver(
    settings: &Settings,
    connect: ConnectOptions,
) -> Result<rpcsupport::ItemSaverClient, EngineError> {
    let unreachable = |reason: String| EngineError::ItemsaverUnreachable {
        addr: settings.itemsaver.to_string(),
        reason,
    };
    let client = connect_itemsaver(&settings.itemsaver, connect)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    match client.count(deadline_in(settings.connect_timeout)).await {
        Ok(Ok(_)) => Ok(client),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(e) => Err(unreachable(e.to_string())),
    }
}
