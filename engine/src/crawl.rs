//! The crawl loop: seeds -> scheduler -> worker pool -> results back into
//! the scheduler, items out to the sink, until nothing is queued or in
//! flight.
//!
//! One task owns all crawl state (queue, seen set, in-flight table,
//! counters), so none of it needs a lock; each call to a worker runs in its
//! own task and reports back. Like a MapReduce coordinator, the loop knows
//! every request's state: queued, in flight (in `in_flight`, until its
//! outcome arrives), done or failed. A call that fails at the transport
//! level while its worker stays up (a deadline) puts its request back in
//! the queue for another worker, and a request that failed so
//! `max_attempts` times is recorded as failed; a call during which the
//! worker was lost makes its request a suspect, sent again one at a time
//! and failed as `poison` at a second loss ([`crate::poison`]). A request
//! whose page itself failed is recorded as failed (after its retries, if
//! the failure is transient).
//!
//! `max_pages` bounds what the sites see: every finished call for a crawl
//! request counts (a page, a 404, a timeout, a lost worker: each may have
//! reached the server), and a call is dispatched only while the calls
//! counted plus those in flight are under the limit. robots.txt fetches do
//! not count toward `max_pages` (at most one per host per `robots_ttl_s`,
//! plus its retries), so a site sees at most `max_pages` requests plus its
//! robots.txt fetches.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rpcsupport::{
    connect_itemsaver, ConnectOptions, CrawlError, FetchError, FetchPolicy, Item, ParseError,
    ParseResult, Request,
};
use tarpc::client::RpcError;
use thiserror::Error;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::Settings;
use crate::dashboard::{Tick, WorkerView, HOSTS_SHOWN};
use crate::failures::{open_append, FailureLog};
use crate::items::{ItemSink, SinkOptions};
use crate::poison::{Loss, Suspects, POISON};
use crate::pool::{deadline_in, ConnectionId, NoWorkers, WorkerPool};
use crate::progress::{Progress, Status};
use crate::scheduler::{fingerprint, Dropped, Next, RobotsAnswer, Scheduler, Task};
use crate::scope::OutOfScope;
use crate::spill::PrivateDir;
use crate::state::{OpenError, Snapshot, StateDir};
use crate::summary::Summary;
use rpcsupport::metrics::{Counter, Gauge, Histogram, Registry};

