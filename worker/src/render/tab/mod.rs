//! One page rendered in its own browser context (no cookies, storage or
//! cache shared with any other page), every request it makes answered by
//! the worker's fetcher.
//!
//! # Layout
//!
//! - this file: [`render`] (a context and a page opened, run, disposed)
//!   and the page's [`Tab`]: set up, navigated, settled once its network
//!   is quiet after the load event, its DOM read.
//! - `answer`: each request the page makes, refused or fetched within its
//!   budgets and handed back.

mod answer;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use rpcsupport::{metrics, CrawlError, FetchError, FetchPolicy, RenderError};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::browser::Browser;
use super::cdp::{CdpError, Connection, Event};
use super::{Prefetched, Rendered, Settings};
use crate::fetch::{Fetcher, PageHeaders};
use answer::paused;

/// Run in every frame before its own scripts: dialogs return at once, as
/// if dismissed, and WebRTC is gone (its UDP would bypass the worker's
/// fetcher; the browser's flags stop it too).
const PRELUDE: &str = "window.alert = function () {}; \
    window.confirm = function () { return false; }; \
    window.prompt = function () { return null; }; \
    delete window.RTCPeerConnection; delete window.webkitRTCPeerConnection; \
    delete window.RTCDataChannel;";

/// Longest a setup or clean-up command may take: the browser answers
/// these at once unless it is stuck.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a page was not rendered.
pub(crate) enum Failure {
    /// The browser was gone before the page began (its pipe was closed at
    /// the first command): worth one more try on a fresh browser.
    Stale(CrawlError),
    /// The page's own outcome.
    Page(CrawlError),
}

/// Renders `url` on `browser`. The flag says whether the browser still
/// answered (false: replace it).
pub(crate) async fn render(
    browser: &Browser,
    fetcher: &Fetcher,
    url: &str,
    policy: &FetchPolicy,
    prefetched: Option<&Prefetched>,
    settings: &Settings,
    metrics: &metrics::Registry,
) -> (Result<Rendered, Failure>, bool) {
    let deadline = Instant::now() + settings.timeout;
    let conn = &browser.conn;
    let failed = |reason: String| -> CrawlError {
        RenderError::Failed {
            url: url.to_owned(),
            reason,
        }
        .into()
    };
    let context = match conn
        .call(
            None,
            "Target.createBrowserContext",
            json!({ "disposeOnDetach": true }),
            COMMAND_TIMEOUT,
        )
        .await
    {
        Ok(v) => str_field(&v, "browserContextId"),
        Err(e @ CdpError::Closed) => return (Err(Failure::Stale(failed(e.to_string()))), false),
        Err(e) => return (Err(Failure::Page(failed(e.to_string()))), false),
    };
    let page = open_page(conn, &context).await;
    let result = match page {
        Ok(session) => {
            let mut tab = Tab {
                conn,
                session: &session,
                fetcher,
                policy,
                prefetched,
                settings,
                metrics,
                url,
                deadline,
                requests: AtomicUsize::new(0),
                bytes: AtomicU64::new(0),
                subrequests: Mutex::new(BTreeMap::new()),
                document: Mutex::new(None),
                document_claimed: AtomicBool::new(false),
            };
            let result = tab.run().await;
            conn.unsubscribe(&session);
            result
        }
        Err(e) => Err(failed(e.to_string())),
    };
    // Disposing the context closes the page, whatever it is doing (a
    // script in an endless loop included). A browser that cannot do that
    // is replaced.
    let disposed = conn
        .call(
            None,
            "Target.disposeBrowserContext",
            json!({ "browserContextId": context }),
            COMMAND_TIMEOUT,
        )
        .await;
    if let Err(e) = &disposed {
        tracing::debug!(%url, error = %e, "could not close a page's context");
    }
    (result.map_err(Failure::Page), disposed.is_ok())
}

/// A blank page in `context`, attached, with its requests intercepted;
/// its session id.
async fn open_page(conn: &Connection, context: &str) -> Result<String, CdpError> {
    let target = conn
        .call(
            None,
            "Target.createTarget",
            json!({ "url": "about:blank", "browserContextId": context }),
            COMMAND_TIMEOUT,
        )
        .await?;
    let attached = conn
        .call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": str_field(&target, "targetId"), "flatten": true }),
            COMMAND_TIMEOUT,
        )
        .await?;
    let session = str_field(&attached, "sessionId");
    Ok(session)
}

fn str_field(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_owned()
}

