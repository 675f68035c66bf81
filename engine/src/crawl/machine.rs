//! The crawl as a state machine: one `Crawl` value owns every piece of
//! loop state (the frontier, the calls in flight, the stop deadline, the
//! fatal error, the worker-wait timer, the last state write), and its
//! methods are the loop's events. Every method takes `now` and never reads
//! a clock itself, and none talks to a worker: calls go out through the
//! `send` hook of [`Crawl::dispatch`] and come back as values to
//! [`Crawl::on_outcome`], so tests drive the machine directly.
//!
//! - this file: the state (`Crawl`), starting or resuming it, the stop and
//!   tick events, and what the loop reads of it.
//! - `machine/dispatch.rs`: the dispatch event.
//! - `machine/on_outcome.rs`: the outcome event.

mod dispatch;
mod on_outcome;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rpcsupport::metrics::Registry;
use rpcsupport::{HostAddr, Item};
use tokio::time::Instant;

use super::report::EngineMetrics;
use super::{CallId, EngineError};
use crate::config::Settings;
use crate::failures::FailureLog;
use crate::poison::Suspects;
use crate::progress::Progress;
use crate::render::{Learnt, RenderWait};
use crate::scheduler::{FrontierSnapshot, Scheduler, Task};
use crate::state::{Loaded, StateDir};
use crate::summary::{RecrawlCounts, Summary};

/// How often "still waiting for a worker" is logged.
const WAIT_LOG_EVERY: Duration = Duration::from_secs(10);

/// What the loop does after a dispatch.
#[derive(Debug, PartialEq)]
pub(super) enum Step {
    /// Nothing queued or in flight (or stopping and nothing in flight):
    /// the crawl is over.
    Done,
    /// Wait for an outcome, a tick, the shutdown signal, or this time.
    Wait(Option<Instant>),
}

/// What the loop does after a tick.
#[derive(Debug, PartialEq)]
pub(super) enum Tick {
    Continue,
    /// A commit of the URL store is due.
    WriteState,
    /// The stop deadline passed with calls in flight: leave them pending.
    Abandon,
}

/// A call in flight.
#[derive(Debug)]
pub(super) struct InFlight {
    pub(super) task: Task,
    sent_at: Instant,
}

/// The loop's state, all of it, so snapshots and tests see everything.
pub(super) struct Crawl<'a> {
    pub(super) settings: &'a Settings,
    pub(super) scheduler: Scheduler,
    pub(super) summary: Summary,
    pub(super) failures: FailureLog,
    /// For counters made on first use (by kind, by reason).
    pub(super) registry: Arc<Registry>,
    pub(super) metrics: EngineMetrics,
    /// Requests in flight when a worker was lost.
    pub(super) suspects: Suspects,
    /// Every request sent to a worker and not yet answered: what a
    /// restart must redo.
    pub(super) in_flight: HashMap<CallId, InFlight>,
    /// Crawl requests (not robots.txt fetches) among `in_flight`: they
    /// count toward `max_pages`.
    pages_in_flight: u64,
    next_call: u64,
    /// Set once stopping (limit, signal): no new dispatches, and calls
    /// still in flight at this time are abandoned.
    pub(super) stop_at: Option<Instant>,
    /// Why the crawl must end in error.
    pub(super) fatal: Option<EngineError>,
    /// Since when every worker has been down.
    pub(super) waiting_since: Option<Instant>,
    last_wait_log: Instant,
    pub(super) last_state_write: Instant,
    /// When this run started, and how long earlier runs of the crawl took.
    started: Instant,
    elapsed_before: Duration,
    /// Pages finished after the last commit of the run this one resumed
    /// from: fetched again now, counted as `refetched`.
    done_since: HashSet<u64>,
    pub(super) state: Option<StateDir>,
    /// Item keys to delete (of gone pages), recorded in the store and not
    /// yet handed to the deleter.
    pub(super) deletes_out: Vec<String>,
    /// The progress line (terminal) or periodic log line.
    pub(super) progress: Progress,
    /// Host and parser pairs learnt to need a browser (see `page.rs`).
    pub(super) learnt: Learnt,
    /// When to warn that render requests wait for a rendering worker.
    pub(super) render_wait: RenderWait,
}