/// Why a crawl could not run or had to stop.
#[derive(Debug, Error)]
pub enum EngineError {
    /// No worker answered at start.
    #[error(transparent)]
    NoWorkers(#[from] NoWorkers),
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

/// What a dispatch task reports back.
struct Outcome {
    worker: usize,
    result: CallResult,
}

enum CallResult {
    /// The worker answered (with a page or a page error).
    Answered(Result<ParseResult, CrawlError>),
    /// The call itself failed: deadline, disconnect.
    Failed {
        kind: &'static str,
        reason: String,
        /// The connection, when the pool found the worker lost with it
        /// (dropped, or not answering `status`); `None` when the worker
        /// is fine and only this call failed.
        lost: Option<ConnectionId>,
    },
}

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
    let (mut state, loaded) = match &settings.state_dir {
        Some(dir) => {
            let (state, loaded) = StateDir::open(dir).map_err(|e| match e {
                OpenError::Locked { dir, pid } => EngineError::StateDirLocked { path: dir, pid },
                OpenError::Io(source) => EngineError::State {
                    path: dir.clone(),
                    source,
                },
            })?;
            (Some(state), Some(loaded))
        }
        None => (None, None),
    };
    // Spill files go into the state dir, or a private dir of this run
    // (removed when `private` drops at the end of `run`).
    let private = match &settings.state_dir {
        Some(_) => None,
        None => Some(PrivateDir::create().map_err(|source| EngineError::State {
            path: std::env::temp_dir(),
            source,
        })?),
    };
    let spill_dir = match (&settings.state_dir, &private) {
        (Some(dir), _) => dir.clone(),
        (None, Some(private)) => private.path().to_owned(),
        (None, None) => unreachable!("a private dir is made when there is no state dir"),
    };
    let rules_json = settings.rules.as_ref().map(|r| r.to_json());
    let pool = Arc::new(WorkerPool::connect(&settings.workers, connect, rules_json).await?);
    // A seed parser the workers do not know would fail every page: say so
    // now, before anything is fetched.
    let builtins = pool.builtin_parsers();
    for seed in &settings.seeds {
        let p = &seed.parser;
        if !p.args.contains_key(worker::rules::RULESET_ARG)
            && !builtins.iter().any(|b| b == &p.name)
        {
            return Err(EngineError::UnknownParser {
                name: p.name.clone(),
                url: seed.url.clone(),
            });
        }
    }
    let saver = connect_checked_saver(&settings, connect).await?;

    let mut crawl = Crawl::new(
        &settings,
        pool.addrs().iter().map(|a| a.to_string()).collect(),
        spill_dir.clone(),
    );
    let mut carried_items = Vec::new();
    let mut done_since = HashSet::new();
    match loaded {
        Some(loaded) if loaded.snapshot.is_some() => {
            let snap = loaded.snapshot.expect("checked");
            tracing::info!(
                pending = snap.pending.len(),
                seen = snap.seen.len(),
                unacked_items = snap.unacked.len(),
                finished = snap.finished,
                "resuming crawl from the state dir; seeds are not queued again"
            );
            crawl.scheduler.restore(crate::scheduler::FrontierSnapshot { pending: snap.pending, seen: snap.seen });
            crawl.summary = Summary {
                resumed: true,
                interrupted: false,
                per_worker: crawl.summary.per_worker.clone(),
                ..snap.summary
            };
            carried_items = snap.unacked;
            done_since = loaded.done_since;
        }
        _ => {
            for seed in settings.seeds.iter().cloned() {
                crawl.enqueue(seed);
            }
        }
    }
    let metrics = EngineMetrics::new(&settings.metrics, &pool.addrs());
    let mut progress = Progress::new(settings.progress_interval);
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
            saved: metrics.items_saved.clone(),
            failures: crawl.failures.clone(),
        },
        carried_items,
    );
    tracing::info!(
        workers = pool.len(),
        itemsaver = %settings.itemsaver,
        queued = crawl.scheduler.len(),
        "crawl starting"
    );

    let started = Instant::now();
    let elapsed_before = crawl.summary.elapsed;
    let policy = settings.scope.policy.clone();
    // Every request sent to a worker and not yet answered, by call task:
    // what a restart must redo.
    let mut in_flight: HashMap<tokio::task::Id, (Task, Instant)> = HashMap::new();
    let mut calls = JoinSet::new();
    let mut stop_deadline: Option<Instant> = None;
    let mut fatal: Option<EngineError> = None;
    let mut waiting_since: Option<Instant> = None;
    let mut last_wait_log = Instant::now();
    let mut last_state_write = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);

    loop {
        // Page and time limits end the crawl like a stop, with a reason.
        if stop_deadline.is_none() {
            let reason = if settings
                .max_pages
                .is_some_and(|max| crawl.summary.fetches >= max)
            {
                Some("page limit reached")
            } else if settings
                .max_duration
                .is_some_and(|max| elapsed_before + started.elapsed() >= max)
            {
                Some("time limit reached")
            } else {
                None
            };
            if let Some(reason) = reason {
                tracing::info!(reason, "stopping: no new dispatches");
                if let Some(d) = &settings.dashboard {
                    d.stopping(reason);
                }
                crawl.summary.stop_reason = Some(reason.into());
                crawl.summary.interrupted = true;
                stop_deadline = Some(Instant::now() + settings.shutdown_grace);
            }
        }
        let stopping = stop_deadline.is_some() || fatal.is_some();
        if !stopping {
            // Suspects of a worker loss go out one at a time (see poison.rs).
            let scheduler_idle = crawl.scheduler.is_idle();
            let out = |fp| {
                in_flight
                    .values()
                    .any(|(t, _): &(Task, Instant)| !t.robots && fingerprint(&t.request.url) == fp)
            };
            if let Some(task) = crawl.suspects.release(out, scheduler_idle) {
                crawl.scheduler.retry(task, None);
            }
        }
        // Page budget: what is counted plus what is in flight stays under
        // max_pages, so the sites see at most max_pages crawl requests.
        let mut budget_in_flight = in_flight.values().filter(|(t, _)| !t.robots).count() as u64;
        let mut wake: Option<Instant> = None;
        while !stopping
            && in_flight.len() < settings.worker_count
            && settings
                .max_pages
                .is_none_or(|max| crawl.summary.fetches + budget_in_flight < max)
        {
            match crawl.scheduler.next(Instant::now()) {
                Next::Task(task) => {
                    budget_in_flight += u64::from(!task.robots);
                    let handle = calls.spawn(call(
                        pool.clone(),
                        task.request.clone(),
                        policy.clone(),
                        settings.rpc_timeout,
                    ));
                    in_flight.insert(handle.id(), (task, Instant::now()));
                }
                Next::Wait(at) => {
                    wake = at;
                    break;
                }
                Next::Idle => break,
            }
        }
        if in_flight.is_empty()
            && (stopping || (crawl.scheduler.is_idle() && crawl.suspects.parked_len() == 0))
        {
            break;
        }
        if in_flight.is_empty() && wake.is_none() {
            // Work is queued but nothing is in flight to wake us: only
            // possible while limits say "not yet"; look again shortly.
            wake = Some(Instant::now() + Duration::from_millis(50));
        }
        tokio::select! {
            biased;
            Some(joined) = calls.join_next_with_id() => {
                let (id, outcome) = match joined {
                    Ok((id, outcome)) => (id, Some(outcome)),
                    Err(e) => (e.id(), None),
                };
                let Some((task, sent_at)) = in_flight.remove(&id) else { continue };
                let latency = sent_at.elapsed();
                let Some(Outcome { worker, result }) = outcome else {
                    // The call task panicked: nothing was learnt, send again
                    // (it may have reached the site, so it is counted).
                    crawl.scheduler.done(&task, latency, false);
                    if !task.robots {
                        crawl.summary.fetches += 1;
                        if let Some(task) = crawl.suspects.requeue(task) {
                            crawl.scheduler.retry(task, None);
                        }
                    } else {
                        crawl.scheduler.retry(task, None);
                    }
                    continue;
                };
                metrics.latency[worker].observe(latency);
                let throttle = matches!(&result, CallResult::Answered(Err(CrawlError::Fetch(FetchError::Status { status: 429 | 503, .. }))));
                crawl.scheduler.done(&task, latency, throttle);
                if task.robots {
                    crawl.robots_answer(task, result);
                    continue;
                }
                // Whatever happened, this call may have reached the site.
                crawl.summary.fetches += 1;
                if let CallResult::Answered(_) = &result {
                    crawl.suspects.on_answer(&task);
                }
                match result {
                    CallResult::Answered(Ok(parsed)) => {
                        let fp = fingerprint(&task.request.url);
                        if done_since.remove(&fp) {
                            crawl.summary.refetched += 1;
                        }
                        if let Some(state) = state.as_mut() {
                            state.record_done(fp);
                        }
                        crawl.summary.pages += 1;
                        crawl.summary.per_worker[worker].1 += 1;
                        metrics.pages.inc();
                        for request in parsed.requests {
                            crawl.enqueue(request);
                        }
                        sink.send(parsed.items);
                    }
                    CallResult::Answered(Err(CrawlError::Parse(ParseError::UnknownParser(name)))) => {
                        tracing::error!(parser = %name, url = %task.request.url, "unknown parser; stopping the crawl");
                        // Not done: keep it pending so a fixed worker can resume it.
                        crawl.scheduler.retry(task.clone(), None);
                        fatal.get_or_insert(EngineError::UnknownParser { name, url: task.request.url });
                    }
                    CallResult::Answered(Err(e)) => crawl.page_failed(task, e, &settings),
                    CallResult::Failed { kind, reason, lost } => {
                        crawl.call_failed(task, kind, &reason, lost, settings.max_attempts)
                    }
                }
            }
            _ = &mut shutdown, if stop_deadline.is_none() => {
                tracing::info!(in_flight = in_flight.len(), grace = ?settings.shutdown_grace, "stopping: no new dispatches; waiting for calls in flight");
                stop_deadline = Some(Instant::now() + settings.shutdown_grace);
                crawl.summary.interrupted = true;
                crawl.summary.stop_reason = Some("stopped by signal".into());
                if let Some(d) = &settings.dashboard {
                    d.stopping("stopped by signal");
                }
            }
            _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {}
            _ = tick.tick() => {
                let status = Status {
                    pages: crawl.summary.pages,
                    queued: crawl.scheduler.len(),
                    in_flight: in_flight.len(),
                    items: crawl.summary.items_saved + metrics.items_saved.get(),
                    errors: crawl.summary.failed(),
                    workers_up: pool.up_count(),
                    workers: pool.len(),
                    elapsed: elapsed_before + started.elapsed(),
                };
                metrics.queue.set(status.queued as i64);
                metrics.in_flight.set(status.in_flight as i64);
                metrics.workers_up.set(status.workers_up as i64);
                progress.update(&status);
                if let Some(d) = &settings.dashboard {
                    d.tick(dashboard_tick(status, &crawl, &pool, &metrics.latency, Instant::now()));
                }
                // Waiting for workers: count it, say so, give up eventually.
                if pool.up_count() == 0 {
                    let since = *waiting_since.get_or_insert_with(|| {
                        tracing::warn!(give_up_after = ?settings.worker_wait, "every worker is down; waiting for one to come back");
                        Instant::now()
                    });
                    if last_wait_log.elapsed() >= Duration::from_secs(10) {
                        tracing::warn!(waited = ?since.elapsed(), give_up_after = ?settings.worker_wait, "still waiting for a worker");
                        last_wait_log = Instant::now();
                    }
                    if since.elapsed() >= settings.worker_wait && fatal.is_none() {
                        fatal = Some(EngineError::WorkersGone(since.elapsed()));
                        stop_deadline.get_or_insert_with(Instant::now);
                    }
                } else if let Some(since) = waiting_since.take() {
                    crawl.summary.waited_for_workers += since.elapsed();
                    tracing::info!(waited = ?since.elapsed(), "a worker is back; carrying on");
                }
                if stop_deadline.is_some_and(|d| Instant::now() >= d) {
                    tracing::warn!(abandoned = in_flight.len(), "calls still in flight; leaving them pending");
                    break;
                }
                if let Some(state) = state.as_mut() {
                    if last_state_write.elapsed() >= settings.state_interval {
                        let mut snap = crawl.snapshot(in_flight.values().map(|(t, _)| t), sink.unacked().await);
                        snap.summary.elapsed = elapsed_before + started.elapsed();
                        if let Err(e) = state.write(&mut snap) {
                            tracing::error!(error = %e, dir = %state.path().display(), "cannot write crawl state");
                        }
                        last_state_write = Instant::now();
                    }
                }
            }
        }
    }
    if let Some(since) = waiting_since {
        crawl.summary.waited_for_workers += since.elapsed();
    }
    crawl.summary.worker_outages += pool.outages();
    progress.finish();
    crawl.summary.per_worker_latency_ms = pool
        .addrs()
        .iter()
        .zip(&metrics.latency)
        .filter(|(_, h)| h.count() > 0)
        .map(|(addr, h)| {
            let ms = |q| h.quantile(q).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
            (addr.to_string(), ms(0.5), ms(0.9), ms(0.99))
        })
        .collect();
    calls.abort_all();
    // Calls abandoned at stop are still pending work (robots fetches are
    // redone on resume, so they are not kept).
    let mut abandoned: Vec<Task> = in_flight
        .into_values()
        .map(|(t, _)| t)
        .filter(|t| !t.robots)
        .collect();
    // Suspects still waiting their turn are pending work too.
    abandoned.extend(crawl.suspects.drain_parked());
    crawl.absorb_scheduler_counts();
    metrics.in_flight.set(0);
    metrics
        .queue
        .set((crawl.scheduler.len() + abandoned.len()) as i64);

    let finished = sink.finish().await;
    let summary = &mut crawl.summary;
    summary.items_saved += finished.stats.saved;
    summary.save_retries += finished.stats.save_retries;
    summary.items_rejected += finished.stats.rejected;
    summary.waited_for_itemsaver += finished.stats.waited;
    summary.items_unsaved = finished.unsaved.len() as u64;
    summary.elapsed = elapsed_before + started.elapsed();
    summary.left_pending = (crawl.scheduler.len() + abandoned.len()) as u64;

    match state.as_mut() {
        Some(state) => {
            let mut snap = crawl.snapshot(abandoned.iter(), finished.unsaved);
            snap.finished =
                fatal.is_none() && !crawl.summary.interrupted && snap.pending.is_empty();
            state
                .write(&mut snap)
                .map_err(|source| EngineError::State {
                    path: state.path().to_owned(),
                    source,
                })?;
            tracing::info!(dir = %state.path().display(), pending = snap.pending.len(), unsaved_items = snap.unacked.len(), "crawl state written");
        }
        None if !finished.unsaved.is_empty() => {
            let path = settings
                .failures_file
                .as_deref()
                .and_then(Path::parent)
                .unwrap_or(Path::new("."))
                .join("unsaved-items.jsonl");
            match write_jsonl(&path, finished.unsaved.iter().map(Item::to_json)) {
                Ok(()) => {
                    tracing::error!(items = finished.unsaved.len(), path = %path.display(), "itemsaver unreachable; unsaved items written to a file")
                }
                Err(e) => {
                    tracing::error!(error = %e, path = %path.display(), "itemsaver unreachable and unsaved items cannot be written")
                }
            }
        }
        None => {}
    }
    if let Some(d) = &settings.dashboard {
        let (total, hosts) = crawl
            .scheduler
            .busiest_hosts(HOSTS_SHOWN, Instant::now());
        d.finish(&crawl.summary, fatal.is_none(), total, hosts);
    }
    match fatal {
        Some(e) => Err(e),
        None => Ok(crawl.summary),
    }
}

