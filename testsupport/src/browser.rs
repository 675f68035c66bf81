//! Headless Chromium for the tests of our web pages: the DOM after the
//! page's scripts ran, and a screenshot. Debian's `chromium` package
//! (`/usr/bin/chromium`, or `$CHROMIUM`); `.ci/run` installs it.
//!
//! # Layout
//! - this file: [`chromium`] (the binary, or a skip), [`Browser`] (one
//!   Chromium process for every page a test loads through it) and
//!   [`text_by_id`].
//! - `devtools`: that process, driven over its DevTools pipe; each page
//!   in a fresh browser context, within [`BROWSER_TIMEOUT`].
//! - `json`: the little JSON (and base64) those messages need.
//!
//! The browser gets a fresh profile directory and the flags that keep
//! Chromium from reaching out to the network by itself.

mod devtools;
mod json;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use devtools::{Devtools, Take};

// The worker's list (`worker::render::QUIET_FLAGS`), written once: this
// crate links nothing but std, so it includes the file rather than
// depending on the worker, which every test binary would then build.
include!("../../worker/src/render/quiet_flags.rs");

/// Longest one page may take, from its new context to its DOM or
/// screenshot (and the browser's launch).
pub const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

/// The Chromium binary, or `None` (with a notice) when it is not installed
/// and `CI` is not set; under CI a missing browser fails the test.
pub fn chromium(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {} is missing (apt-get install chromium), and CI is set",
        path.display()
    );
    eprintln!(
        "{test}: skipped: no browser at {} (apt-get install chromium)",
        path.display()
    );
    None
}

/// Pages as a headless browser sees them. The browser starts with the
/// first page and serves every later one (a launch costs about a second
/// of a small machine's CPU, a page a tenth of that); it quits when this
/// is dropped. Pages may be loaded from several threads at once.
pub struct Browser {
    path: PathBuf,
    running: Mutex<Option<Arc<Devtools>>>,
}

impl Browser {
    /// A browser at `path` (from [`chromium`]); nothing runs yet.
    pub fn new(path: PathBuf) -> Browser {
        Browser {
            path,
            running: Mutex::new(None),
        }
    }

    /// The DOM of `url` once its scripts had `budget` of (virtual) time,
    /// at a laptop's width.
    pub fn dom(&self, url: &str, budget: Duration) -> String {
        let out = self.devtools().load(url, budget, (1280, 900), Take::Dom);
        String::from_utf8(out).expect("a DOM read from JSON is UTF-8")
    }

    /// Saves a PNG of `url` at `width` x `height` to `file`.
    pub fn screenshot(
        &self,
        url: &str,
        budget: Duration,
        (width, height): (u32, u32),
        file: &Path,
    ) {
        let png = self
            .devtools()
            .load(url, budget, (width, height), Take::Png);
        std::fs::write(file, png)
            .unwrap_or_else(|e| panic!("write the screenshot {}: {e}", file.display()));
    }

    /// The running browser, launched if this is the first page.
    fn devtools(&self) -> Arc<Devtools> {
        // A test that panicked while launching leaves `None`: the next
        // page launches again.
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running
            .get_or_insert_with(|| Arc::new(Devtools::launch(&self.path)))
            .clone()
    }
}

/// A fresh Chromium profile directory, removed when dropped.
struct Profile(PathBuf);

impl Profile {
    fn new() -> Profile {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "crawler-test-chromium-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create a chromium profile dir");
        Profile(dir)
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The text inside the first element with `id="ID"` of `dom` (a plain
/// scan, enough for our own pages' leaf elements).
pub fn text_by_id(dom: &str, id: &str) -> Option<String> {
    let at = dom.find(&format!("id=\"{id}\""))?;
    let open_end = at + dom[at..].find('>')? + 1;
    let close = open_end + dom[open_end..].find('<')?;
    Some(
        dom[open_end..close]
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'"),
    )
}
