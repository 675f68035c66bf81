//! Step 3: the worker pool. One RPC client per worker host, handed out
//! round-robin through a channel: a feeder task cycles over the workers that
//! are up and pushes each into a bounded channel; a dispatch task takes
//! whichever comes next. tarpc clients multiplex many calls on one
//! connection, so a handed-out client is a cheap clone, never exclusive.
//!
//! A worker whose connection breaks, or that stops answering even the cheap
//! `status` call, is marked down: the feeder skips it and a background task
//! reconnects with backoff, putting it back when it answers. So a worker
//! restarted on the same address rejoins by itself, and a worker that is
//! merely slow on one page is never taken out (see [`WorkerPool::check`]).
//!
//! Requests that need a browser take [`WorkerPool::next_render`] instead:
//! the next worker, in its own rotation, that is up and said it can render
//! (`WorkerStatus::can_render`, read from the status answers the pool asks
//! for anyway: at connect, at reconnect and on health checks; a worker that
//! answers a render request with `RenderError::Unavailable` is marked
//! unable until its status says otherwise). While none is, it waits.
//!
//! - this file: the pool's state, [`WorkerPool::connect`], the rotation
//!   ([`WorkerPool::next`]) and [`WorkerPool::check`].
//! - `pool/reconnect.rs`: connecting a worker (status, rules) and taking a
//!   lost one out of rotation until it answers again.
//! - `pool/render.rs`: [`WorkerPool::next_render`] and what the pool knows
//!   of who can render.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rpcsupport::{ConnectOptions, CrawlClient, FetchPolicy, HostAddr, ParseError, PolicyRef};
use tarpc::context;
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

mod reconnect;
mod render;

use reconnect::{connect_checked, load_rules};

/// One worker's client and where it lives.
#[derive(Clone)]
pub struct WorkerHandle {
    /// Position in the pool, for per-worker counts.
    pub index: usize,
    /// The worker's address.
    pub addr: HostAddr,
    /// The RPC client.
    pub client: CrawlClient,
    /// Which connection of this worker the client belongs to; a failure
    /// reported for an older connection does not take down a newer one.
    generation: u64,
    /// Whether this connection holds the crawl's policy (a call that gave
    /// it was answered), so calls can name it instead of sending it.
    policy_given: Arc<AtomicBool>,
}

/// The id the crawl's one fetch policy goes by on every connection.
const CRAWL_POLICY: u64 = 1;

/// One connection to one worker: the identity of a loss. Every call that
/// fails because this connection died reports the same id, so the crawl
/// can tell one loss under many calls from two separate losses
/// ([`crate::poison`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionId {
    /// The worker's position in the pool.
    pub worker: usize,
    /// Which of its connections.
    pub generation: u64,
}

impl WorkerHandle {
    /// The crawl's `policy` as this call should carry it: named once the
    /// connection holds it, whole until then.
    pub fn policy_ref(&self, policy: &FetchPolicy) -> PolicyRef {
        if self.policy_given.load(Ordering::Relaxed) {
            PolicyRef::Known(CRAWL_POLICY)
        } else {
            PolicyRef::Given {
                id: CRAWL_POLICY,
                policy: policy.clone(),
            }
        }
    }

    /// Records what an answered call says of the policy: held, if the call
    /// gave it; not held, if the worker answered that it does not know it.
    pub fn policy_answered(&self, sent: &PolicyRef, known: bool) {
        match (sent, known) {
            (PolicyRef::Given { .. }, true) => self.policy_given.store(true, Ordering::Relaxed),
            (_, false) => self.policy_given.store(false, Ordering::Relaxed),
            _ => {}
        }
    }

    /// The connection this handle's client uses.
    pub fn connection(&self) -> ConnectionId {
        ConnectionId {
            worker: self.index,
            generation: self.generation,
        }
    }
}

/// No worker could be used at start.
#[derive(Debug, Error)]
#[error("none of the worker hosts could be reached: {details}")]
pub struct NoWorkers {
    /// Each host with why it failed.
    pub details: String,
}

/// Why a worker could not be put in rotation.
#[derive(Debug, Error)]
pub enum ConnectFailure {
    /// It could not be reached, or did not answer.
    #[error("{0}")]
    Unreachable(String),
    /// It answered, and refused the crawl's rules.
    #[error("worker refused the rules: {0}")]
    RulesRefused(ParseError),
}