/// What the document's fetch gave: where it came from, its status, what
/// its headers said of it.
type Document = Result<(url::Url, u16, PageHeaders), FetchError>;

/// One page's render: its session, limits and tallies.
struct Tab<'a> {
    conn: &'a Connection,
    session: &'a str,
    fetcher: &'a Fetcher,
    policy: &'a FetchPolicy,
    /// The document, when it was fetched already.
    prefetched: Option<&'a Prefetched>,
    settings: &'a Settings,
    metrics: &'a metrics::Registry,
    url: &'a str,
    deadline: Instant,
    /// Requests the page made, against `max_render_requests`.
    requests: AtomicUsize,
    /// Bytes handed to the page, against `max_render_bytes`.
    bytes: AtomicU64,
    /// Requests other than the document that went to the fetcher, by host
    /// (bounded: at most `max_render_requests` reach it).
    subrequests: Mutex<BTreeMap<String, u32>>,
    /// The document's outcome, once fetched.
    document: Mutex<Option<Document>>,
    /// Whether the first document request has arrived (later ones are
    /// frames or the page navigating itself, fetched like subresources).
    document_claimed: AtomicBool,
}

/// A request the page made, as the browser paused it.
struct Paused {
    id: String,
    url: String,
    method: String,
    resource: String,
}