/// What the dashboard shows at a tick.
fn dashboard_tick(
    status: Status,
    crawl: &Crawl,
    pool: &WorkerPool,
    latency: &[Histogram],
    now: Instant,
) -> Tick {
    let (hosts_total, mut hosts) = crawl.scheduler.busiest_hosts(HOSTS_SHOWN, now);
    for h in &mut hosts {
        h.errors = crawl.failures.host_failures(&h.host);
    }
    let ms = |h: &Histogram, q| h.quantile(q).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let workers = crawl
        .summary
        .per_worker
        .iter()
        .zip(latency)
        .enumerate()
        .map(|(i, ((addr, pages), h))| WorkerView {
            addr: addr.clone(),
            up: pool.is_up(i),
            pages: *pages,
            p50_ms: ms(h, 0.5),
            p99_ms: ms(h, 0.99),
        })
        .collect();
    Tick {
        status,
        errors: crawl.summary.errors.clone(),
        hosts_total,
        hosts,
        workers,
        recent_failures: crawl.failures.recent(),
    }
}

/// The loop's own state, kept together so snapshots see all of it.
struct Crawl {
    scheduler: Scheduler,
    summary: Summary,
    failures: FailureLog,
    metrics: Arc<Registry>,
    /// Requests in flight when a worker was lost.
    suspects: Suspects,
}

