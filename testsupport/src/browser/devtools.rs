//! One Chromium process driven over `--remote-debugging-pipe` (the
//! worker's render code does the same; this crate links nothing but std,
//! so it speaks the few commands it needs itself): launched on a fresh
//! profile, each page loaded in a browser context of its own, closed by
//! closing the pipe, killed if it does not go.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::json::{quote, Json};
use super::{Profile, BROWSER_TIMEOUT, QUIET_FLAGS};

/// Where the reader hands what the browser sends: answers by command id,
/// events by page (session).
#[derive(Default)]
struct Routes {
    answers: Mutex<HashMap<u64, mpsc::Sender<Json>>>,
    sessions: Mutex<HashMap<String, mpsc::Sender<Json>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread cannot leave a map half-changed.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running browser.
pub struct Devtools {
    child: Child,
    /// Our end of the browser's fd 3; `None` once closed.
    commands: Mutex<Option<ChildStdin>>,
    next_id: AtomicU64,
    routes: Arc<Routes>,
    _profile: Profile,
}

/// What a page is loaded for.
pub enum Take {
    /// `document.documentElement.outerHTML`, after the doctype.
    Dom,
    /// A PNG of the viewport.
    Png,
}

impl Devtools {
    /// Starts `path` headless and waits until it answers.
    pub fn launch(path: &std::path::Path) -> Devtools {
        let profile = Profile::new();
        // The browser reads commands on fd 3 and writes on fd 4; std
        // cannot place descriptors, so a shell moves our two pipes there
        // from its stdin and stdout (and gives the browser /dev/null for
        // both) before it becomes the browser.
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null"#)
            .arg(path)
            .args(QUIET_FLAGS)
            .args([
                "--no-sandbox",
                "--remote-debugging-pipe",
                // Names resolve to nothing: a page can only ever reach loopback.
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            ])
            .arg(format!("--user-data-dir={}", profile.0.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let routes = Arc::<Routes>::default();
        let from_browser = child.stdout.take().expect("piped");
        let reader_routes = routes.clone();
        std::thread::Builder::new()
            .name("chromium-devtools".into())
            .spawn(move || read(from_browser, &reader_routes))
            .expect("a thread for the browser's messages");
        let browser = Devtools {
            commands: Mutex::new(child.stdin.take()),
            child,
            next_id: AtomicU64::new(1),
            routes,
            _profile: profile,
        };
        browser.call(
            None,
            "Browser.getVersion",
            "{}",
            Instant::now() + BROWSER_TIMEOUT,
        );
        browser
    }

    /// Sends `method` (to the page `session`, or the browser) and waits
    /// for its answer's result; panics on an error or at `deadline`.
    fn call(&self, session: Option<&str>, method: &str, params: &str, deadline: Instant) -> Json {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        lock(&self.routes.answers).insert(id, tx);
        let session = session
            .map(|s| format!(",\"sessionId\":{}", quote(s)))
            .unwrap_or_default();
        let message = format!(
            "{{\"id\":{id},\"method\":{},\"params\":{params}{session}}}\0",
            quote(method)
        );
        if let Some(pipe) = lock(&self.commands).as_mut() {
            // A write that fails means the browser is gone: the answer
            // then never comes and the wait below says so.
            let _ = pipe
                .write_all(message.as_bytes())
                .and_then(|_| pipe.flush());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let answer = match rx.recv_timeout(left) {
            Ok(answer) => answer,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("chromium did not answer {method} within {BROWSER_TIMEOUT:?}")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("chromium exited before answering {method}")
            }
        };
        if let Some(error) = answer.get("error") {
            panic!("chromium: {method}: {}", error.str_at("message"));
        }
        answer.get("result").cloned().unwrap_or(Json::Null)
    }

    /// Loads `url` in a fresh browser context (no cookies, storage or
    /// cache of any other page) in a `width` x `height` viewport, lets its
    /// scripts run for `budget` of virtual time once it loaded (as
    /// `--virtual-time-budget` does), and returns `take` of it: the DOM as
    /// text, or PNG bytes.
    pub fn load(
        &self,
        url: &str,
        budget: Duration,
        (width, height): (u32, u32),
        take: Take,
    ) -> Vec<u8> {
        let deadline = Instant::now() + BROWSER_TIMEOUT;
        let call = |session, method, params: &str| self.call(session, method, params, deadline);
        let (context, session, events) = self.open_page((width, height), deadline);
        let page = Some(session.as_str());
        // Enabling replays the blank page's own lifecycle events; none of
        // them is the load waited for below.
        while events.try_recv().is_ok() {}
        let navigated = call(
            page,
            "Page.navigate",
            &format!("{{\"url\":{}}}", quote(url)),
        );
        if let Some(error) = navigated.get("errorText").and_then(Json::str) {
            panic!("chromium {url}: {error}");
        }
        let frame = navigated.str_at("frameId");
        wait_for(&events, deadline, url, "load", |e| {
            e.str_at("method") == "Page.lifecycleEvent"
                && e.get("params")
                    .is_some_and(|p| p.str_at("name") == "load" && p.str_at("frameId") == frame)
        });
        call(
            page,
            "Emulation.setVirtualTimePolicy",
            &format!(
                "{{\"policy\":\"pauseIfNetworkFetchesPending\",\"budget\":{},\"maxVirtualTimeTaskStarvationCount\":9999}}",
                budget.as_millis()
            ),
        );
        wait_for(&events, deadline, url, "its time budget", |e| {
            e.str_at("method") == "Emulation.virtualTimeBudgetExpired"
        });
        let out = self.take(page, take, url, (width, height), deadline);
        lock(&self.routes.sessions).remove(&session);
        call(
            None,
            "Target.disposeBrowserContext",
            &format!("{{\"browserContextId\":{}}}", quote(&context)),
        );
        out
    }

    /// A blank page of `width` x `height` in a fresh browser context: the
    /// context, the page's session and its events.
    fn open_page(
        &self,
        (width, height): (u32, u32),
        deadline: Instant,
    ) -> (String, String, mpsc::Receiver<Json>) {
        let call = |session, method, params: &str| self.call(session, method, params, deadline);
        let context = call(None, "Target.createBrowserContext", "{}")
            .str_at("browserContextId")
            .to_owned();
        let target = call(
            None,
            "Target.createTarget",
            &format!(
                "{{\"url\":\"about:blank\",\"browserContextId\":{}}}",
                quote(&context)
            ),
        );
        let session = call(
            None,
            "Target.attachToTarget",
            &format!(
                "{{\"targetId\":{},\"flatten\":true}}",
                quote(target.str_at("targetId"))
            ),
        )
        .str_at("sessionId")
        .to_owned();
        let (tx, events) = mpsc::channel();
        lock(&self.routes.sessions).insert(session.clone(), tx);
        let page = Some(session.as_str());
        call(
            page,
            "Emulation.setDeviceMetricsOverride",
            &format!(
                "{{\"width\":{width},\"height\":{height},\"deviceScaleFactor\":1,\"mobile\":false}}"
            ),
        );
        call(page, "Page.enable", "{}");
        call(page, "Page.setLifecycleEventsEnabled", "{\"enabled\":true}");
        (context, session, events)
    }

    /// What `take` asks of the loaded page of session `page`.
    fn take(
        &self,
        page: Option<&str>,
        take: Take,
        url: &str,
        (width, height): (u32, u32),
        deadline: Instant,
    ) -> Vec<u8> {
        let call = |session, method, params: &str| self.call(session, method, params, deadline);
        match take {
            Take::Dom => {
                let expression = "(document.doctype ? new XMLSerializer().serializeToString(document.doctype) + '\\n' : '') + document.documentElement.outerHTML";
                let answer = call(
                    page,
                    "Runtime.evaluate",
                    &format!(
                        "{{\"expression\":{},\"returnByValue\":true}}",
                        quote(expression)
                    ),
                );
                let dom = answer.get("result").map(|r| r.str_at("value"));
                dom.unwrap_or_else(|| panic!("chromium {url}: no DOM"))
                    .as_bytes()
                    .to_vec()
            }
            Take::Png => {
                let answer = call(
                    page,
                    "Page.captureScreenshot",
                    &format!(
                        "{{\"format\":\"png\",\"clip\":{{\"x\":0,\"y\":0,\"width\":{width},\"height\":{height},\"scale\":1}}}}"
                    ),
                );
                super::json::base64(answer.str_at("data"))
                    .unwrap_or_else(|| panic!("chromium {url}: a screenshot that is not base64"))
            }
        }
    }
}

/// Waits for the first event of `events` that `wanted` accepts; panics at
/// `deadline` or when the browser is gone.
fn wait_for(
    events: &mpsc::Receiver<Json>,
    deadline: Instant,
    url: &str,
    what: &str,
    wanted: impl Fn(&Json) -> bool,
) {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(event) if wanted(&event) => return,
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("chromium {url}: no {what} within {BROWSER_TIMEOUT:?}")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("chromium {url}: the browser exited before {what}")
            }
        }
    }
}

/// Reads NUL-terminated messages until the browser closes its end, and
/// routes each; then drops every route, so waiting calls learn it is gone.
fn read(mut pipe: ChildStdout, routes: &Routes) {
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n @ 1..) = pipe.read(&mut buf) {
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.iter().position(|&b| b == 0) {
            let message: Vec<u8> = pending.drain(..=end).collect();
            let Some(message) = std::str::from_utf8(&message[..end])
                .ok()
                .and_then(Json::parse)
            else {
                continue;
            };
            if let Some(Json::Num(id)) = message.get("id") {
                if let Some(tx) = lock(&routes.answers).remove(&(*id as u64)) {
                    let _ = tx.send(message);
                }
            } else if let Some(session) = message.get("sessionId").and_then(Json::str) {
                if let Some(tx) = lock(&routes.sessions).get(session) {
                    let _ = tx.send(message);
                }
            }
        }
    }
    lock(&routes.answers).clear();
    lock(&routes.sessions).clear();
}

impl Drop for Devtools {
    fn drop(&mut self) {
        // A closed pipe makes the browser quit, renderers and all; one that
        // has not within a few seconds is killed.
        lock(&self.commands).take();
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
