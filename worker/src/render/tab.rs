//! One page rendered in its own browser context (no cookies, storage or
//! cache shared with any other page), every request it makes answered by
//! the worker's fetcher.

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
use super::cdp::{CdpError, Connection};
use super::{Prefetched, Rendered, Settings};
use crate::fetch::{Fetcher, PageHeaders, Resource};

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
        events: &mut tokio::sync::mpsc::Receiver<super::cdp::Event>,
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
        let mut loaded = false;
        let mut idle_at: Option<Instant> = None;
        let idle = self.settings.idle;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(self.deadline) => return Err(self.timeout()),
                _ = tokio::time::sleep_until(idle_at.unwrap_or(self.deadline)), if idle_at.is_some() => {
                    return Ok(());
                }
                answer = &mut navigate, if !navigated => {
                    navigated = true;
                    let error = match answer {
                        Ok(v) => v.get("errorText").and_then(Value::as_str).map(str::to_owned),
                        Err(e) => Some(e.to_string()),
                    };
                    if let Some(error) = error {
                        // A refused document says why better than the browser does.
                        return Err(match self.doc().take() {
                            Some(Err(e)) => e.into(),
                            _ => self.failed(error),
                        });
                    }
                }
                Some(()) = answering.next() => {
                    let refused = {
                        let mut doc = self.doc();
                        match doc.take() {
                            Some(Err(e)) => Some(e),
                            other => {
                                *doc = other;
                                None
                            }
                        }
                    };
                    if let Some(e) = refused {
                        return Err(e.into());
                    }
                    if loaded && answering.is_empty() {
                        idle_at = Some(Instant::now() + idle);
                    }
                }
                Some(_) = dismissing.next() => {}
                event = events.recv() => {
                    let Some(event) = event else {
                        return Err(self.failed("the browser went away"));
                    };
                    match event.method.as_str() {
                        "Fetch.requestPaused" => {
                            idle_at = None;
                            let paused = paused(&event.params);
                            let is_document = paused.resource == "Document"
                                && !self.document_claimed.swap(true, Ordering::Relaxed);
                            answering.push(self.answer(paused, is_document));
                        }
                        "Page.loadEventFired" => {
                            loaded = true;
                            if answering.is_empty() {
                                idle_at = Some(Instant::now() + idle);
                            }
                        }
                        "Page.javascriptDialogOpening" => {
                            dismissing.push(self.conn.call(
                                Some(self.session),
                                "Page.handleJavaScriptDialog",
                                json!({ "accept": false }),
                                COMMAND_TIMEOUT,
                            ));
                        }
                        "Inspector.targetCrashed" => {
                            return Err(self.failed("the page's renderer crashed"));
                        }
                        "Target.detachedFromTarget" => {
                            return Err(self.failed("the page was closed"));
                        }
                        _ => {}
                    }
                }
            }
        }
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

    /// Answers one paused request: refused, or fetched by the worker and
    /// handed to the page.
    async fn answer(&self, paused: Paused, is_document: bool) {
        let outcome = match self.refusal(&paused, is_document) {
            Some(reason) => Err((reason, "BlockedByClient")),
            None => self.fetch(&paused, is_document).await,
        };
        let session = Some(self.session);
        let timeout = self.call_timeout();
        let sent = match outcome {
            Ok(resource) => {
                let headers: Vec<Value> = resource
                    .headers
                    .iter()
                    .map(|(name, value)| json!({ "name": name, "value": value }))
                    .collect();
                let params = json!({
                    "requestId": paused.id,
                    "responseCode": resource.status,
                    "responseHeaders": headers,
                    "body": base64(&resource.body),
                });
                drop(resource);
                self.conn
                    .call(session, "Fetch.fulfillRequest", params, timeout)
                    .await
            }
            Err((reason, error)) => {
                self.refused(reason);
                self.conn
                    .call(
                        session,
                        "Fetch.failRequest",
                        json!({ "requestId": paused.id, "errorReason": error }),
                        timeout,
                    )
                    .await
            }
        };
        if let Err(e) = sent {
            tracing::debug!(url = %paused.url, error = %e, "could not answer a page's request");
        }
    }

    /// Why `paused` is refused without being fetched, if it is.
    fn refusal(&self, paused: &Paused, is_document: bool) -> Option<&'static str> {
        // Counted as the page asks, whatever the answer.
        let count = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        if count > self.settings.max_requests {
            return Some("requests");
        }
        if is_document {
            return None;
        }
        if !self.settings.load_images
            && matches!(paused.resource.as_str(), "Image" | "Media" | "Font")
        {
            return Some("media");
        }
        // A crawler has nothing to send: only reads are fetched for a page.
        if paused.method != "GET" {
            return Some("method");
        }
        let parsed = url::Url::parse(&paused.url).ok()?;
        // The browser asks for the site's icon on its own, for no page.
        if parsed.path() == "/favicon.ico" {
            return Some("media");
        }
        match parsed.host_str() {
            Some(host) if self.policy.allows_host(host) => None,
            _ => Some("offsite"),
        }
    }

    /// Fetches `paused` through the worker's fetcher, within the page's
    /// byte budget; a failure as (counted reason, the browser's error).
    async fn fetch(
        &self,
        paused: &Paused,
        is_document: bool,
    ) -> Result<Resource, (&'static str, &'static str)> {
        if let (true, Some(doc)) = (is_document, self.prefetched) {
            *self.doc() = Some(Ok((doc.url.clone(), 200, doc.headers.clone())));
            self.bytes
                .fetch_add(doc.text.len() as u64, Ordering::Relaxed);
            return Ok(Resource {
                url: doc.url.clone(),
                status: 200,
                // Decoded already: whatever its <meta charset> says, the
                // header's charset wins.
                headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
                body: doc.text.as_bytes().to_vec(),
                permit: None,
            });
        }
        let room = self
            .settings
            .max_bytes
            .saturating_sub(self.bytes.load(Ordering::Relaxed))
            .min(self.settings.max_dom_bytes);
        if !is_document {
            if let Some(host) = url::Url::parse(&paused.url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
            {
                *self
                    .subrequests
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(host)
                    .or_default() += 1;
            }
        }
        let fetched = self
            .fetcher
            .fetch_resource(&paused.url, self.policy, room, self.deadline)
            .await;
        let fetched = if is_document {
            let checked = fetched.and_then(|r| check_document(&paused.url, r));
            *self.doc() = Some(
                checked
                    .as_ref()
                    .map(|r| (r.url.clone(), r.status, page_headers(r)))
                    .map_err(Clone::clone),
            );
            checked
        } else {
            fetched
        };
        match fetched {
            Ok(resource) => {
                let len = resource.body.len() as u64;
                let before = self.bytes.fetch_add(len, Ordering::Relaxed);
                if before + len > self.settings.max_bytes {
                    // Not handed over, so not counted against the page.
                    self.bytes.fetch_sub(len, Ordering::Relaxed);
                    return Err(("bytes", "BlockedByClient"));
                }
                Ok(resource)
            }
            Err(FetchError::Blocked { .. }) => Err(("blocked_address", "AccessDenied")),
            Err(FetchError::OffsiteRedirect { .. }) => Err(("offsite", "BlockedByClient")),
            Err(FetchError::TooLarge { .. }) => Err(("bytes", "BlockedByClient")),
            Err(FetchError::Timeout { .. }) => Err(("fetch_failed", "TimedOut")),
            Err(_) => Err(("fetch_failed", "Failed")),
        }
    }

    fn refused(&self, reason: &str) {
        self.metrics
            .counter(
                "worker_render_refused_total",
                "Requests of rendered pages refused or failed, by why.",
                &[("reason", reason)],
            )
            .inc();
    }
}