/// The crawl's metric handles, taken once.
struct EngineMetrics {
    pages: Counter,
    items_saved: Counter,
    queue: Gauge,
    in_flight: Gauge,
    workers_up: Gauge,
    /// Call latency, by worker index.
    latency: Vec<Histogram>,
}

impl EngineMetrics {
    fn new(registry: &Arc<Registry>, workers: &[rpcsupport::HostAddr]) -> EngineMetrics {
        EngineMetrics {
            pages: registry.counter("crawler_pages_total", "Pages fetched and parsed.", &[]),
            items_saved: registry.counter(
                "crawler_items_saved_total",
                "Items the itemsaver acknowledged.",
                &[],
            ),
            queue: registry.gauge(
                "crawler_queue_length",
                "Requests queued or waiting out a backoff.",
                &[],
            ),
            in_flight: registry.gauge("crawler_in_flight", "Calls to workers in progress.", &[]),
            workers_up: registry.gauge("crawler_workers_up", "Workers in rotation.", &[]),
            latency: workers
                .iter()
                .map(|w| {
                    registry.histogram(
                        "crawler_rpc_latency_seconds",
                        "Time from sending a request to a worker to its answer.",
                        &[("worker", &w.to_string())],
                    )
                })
                .collect(),
        }
    }
}

