//! Rendering pages that need JavaScript (issue 16): a headless browser
//! loads the page, its scripts run, and the DOM they built goes to the same
//! parsers and rules as a fetched page.
//!
//! # Layout
//!
//! - this file: [`Renderer`], the pool: one browser per worker, launched on
//!   the first render request, `max_tabs` pages at once (a semaphore),
//!   replaced after `recycle_after_pages` pages, when its process tree's
//!   resident memory passes `browser_max_rss_mb`, or when it stops
//!   answering or exits (the next request launches a fresh one).
//! - [`auto`]: when `render = "auto"` renders: the fetched page is a
//!   script shell, or lacks what its parser extracts.
//! - `browser`: finds the executable (`browser` setting), launches it
//!   headless on a fresh profile, measures and kills its process tree.
//! - `tab`: one page: its own browser context, every request it makes
//!   intercepted and fetched by the worker's [`Fetcher`] (same guard, same
//!   allowed domains, same timeouts) so the browser never opens a socket;
//!   images, media and fonts refused unless `render_load_images`; dialogs
//!   dismissed; settled once the network has been quiet for
//!   `render_idle_ms` after the load event, all within `render_timeout_ms`.
//! - `cdp`: the DevTools protocol client.
//! - `quiet_flags.rs`, included here: [`QUIET_FLAGS`], the flags that
//!   keep the browser quiet, which the test crate's browser includes too.
//!
//! # Why our own DevTools client
//!
//! We use about a dozen DevTools methods. The usual crate (chromiumoxide)
//! brings the whole generated protocol (hundreds of thousands of lines) and
//! a websocket stack, minutes of cold build on a small machine. Chromium's
//! `--remote-debugging-pipe` speaks the same JSON over two inherited file
//! descriptors, so `serde_json` and two threads are all it takes, and no
//! debugging port is ever open for anything else on the machine to reach.

pub mod auto;
mod browser;
mod cdp;
mod tab;

include!("quiet_flags.rs");

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rpcsupport::{metrics, CrawlError, FetchPolicy, RenderError};
use tokio::sync::Semaphore;

pub use browser::{tree_rss, BrowserChoice};

use crate::fetch::{Fetcher, PageHeaders};
use crate::WorkerConfig;
use browser::Browser;

/// A page as the browser left it.
#[derive(Debug)]
pub struct Rendered {
    /// Where the document came from, after the fetcher's redirects.
    pub url: url::Url,
    /// The document's HTTP status.
    pub status: u16,
    /// `document.documentElement.outerHTML` once the page settled.
    pub html: String,
    /// What the document's response headers said of it (`X-Robots-Tag`,
    /// a canonical `Link`; no validators: they describe the document, not
    /// what its scripts built).
    pub headers: PageHeaders,
    /// Requests other than the document that the worker fetched for the
    /// page, by host ([`rpcsupport::PageMeta::subrequests`]).
    pub subrequests: std::collections::BTreeMap<String, u32>,
}

/// A document already fetched over HTTP (`render = "auto"` fetched it
/// first): the browser gets it from here instead of the site, so a
/// rendered page costs the site no second fetch of it.
#[derive(Debug)]
pub struct Prefetched {
    /// Where it came from, after redirects.
    pub url: url::Url,
    /// Its text, decoded (handed to the browser as UTF-8).
    pub text: String,
    /// The text's share of `max_buffered_body_bytes`, held until the
    /// render ends.
    pub permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// What its response's headers said of it.
    pub headers: PageHeaders,
}

/// Per-page limits, from the worker's config.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    timeout: Duration,
    idle: Duration,
    load_images: bool,
    max_bytes: u64,
    max_requests: usize,
    /// The document, and the rendered DOM, at most `max_body_bytes`: a
    /// rendered page is a page.
    max_dom_bytes: u64,
}

/// The worker's browser pool.
pub struct Renderer {
    /// The executable, or why this worker cannot render.
    browser_path: Result<PathBuf, String>,
    settings: Settings,
    recycle_after: u64,
    max_rss_bytes: u64,
    /// Largest DevTools message read from the browser: a DOM of
    /// `max_body_bytes` with every character JSON-escaped (6 bytes each),
    /// plus room for the envelope.
    max_message: usize,
    /// `max_tabs`: pages rendering at once. Never closed.
    tabs: Semaphore,
    /// The browser pages are rendered on now. Retired ones live on while a
    /// page still renders on them and are killed when the last one ends.
    current: tokio::sync::Mutex<Option<Arc<Browser>>>,
    launches: AtomicU64,
    metrics: Arc<metrics::Registry>,
}