/// The document must be what a fetched page must be: a 2xx HTML page.
fn check_document(url: &str, resource: Resource) -> Result<Resource, FetchError> {
    if !(200..300).contains(&resource.status) {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status: resource.status,
            retry_after_secs: header(&resource, "retry-after").and_then(|v| v.trim().parse().ok()),
        });
    }
    if let Some(ct) = header(&resource, "content-type") {
        let essence = ct.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("text/html")
            && !essence.eq_ignore_ascii_case("application/xhtml+xml")
        {
            return Err(FetchError::NotHtml {
                url: url.to_owned(),
                content_type: ct.to_owned(),
            });
        }
    }
    Ok(resource)
}

/// What a document's headers say of it, for [`crate::parse::meta`]:
/// `X-Robots-Tag` and `Link` (its validators are the shell's, left out).
fn page_headers(resource: &Resource) -> PageHeaders {
    let all = |name: &str| {
        resource
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    };
    PageHeaders {
        robots: all("x-robots-tag"),
        links: all("link"),
        ..PageHeaders::default()
    }
}

fn header<'r>(resource: &'r Resource, name: &str) -> Option<&'r str> {
    resource
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn paused(params: &Value) -> Paused {
    let s = |ptr: &str| {
        params
            .pointer(ptr)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    Paused {
        id: s("/requestId"),
        url: s("/request/url"),
        method: s("/request/method"),
        resource: s("/resourceType"),
    }
}

/// Standard base64 with padding, as `Fetch.fulfillRequest` takes bodies.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(ABC[(n >> 18) as usize & 63] as char);
        out.push(ABC[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            ABC[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            ABC[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bodies are encoded as RFC 4648 base64, padding included.
    #[test]
    fn base64_vectors() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), enc);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }
}