impl Crawl {
    fn new(settings: &Settings, workers: Vec<String>, spill_dir: PathBuf) -> Crawl {
        Crawl {
            scheduler: Scheduler::new(
                settings.max_depth,
                settings.scope.clone(),
                settings.politeness.clone(),
            )
            .with_memory_bound(settings.queue_memory_tasks, spill_dir),
            summary: Summary {
                per_worker: workers.into_iter().map(|w| (w, 0)).collect(),
                ..Summary::default()
            },
            failures: FailureLog::new(settings.failures_file.clone()),
            metrics: settings.metrics.clone(),
            suspects: Suspects::default(),
        }
    }

    fn enqueue(&mut self, request: Request) {
        match self.scheduler.enqueue(request) {
            Ok(()) => {}
            Err(Dropped::Duplicate) => self.summary.duplicates += 1,
            Err(Dropped::TooDeep) => self.summary.too_deep += 1,
            Err(Dropped::OutOfScope(OutOfScope::BadUrl)) => self.summary.bad_urls += 1,
            Err(Dropped::OutOfScope(_)) => self.summary.out_of_scope += 1,
        }
    }

    /// A page's fetch or parse failed: transient fetch failures wait out a
    /// backoff and go again; content that is not HTML and redirects out of
    /// scope are skipped; the rest failed for good.
    fn page_failed(&mut self, task: Task, e: CrawlError, settings: &Settings) {
        match &e {
            CrawlError::Fetch(FetchError::NotHtml { .. }) => return self.skip("not_html"),
            CrawlError::Fetch(FetchError::OffsiteRedirect { .. }) => {
                return self.skip("offsite_redirect")
            }
            _ => {}
        }
        if e.is_transient() && task.retries < settings.retry_times {
            let retry_after = match &e {
                CrawlError::Fetch(FetchError::Status {
                    retry_after_secs, ..
                }) => retry_after_secs.map(Duration::from_secs),
                _ => None,
            };
            let delay = backoff(settings, task.retries, retry_after);
            // Debug, not info: a page that fails and is retried must not log
            // a line per try; its final outcome is logged once (below).
            tracing::debug!(url = %task.request.url, error = %e, retry_in = ?delay, "transient failure; retrying later");
            *self.summary.fetch_retries.entry(e.kind()).or_default() += 1;
            self.metrics
                .counter(
                    "crawler_fetch_retries_total",
                    "Fetches retried after a transient failure, by kind.",
                    &[("kind", &e.kind())],
                )
                .inc();
            let at = Instant::now() + delay;
            self.scheduler.retry(
                Task {
                    retries: task.retries + 1,
                    ..task
                },
                Some(at),
            );
            return;
        }
        tracing::warn!(url = %task.request.url, error = %e, "page failed");
        self.fail(&task, &e.kind(), &e.to_string());
    }

