//! The failures file (`failures_file`, JSON lines): what the crawl gave up
//! on, one object per line, so nothing is dropped without a trace.
//!
//! - A request that failed for good: `url`, `parser`, `depth`, `attempts`,
//!   `kind` (the error kind, as counted in the summary), `reason`, `at`.
//! - An item the itemsaver refused for good: `kind` = `item_refused`,
//!   `url`, `reason`, `item` (the whole item, as sent), `at`.
//!
//! `at` is seconds since the Unix epoch. The file is opened on the first
//! record; the crawl loop and the item sink share one log.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rpcsupport::{Item, Request};

/// The `kind` of a refused item's line.
pub const ITEM_REFUSED: &str = "item_refused";

/// Appends failure records to the failures file, if one is configured.
/// Cheap to clone; clones share the file.
#[derive(Clone)]
pub struct FailureLog {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for FailureLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("FailureLog")
            .field("path", &inner.path)
            .finish_non_exhaustive()
    }
}

struct Inner {
    /// `None` when no file is configured, or it could not be opened.
    path: Option<PathBuf>,
    file: Option<File>,
    /// The latest records, newest last, for the dashboard (with or without
    /// a file); an item's record without the item itself.
    recent: VecDeque<serde_json::Value>,
    /// Requests failed for good, by host (as the frontier keys hosts), for
    /// the dashboard's hosts table. One entry per host that failed, so no
    /// larger than the frontier's own host table.
    by_host: HashMap<String, u64>,
}

/// How many of the latest failures [`FailureLog::recent`] keeps.
pub const RECENT_FAILURES: usize = 20;
/// Longest text (URL, reason) a recent record keeps, in bytes.
const RECENT_TEXT_BYTES: usize = 300;

impl FailureLog {
    /// A log writing to `path`; `None` records nothing.
    pub fn new(path: Option<PathBuf>) -> FailureLog {
        FailureLog {
            inner: Arc::new(Mutex::new(Inner {
                path,
                file: None,
                recent: VecDeque::with_capacity(RECENT_FAILURES),
                by_host: HashMap::new(),
            })),
        }
    }

    /// `request` failed for good after `attempts` tries.
    pub fn request(&self, request: &Request, attempts: u32, kind: &str, reason: &str) {
        if let Some(host) = url::Url::parse(&request.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
        {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            *inner.by_host.entry(host).or_default() += 1;
        }
        self.write(serde_json::json!({
            "url": request.url,
            "parser": request.parser.name,
            "depth": request.depth,
            "attempts": attempts,
            "kind": kind,
            "reason": reason,
            "at": now_secs(),
        }));
    }

    /// The itemsaver refused `item` for good.
    pub fn item(&self, item: &Item, reason: &str) {
        self.write(serde_json::json!({
            "url": item.url,
            "kind": ITEM_REFUSED,
            "reason": reason,
            "item": item.to_json(),
            "at": now_secs(),
        }));
    }

    /// Requests to `host` that failed for good so far.
    pub fn host_failures(&self, host: &str) -> u64 {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.by_host.get(host).copied().unwrap_or(0)
    }

    /// The latest failures, oldest first (at most [`RECENT_FAILURES`]).
    pub fn recent(&self) -> Vec<serde_json::Value> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.recent.iter().cloned().collect()
    }

    fn write(&self, record: serde_json::Value) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.recent.len() == RECENT_FAILURES {
            inner.recent.pop_front();
        }
        inner.recent.push_back(short_record(&record));
        let Inner { path, file, .. } = &mut *inner;
        let Some(at) = path else { return };
        if file.is_none() {
            match open_append(at) {
                Ok(f) => *file = Some(f),
                Err(e) => {
                    tracing::error!(error = %e, path = %at.display(), "cannot open failures file; failures only counted");
                    *path = None;
                    return;
                }
            }
        }
        // One write per line, so a reader never sees half a record.
        let mut line = record.to_string();
        line.push('\n');
        if let Some(f) = file.as_mut() {
            if let Err(e) = f.write_all(line.as_bytes()) {
                tracing::error!(error = %e, "cannot write failures file");
            }
        }
    }
}

/// `record` as the dashboard lists it: no item body, long texts cut.
fn short_record(record: &serde_json::Value) -> serde_json::Value {
    let text = |key: &str| {
        let s = record[key].as_str().unwrap_or_default();
        let mut end = s.len().min(RECENT_TEXT_BYTES);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        serde_json::Value::from(&s[..end])
    };
    serde_json::json!({
        "url": text("url"),
        "kind": text("kind"),
        "reason": text("reason"),
        "at": record["at"],
    })
}

/// Opens `path` for appending, creating it and its directory if needed.
pub(crate) fn open_append(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpcsupport::ParserSpec;

    #[test]
    fn requests_and_items_are_one_json_object_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/failures.jsonl");
        let log = FailureLog::new(Some(path.clone()));
        let request = Request {
            url: "http://a.test/x".into(),
            parser: ParserSpec {
                name: "profile".into(),
                args: Default::default(),
            },
            depth: 2,
            hints: Default::default(),
        };
        log.request(&request, 3, "http_404", "not found");
        let item = Item {
            url: "http://a.test/p".into(),
            kind: "profile".into(),
            id: Some("p1".into()),
            payload: Default::default(),
        };
        log.clone().item(&item, "too big");

        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["url"], "http://a.test/x");
        assert_eq!(lines[0]["kind"], "http_404");
        assert_eq!(lines[0]["attempts"], 3);
        assert_eq!(lines[0]["depth"], 2);
        assert_eq!(lines[1]["kind"], ITEM_REFUSED);
        assert_eq!(lines[1]["reason"], "too big");
        assert_eq!(lines[1]["item"]["id"], "p1");
    }

    /// The latest failures are kept for the dashboard, bounded, without
    /// item bodies, even with no file.
    #[test]
    fn keeps_the_latest_failures() {
        let log = FailureLog::new(None);
        let request = |i: usize| Request {
            url: format!("http://a.test/{i}/{}", "x".repeat(1000)),
            parser: ParserSpec::named("links"),
            depth: 0,
            hints: Default::default(),
        };
        for i in 0..RECENT_FAILURES + 5 {
            log.request(&request(i), 1, "http_404", "not found");
        }
        let recent = log.recent();
        assert_eq!(recent.len(), RECENT_FAILURES);
        assert!(recent[0]["url"]
            .as_str()
            .unwrap()
            .starts_with("http://a.test/5/"));
        assert!(recent[0]["url"].as_str().unwrap().len() <= RECENT_TEXT_BYTES);
        assert_eq!(recent[0]["kind"], "http_404");
        assert_eq!(log.host_failures("a.test"), (RECENT_FAILURES + 5) as u64);
        assert_eq!(log.host_failures("b.test"), 0);
    }
}