impl<'a> Crawl<'a> {
    /// A crawl with an empty frontier, for workers at `workers`, spilling
    /// to `spill_dir`, writing its state to `state` if there is one.
    pub(super) fn new(
        settings: &'a Settings,
        workers: &[HostAddr],
        spill_dir: PathBuf,
        state: Option<StateDir>,
    ) -> Crawl<'a> {
        let now = Instant::now();
        Crawl {
            settings,
            scheduler: Scheduler::new(
                settings.max_depth,
                settings.scope.clone(),
                settings.politeness.clone(),
            )
            .with_memory_bound(settings.queue_memory_tasks, spill_dir),
            summary: Summary {
                per_worker: workers.iter().map(|w| (w.to_string(), 0)).collect(),
                ..Summary::default()
            },
            failures: FailureLog::new(settings.failures_file.clone()),
            registry: settings.metrics.clone(),
            metrics: EngineMetrics::new(&settings.metrics, workers),
            suspects: Suspects::default(),
            in_flight: HashMap::new(),
            pages_in_flight: 0,
            next_call: 0,
            stop_at: None,
            fatal: None,
            waiting_since: None,
            last_wait_log: now,
            last_state_write: now,
            started: now,
            elapsed_before: Duration::ZERO,
            done_since: HashSet::new(),
            state,
            deletes_out: Vec::new(),
            progress: Progress::new(settings.progress_interval),
            learnt: Learnt::new(settings.max_render_learnt),
            render_wait: RenderWait::default(),
        }
    }

    /// Resumes from the state dir's URL store, if it holds a crawl, or
    /// queues the seeds. Returns the items an earlier run left
    /// unacknowledged; the deletes it left are in `deletes_out`. A recrawl
    /// of a finished crawl starts its counters afresh; a resumed crawl (or
    /// recrawl) carries on with its own.
    pub(super) fn resume_or_seed(&mut self, loaded: Option<Loaded>) -> Vec<Item> {
        let Some(Loaded {
            meta: Some(meta),
            unacked,
            deletes,
            done_since,
            frontier,
        }) = loaded
        else {
            for seed in self.settings.seeds.iter().cloned() {
                self.enqueue(seed);
            }
            self.summary.recrawl.active = self.settings.recrawl.is_some();
            return Vec::new();
        };
        let recrawl = self.settings.recrawl.is_some();
        tracing::info!(
            pending = frontier.pending.len(),
            due_again = frontier.due,
            seen = frontier.seen.len(),
            unacked_items = unacked.len(),
            pending_deletes = deletes.len(),
            finished = meta.finished,
            recrawl,
            "resuming from the state dir; seeds are not queued again"
        );
        let due = frontier.due;
        self.scheduler.restore(FrontierSnapshot {
            pending: frontier.pending,
            seen: frontier.seen,
        });
        let per_worker = std::mem::take(&mut self.summary.per_worker);
        if recrawl && meta.finished {
            self.summary = Summary {
                per_worker,
                ..Summary::default()
            };
        } else {
            self.elapsed_before = meta.summary.elapsed;
            self.summary = Summary {
                resumed: true,
                interrupted: false,
                per_worker,
                ..meta.summary
            };
        }
        if recrawl {
            let r = &mut self.summary.recrawl;
            *r = RecrawlCounts {
                active: true,
                due: r.due + due,
                ..r.clone()
            };
        }
        self.done_since = done_since;
        self.deletes_out = deletes;
        unacked
    }

    /// Whether a stop (limit, signal, worker wait) has begun.
    pub(super) fn stop_begun(&self) -> bool {
        self.stop_at.is_some()
    }

    /// Whether no new calls go out.
    pub(super) fn stopping(&self) -> bool {
        self.stop_at.is_some() || self.fatal.is_some()
    }

    /// Event: stop for `reason` (a limit, a signal): no new dispatches;
    /// calls in flight get `shutdown_grace` to come back.
    pub(super) fn begin_stop(&mut self, reason: &str, now: Instant) {
        tracing::info!(
            reason,
            in_flight = self.in_flight.len(),
            grace = ?self.settings.shutdown_grace,
            "stopping: no new dispatches; waiting for calls in flight"
        );
        if let Some(d) = &self.settings.dashboard {
            d.stopping(reason);
        }
        self.summary.stop_reason = Some(reason.into());
        self.summary.interrupted = true;
        self.stop_at = Some(now + self.settings.shutdown_grace);
    }

    /// Event: the periodic tick (progress and metrics are reported
    /// separately, see `report`). Keeps the worker-wait timer (every
    /// worker down for `worker_wait` is fatal), ends the stop grace, and
    /// says when the state file is due.
    pub(super) fn on_tick(&mut self, now: Instant, workers_up: usize) -> Tick {
        if workers_up == 0 {
            self.workers_down(now);
        } else if let Some(since) = self.waiting_since.take() {
            let waited = now.saturating_duration_since(since);
            self.summary.waited_for_workers += waited;
            tracing::info!(?waited, "a worker is back; carrying on");
        }
        if self.stop_at.is_some_and(|d| now >= d) {
            tracing::warn!(
                abandoned = self.in_flight.len(),
                "calls still in flight; leaving them pending"
            );
            return Tick::Abandon;
        }
        let due = now.saturating_duration_since(self.last_state_write)
            >= self.settings.state_interval
            || self.commit_due();
        if self.state.is_some() && due {
            return Tick::WriteState;
        }
        Tick::Continue
    }

    /// Waiting for workers: count it, say so, give up eventually.
    fn workers_down(&mut self, now: Instant) {
        let give_up_after = self.settings.worker_wait;
        let since = *self.waiting_since.get_or_insert_with(|| {
            tracing::warn!(
                ?give_up_after,
                "every worker is down; waiting for one to come back"
            );
            now
        });
        let waited = now.saturating_duration_since(since);
        if now.saturating_duration_since(self.last_wait_log) >= WAIT_LOG_EVERY {
            tracing::warn!(?waited, ?give_up_after, "still waiting for a worker");
            self.last_wait_log = now;
        }
        if waited >= give_up_after && self.fatal.is_none() {
            self.fatal = Some(EngineError::WorkersGone(waited));
            self.stop_at.get_or_insert(now);
        }
    }

    /// The crawl's run time, this run and earlier ones.
    pub(super) fn elapsed(&self, now: Instant) -> Duration {
        self.elapsed_before + now.saturating_duration_since(self.started)
    }

    /// Requests queued or waiting.
    pub(super) fn queued(&self) -> usize {
        self.scheduler.len()
    }

    /// Where failed requests and refused items are recorded.
    pub(super) fn failures(&self) -> &FailureLog {
        &self.failures
    }

    /// The counter the sink bumps as items are acknowledged.
    pub(super) fn items_saved_counter(&self) -> rpcsupport::metrics::Counter {
        self.metrics.items_saved.clone()
    }
}
