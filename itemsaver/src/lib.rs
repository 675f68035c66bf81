//! The itemsaver: receives batches of items from the engine over tarpc and
//! stores them durably, so a batch is acknowledged only once it would
//! survive a crash. It also answers `get` / `count` / `search` for tools,
//! and `delete` for the engine (pages gone on a recrawl).
//!
//! # Layout
//!
//! - this file: [`ItemsaverConfig`] (the `[itemsaver]` section of
//!   `config.toml`), [`open_store`], which picks the backend from it, and
//!   [`serve`], which attaches the service to a listener.
//! - [`service`]: step 6, the [`rpcsupport::ItemSaver`] implementation.
//!   Checks batches against the limits ([`service::Limits`]), then calls the
//!   store; store errors become `SaveError::Store` (retry) or
//!   `SaveError::BadQuery`, a batch over `max_batch_items`
//!   `SaveError::BatchTooLarge` (the engine sends smaller ones), and items
//!   over `max_item_bytes` or nested deeper than
//!   `rpcsupport::types::MAX_VALUE_DEPTH` (what the stores can read back)
//!   are refused by name in the `SaveAck`. `delete` meets the same batch
//!   limit (empty keys ignored) and counts `itemsaver_items_deleted_total`.
//! - [`store`]: step 7, the [`ItemStore`] trait (`put_batch`, `get`,
//!   `count`, `search`, `search_sorted`, `scan`, `delete`) every backend
//!   implements, and [`StoreError`].
//! - [`store::query`]: the search language, parsed once for both backends
//!   (`age:31` means the payload's `age`); text over `MAX_QUERY_BYTES` or
//!   nested past `MAX_QUERY_DEPTH` is a `BadQuery` before any parsing.
//! - [`store::embedded`]: the default backend, a tantivy index in
//!   `data_dir`, opened with [`open_embedded`]. Upserts by `Item::key`,
//!   group-commits concurrent batches and deletes in arrival order, fsyncs
//!   before acknowledging. The group commit lives in `embedded/write.rs`,
//!   reads in `embedded/read.rs`, scans for export in `embedded/scan.rs`,
//!   the sort by a payload number in `embedded/sorted.rs`.
//! - [`store::elastic`]: the cluster backend, an Elasticsearch index, used
//!   when `es_urls` is set ([`open_elastic`]). One `_bulk` per batch (or
//!   delete), transient item failures retried, query tree translated to
//!   query DSL.
//!   Split by concern: `client` (connection, auth, reads with failover),
//!   `mapping` (index and documents), `bulk` (writes with retry), `dsl`
//!   (query translation), `scan` (point in time + `search_after`).
//! - [`export`]: `itemsaver export`, every matching item out of a running
//!   itemsaver as JSON lines or CSV, page by page over the `scan` RPC
//!   (each store's [`ItemStore::scan`]), into `FILE.partial` renamed to
//!   `FILE` once whole.
//! - [`http`]: the search page and its JSON API on `http_addr`, served by
//!   this process over the same store, behind the RPC's token.
//! - `src/bin/itemsaver.rs`: thin binary. Flags and config, then [`serve`]
//!   (and the search page, if `http_addr` is set) until Ctrl-C / SIGTERM;
//!   `count`, `search` and `export` subcommands query a running itemsaver.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use rpcsupport::{ItemSaver, ServeOptions, ServerSecurity};
use serde::Deserialize;
use tarpc::server::Channel;
use thiserror::Error;

pub mod export;
pub mod http;
pub mod service;
pub mod store;

pub use store::elastic::ElasticStore;
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
    /// Address to serve Prometheus metrics on; "" for none.
    pub metrics_addr: String,
    /// Address of the search page and its JSON API, e.g. `127.0.0.1:8080`;
    /// "" (the default) for none. Asks for the `[rpc]` token when one is set.
    pub http_addr: String,
    /// Elasticsearch nodes, e.g. `["http://es1:9200", "http://es2:9200"]`;
    /// requests go to them in turn. Default empty: use the embedded store
    /// in `data_dir` instead.
    pub es_urls: Vec<String>,
    /// The Elasticsearch index holding the items; created with its mapping
    /// if missing. Default `crawler_items`.
    pub index: String,
    /// Basic-auth user for Elasticsearch; empty for none. Needs
    /// `es_password`.
    pub es_username: String,
    /// Basic-auth password for Elasticsearch.
    pub es_password: String,
    /// Elasticsearch API key, `id:key` or ES's base64 `encoded` form; empty
    /// for none. Instead of user and password.
    pub es_api_key: String,
    /// PEM file of the CA that signed the cluster's TLS certificate (ES 8
    /// makes its own by default); empty trusts the usual web roots.
    pub es_ca_cert: PathBuf,
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
            metrics_addr: String::new(),
            http_addr: String::new(),
            es_urls: Vec::new(),
            index: "crawler_items".into(),
            es_username: String::new(),
            es_password: String::new(),
            es_api_key: String::new(),
            es_ca_cert: PathBuf::new(),
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
        if !self.http_addr.is_empty() && self.http_addr.parse::<std::net::SocketAddr>().is_err() {
            return invalid(
                "http_addr",
                "must be empty or an address with a port, e.g. 127.0.0.1:8080",
            );
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
        self.elastic_settings().map(|_| ())
    }

    /// The Elasticsearch settings, or `None` for the embedded store.
    pub fn elastic_settings(&self) -> Result<Option<store::elastic::Settings>, InvalidConfig> {
        let invalid = |key, expected| Err(InvalidConfig { key, expected });
        if self.es_urls.is_empty() {
            return Ok(None);
        }
        let mut urls = Vec::new();
        for text in &self.es_urls {
            match url::Url::parse(text.trim()) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
                    urls.push(url)
                }
                _ => {
                    return invalid(
                        "es_urls",
                        "must be http(s) URLs, e.g. http://127.0.0.1:9200",
                    )
                }
            }
        }
        if !valid_index_name(&self.index) {
            return invalid(
                "index",
                "must be an Elasticsearch index name: lowercase, no spaces or \\/*?\"<>|,#:, \
                 not starting with -, _ or +",
            );
        }
        let auth = match (
            self.es_username.is_empty(),
            self.es_password.is_empty(),
            self.es_api_key.is_empty(),
        ) {
            (true, true, true) => None,
            (false, false, true) => Some(store::elastic::Auth::Basic {
                username: self.es_username.clone(),
                password: self.es_password.clone(),
            }),
            (true, true, false) => Some(store::elastic::Auth::ApiKey(self.es_api_key.clone())),
            (_, _, false) => {
                return invalid(
                    "es_api_key",
                    "must not be set together with es_username / es_password",
                )
            }
            (false, true, _) => return invalid("es_password", "must be set with es_username"),
            (true, false, _) => return invalid("es_username", "must be set with es_password"),
        };
        let ca_cert = (!self.es_ca_cert.as_os_str().is_empty()).then(|| self.es_ca_cert.clone());
        Ok(Some(store::elastic::Settings {
            urls,
            index: self.index.clone(),
            auth,
            ca_cert,
        }))
    }
}

