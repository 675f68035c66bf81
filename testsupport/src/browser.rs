//! Headless Chromium for the tests of our web pages: the DOM after the
//! page's scripts ran, and a screenshot. Debian's `chromium` package
//! (`/usr/bin/chromium`, or `$CHROMIUM`); `.ci/run` installs it.
//!
//! Every run gets a fresh profile directory and the flags that keep
//! Chromium from reaching out to the network by itself, and is killed if
//! it takes longer than [`BROWSER_TIMEOUT`].

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

// The worker's list (`worker::render::QUIET_FLAGS`), written once: this
// crate links nothing but std, so it includes the file rather than
// depending on the worker, which every test binary would then build.
include!("../../worker/src/render/quiet_flags.rs");

/// Longest one Chromium run may take.
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

/// A page as a headless browser sees it.
pub struct Browser {
    path: PathBuf,
}

impl Browser {
    /// A browser at `path` (from [`chromium`]).
    pub fn new(path: PathBuf) -> Browser {
        Browser { path }
    }

    /// The DOM of `url` once its scripts had `budget` of (virtual) time,
    /// at a laptop's width.
    pub fn dom(&self, url: &str, budget: Duration) -> String {
        let out = self.run(&["--dump-dom".into()], url, budget, (1280, 900));
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Saves a PNG of `url` at `width` x `height` to `file`.
    pub fn screenshot(
        &self,
        url: &str,
        budget: Duration,
        (width, height): (u32, u32),
        file: &Path,
    ) {
        self.run(
            &[format!("--screenshot={}", file.display())],
            url,
            budget,
            (width, height),
        );
        assert!(file.exists(), "no screenshot written to {}", file.display());
    }

    fn run(&self, extra: &[String], url: &str, budget: Duration, size: (u32, u32)) -> Vec<u8> {
        let profile = Profile::new();
        let mut cmd = Command::new(&self.path);
        cmd.args(QUIET_FLAGS)
            .args([
                "--no-sandbox",
                // Names resolve to nothing: a page can only ever reach loopback.
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            ])
            .arg(format!("--user-data-dir={}", profile.0.display()))
            .arg(format!("--window-size={},{}", size.0, size.1))
            .arg(format!("--virtual-time-budget={}", budget.as_millis()))
            .args(extra)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("start chromium");
        let mut stdout = child.stdout.take().expect("piped");
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = std::io::Read::read_to_end(&mut stdout, &mut buf);
            buf
        });
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait for chromium") {
                assert!(status.success(), "chromium {url}: {status}");
                break;
            }
            if started.elapsed() > BROWSER_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium took over {BROWSER_TIMEOUT:?} on {url}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        reader.join().expect("reader thread")
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
