//! One headless browser process: found, launched with its DevTools pipe,
//! measured (the resident memory of its process tree) and killed.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::cdp::Connection;

/// Longest a browser may take to start and answer its first command.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(20);

/// Names looked for on PATH when `browser = "auto"`: Debian's packages
/// first, then Google's.
const CANDIDATES: [&str; 3] = ["chromium", "chromium-headless-shell", "google-chrome"];

/// The `browser` setting, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrowserChoice {
    /// Look on PATH.
    Auto,
    /// Never render.
    None,
    /// This executable.
    Path(PathBuf),
}

impl BrowserChoice {
    /// Reads the setting; the error says what was expected.
    pub fn parse(text: &str) -> Result<BrowserChoice, String> {
        match text.trim() {
            "" => Err("must be a path, \"auto\" or \"none\"".into()),
            "auto" => Ok(BrowserChoice::Auto),
            "none" => Ok(BrowserChoice::None),
            path => {
                let path = PathBuf::from(path);
                if path.is_file() {
                    Ok(BrowserChoice::Path(path))
                } else {
                    Err(format!(
                        "{}: no such file (give a browser's path, \"auto\" or \"none\")",
                        path.display()
                    ))
                }
            }
        }
    }

    /// The executable to launch, or why there is none.
    pub fn resolve(&self) -> Result<PathBuf, String> {
        match self {
            BrowserChoice::None => Err("started with browser = \"none\"".into()),
            BrowserChoice::Path(path) => Ok(path.clone()),
            BrowserChoice::Auto => find_on_path().ok_or_else(|| {
                format!(
                    "no browser found on PATH (looked for {}); install Debian's chromium or give --browser PATH",
                    CANDIDATES.join(", ")
                )
            }),
        }
    }
}

