//! A small DevTools protocol client over `--remote-debugging-pipe`:
//! Chromium reads commands on its fd 3 and writes answers and events on its
//! fd 4, each message one JSON object followed by a NUL byte.
//!
//! Two threads per browser move the bytes (a pipe is a blocking file; a
//! fulfilled request's body may be megabytes, so writes must not run on a
//! runtime thread). Answers go to the caller waiting on their `id`; events
//! go to the page (session) they belong to.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

/// Why a DevTools command got no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum CdpError {
    /// The pipe closed: the browser exited or was killed, or sent a message
    /// past the size bound.
    #[error("the browser closed its DevTools pipe")]
    Closed,
    /// No answer within the caller's time.
    #[error("the browser did not answer {0} in time")]
    Timeout(String),
    /// The browser answered with an error.
    #[error("{method}: {message}")]
    Protocol { method: String, message: String },
}

/// An event of one page: its method and parameters.
#[derive(Debug)]
pub(crate) struct Event {
    pub method: String,
    pub params: Value,
}

/// Events a page may have queued and unread. A page that lets more pile up
/// (it is not being read, or floods) loses the rest: its render then
/// fails or times out, and nothing grows without bound.
const EVENT_QUEUE: usize = 1024;

type Answer = Result<Value, CdpError>;

#[derive(Default)]
struct Shared {
    pending: Mutex<HashMap<u64, (String, oneshot::Sender<Answer>)>>,
    sessions: Mutex<HashMap<String, mpsc::Sender<Event>>>,
    closed: AtomicBool,
}

impl Shared {
    /// Fails every waiting call and ends every page's event stream.
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// One message from the browser. Answers carry `id`; events `method`.
#[derive(Deserialize)]
struct Incoming {
    id: Option<u64>,
    result: Option<Value>,
    error: Option<ProtocolError>,
    method: Option<String>,
    #[serde(default)]
    params: Value,
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

#[derive(Deserialize)]
struct ProtocolError {
    #[serde(default)]
    message: String,
}

/// The browser end of the pipe pair.
pub(crate) struct Connection {
    next_id: AtomicU64,
    outgoing: std::sync::mpsc::Sender<Vec<u8>>,
    shared: Arc<Shared>,
}

impl Connection {
    /// Starts the reader (on `from_browser`, messages of at most
    /// `max_message` bytes) and writer (on `to_browser`) threads.
    pub(crate) fn start(
        to_browser: File,
        from_browser: File,
        max_message: usize,
    ) -> std::io::Result<Connection> {
        let shared = Arc::new(Shared::default());
        let (outgoing, queue) = std::sync::mpsc::channel::<Vec<u8>>();
        let writer_shared = shared.clone();
        std::thread::Builder::new()
            .name("cdp-writer".into())
            .spawn(move || {
                let mut pipe = to_browser;
                // Ends when the connection is dropped (the channel closes)
                // or the browser is gone (the write fails).
                while let Ok(message) = queue.recv() {
                    if pipe.write_all(&message).is_err() {
                        writer_shared.close();
                        break;
                    }
                }
            })?;
        let reader_shared = shared.clone();
        std::thread::Builder::new()
            .name("cdp-reader".into())
            .spawn(move || {
                read_loop(from_browser, max_message, &reader_shared);
                reader_shared.close();
            })?;
        Ok(Connection {
            next_id: AtomicU64::new(1),
            outgoing,
            shared,
        })
    }

    /// Whether the pipe has closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// The events of page session `session`, from now on.
    pub(crate) fn subscribe(&self, session: &str) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        if !self.is_closed() {
            self.shared
                .sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(session.to_owned(), tx);
        }
        rx
    }

    /// Stops routing events to `session`.
    pub(crate) fn unsubscribe(&self, session: &str) {
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(session);
    }

    /// Sends `method` (to page `session`, or to the browser) and waits up
    /// to `timeout` for its answer.
    pub(crate) async fn call(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, CdpError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = Value::String(session.to_owned());
        }
        // Serializing a `Value` cannot fail.
        let mut bytes = serde_json::to_vec(&message).expect("a JSON value serializes");
        bytes.push(0);
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if self.is_closed() {
                return Err(CdpError::Closed);
            }
            pending.insert(id, (method.to_owned(), tx));
        }
        if self.outgoing.send(bytes).is_err() {
            self.forget(id);
            return Err(CdpError::Closed);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(CdpError::Closed),
            Err(_) => {
                self.forget(id);
                Err(CdpError::Timeout(method.to_owned()))
            }
        }
    }

    fn forget(&self, id: u64) {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }
}

