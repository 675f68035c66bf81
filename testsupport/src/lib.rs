//! What tests in several crates share: running one of our server binaries
//! (each prints `NAME listening on ADDR ...` as its first stdout line once
//! it serves), and finding the Elasticsearch-API test server.
//!
//! # Layout
//! - [`Server`]: spawns the binary, waits for that line, and kills the
//!   process when dropped, so a failing test leaves nothing behind.
//! - [`elasticsearch_url`]: the test server `scripts/noida.sh` starts, or a
//!   skip, except under CI, where its absence fails the test.
//! - [`browser`]: headless Chromium for our web pages (the DOM after their
//!   scripts ran, screenshots), with the same skip-unless-CI rule.
//! - [`fuzz`]: seeded random bytes and hostile RPC frames (random,
//!   mutated, truncated, nested, lying lengths) for the fuzz tests of the
//!   worker, the itemsaver and the clients (issue 11).

pub mod browser;
pub mod fuzz;

use std::io::{self, BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// The Elasticsearch-API test server's URL, from `CRAWLER_TEST_ES_URL`
/// (`source scripts/noida.sh` sets it). Without it: under CI (`CI` set) the
/// calling test panics, since CI must run the Elasticsearch tests;
/// elsewhere `test` is reported skipped and the answer is `None`.
pub fn elasticsearch_url(test: &str) -> Option<String> {
    match std::env::var("CRAWLER_TEST_ES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CRAWLER_TEST_ES_URL is not set, and CI must run the Elasticsearch tests")
        }
        _ => {
            eprintln!(
                "notice: {test} skipped: set CRAWLER_TEST_ES_URL (see scripts/noida.sh) to run it"
            );
            None
        }
    }
}

/// How long a binary may take to print its ready line; a cold debug
/// build of the itemsaver opens its index in well under this.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server process; SIGKILLed and reaped when dropped.
pub struct Server {
    child: Child,
    ready_line: String,
    addr: String,
}

impl Server {
    /// Spawns `cmd` with stdin null and stdout piped, and waits for its first
    /// stdout line, which must start with `prefix` and then the address.
    /// Stderr and the working directory are left to the caller.
    ///
    /// Panics with the line if it does not match, or if none comes within 30 s.
    pub fn start(cmd: &mut Command, prefix: &str) -> Server {
        let program = cmd.get_program().to_owned();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {program:?}: {e}"));
        // Built before the wait, so a panic below still kills the child.
        let mut server = Server {
            child,
            ready_line: String::new(),
            addr: String::new(),
        };
        let stdout = server.child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        // A thread, because std cannot time out a blocking read.
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = tx.send(reader.read_line(&mut line).map(|_| line));
            // Keep reading: a later print to a closed pipe would fail the child.
            let _ = io::copy(&mut reader, &mut io::sink());
        });
        let line = rx
            .recv_timeout(READY_TIMEOUT)
            .unwrap_or_else(|_| panic!("{program:?} printed no line within {READY_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("read the stdout of {program:?}: {e}"));
        server.addr = line
            .strip_prefix(prefix)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("{program:?}: unexpected ready line {line:?}"))
            .to_owned();
        server.ready_line = line;
        server
    }

    /// The first word after the prefix of the ready line.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The whole ready line, with its newline.
    pub fn ready_line(&self) -> &str {
        &self.ready_line
    }

    /// Sends SIGTERM and waits for the process to exit. Through the `kill`
    /// command, because std has no way to send a signal other than SIGKILL.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let kill = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(kill.success(), "kill -TERM {pid}: {kill}");
        self.child.wait().expect("wait for the server")
    }

    /// The most resident memory the process has had so far (`VmHWM` of
    /// /proc), in bytes; `None` once it is gone or off Linux.
    pub fn peak_rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse::<u64>()
            .ok()?;
        Some(kib * 1024)
    }

    /// SIGKILL: no shutdown code runs. Waits for the process to be gone.
    pub fn kill9(&mut self) {
        // Errors only mean the process is already gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    /// The address is the first word after the prefix, and SIGTERM reaches the process.
    #[test]
    fn reads_the_address_and_terminates() {
        let mut server = Server::start(
            &mut sh("echo 'x listening on 127.0.0.1:5 (ready)'; exec sleep 30"),
            "x listening on ",
        );
        assert_eq!(server.addr(), "127.0.0.1:5");
        assert_eq!(server.ready_line(), "x listening on 127.0.0.1:5 (ready)\n");
        assert_eq!(server.terminate().signal(), Some(15));
    }

    /// Peak memory is read off a live process.
    #[test]
    fn reads_peak_rss() {
        let server = Server::start(
            &mut sh("echo 'x listening on 127.0.0.1:5'; exec sleep 30"),
            "x listening on ",
        );
        let rss = server.peak_rss().expect("a live process has a VmHWM");
        assert!(rss > 0 && rss < 1 << 30, "{rss}");
    }

    /// A first line without the prefix is a panic that shows the line.
    #[test]
    #[should_panic(expected = "unexpected ready line \"starting\\n\"")]
    fn other_first_line_panics() {
        Server::start(&mut sh("echo starting; exec sleep 30"), "x listening on ");
    }
}