fn find_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    CANDIDATES.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// A running browser. Dropping it kills its whole process group and
/// removes its profile directory.
pub(crate) struct Browser {
    pub(crate) conn: Connection,
    child: Child,
    /// Pages rendered (or tried) on it, against `recycle_after_pages`.
    pub(crate) pages: AtomicU64,
    /// Its fresh profile: nothing carries over between browsers.
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts `path` headless on a fresh profile, talking DevTools over a
    /// pipe, and waits until it answers. `max_message` bounds each message
    /// read from it.
    pub(crate) async fn launch(path: &Path, max_message: usize) -> Result<Browser, String> {
        let profile = tempfile::Builder::new()
            .prefix("crawler-browser-")
            .tempdir()
            .map_err(|e| format!("cannot create a profile directory: {e}"))?;
        let (browser_reads, to_browser) = pipe().map_err(|e| format!("pipe: {e}"))?;
        let (from_browser, browser_writes) = pipe().map_err(|e| format!("pipe: {e}"))?;
        let (to_browser, from_browser) = (file(to_browser), file(from_browser));
        let mut cmd = Command::new(path);
        cmd.args(flags(profile.path()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let (child_in, child_out) = (browser_reads, browser_writes);
        // SAFETY: between fork and exec only async-signal-safe calls are
        // made (setpgid, fcntl, dup2), on fds this process owns.
        unsafe {
            cmd.pre_exec(move || {
                // Its own process group, so one kill ends every process
                // it starts (renderers, zygote, GPU and network services).
                libc::setpgid(0, 0);
                // Moved above 10 first, so placing one on fd 3 cannot
                // close the other; dup2 clears close-on-exec on 3 and 4.
                let high_in = libc::fcntl(child_in, libc::F_DUPFD_CLOEXEC, 10);
                let high_out = libc::fcntl(child_out, libc::F_DUPFD_CLOEXEC, 10);
                if high_in < 0
                    || high_out < 0
                    || libc::dup2(high_in, 3) < 0
                    || libc::dup2(high_out, 4) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let spawned = cmd.spawn();
        // The browser's ends now live in the child; ours must close, or
        // the reader would never see the browser's exit.
        // SAFETY: both fds came from `pipe` and are closed only here.
        unsafe {
            libc::close(child_in);
            libc::close(child_out);
        }
        let mut child = spawned.map_err(|e| format!("cannot start {}: {e}", path.display()))?;
        let stderr = StderrTail::start(child.stderr.take());
        let conn = Connection::start(to_browser, from_browser, max_message)
            .map_err(|e| format!("cannot start the DevTools threads: {e}"))?;
        let browser = Browser {
            conn,
            child,
            pages: AtomicU64::new(0),
            _profile: profile,
        };
        let started = browser
            .conn
            .call(None, "Browser.getVersion", json!({}), LAUNCH_TIMEOUT)
            .await;
        if let Err(e) = started {
            stderr.wait_for_end(Duration::from_secs(1)).await;
            return Err(format!(
                "{} did not start: {e}; it said: {}",
                path.display(),
                stderr.text()
            ));
        }
        Ok(browser)
    }

    /// The browser's process id (its process group's too).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the browser and every process below it (bytes).
    pub(crate) fn tree_rss(&self) -> u64 {
        tree_rss(self.child.id())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        let tree = descendants(self.child.id());
        // SAFETY: plain kill(2) calls; the group is the one the child made.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
            // Any process that left the group (a sandbox helper may) is
            // still below the browser.
            for p in tree {
                libc::kill(p as libc::pid_t, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last lines a browser wrote to stderr, for the reason a launch
/// failed; the rest go to the debug log. A thread reads the pipe until
/// the browser exits, so the browser never blocks on a full pipe.
#[derive(Clone, Default)]
struct StderrTail {
    lines: Arc<Mutex<VecDeque<String>>>,
    /// Set when the pipe closed (the browser exited).
    ended: Arc<std::sync::atomic::AtomicBool>,
}

/// Lines of stderr kept, and the longest kept of each.
const STDERR_LINES: usize = 8;
const STDERR_LINE_BYTES: usize = 300;

impl StderrTail {
    fn start(pipe: Option<ChildStderr>) -> StderrTail {
        let tail = StderrTail::default();
        let Some(pipe) = pipe else {
            return tail;
        };
        let keep = tail.clone();
        let spawned = std::thread::Builder::new()
            .name("browser-stderr".into())
            .spawn(move || {
                keep.read(pipe);
                keep.ended.store(true, std::sync::atomic::Ordering::Release);
            });
        if spawned.is_err() {
            tracing::debug!("no thread for the browser's stderr; it is not read");
        }
        tail
    }

    fn read(&self, pipe: ChildStderr) {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        // Lines are read in pieces of bounded size: a browser that
        // writes one endless line costs no more than a short one.
        loop {
            line.clear();
            match (&mut reader)
                .take(STDERR_LINE_BYTES as u64)
                .read_until(b'\n', &mut line)
            {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line).trim_end().to_owned();
            if text.is_empty() {
                continue;
            }
            tracing::debug!(target: "worker::render::browser", "{text}");
            let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
            if lines.len() == STDERR_LINES {
                lines.pop_front();
            }
            lines.push_back(text);
        }
    }

    /// Waits (up to `limit`) until the browser's stderr closed, so a
    /// browser that failed has had its say.
    async fn wait_for_end(&self, limit: Duration) {
        let until = tokio::time::Instant::now() + limit;
        while !self.ended.load(std::sync::atomic::Ordering::Acquire)
            && tokio::time::Instant::now() < until
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn text(&self) -> String {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.is_empty() {
            "nothing".into()
        } else {
            lines.iter().cloned().collect::<Vec<_>>().join(" | ")
        }
    }
}

/// The command line: headless, a private profile, nothing that phones
/// home, and a backstop so that no request can leave even if interception
/// missed one: every connection goes to a closed loopback proxy port, and
/// every name resolves to nothing.
fn flags(profile: &Path) -> Vec<String> {
    let mut flags: Vec<String> = super::QUIET_FLAGS
        .iter()
        .chain(&[
            // DevTools over fds 3 and 4, never a port.
            "--remote-debugging-pipe",
            // Cross-site frames would otherwise run in their own renderer,
            // as a target whose requests the page's interception does not
            // see.
            "--disable-site-isolation-trials",
            "--disable-features=IsolateOrigins,site-per-process,Translate,MediaRouter,OptimizationHints",
            "--proxy-bypass-list=<-loopback>",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            // WebRTC would send UDP (STUN) straight to any address a script
            // names, past both the interception and the proxy: UDP is only
            // allowed through the proxy, which is closed. (The page's
            // prelude also removes RTCPeerConnection.)
            "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
            "--webrtc-ip-handling-policy=disable_non_proxied_udp",
        ])
        .map(|flag| flag.to_string())
        .collect();
    flags.push(format!("--proxy-server=127.0.0.1:{}", closed_port()));
    flags.push(format!("--user-data-dir={}", profile.display()));
    // Chromium's sandbox cannot start as root (containers, CI).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        flags.push("--no-sandbox".into());
    }
    flags.push("about:blank".into());
    flags
}

/// A loopback port nothing listens on: bound, then released. (Should
/// something bind it later, the browser's stray request still stays on
/// this machine.)
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        // Port 9 (discard) is closed on any ordinary machine.
        .unwrap_or(9)
}

/// A pipe, (read end, write end), both close-on-exec.
fn pipe() -> std::io::Result<(RawFd, RawFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((fds[0], fds[1]))
}

/// Takes ownership of `fd`.
fn file(fd: RawFd) -> File {
    // SAFETY: `fd` is an open pipe end nothing else owns.
    unsafe { File::from_raw_fd(fd) }
}

/// (pid, parent pid, resident pages) of every process in /proc.
fn processes() -> Vec<(u32, u32, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name is in parentheses and may hold spaces.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the name: state(0) ppid(1) ... rss(21).
        Some((
            pid,
            fields.get(1)?.parse().ok()?,
            fields.get(21)?.parse().ok()?,
        ))
    })
    .collect()
}

/// Every process below `root`.
fn descendants(root: u32) -> Vec<u32> {
    tree(root, &processes())
        .into_iter()
        .filter(|&p| p != root)
        .collect()
}

fn tree(root: u32, all: &[(u32, u32, u64)]) -> Vec<u32> {
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(all.iter().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    found
}

/// Resident memory of `root` and every process below it (bytes): each
/// process's proportional set size (its private pages plus its share of
/// those it shares), so the browser's libraries and the zygote's pages,
/// mapped by every process of the tree, count once rather than once per
/// process (plain RSS summed over Chromium's processes reads about three
/// times what it takes). RSS where the kernel has no `smaps_rollup`.
pub fn tree_rss(root: u32) -> u64 {
    let all = processes();
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    tree(root, &all)
        .iter()
        .filter_map(|pid| all.iter().find(|p| p.0 == *pid))
        .map(|p| pss(p.0).unwrap_or(p.2 * page))
        .sum()
}

/// The `Pss:` line of /proc/PID/smaps_rollup, in bytes.
fn pss(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Pss:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process tree is found through parent links, however deep.
    #[test]
    fn tree_follows_parents() {
        let all = [(1, 0, 1), (10, 1, 1), (11, 10, 1), (12, 11, 1), (20, 1, 1)];
        let mut t = tree(10, &all);
        t.sort();
        assert_eq!(t, vec![10, 11, 12]);
    }

    /// The setting takes "auto", "none" or an existing file.
    #[test]
    fn browser_setting() {
        assert_eq!(BrowserChoice::parse("auto"), Ok(BrowserChoice::Auto));
        assert_eq!(BrowserChoice::parse(" none "), Ok(BrowserChoice::None));
        assert!(BrowserChoice::parse("").is_err());
        let err = BrowserChoice::parse("/no/such/browser").unwrap_err();
        assert!(err.contains("/no/such/browser"), "{err}");
        assert!(BrowserChoice::None.resolve().is_err());
    }

    /// This process's own memory is seen (it is at least a megabyte).
    #[test]
    fn own_rss() {
        assert!(tree_rss(std::process::id()) > 1 << 20);
    }
}
