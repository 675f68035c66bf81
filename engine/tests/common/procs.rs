//! Real server processes (worker, itemsaver, engine binaries) for tests that
//! kill them. The worker and itemsaver binaries sit next to the engine's in
//! the target dir; `cargo test --workspace` builds them all.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rpcsupport::{connect_itemsaver, ConnectOptions, HostAddr};
use tarpc::context;

pub fn bin(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_engine")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace` so every binary is built",
        path.display()
    );
    path
}

/// A child process killed (SIGKILL) when dropped.
pub struct Proc {
    pub child: Child,
    /// The address from its "listening on" line.
    pub addr: String,
}

impl Proc {
    /// Starts `name` and waits (up to 30 s) for its "listening on ADDR" line.
    pub fn start(name: &str, args: &[&str]) -> Proc {
        let mut child = Command::new(bin(name))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest
                        .trim_start_matches("http://")
                        .split([' ', '/'])
                        .next()
                        .unwrap_or("")
                        .to_owned();
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("{name} did not report its address"));
        Proc { child, addr }
    }

    pub fn port(&self) -> String {
        self.addr.rsplit(':').next().unwrap().to_owned()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL on unix
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Items stored, or `None` while the itemsaver does not answer.
pub async fn stored(addr: &str) -> Option<u64> {
    let host: HostAddr = addr.parse().ok()?;
    let opts = ConnectOptions {
        connect_timeout: Duration::from_secs(1),
        ..ConnectOptions::default()
    };
    let client = connect_itemsaver(&host, opts).await.ok()?;
    client.count(context::current()).await.ok()?.ok()
}

/// Waits until the itemsaver at `addr` holds at least `n` items.
pub async fn wait_for_items(addr: &str, n: u64, limit: Duration) {
    let start = Instant::now();
    loop {
        if stored(addr).await.is_some_and(|c| c >= n) {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "itemsaver did not reach {n} items within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