impl Tab<'_> {
    /// The document's outcome. (A poisoned lock only means a panic in a
    /// field assignment; the value is still whole.)
    fn doc(&self) -> std::sync::MutexGuard<'_, Option<Document>> {
        self.document.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn call_timeout(&self) -> Duration {
        self.deadline
            .saturating_duration_since(Instant::now())
            .min(COMMAND_TIMEOUT)
    }

    fn timeout(&self) -> CrawlError {
        RenderError::Timeout {
            url: self.url.to_owned(),
        }
        .into()
    }

    fn failed(&self, reason: impl Into<String>) -> CrawlError {
        RenderError::Failed {
            url: self.url.to_owned(),
            reason: reason.into(),
        }
        .into()
    }

    async fn run(&mut self) -> Result<Rendered, CrawlError> {
        let mut events = self.conn.subscribe(self.session);
        let session = Some(self.session);
        for (method, params) in [
            (
                "Fetch.enable",
                json!({ "patterns": [{ "urlPattern": "*", "requestStage": "Request" }] }),
            ),
            ("Page.enable", json!({})),
            // Dialogs answered in the page itself: a script that opens a
            // million of them runs on instead of waiting for a million
            // round trips. (Those that still open, a `beforeunload`, are
            // dismissed as they come.) No WebRTC.
            (
                "Page.addScriptToEvaluateOnNewDocument",
                json!({ "source": PRELUDE }),
            ),
        ] {
            self.conn
                .call(session, method, params, COMMAND_TIMEOUT)
                .await
                .map_err(|e| self.failed(e.to_string()))?;
        }
        self.settle(&mut events).await?;
        let document = self.doc().take();
        let (url, status, headers) = match document {
            Some(Ok(doc)) => doc,
            Some(Err(e)) => return Err(e.into()),
            None => return Err(self.failed("the page loaded no document")),
        };
        let html = self.dom().await?;
        let subrequests =
            std::mem::take(&mut *self.subrequests.lock().unwrap_or_else(|e| e.into_inner()));
        Ok(Rendered {
            url,
            status,
            html,
            headers,
            subrequests,
        })
    }

    /// Navigates and answers the page's requests until the network has
    /// been quiet for `render_idle_ms` after the load event.
    async fn settle(
        &self,
        events: &mut tokio::sync::mpsc::Receiver<Event>,
    ) -> Result<(), CrawlError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let navigate = self.conn.call(
            Some(self.session),
            "Page.navigate",
            json!({ "url": self.url }),
            left,
        );
        tokio::pin!(navigate);
        let mut navigated = false;
        let mut answering = FuturesUnordered::new();
        let mut dismissing = FuturesUnordered::new();
        let mut quiet = Quiet {
            idle: self.settings.idle,
            loaded: false,
            at: None,
        };
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(self.deadline) => return Err(self.timeout()),
                _ = tokio::time::sleep_until(quiet.at.unwrap_or(self.deadline)), if quiet.at.is_some() => {
                    return Ok(());
                }
                answer = &mut navigate, if !navigated => {
                    navigated = true;
                    self.navigated(answer)?;
                }
                Some(()) = answering.next() => {
                    if let Some(e) = self.refused_document() {
                        return Err(e.into());
                    }
                    quiet.answered(answering.is_empty());
                }
                Some(_) = dismissing.next() => {}
                event = events.recv() => {
                    let Some(event) = event else {
                        return Err(self.failed("the browser went away"));
                    };
                    match self.read_event(&event)? {
                        Step::Answer(paused) => {
                            quiet.at = None;
                            let is_document = paused.resource == "Document"
                                && !self.document_claimed.swap(true, Ordering::Relaxed);
                            answering.push(self.answer(paused, is_document));
                        }
                        Step::Loaded => quiet.loaded(answering.is_empty()),
                        Step::Dismiss => dismissing.push(self.conn.call(
                            Some(self.session),
                            "Page.handleJavaScriptDialog",
                            json!({ "accept": false }),
                            COMMAND_TIMEOUT,
                        )),
                        Step::Nothing => {}
                    }
                }
            }
        }
    }

    /// The navigation's answer: an error when the page could not be
    /// loaded (a refused document says why better than the browser does).
    fn navigated(&self, answer: Result<Value, CdpError>) -> Result<(), CrawlError> {
        let error = match answer {
            Ok(v) => v
                .get("errorText")
                .and_then(Value::as_str)
                .map(str::to_owned),
            Err(e) => Some(e.to_string()),
        };
        match error {
            None => Ok(()),
            Some(error) => Err(match self.doc().take() {
                Some(Err(e)) => e.into(),
                _ => self.failed(error),
            }),
        }
    }

    /// The document's refusal, once its fetch failed (taken, so it is
    /// reported once); a fetched document stays for [`Tab::run`].
    fn refused_document(&self) -> Option<FetchError> {
        let mut doc = self.doc();
        match doc.take() {
            Some(Err(e)) => Some(e),
            other => {
                *doc = other;
                None
            }
        }
    }

    /// What an event from the page asks of the settle loop; an error when
    /// the page is gone.
    fn read_event(&self, event: &Event) -> Result<Step, CrawlError> {
        Ok(match event.method.as_str() {
            "Fetch.requestPaused" => Step::Answer(paused(&event.params)),
            "Page.loadEventFired" => Step::Loaded,
            "Page.javascriptDialogOpening" => Step::Dismiss,
            "Inspector.targetCrashed" => return Err(self.failed("the page's renderer crashed")),
            "Target.detachedFromTarget" => return Err(self.failed("the page was closed")),
            _ => Step::Nothing,
        })
    }

    /// The DOM, within `max_body_bytes` (measured in the page, so a bigger
    /// one is never sent).
    async fn dom(&self) -> Result<String, CrawlError> {
        let limit = self.settings.max_dom_bytes;
        let expression = format!(
            "(() => {{ const h = document.documentElement ? document.documentElement.outerHTML : ''; \
             const n = new TextEncoder().encode(h).length; return n > {limit} ? n : h; }})()"
        );
        let left = self.deadline.saturating_duration_since(Instant::now());
        let answer = self
            .conn
            .call(
                Some(self.session),
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
                left,
            )
            .await
            .map_err(|e| match e {
                CdpError::Timeout(_) => self.timeout(),
                e => self.failed(e.to_string()),
            })?;
        match answer.pointer("/result/value") {
            Some(Value::String(html)) => Ok(html.clone()),
            Some(Value::Number(_)) => Err(FetchError::TooLarge {
                url: self.url.to_owned(),
                limit,
            }
            .into()),
            _ => Err(self.failed("could not read the page's DOM")),
        }
    }
}

/// What one event asks of [`Tab::settle`].
enum Step {
    /// A request the page made, to answer.
    Answer(Paused),
    /// The load event: the page may settle once its network is quiet.
    Loaded,
    /// A dialog that opened anyway (a `beforeunload`), to dismiss.
    Dismiss,
    /// Nothing to do.
    Nothing,
}

/// When a page has settled: its network quiet for `idle` after the load
/// event, with no request being answered.
struct Quiet {
    idle: Duration,
    loaded: bool,
    /// When it will have settled, unless a request comes first.
    at: Option<Instant>,
}

impl Quiet {
    /// The load event fired; `idle` says whether no request is pending.
    fn loaded(&mut self, idle: bool) {
        self.loaded = true;
        self.answered(idle);
    }

    /// A request was answered; `idle` says whether none is left pending.
    fn answered(&mut self, idle: bool) {
        if self.loaded && idle {
            self.at = Some(Instant::now() + self.idle);
        }
    }
}