struct Slot {
    addr: HostAddr,
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    /// `None` while the worker is down.
    client: Option<CrawlClient>,
    generation: u64,
    /// Its last status said it can render, and no render request has
    /// been refused by it since.
    can_render: bool,
    /// The current connection holds the crawl's policy; a new one per
    /// connection.
    policy_given: Arc<AtomicBool>,
}

struct Shared {
    slots: Vec<Slot>,
    /// Bumped whenever a worker comes back, so an idle feeder wakes up.
    up_events: watch::Sender<u64>,
    /// The crawl's rules (canonical JSON), loaded into every worker.
    rules_json: Option<String>,
    /// Built-in parser names the workers reported.
    parsers: Mutex<Vec<String>>,
    /// Times a worker was taken out of rotation.
    outages: AtomicU64,
    opts: ConnectOptions,
    /// Where the rendering rotation goes on from.
    render_cursor: AtomicUsize,
    /// Render calls waiting for a worker that can render.
    render_waiting: AtomicUsize,
    /// Since when render calls found no worker that can render (`None`
    /// while one is found). The wait is counted from here, not per call,
    /// so once it is over every later render call gives up at once
    /// instead of holding its host's slot for a wait of its own.
    render_missing_since: Mutex<Option<Instant>>,
}

/// The pool; dropping it stops the feeder and the reconnect tasks.
pub struct WorkerPool {
    next: async_channel::Receiver<WorkerHandle>,
    shared: Arc<Shared>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl WorkerPool {
    /// Connects to every host, checks each answers and gives it the rules.
    /// Hosts that fail are logged and retried in the background; if all
    /// fail, the error names them. A worker that refuses the rules stops
    /// the start: the workers agree on what the rules mean, so the rules
    /// (or that worker) must be fixed first.
    pub async fn connect(
        hosts: &[HostAddr],
        opts: ConnectOptions,
        rules_json: Option<String>,
    ) -> Result<WorkerPool, crate::EngineError> {
        let attempts = hosts
            .iter()
            .map(|addr| connect_checked(addr, opts, rules_json.as_deref()));
        let results = futures::future::join_all(attempts).await;
        let mut details = String::new();
        let mut slots = Vec::new();
        let mut parsers = Vec::new();
        for (addr, result) in hosts.iter().zip(results) {
            let mut can_render = false;
            let client = match result {
                Ok((client, status)) => {
                    parsers = status.parsers;
                    can_render = status.can_render;
                    Some(client)
                }
                Err(ConnectFailure::RulesRefused(error)) => {
                    return Err(crate::EngineError::RulesRefused {
                        worker: addr.clone(),
                        error,
                    });
                }
                Err(e) => {
                    tracing::warn!(worker = %addr, error = %e, "worker unreachable at start; will keep trying");
                    let sep = if details.is_empty() { "" } else { "; " };
                    let _ = write!(details, "{sep}{addr} ({e})");
                    None
                }
            };
            slots.push(Slot {
                addr: addr.clone(),
                state: Mutex::new(SlotState {
                    client,
                    generation: 0,
                    can_render,
                    policy_given: Arc::default(),
                }),
            });
        }
        if slots
            .iter()
            .all(|s| s.state.lock().unwrap().client.is_none())
        {
            return Err(NoWorkers { details }.into());
        }
        let (up_events, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            slots,
            up_events,
            rules_json,
            parsers: Mutex::new(parsers),
            outages: AtomicU64::new(0),
            opts,
            render_cursor: AtomicUsize::new(0),
            render_waiting: AtomicUsize::new(0),
            render_missing_since: Mutex::new(None),
        });
        // Capacity 1: the channel holds just the *next* worker, so the
        // rotation stays round-robin however many dispatchers wait.
        let (tx, next) = async_channel::bounded(1);
        let feeder = tokio::spawn(feed(shared.clone(), tx));
        let pool = WorkerPool {
            next,
            shared,
            tasks: Mutex::new(vec![feeder]),
        };
        for index in 0..pool.shared.slots.len() {
            if pool.handle(index).is_none() {
                pool.spawn_reconnect(index);
            }
        }
        Ok(pool)
    }