impl Renderer {
    /// A pool as `config` says (assumed validated); nothing is launched
    /// until the first render.
    pub fn new(config: &WorkerConfig, metrics: Arc<metrics::Registry>) -> Renderer {
        let browser_path = BrowserChoice::parse(&config.browser).and_then(|c| c.resolve());
        if let Err(reason) = &browser_path {
            tracing::info!(%reason, "this worker will not render pages");
        }
        Renderer {
            browser_path,
            settings: Settings {
                timeout: Duration::from_millis(config.render_timeout_ms),
                idle: Duration::from_millis(config.render_idle_ms),
                load_images: config.render_load_images,
                max_bytes: config.max_render_bytes,
                max_requests: config.max_render_requests,
                max_dom_bytes: config.max_body_bytes,
            },
            recycle_after: config.recycle_after_pages,
            max_rss_bytes: config.browser_max_rss_mb.saturating_mul(1024 * 1024),
            max_message: (config.max_body_bytes as usize)
                .saturating_mul(6)
                .saturating_add(1024 * 1024),
            tabs: Semaphore::new(config.max_tabs.min(Semaphore::MAX_PERMITS)),
            current: tokio::sync::Mutex::new(None),
            launches: AtomicU64::new(0),
            metrics,
        }
    }

    /// Whether this worker has a browser to render with.
    pub fn can_render(&self) -> bool {
        self.browser_path.is_ok()
    }

    /// Browsers launched so far (the first, and every replacement).
    pub fn launches(&self) -> u64 {
        self.launches.load(Ordering::Relaxed)
    }

    /// Loads `url` in a browser tab, its requests fetched by `fetcher`
    /// within `policy` (the document from `prefetched` when given), and
    /// returns the DOM once the page settled.
    pub async fn render(
        &self,
        fetcher: &Fetcher,
        url: &str,
        policy: &FetchPolicy,
        prefetched: Option<&Prefetched>,
    ) -> Result<Rendered, CrawlError> {
        let path = self
            .browser_path
            .as_ref()
            .map_err(|reason| RenderError::Unavailable {
                reason: reason.clone(),
            })?;
        let _tab = self
            .tabs
            .acquire()
            .await
            .expect("the tab semaphore is never closed");
        // A browser that exited since its last page (crashed, killed) may
        // not have been noticed yet: its first command then finds the pipe
        // closed, and the page is tried once more on a fresh browser.
        for attempt in 0..2 {
            let browser = self.browser(path).await?;
            let (result, healthy) = tab::render(
                &browser,
                fetcher,
                url,
                policy,
                prefetched,
                &self.settings,
                &self.metrics,
            )
            .await;
            let pages = browser.pages.fetch_add(1, Ordering::Relaxed) + 1;
            let why = if !healthy || browser.conn.is_closed() {
                Some("unresponsive")
            } else if pages >= self.recycle_after {
                Some("pages")
            } else if browser.tree_rss() > self.max_rss_bytes {
                Some("memory")
            } else {
                None
            };
            if let Some(why) = why {
                tracing::debug!(pages, why, "retiring the browser");
                self.metrics
                    .counter(
                        "worker_browser_recycled_total",
                        "Browsers replaced, by why.",
                        &[("why", why)],
                    )
                    .inc();
                self.retire(&browser).await;
            }
            match result {
                Err(tab::Failure::Stale(_)) if attempt == 0 => continue,
                Err(tab::Failure::Stale(e)) => return Err(e),
                Err(tab::Failure::Page(e)) => return Err(e),
                Ok(rendered) => return Ok(rendered),
            }
        }
        unreachable!("the second attempt returns")
    }

    /// The pid of the browser pages are rendered on now, if one runs (to
    /// measure its memory, or for tests to kill it).
    pub async fn browser_pid(&self) -> Option<u32> {
        self.current.lock().await.as_ref().map(|b| b.pid())
    }

    /// The current browser, launched if there is none or it has exited.
    async fn browser(&self, path: &std::path::Path) -> Result<Arc<Browser>, RenderError> {
        let mut current = self.current.lock().await;
        if let Some(browser) = current.as_ref().filter(|b| !b.conn.is_closed()) {
            return Ok(browser.clone());
        }
        *current = None;
        let browser = Arc::new(
            Browser::launch(path, self.max_message)
                .await
                .map_err(|reason| RenderError::Unavailable { reason })?,
        );
        self.launches.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .counter(
                "worker_browser_launches_total",
                "Browsers launched to render pages.",
                &[],
            )
            .inc();
        tracing::info!(browser = %path.display(), "browser launched");
        *current = Some(browser.clone());
        Ok(browser)
    }

    /// Stops giving out `browser`; it is killed once its last page ends.
    async fn retire(&self, browser: &Arc<Browser>) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, browser)) {
            *current = None;
        }
    }
}
