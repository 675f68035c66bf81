//! The itemsaver: receives batches of items from the engine over tarpc and
//! stores them durably, so a batch is acknowledged only once it would
//! survive a crash. It also answers `get` / `count` / `search` for tools.
//!
//! # Layout
//!
//! - this file: [`ItemsaverConfig`] (the `[itemsaver]` section of
//!   `config.toml`) and [`serve`], which attaches the service to a listener.
//! - [`service`]: step 6, the [`rpcsupport::ItemSaver`] implementation.
//!   Checks batches against the limits ([`service::Limits`]), then calls the
//!   store; store errors become `SaveError::Store` (retry) or
//!   `SaveError::BadQuery`, broken limits `SaveError::Rejected`.
//! - [`store`]: step 7, the [`ItemStore`] trait (`put_batch`, `get`,
//!   `count`, `search`) every backend implements, and [`StoreError`].
//! - [`store::embedded`]: the default backend, a tantivy index in
//!   `data_dir`, opened with [`open_embedded`]. Upserts by `Item::key`,
//!   group-commits concurrent batches, fsyncs before acknowledging.
//! - `src/bin/itemsaver.rs`: thin binary. Flags and config, then [`serve`]
//!   until Ctrl-C / SIGTERM; `count` and `search` subcommands query a
//!   running itemsaver.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use rpcsupport::{ItemSaver, ServeOptions};
use serde::Deserialize;
use tarpc::server::Channel;
use thiserror::Error;

pub mod service;
pub mod store;

pub use store::embedded::EmbeddedStore;
pub use store::{ItemStore, StoreError};

/// The `[itemsaver]` section of `config.toml`. Missing keys take the
/// defaults below; unknown keys are an error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ItemsaverConfig {
    /// TCP port to listen on. Default 1234. 0 picks a free port (tests).
    pub port: u16,
    /// Address to bind. Default `127.0.0.1`: only local processes can
    /// save; set `0.0.0.0` when workers and engine run on other hosts.
    pub bind: String,
    /// Where the embedded index lives; created if missing. Default
    /// `./data/items`.
    pub data_dir: PathBuf,
    /// Most items in one `save`; larger batches are rejected. Default 10 000.
    pub max_batch_items: usize,
    /// Largest item, as JSON text; a batch with a larger item is rejected.
    /// Default 1 MiB.
    pub max_item_bytes: usize,
    /// Largest RPC frame; a larger one closes the connection. Default
    /// 64 MiB, above what a full batch of typical items needs.
    pub max_frame_bytes: usize,
    /// Requests one connection may have in progress. Default 1024.
    pub max_concurrent_requests: usize,
}

impl Default for ItemsaverConfig {
    fn default() -> Self {
        ItemsaverConfig {
            port: 1234,
            bind: "127.0.0.1".into(),
            data_dir: PathBuf::from("./data/items"),
            max_batch_items: 10_000,
            max_item_bytes: 1024 * 1024,
            max_frame_bytes: 64 * 1024 * 1024,
            max_concurrent_requests: 1024,
        }
    }
}

/// A config value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("itemsaver config: `{key}` {expected}")]
pub struct InvalidConfig {
    /// The key, as written in `config.toml`.
    pub key: &'static str,
    /// What it must be.
    pub expected: &'static str,
}

impl ItemsaverConfig {
    /// Checks values that parse but make no sense, naming the key.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let invalid = |key, expected| Err(InvalidConfig { key, expected });
        if self.bind.parse::<std::net::IpAddr>().is_err() {
            return invalid("bind", "must be an IP address, e.g. 127.0.0.1 or 0.0.0.0");
        }
        if self.data_dir.as_os_str().is_empty() {
            return invalid("data_dir", "must not be empty");
        }
        for (key, value) in [
            ("max_batch_items", self.max_batch_items),
            ("max_item_bytes", self.max_item_bytes),
            ("max_frame_bytes", self.max_frame_bytes),
            ("max_concurrent_requests", self.max_concurrent_requests),
        ] {
            if value == 0 {
                return invalid(key, "must be at least 1");
            }
        }
        Ok(())
    }
}

/// Opens (or creates) the embedded tantivy store in `dir`.
pub fn open_embedded(dir: &Path) -> Result<EmbeddedStore, StoreError> {
    store::embedded::open(dir)
}

/// Serves the itemsaver on `listener` until `shutdown` completes.
///
/// Each request runs in its own task, so one slow commit does not hold up
/// the `count` or `search` behind it on the same connection. On shutdown,
/// saves already handed to the store still finish (their commit runs on a
/// blocking thread); their callers may not hear back and will resend, which
/// upserting makes harmless.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<dyn ItemStore>,
    config: &ItemsaverConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let service = service::ItemSaverService::new(
        store,
        service::Limits {
            max_batch_items: config.max_batch_items,
            max_item_bytes: config.max_item_bytes,
        },
    );
    let options = ServeOptions {
        max_frame_bytes: config.max_frame_bytes,
        max_concurrent_requests: config.max_concurrent_requests,
    };
    rpcsupport::serve(listener, options, shutdown, move |channel| {
        let service = service.clone();
        async move {
            channel
                .execute(service.serve())
                .for_each(|response| async {
                    tokio::spawn(response);
                })
                .await
        }
    })
    .await
}