    /// The next worker that is up, in rotation. Waits while all are down.
    pub async fn next(&self) -> WorkerHandle {
        loop {
            // The feeder stops only when the pool is dropped, so the channel
            // stays open while `self` exists.
            let handle = self
                .next
                .recv()
                .await
                .expect("pool feeder stopped while the pool is alive");
            // A handle may have waited in the channel while its worker went
            // down; skip it rather than send a request to a dead connection.
            if self.is_current(&handle) {
                return handle;
            }
        }
    }

    /// Number of workers, up or down.
    pub fn len(&self) -> usize {
        self.shared.slots.len()
    }

    /// Whether the pool has no workers at all (never true once connected).
    pub fn is_empty(&self) -> bool {
        self.shared.slots.is_empty()
    }

    /// Addresses by index.
    pub fn addrs(&self) -> Vec<HostAddr> {
        self.shared.slots.iter().map(|s| s.addr.clone()).collect()
    }

    /// The built-in parser names the workers reported at start.
    pub fn builtin_parsers(&self) -> Vec<String> {
        self.shared.parsers.lock().unwrap().clone()
    }

    /// Gives `handle`'s worker the crawl's rules again (it answered that it
    /// does not know them: restarted between two calls).
    pub async fn reload_rules(&self, handle: &WorkerHandle) -> Result<(), String> {
        match &self.shared.rules_json {
            Some(json) => load_rules(&handle.client, json, self.shared.opts.connect_timeout)
                .await
                .map_err(|e| e.to_string()),
            None => Err("this crawl has no rules".into()),
        }
    }

    /// Times a worker was taken out of rotation so far.
    pub fn outages(&self) -> u64 {
        self.shared.outages.load(Ordering::Relaxed)
    }

    /// Whether worker `index` is in rotation.
    pub fn is_up(&self, index: usize) -> bool {
        self.handle(index).is_some()
    }

    /// Workers currently up.
    pub fn up_count(&self) -> usize {
        (0..self.len())
            .filter(|&i| self.handle(i).is_some())
            .count()
    }

    fn handle(&self, index: usize) -> Option<WorkerHandle> {
        self.shared.handle(index)
    }

    fn is_current(&self, h: &WorkerHandle) -> bool {
        let state = self.shared.slots[h.index].state.lock().unwrap();
        state.client.is_some() && state.generation == h.generation
    }

    /// After a call to `handle` failed at the transport level: asks the
    /// worker for its status with a short deadline. If it answers, the
    /// worker is fine and only the page was slow; if not, it is marked down
    /// and reconnected in the background. Returns whether it is up.
    pub async fn check(&self, handle: &WorkerHandle, broken_connection: bool) -> bool {
        if !broken_connection {
            let probe = handle
                .client
                .status(deadline_in(self.shared.opts.connect_timeout))
                .await;
            if let Ok(status) = probe {
                self.shared.set_can_render(handle, status.can_render);
                return true;
            }
        }
        self.mark_down(handle);
        false
    }
}

impl Shared {
    fn handle(&self, index: usize) -> Option<WorkerHandle> {
        let slot = &self.slots[index];
        let state = slot.state.lock().unwrap();
        state.client.as_ref().map(|client| WorkerHandle {
            index,
            addr: slot.addr.clone(),
            client: client.clone(),
            generation: state.generation,
            policy_given: state.policy_given.clone(),
        })
    }
}

/// Cycles over the workers that are up, forever; sleeps while none is.
async fn feed(shared: Arc<Shared>, tx: async_channel::Sender<WorkerHandle>) {
    let mut up_events = shared.up_events.subscribe();
    loop {
        up_events.borrow_and_update();
        let mut sent = false;
        for index in 0..shared.slots.len() {
            if let Some(handle) = shared.handle(index) {
                if tx.send(handle).await.is_err() {
                    return; // pool dropped
                }
                sent = true;
            }
        }
        if !sent && up_events.changed().await.is_err() {
            return;
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// A context whose deadline is `timeout` from now.
///
/// The one `std::time::Instant` in the engine: tarpc's context carries
/// one, and sends it as "time left", so it must be on the real clock the
/// RPC runs on, not the crawl's (possibly paused) tokio clock.
pub fn deadline_in(timeout: Duration) -> context::Context {
    let mut ctx = context::current();
    ctx.deadline = std::time::Instant::now() + timeout;
    ctx
}
