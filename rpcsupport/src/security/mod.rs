//! Who may talk to a server: the shared `[rpc]` section of `config.toml`,
//! the flags that override it, and the checked settings [`serve`] and the
//! `connect_*` helpers use.
//!
//! A worker fetches any URL it is asked to and the itemsaver stores what it
//! is sent, so their ports must not be usable by strangers. Two guards,
//! both optional so the local demo needs neither:
//!
//! - a secret (the *token*) checked once per connection before any request
//!   is read (the wire format is in [`crate::handshake`]). One `token`
//!   serves both services in a simple set-up; `worker_token` and
//!   `itemsaver_token` give each service its own, so a worker machine,
//!   which holds only the worker token, can neither write to nor read the
//!   store ([`Service`]);
//! - TLS (rustls), with a CA of our own, optionally mutual.
//!
//! Settings come from the file, then the token variables
//! (`CRAWLER_RPC_TOKEN`, `CRAWLER_WORKER_TOKEN`, `CRAWLER_ITEMSAVER_TOKEN`),
//! then flags
//! ([`load`]); [`RpcConfig::server`] and [`RpcConfig::client`] check them
//! and read the files they name, each only what its side needs, so one
//! config file can be shared by machines holding different key files.
//!
//! This file holds the section and its checks; `flags.rs` the flags,
//! `token.rs` the [`Token`], `sides.rs` the checked settings each side
//! uses ([`ServerSecurity`], [`ClientSecurity`]).
//!
//! [`serve`]: crate::serve

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::{load_section, ConfigError};
use crate::tls;

mod flags;
mod sides;
mod token;

pub use flags::RpcFlags;
pub use sides::{ClientSecurity, ServerSecurity};
use token::read_token;
pub use token::{Token, TokenError};

/// The environment variable holding the token, so it need not appear on a
/// command line (visible to every user through `ps`).
pub const TOKEN_ENV: &str = "CRAWLER_RPC_TOKEN";
/// The environment variable holding the workers' own token.
pub const WORKER_TOKEN_ENV: &str = "CRAWLER_WORKER_TOKEN";
/// The environment variable holding the itemsaver's own token.
pub const ITEMSAVER_TOKEN_ENV: &str = "CRAWLER_ITEMSAVER_TOKEN";

/// The two RPC services, each of which may have its own token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// The workers' [`Crawl`](crate::Crawl) service: `worker_token`.
    Worker,
    /// The itemsaver's [`ItemSaver`](crate::ItemSaver) service:
    /// `itemsaver_token`.
    Itemsaver,
}

impl Service {
    /// The `[rpc]` keys of this service's own token: the value, the file.
    pub fn token_keys(self) -> (&'static str, &'static str) {
        match self {
            Service::Worker => ("worker_token", "worker_token_file"),
            Service::Itemsaver => ("itemsaver_token", "itemsaver_token_file"),
        }
    }

    /// The environment variable of this service's own token.
    pub fn token_env(self) -> &'static str {
        match self {
            Service::Worker => WORKER_TOKEN_ENV,
            Service::Itemsaver => ITEMSAVER_TOKEN_ENV,
        }
    }
}

/// Longest token accepted. The server reads at most this many bytes from a
/// peer that has not yet proved anything.
pub const MAX_TOKEN_BYTES: usize = 1024;

/// The `[rpc]` section of `config.toml`, read by all three binaries.
/// Empty strings mean "not set".
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcConfig {
    /// The shared secret itself. Prefer `token_file` or `CRAWLER_RPC_TOKEN`.
    pub token: String,
    /// A file holding the shared secret (surrounding whitespace ignored).
    pub token_file: PathBuf,
    /// The workers' own secret; when set (or `worker_token_file`), it
    /// replaces `token` between the engine and the workers.
    pub worker_token: String,
    /// A file holding the workers' own secret.
    pub worker_token_file: PathBuf,
    /// The itemsaver's own secret; when set (or `itemsaver_token_file`), it
    /// replaces `token` for the itemsaver and its clients.
    pub itemsaver_token: String,
    /// A file holding the itemsaver's own secret.
    pub itemsaver_token_file: PathBuf,
    /// Server: PEM certificate chain presented to clients. With `tls_key`,
    /// the server speaks only TLS.
    pub tls_cert: PathBuf,
    /// Server: PEM private key of `tls_cert`.
    pub tls_key: PathBuf,
    /// PEM file of the CA that signed the servers' certificates; setting it
    /// makes clients use TLS. Servers with `require_client_cert` check
    /// client certificates against it too.
    pub tls_ca: PathBuf,
    /// Client: PEM certificate chain presented to servers (mutual TLS).
    pub tls_client_cert: PathBuf,
    /// Client: PEM private key of `tls_client_cert`.
    pub tls_client_key: PathBuf,
    /// Server: refuse clients without a certificate signed by `tls_ca`.
    pub require_client_cert: bool,
    /// Server: connections open at once; more are closed at once.
    pub max_connections: usize,
    /// Server: close a connection with no traffic for this long; 0 never.
    pub idle_timeout_ms: u64,
    /// Server: time a new connection has to finish TLS and the token check.
    pub handshake_timeout_ms: u64,
    /// Server: connections still in TLS or the token check at once; more
    /// are closed at once. Kept apart from `max_connections`, so sockets
    /// that never finish the handshake cannot lock out clients that do.
    pub max_handshakes: usize,
    /// Server: of those, from one peer IP address.
    pub max_handshakes_per_ip: usize,
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            token: String::new(),
            token_file: PathBuf::new(),
            worker_token: String::new(),
            worker_token_file: PathBuf::new(),
            itemsaver_token: String::new(),
            itemsaver_token_file: PathBuf::new(),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            tls_ca: PathBuf::new(),
            tls_client_cert: PathBuf::new(),
            tls_client_key: PathBuf::new(),
            require_client_cert: false,
            max_connections: 1024,
            // Well above the engine's default call deadline, so a connection
            // is not dropped under a slow request; a dropped connection is
            // only a reconnect for the engine anyway.
            idle_timeout_ms: 300_000,
            handshake_timeout_ms: 10_000,
            // A handshake takes a round trip or two: a few dozen at once
            // is a burst of reconnecting engines, not a normal load.
            max_handshakes: 64,
            max_handshakes_per_ip: 16,
        }
    }
}