    /// A worker call for `task` failed at the transport level. If the pool
    /// found the worker lost with it, the request is a suspect (or, at a
    /// second loss, poison) and no attempt is used up: it was not
    /// necessarily this call that killed the worker. Otherwise the worker
    /// is fine and this call itself failed (a deadline): one attempt of
    /// `max_attempts`.
    fn call_failed(
        &mut self,
        task: Task,
        kind: &'static str,
        reason: &str,
        lost: Option<ConnectionId>,
        max_attempts: u32,
    ) {
        if let Some(connection) = lost {
            match self.suspects.on_loss(task, connection, reason) {
                Loss::Parked => {
                    tracing::warn!(%reason, "worker lost during a call; its request will be sent again (not counted as an attempt)");
                    self.count_retry(kind);
                }
                Loss::Poison { task, reason } => {
                    tracing::error!(url = %task.request.url, %reason, "request lost two workers; failed as poison, not sent again");
                    self.fail(&task, POISON, &reason);
                }
            }
            return;
        }
        let attempts = task.attempts + 1;
        let task = Task { attempts, ..task };
        if attempts < max_attempts {
            tracing::warn!(url = %task.request.url, %reason, attempts, "worker call failed; will retry on another worker");
            self.count_retry(kind);
            if let Some(task) = self.suspects.requeue(task) {
                self.scheduler.retry(task, None);
            }
        } else {
            tracing::error!(url = %task.request.url, %reason, attempts, "worker call failed; giving up on this request");
            self.suspects.forget(&task);
            self.fail(&task, kind, reason);
        }
    }

