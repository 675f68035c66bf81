//! [`RequestLog`]: every request the site served, when and with what
//! answer, for tests to check a crawler's behaviour against.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::Response;

use super::AppState;

/// When each request started and ended, as seen by the server: tests check
/// the crawler's per-host limits against it.
#[derive(Debug, Default)]
pub struct RequestLog {
    pub(super) entries: Mutex<Vec<LoggedRequest>>,
}

/// One request the site served.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    /// Path and query.
    pub path: String,
    /// When the request arrived.
    pub start: Instant,
    /// When the response was ready.
    pub end: Instant,
    /// The status answered (304 for a conditional hit, 410 for a removed
    /// profile).
    pub status: u16,
    /// The request's `If-None-Match`, if any.
    pub if_none_match: Option<String>,
    /// The request's `If-Modified-Since`, if any.
    pub if_modified_since: Option<String>,
}

impl RequestLog {
    /// Everything served so far, in arrival order.
    pub fn entries(&self) -> Vec<LoggedRequest> {
        let mut v = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        v.sort_by_key(|e| e.start);
        v
    }

    /// The most requests that were ever being served at the same time.
    pub fn max_concurrency(&self) -> usize {
        let mut events: Vec<(Instant, i32)> = Vec::new();
        for e in self.entries() {
            events.push((e.start, 1));
            events.push((e.end, -1));
        }
        // Ends sort before starts at the same instant.
        events.sort();
        let (mut now, mut max) = (0i32, 0i32);
        for (_, d) in events {
            now += d;
            max = max.max(now);
        }
        max as usize
    }

    /// The shortest time between two consecutive request starts.
    pub fn min_start_gap(&self) -> Option<Duration> {
        let e = self.entries();
        e.windows(2).map(|w| w[1].start - w[0].start).min()
    }
}

pub(super) async fn log_request(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let (if_none_match, if_modified_since) = {
        let header = |name| {
            request
                .headers()
                .get(name)
                .map(|v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        (
            header(header::IF_NONE_MATCH),
            header(header::IF_MODIFIED_SINCE),
        )
    };
    let start = Instant::now();
    let response = next.run(request).await;
    let entry = LoggedRequest {
        path,
        start,
        end: Instant::now(),
        status: response.status().as_u16(),
        if_none_match,
        if_modified_since,
    };
    state
        .log
        .entries
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(entry);
    response
}