/// Never prints the token.
impl fmt::Debug for RpcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcConfig")
            .field("token", &redacted(!self.token.is_empty()))
            .field("token_file", &self.token_file)
            .field("worker_token", &redacted(!self.worker_token.is_empty()))
            .field("worker_token_file", &self.worker_token_file)
            .field(
                "itemsaver_token",
                &redacted(!self.itemsaver_token.is_empty()),
            )
            .field("itemsaver_token_file", &self.itemsaver_token_file)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("tls_ca", &self.tls_ca)
            .field("tls_client_cert", &self.tls_client_cert)
            .field("tls_client_key", &self.tls_client_key)
            .field("require_client_cert", &self.require_client_cert)
            .field("max_connections", &self.max_connections)
            .field("idle_timeout_ms", &self.idle_timeout_ms)
            .field("handshake_timeout_ms", &self.handshake_timeout_ms)
            .field("max_handshakes", &self.max_handshakes)
            .field("max_handshakes_per_ip", &self.max_handshakes_per_ip)
            .finish()
    }
}

fn redacted(set: bool) -> &'static str {
    if set {
        "<redacted>"
    } else {
        "<none>"
    }
}

/// Reads `[rpc]` from the config file at `path` (optional unless
/// `required`), then applies each token variable set and non-empty
/// (`CRAWLER_RPC_TOKEN` replacing the file's `token` and `token_file`,
/// `CRAWLER_WORKER_TOKEN` its `worker_token*`, `CRAWLER_ITEMSAVER_TOKEN`
/// its `itemsaver_token*`), then `flags`.
pub fn load(path: &Path, required: bool, flags: &RpcFlags) -> Result<RpcConfig, ConfigError> {
    let mut config: RpcConfig = load_section(path, "rpc", required)?;
    let from_env = |env: &str, (value, file): (&mut String, &mut PathBuf)| {
        if let Ok(token) = std::env::var(env) {
            if !token.is_empty() {
                *value = token;
                *file = PathBuf::new();
            }
        }
    };
    from_env(TOKEN_ENV, config.shared_token_mut());
    from_env(WORKER_TOKEN_ENV, config.token_mut(Service::Worker));
    from_env(ITEMSAVER_TOKEN_ENV, config.token_mut(Service::Itemsaver));
    flags.apply(&mut config);
    Ok(config)
}

/// A setting that cannot be used; names the key.
#[derive(Debug, Error)]
#[error("rpc.{key}: {reason}")]
pub struct RpcConfigError {
    /// The key, without the `rpc.` prefix (the flag is spelt the same,
    /// `token` and `token_file` as `--rpc_token` and `--rpc_token_file`).
    pub key: &'static str,
    /// What is wrong and what was expected.
    pub reason: String,
}

pub(crate) fn invalid(key: &'static str, reason: impl Into<String>) -> RpcConfigError {
    RpcConfigError {
        key,
        reason: reason.into(),
    }
}

fn is_set(path: &Path) -> bool {
    !path.as_os_str().is_empty()
}

impl RpcConfig {
    fn shared_token_mut(&mut self) -> (&mut String, &mut PathBuf) {
        (&mut self.token, &mut self.token_file)
    }