/// Reads NUL-ended messages until the pipe closes or one passes
/// `max_message` bytes (then the browser is treated as gone: a message
/// that size is not one we asked for).
fn read_loop(mut pipe: File, max_message: usize, shared: &Shared) {
    let mut buffer: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match pipe.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut rest = &chunk[..n];
        while let Some(end) = rest.iter().position(|&b| b == 0) {
            if buffer.len() + end > max_message {
                tracing::warn!(max_message, "browser message too large; closing it");
                return;
            }
            buffer.extend_from_slice(&rest[..end]);
            dispatch(&buffer, shared);
            buffer.clear();
            rest = &rest[end + 1..];
        }
        if buffer.len() + rest.len() > max_message {
            tracing::warn!(max_message, "browser message too large; closing it");
            return;
        }
        buffer.extend_from_slice(rest);
    }
}

/// Hands one message to the call waiting for it, or to its page.
fn dispatch(message: &[u8], shared: &Shared) {
    let Ok(incoming) = serde_json::from_slice::<Incoming>(message) else {
        tracing::debug!("unreadable DevTools message ignored");
        return;
    };
    if let Some(id) = incoming.id {
        let waiting = shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        if let Some((method, tx)) = waiting {
            let answer = match incoming.error {
                Some(e) => Err(CdpError::Protocol {
                    method,
                    message: e.message,
                }),
                None => Ok(incoming.result.unwrap_or(Value::Null)),
            };
            let _ = tx.send(answer);
        }
        return;
    }
    let Some(method) = incoming.method else {
        return;
    };
    // A page's own events carry its session; the browser reports a page's
    // detachment (its renderer crashed or closed) with the session in the
    // parameters.
    let session = incoming.session_id.or_else(|| {
        incoming
            .params
            .get("sessionId")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let Some(session) = session else {
        return;
    };
    let sessions = shared.sessions.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(tx) = sessions.get(&session) {
        if tx
            .try_send(Event {
                method,
                params: incoming.params,
            })
            .is_err()
        {
            tracing::debug!(%session, "page event queue full; event dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    /// A pipe as (read end, write end).
    fn pipe() -> (File, File) {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two fds into the array.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both fds are fresh and owned here.
        unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
    }

    /// Answers reach their caller by id and events their page by session,
    /// across NUL-ended messages split anywhere; a message past the bound
    /// closes the connection and fails what was waiting.
    #[tokio::test]
    async fn framing_routing_and_the_size_bound() {
        let (browser_reads, to_browser) = pipe();
        let (from_browser, mut browser_writes) = pipe();
        let conn = Connection::start(to_browser, from_browser, 1024).unwrap();
        let mut events = conn.subscribe("S1");
        let call = conn.call(
            None,
            "Browser.getVersion",
            json!({}),
            Duration::from_secs(5),
        );
        let answer = async {
            // The command went out, NUL-ended.
            let mut sent = vec![0u8; 256];
            let n = (&browser_reads).read(&mut sent).unwrap();
            assert_eq!(sent[n - 1], 0);
            let message: Value = serde_json::from_slice(&sent[..n - 1]).unwrap();
            assert_eq!(message["method"], "Browser.getVersion");
            // The answer and an event, split mid-message.
            let bytes = br#"{"id":1,"result":{"product":"x"}}"#.to_vec();
            browser_writes.write_all(&bytes[..10]).unwrap();
            browser_writes.write_all(&bytes[10..]).unwrap();
            browser_writes
                .write_all(
                    b"\0{\"method\":\"Page.loadEventFired\",\"params\":{},\"sessionId\":\"S1\"}\0",
                )
                .unwrap();
        };
        let (answer_value, ()) = tokio::join!(call, answer);
        assert_eq!(answer_value.unwrap()["product"], "x");
        let event = events.recv().await.unwrap();
        assert_eq!(event.method, "Page.loadEventFired");

        let waiting = conn.call(
            None,
            "Target.createTarget",
            json!({}),
            Duration::from_secs(5),
        );
        let flood = async {
            browser_writes.write_all(&[b'x'; 2048]).unwrap();
        };
        let (waited, ()) = tokio::join!(waiting, flood);
        assert!(matches!(waited, Err(CdpError::Closed)), "{waited:?}");
        assert!(conn.is_closed());
        assert!(events.recv().await.is_none());
    }
}
