//! The contract every crawler process shares.
//!
//! The engine, the workers and the itemsaver are separate processes that only
//! agree on what is in this crate. Read it first.
//!
//! # Layout
//!
//! - [`config`]: reads one process's section of `config.toml`, with errors
//!   that name the offending key.
//! - [`types`]: what crosses the wire. A [`Request`] is a URL plus a
//!   [`ParserSpec`] (a parser is *data*, a name and its arguments, so any
//!   worker can run it); a worker answers with a [`ParseResult`] of new
//!   requests and [`Item`]s whose payload keeps typed [`Value`]s; a
//!   [`Shared`] argument is one the caller keeps, sent without a copy.
//! - [`error`]: typed, serializable outcomes of a crawl step
//!   ([`CrawlError`], [`FetchError`], [`ParseError`]) and of a save
//!   ([`SaveError`]). Transport failures stay tarpc's `RpcError`.
//! - [`rules`]: the rules' spec: the serde types of a rules file
//!   ([`RulesFile`]), checked into [`Rules`] (every check but CSS selector
//!   syntax, which the workers make when they compile the rules), its id
//!   and the [`RULESET_ARG`] a request names it by.
//! - [`service`]: the two tarpc services, [`Crawl`] (served by workers) and
//!   [`ItemSaver`] (served by the itemsaver).
//! - [`security`]: who may connect. The shared `[rpc]` section
//!   ([`RpcConfig`], its flags [`RpcFlags`]) checked into what a server asks
//!   ([`ServerSecurity`]: its [`Service`]'s token, TLS, connection and
//!   handshake limits) and what a client presents ([`ClientSecurity`]: a
//!   token per service, so a worker machine cannot reach the store). The private `tls` module builds the rustls
//!   configurations from PEM files.
//! - [`handshake`]: the token check that opens every connection, before
//!   any tarpc frame.
//! - [`metrics`]: counters, gauges and latency histograms, served to
//!   Prometheus by every process that has `--metrics_addr`.
//! - [`shutdown`]: the Ctrl-C / SIGTERM future every binary stops on.
//! - [`cli`]: what every binary's `main` does alike: logging to stderr,
//!   the config-file rule (`--config` must exist, else `./config.toml` if
//!   present), flags over keys ([`apply_flags!`]), and `NAME: error: ...`
//!   with exit code 1.
//! - [`codec`]: the bincode inside every frame, decoded with a nesting
//!   limit and a bound on decoded memory per frame byte
//!   ([`codec::DecodeLimits`]), so no frame can overflow a stack or decode
//!   to gigabytes.
//! - [`transport`]: [`serve`] and the `connect_*` helpers every binary and
//!   test uses: TCP or TLS, the handshake (with its own small budget of
//!   connections), length-delimited frames with an explicit maximum size
//!   and the [`codec`] inside, and the `:9000` / `host:port` /
//!   `[::1]:9000` host syntax ([`HostAddr`]).
#![deny(missing_docs)]

pub mod cli;
pub mod codec;
pub mod config;
pub mod error;
pub mod handshake;
pub mod metrics;
pub mod rules;
pub mod security;
pub mod service;
pub mod shutdown;
mod tls;
pub mod transport;
pub mod types;

pub use error::{CrawlError, FetchError, ParseError, RenderError, SaveError};
pub use rules::{RuleError, Rules, RulesFile, RULESET_ARG};
pub use security::{ClientSecurity, RpcConfig, RpcFlags, ServerSecurity, Service, Token};
pub use service::{Crawl, CrawlClient, ItemSaver, ItemSaverClient};
pub use transport::{
    connect_crawl, connect_itemsaver, serve, ConnectOptions, HostAddr, HostError, ServeOptions,
};
pub use types::{
    content_hash, FetchHints, FetchPolicy, Item, PageMeta, ParseResult, ParserSpec, PolicyRef,
    Refusal, Render, RenderReason, Request, SaveAck, ScanCursor, ScanPage, ScanRequest,
    SearchRequest, SearchResponse, Shared, Value, WorkerStatus, SITEMAP_PARSER,
};