    fn token_mut(&mut self, service: Service) -> (&mut String, &mut PathBuf) {
        match service {
            Service::Worker => (&mut self.worker_token, &mut self.worker_token_file),
            Service::Itemsaver => (&mut self.itemsaver_token, &mut self.itemsaver_token_file),
        }
    }

    /// The shared token, from `token` or `token_file`, if either is set.
    pub fn token(&self) -> Result<Option<Token>, RpcConfigError> {
        read_token(&self.token, &self.token_file, ("token", "token_file"))
    }

    /// The token of `service`: its own (`worker_token*` or
    /// `itemsaver_token*`) when set, which wins, else the shared one.
    pub fn token_for(&self, service: Service) -> Result<Option<Token>, RpcConfigError> {
        let (value, file) = match service {
            Service::Worker => (&self.worker_token, &self.worker_token_file),
            Service::Itemsaver => (&self.itemsaver_token, &self.itemsaver_token_file),
        };
        match read_token(value, file, service.token_keys())? {
            Some(token) => Ok(Some(token)),
            None => self.token(),
        }
    }

    /// Checks the keys of a server of `service` and reads the files they
    /// name; the server asks for that service's token.
    pub fn server(&self, service: Service) -> Result<ServerSecurity, RpcConfigError> {
        if self.max_connections == 0 {
            return Err(invalid("max_connections", "must be at least 1"));
        }
        if self.max_handshakes == 0 {
            return Err(invalid("max_handshakes", "must be at least 1"));
        }
        if self.max_handshakes_per_ip == 0 {
            return Err(invalid("max_handshakes_per_ip", "must be at least 1"));
        }
        if self.handshake_timeout_ms == 0 {
            return Err(invalid("handshake_timeout_ms", "must be at least 1"));
        }
        let tls = match (is_set(&self.tls_cert), is_set(&self.tls_key)) {
            (false, false) => {
                if self.require_client_cert {
                    return Err(invalid(
                        "require_client_cert",
                        "needs TLS on the server: set `tls_cert` and `tls_key`",
                    ));
                }
                None
            }
            (true, false) => return Err(invalid("tls_key", "required when `tls_cert` is set")),
            (false, true) => return Err(invalid("tls_cert", "required when `tls_key` is set")),
            (true, true) => {
                let client_ca = if self.require_client_cert {
                    if !is_set(&self.tls_ca) {
                        return Err(invalid(
                            "tls_ca",
                            "required when `require_client_cert` is true: the CA client certificates must chain to",
                        ));
                    }
                    Some(self.tls_ca.as_path())
                } else {
                    None
                };
                Some(tls::server_config(
                    &self.tls_cert,
                    &self.tls_key,
                    client_ca,
                )?)
            }
        };
        Ok(ServerSecurity {
            token: self.token_for(service)?,
            tls,
            max_connections: self.max_connections,
            max_handshakes: self.max_handshakes,
            max_handshakes_per_ip: self.max_handshakes_per_ip,
            idle_timeout: (self.idle_timeout_ms > 0)
                .then(|| Duration::from_millis(self.idle_timeout_ms)),
            handshake_timeout: Duration::from_millis(self.handshake_timeout_ms),
        })
    }

    /// Checks the client side's keys and reads the files they name, with
    /// the tokens of both services (the engine talks to both).
    pub fn client(&self) -> Result<ClientSecurity, RpcConfigError> {
        self.client_for(&[Service::Worker, Service::Itemsaver])
    }

    /// Like [`RpcConfig::client`], reading only the tokens of `services`:
    /// a tool that talks to the itemsaver alone needs no worker token file.
    pub fn client_for(&self, services: &[Service]) -> Result<ClientSecurity, RpcConfigError> {
        let client_cert = match (is_set(&self.tls_client_cert), is_set(&self.tls_client_key)) {
            (false, false) => None,
            (true, false) => {
                return Err(invalid(
                    "tls_client_key",
                    "required when `tls_client_cert` is set",
                ))
            }
            (false, true) => {
                return Err(invalid(
                    "tls_client_cert",
                    "required when `tls_client_key` is set",
                ))
            }
            (true, true) => Some((
                self.tls_client_cert.as_path(),
                self.tls_client_key.as_path(),
            )),
        };
        let tls = if is_set(&self.tls_ca) {
            Some(tls::client_config(&self.tls_ca, client_cert)?)
        } else if client_cert.is_some() {
            return Err(invalid(
                "tls_ca",
                "required when `tls_client_cert` is set: a client certificate is only sent over TLS",
            ));
        } else {
            None
        };
        let token = |service: Service| -> Result<Option<Token>, RpcConfigError> {
            if services.contains(&service) {
                self.token_for(service)
            } else {
                Ok(None)
            }
        };
        Ok(ClientSecurity {
            worker_token: token(Service::Worker)?,
            itemsaver_token: token(Service::Itemsaver)?,
            tls,
        })
    }
}

#[cfg(test)]
mod tests;
