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

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rpcsupport::{connect_crawl, ConnectOptions, CrawlClient, HostAddr, ParseError, WorkerStatus};
use tarpc::context;
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

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
}

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

/// Connects, checks the worker answers a status call, and hands it the
/// crawl's rules if there are any (so a restarted worker gets them again
/// before it is back in rotation). Returns the client and the worker's
/// status (its built-in parser names, whether it can render).
async fn connect_checked(
    addr: &HostAddr,
    opts: ConnectOptions,
    rules_json: Option<&str>,
) -> Result<(CrawlClient, WorkerStatus), ConnectFailure> {
    let unreachable = |e: &dyn std::fmt::Display| ConnectFailure::Unreachable(e.to_string());
    let client = connect_crawl(addr, opts)
        .await
        .map_err(|e| unreachable(&e))?;
    let status = client
        .status(deadline_in(opts.connect_timeout))
        .await
        .map_err(|e| unreachable(&e))?;
    if let Some(json) = rules_json {
        load_rules(&client, json, opts.connect_timeout).await?;
    }
    Ok((client, status))
}

async fn load_rules(
    client: &CrawlClient,
    json: &str,
    timeout: Duration,
) -> Result<(), ConnectFailure> {
    match client
        .load_rules(deadline_in(timeout), json.to_owned())
        .await
    {
        Ok(Ok(_id)) => Ok(()),
        Ok(Err(e)) => Err(ConnectFailure::RulesRefused(e)),
        Err(e) => Err(ConnectFailure::Unreachable(e.to_string())),
    }
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

    /// The next worker that is up and can render, in a rotation of its
    /// own. While there is none it waits, until `wait` has passed since
    /// render calls first found none (see `render_missing_since`): then
    /// `None`, at once for every later call until a rendering worker is
    /// found again.
    pub async fn next_render(&self, wait: Duration) -> Option<WorkerHandle> {
        let mut up_events = self.shared.up_events.subscribe();
        let mut waiting: Option<WaitGuard<'_>> = None;
        loop {
            up_events.borrow_and_update();
            let n = self.len();
            let start = self.shared.render_cursor.fetch_add(1, Ordering::Relaxed);
            for k in 0..n {
                let index = (start + k) % n;
                if let Some(handle) = self.shared.handle(index).filter(|_| self.can_render(index)) {
                    *self.shared.render_missing_since.lock().unwrap() = None;
                    return Some(handle);
                }
            }
            let now = Instant::now();
            let since = *self
                .shared
                .render_missing_since
                .lock()
                .unwrap()
                .get_or_insert(now);
            let deadline = since + wait;
            if now >= deadline {
                return None;
            }
            waiting.get_or_insert_with(|| WaitGuard::new(&self.shared.render_waiting));
            // Woken when a worker comes back or says it can render (the
            // pool owns the sender, so it stays open while `self` lives),
            // or when the wait is over.
            tokio::select! {
                _ = up_events.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Whether worker `index` is up and can render.
    pub fn can_render(&self, index: usize) -> bool {
        let state = self.shared.slots[index].state.lock().unwrap();
        state.client.is_some() && state.can_render
    }

    /// Workers up that can render.
    pub fn render_up_count(&self) -> usize {
        (0..self.len()).filter(|&i| self.can_render(i)).count()
    }

    /// Render calls waiting for a worker that can render.
    pub fn render_waiting(&self) -> usize {
        self.shared.render_waiting.load(Ordering::Relaxed)
    }

    /// `handle`'s worker answered a render request with
    /// `RenderError::Unavailable`: no more render requests for it until a
    /// status answer says it can render again.
    pub fn cannot_render(&self, handle: &WorkerHandle) {
        let mut state = self.shared.slots[handle.index].state.lock().unwrap();
        if state.generation == handle.generation && state.can_render {
            state.can_render = false;
            tracing::warn!(worker = %handle.addr, "worker cannot render (no browser); no more render requests for it");
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

    fn mark_down(&self, handle: &WorkerHandle) {
        {
            let mut state = self.shared.slots[handle.index].state.lock().unwrap();
            if state.generation != handle.generation || state.client.is_none() {
                return; // already handled for this connection
            }
            state.client = None;
            state.generation += 1;
        }
        self.shared.outages.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(worker = %handle.addr, "worker down; taken out of rotation, reconnecting in the background");
        self.spawn_reconnect(handle.index);
    }

    fn spawn_reconnect(&self, index: usize) {
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            let addr = shared.slots[index].addr.clone();
            let mut backoff = Duration::from_millis(100);
            loop {
                tokio::time::sleep(backoff).await;
                match connect_checked(&addr, shared.opts, shared.rules_json.as_deref()).await {
                    Ok((client, status)) => {
                        {
                            let mut state = shared.slots[index].state.lock().unwrap();
                            state.client = Some(client);
                            state.generation += 1;
                            state.can_render = status.can_render;
                        }
                        shared.up_events.send_modify(|n| *n += 1);
                        tracing::info!(worker = %addr, "worker back in rotation");
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(worker = %addr, error = %e, retry_in = ?backoff, "worker still down");
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
            }
        });
        let mut tasks = self.tasks.lock().unwrap();
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }
}

/// Counts a waiting render call while it lives.
struct WaitGuard<'a>(&'a AtomicUsize);

impl<'a> WaitGuard<'a> {
    fn new(count: &'a AtomicUsize) -> WaitGuard<'a> {
        count.fetch_add(1, Ordering::Relaxed);
        WaitGuard(count)
    }
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Shared {
    /// A status answer of `handle`'s connection said whether it can
    /// render; one that now can wakes the render calls waiting.
    fn set_can_render(&self, handle: &WorkerHandle, can_render: bool) {
        let became = {
            let mut state = self.slots[handle.index].state.lock().unwrap();
            if state.generation != handle.generation {
                return;
            }
            let became = can_render && !state.can_render;
            state.can_render = can_render;
            became
        };
        if became {
            self.up_events.send_modify(|n| *n += 1);
        }
    }

    fn handle(&self, index: usize) -> Option<WorkerHandle> {
        let slot = &self.slots[index];
        let state = slot.state.lock().unwrap();
        state.client.as_ref().map(|client| WorkerHandle {
            index,
            addr: slot.addr.clone(),
            client: client.clone(),
            generation: state.generation,
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
