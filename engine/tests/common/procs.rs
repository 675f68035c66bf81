//! Real server processes (worker, itemsaver, engine binaries) for tests that
//! kill them. The worker and itemsaver binaries sit next to the engine's in
//! the target dir; `cargo test --workspace` builds them all.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rpcsupport::{connect_itemsaver, ConnectOptions, HostAddr};
use tarpc::context;
use testsupport::Server;

pub fn bin(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_engine")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace` so every binary is built",
        path.display()
    );
    path
}

/// A worker or itemsaver process, SIGKILLed when dropped.
pub struct Proc {
    server: Server,
    /// The address from its ready line; a field, not `server.addr()`,
    /// because the tests read and clone it as one.
    pub addr: String,
}

impl Proc {
    /// Starts `name` and waits (up to 30 s) for its "NAME listening on ADDR" line.
    pub fn start(name: &str, args: &[&str]) -> Proc {
        let server = Server::start(
            Command::new(bin(name))
                .args(args)
                .env("RUST_LOG", "warn")
                .stderr(Stdio::inherit()),
            &format!("{name} listening on "),
        );
        let addr = server.addr().to_owned();
        Proc { server, addr }
    }

    pub fn port(&self) -> String {
        self.addr.rsplit(':').next().unwrap().to_owned()
    }

    /// The process's peak resident memory so far, in bytes.
    pub fn peak_rss(&self) -> Option<u64> {
        self.server.peak_rss()
    }

    pub fn kill9(&mut self) {
        self.server.kill9();
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