    fn count_retry(&mut self, kind: &str) {
        self.summary.retries += 1;
        self.metrics
            .counter(
                "crawler_rpc_retries_total",
                "Worker calls sent again after a transport failure.",
                &[("kind", kind)],
            )
            .inc();
    }

    fn skip(&mut self, why: &str) {
        *self.summary.skipped.entry(why.to_owned()).or_default() += 1;
        self.metrics
            .counter(
                "crawler_skipped_total",
                "Requests not crawled on purpose, by reason.",
                &[("reason", why)],
            )
            .inc();
    }

    /// The answer to a robots.txt fetch: the file, "none" (4xx: allow all)
    /// or "try again" (5xx, unreachable: the host waits).
    fn robots_answer(&mut self, task: Task, result: CallResult) {
        let now = Instant::now();
        match result {
            CallResult::Answered(Ok(parsed)) => {
                let text = parsed
                    .items
                    .first()
                    .and_then(|i| i.payload.get("body"))
                    .and_then(|v| v.as_str());
                self.scheduler
                    .robots_answer(&task, RobotsAnswer::File(text.unwrap_or("")), now);
            }
            CallResult::Answered(Err(CrawlError::Fetch(FetchError::Status { status, .. })))
                if (400..500).contains(&status) && status != 429 =>
            {
                self.scheduler.robots_answer(&task, RobotsAnswer::Missing, now);
            }
            CallResult::Answered(Err(e)) if !e.is_transient() => {
                // Redirected off-site, too large, unparsable: like a
                // missing file, RFC 9309 says to treat it as allow-all.
                tracing::info!(url = %task.request.url, error = %e, "robots.txt unusable; allowing all");
                self.scheduler.robots_answer(&task, RobotsAnswer::Missing, now);
            }
            _ => self.scheduler.robots_answer(&task, RobotsAnswer::Unavailable, now),
        }
    }