/// Why [`open_store`] failed.
#[derive(Debug, Error)]
pub enum OpenError {
    /// The config names no usable store.
    #[error(transparent)]
    Config(#[from] InvalidConfig),
    /// The store could not be opened or reached.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Elasticsearch's rules for index names.
fn valid_index_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.starts_with(['-', '_', '+'])
        && !name
            .chars()
            .any(|c| c.is_uppercase() || c.is_whitespace() || "\\/*?\"<>|,#:".contains(c))
}

/// Opens (or creates) the embedded tantivy store in `dir`.
pub fn open_embedded(dir: &Path) -> Result<EmbeddedStore, StoreError> {
    store::embedded::open(dir)
}

/// Connects to Elasticsearch, checks it answers and creates the index if
/// missing.
pub async fn open_elastic(settings: &store::elastic::Settings) -> Result<ElasticStore, StoreError> {
    store::elastic::connect(settings).await
}

/// The store `config` asks for: Elasticsearch when `es_urls` is set,
/// otherwise the embedded index in `data_dir`. Also returns a description
/// for the ready line, e.g. `embedded store at /data/items`. `config` must
/// be valid.
pub async fn open_store(
    config: &ItemsaverConfig,
) -> Result<(Arc<dyn ItemStore>, String), OpenError> {
    match config.elastic_settings()? {
        Some(settings) => {
            let store = open_elastic(&settings).await?;
            let description = format!("elasticsearch index {} at {}", store.index(), store.urls());
            Ok((Arc::new(store), description))
        }
        None => {
            let store = open_embedded(&config.data_dir)?;
            let dir = store
                .dir()
                .canonicalize()
                .unwrap_or_else(|_| store.dir().to_owned());
            let description = format!("embedded store at {}", dir.display());
            Ok((Arc::new(store), description))
        }
    }
}

/// How [`serve`] serves: the limits of an [`ItemsaverConfig`], who may
/// connect, and where metrics go. The default is the default config's
/// limits, open to any client (no token, plain TCP), metrics kept in a
/// registry of its own.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Items one `save` may carry (`max_batch_items`).
    pub max_batch_items: usize,
    /// Largest item accepted, as JSON (`max_item_bytes`).
    pub max_item_bytes: usize,
    /// Largest RPC frame (`max_frame_bytes`).
    pub max_frame_bytes: usize,
    /// Requests in progress per connection (`max_concurrent_requests`).
    pub max_concurrent_requests: usize,
    /// Who may connect: token, TLS, connection limits (the `[rpc]` section).
    pub security: ServerSecurity,
    /// Where the service records its counters and latencies.
    pub metrics: Arc<rpcsupport::metrics::Registry>,
}

impl ServerOptions {
    /// The limits of `config`, open to any client, metrics in a new registry.
    pub fn from_config(config: &ItemsaverConfig) -> ServerOptions {
        ServerOptions {
            max_batch_items: config.max_batch_items,
            max_item_bytes: config.max_item_bytes,
            max_frame_bytes: config.max_frame_bytes,
            max_concurrent_requests: config.max_concurrent_requests,
            security: ServerSecurity::default(),
            metrics: rpcsupport::metrics::Registry::new(),
        }
    }
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions::from_config(&ItemsaverConfig::default())
    }
}

/// Serves the itemsaver over `store` on `listener` until `shutdown`
/// completes.
///
/// Each request runs in its own task, so one slow commit does not hold up
/// the `count` or `search` behind it on the same connection. On shutdown,
/// saves already handed to the store still finish (their commit runs on a
/// blocking thread); their callers may not hear back and will resend, which
/// upserting makes harmless.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<dyn ItemStore>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let service = service::ItemSaverService::new(
        store,
        service::Limits {
            max_batch_items: options.max_batch_items,
            max_item_bytes: options.max_item_bytes,
        },
        options.metrics,
    );
    let options = ServeOptions {
        max_frame_bytes: options.max_frame_bytes,
        max_concurrent_requests: options.max_concurrent_requests,
        security: options.security,
        ..ServeOptions::default()
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