    fn absorb_scheduler_counts(&mut self) {
        let counts = self.scheduler.take_counts();
        if counts.robots_disallowed > 0 {
            *self
                .summary
                .skipped
                .entry("robots_disallowed".into())
                .or_default() += counts.robots_disallowed;
        }
        if counts.robots_unreachable > 0 {
            *self
                .summary
                .skipped
                .entry("robots_unreachable".into())
                .or_default() += counts.robots_unreachable;
        }
    }

    fn fail(&mut self, task: &Task, kind: &str, reason: &str) {
        *self.summary.errors.entry(kind.to_owned()).or_default() += 1;
        self.metrics
            .counter(
                "crawler_errors_total",
                "Requests that failed for good, by kind.",
                &[("kind", kind)],
            )
            .inc();
        self.failures
            .request(&task.request, task.attempts.max(1), kind, reason);
    }

    fn snapshot<'a>(
        &mut self,
        in_flight: impl Iterator<Item = &'a Task>,
        unacked: Vec<Item>,
    ) -> Snapshot {
        self.absorb_scheduler_counts();
        // Robots fetches are not crawl tasks: they are redone on resume.
        let mut pending: Vec<Task> = in_flight.filter(|t| !t.robots).cloned().collect();
        pending.extend(self.suspects.parked().cloned());
        let frontier = self.scheduler.snapshot();
        pending.extend(frontier.pending);
        Snapshot {
            pending,
            seen: frontier.seen,
            unacked,
            summary: self.summary.clone(),
            ..Snapshot::default()
        }
    }
}

/// Exponential backoff with jitter (between half and all of the step), at
/// least the server's `Retry-After`, at most the configured ceiling.
fn backoff(settings: &Settings, retries: u32, retry_after: Option<Duration>) -> Duration {
    let step = settings
        .retry_backoff
        .saturating_mul(2u32.saturating_pow(retries.min(20)));
    let jittered = step.mul_f64(0.5 + fastrand::f64() * 0.5);
    jittered
        .max(retry_after.unwrap_or_default())
        .min(settings.retry_max_backoff)
}

/// One call to the next worker. A failed call is followed by a health check
/// so the pool can tell a slow page (worker answers `status`) from a dead
/// worker (it does not, or the connection is gone).
async fn call(
    pool: Arc<WorkerPool>,
    request: Request,
    policy: FetchPolicy,
    timeout: Duration,
) -> Outcome {
    let worker = pool.next().await;
    let mut answer = worker
        .client
        .process(deadline_in(timeout), request.clone(), policy.clone())
        .await;
    if let Ok(Err(CrawlError::Parse(ParseError::UnknownRuleset(_)))) = &answer {
        // Restarted since it got the rules: give them again, ask again.
        if let Err(e) = pool.reload_rules(&worker).await {
            tracing::warn!(worker = %worker.addr, error = %e, "could not reload rules");
        }
        answer = worker
            .client
            .process(deadline_in(timeout), request, policy)
            .await;
    }
    let result = match answer {
        Ok(answer) => CallResult::Answered(answer),
        Err(e) => {
            let (kind, broken) = match &e {
                RpcError::DeadlineExceeded => ("rpc_deadline", false),
                RpcError::Server(_) => ("rpc_server", false),
                _ => ("rpc_disconnected", true),
            };
            let up = pool.check(&worker, broken).await;
            CallResult::Failed {
                kind,
                reason: format!("worker {}: {e}", worker.addr),
                lost: (!up).then(|| worker.connection()),
            }
        }
    };
    Outcome {
        worker: worker.index,
        result,
    }
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

fn write_jsonl(path: &Path, lines: impl Iterator<Item = serde_json::Value>) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(open_append(path)?);
    for line in lines {
        writeln!(f, "{line}")?;
    }
    f.flush()?;
    f.get_ref().sync_all()
}
