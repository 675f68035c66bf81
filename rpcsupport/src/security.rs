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
//! [`serve`]: crate::serve

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::{load_section, ConfigError};
use crate::tls;

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

/// The `[rpc]` flags, defined once and flattened into each binary's
/// (`#[command(flatten)]`). Global, so they also follow a subcommand.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RpcFlags {
    /// Shared RPC secret (overrides rpc.token; a flag shows in `ps`, so
    /// prefer --rpc_token_file or the CRAWLER_RPC_TOKEN variable).
    #[arg(long = "rpc_token", global = true, conflicts_with = "rpc_token_file")]
    pub rpc_token: Option<String>,
    /// File holding the shared RPC secret (overrides rpc.token_file).
    #[arg(long = "rpc_token_file", global = true)]
    pub rpc_token_file: Option<PathBuf>,
    /// The workers' own RPC secret (overrides rpc.worker_token; prefer
    /// --worker_token_file or CRAWLER_WORKER_TOKEN).
    #[arg(
        long = "worker_token",
        global = true,
        conflicts_with = "worker_token_file"
    )]
    pub worker_token: Option<String>,
    /// File holding the workers' own RPC secret (overrides rpc.worker_token_file).
    #[arg(long = "worker_token_file", global = true)]
    pub worker_token_file: Option<PathBuf>,
    /// The itemsaver's own RPC secret (overrides rpc.itemsaver_token; prefer
    /// --itemsaver_token_file or CRAWLER_ITEMSAVER_TOKEN).
    #[arg(
        long = "itemsaver_token",
        global = true,
        conflicts_with = "itemsaver_token_file"
    )]
    pub itemsaver_token: Option<String>,
    /// File holding the itemsaver's own RPC secret (overrides rpc.itemsaver_token_file).
    #[arg(long = "itemsaver_token_file", global = true)]
    pub itemsaver_token_file: Option<PathBuf>,
    /// Server certificate chain, PEM (overrides rpc.tls_cert).
    #[arg(long = "tls_cert", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// Server private key, PEM (overrides rpc.tls_key).
    #[arg(long = "tls_key", global = true)]
    pub tls_key: Option<PathBuf>,
    /// CA certificate to trust, PEM; clients then use TLS (overrides rpc.tls_ca).
    #[arg(long = "tls_ca", global = true)]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate chain for mutual TLS, PEM (overrides rpc.tls_client_cert).
    #[arg(long = "tls_client_cert", global = true)]
    pub tls_client_cert: Option<PathBuf>,
    /// Client private key for mutual TLS, PEM (overrides rpc.tls_client_key).
    #[arg(long = "tls_client_key", global = true)]
    pub tls_client_key: Option<PathBuf>,
    /// Refuse clients without a certificate signed by tls_ca (true/false;
    /// alone means true) [default false].
    #[arg(long = "require_client_cert", global = true, num_args = 0..=1, default_missing_value = "true")]
    pub require_client_cert: Option<bool>,
    /// RPC connections a server keeps open at once [default 1024].
    #[arg(long = "max_connections", global = true)]
    pub max_connections: Option<usize>,
    /// Close an RPC connection silent for this many milliseconds; 0 never [default 300000].
    #[arg(long = "idle_timeout_ms", global = true)]
    pub idle_timeout_ms: Option<u64>,
    /// Milliseconds a new RPC connection has for TLS and the token check [default 10000].
    #[arg(long = "handshake_timeout_ms", global = true)]
    pub handshake_timeout_ms: Option<u64>,
    /// RPC connections a server lets be in the handshake at once [default 64].
    #[arg(long = "max_handshakes", global = true)]
    pub max_handshakes: Option<usize>,
    /// Of those, from one IP address [default 16].
    #[arg(long = "max_handshakes_per_ip", global = true)]
    pub max_handshakes_per_ip: Option<usize>,
}

impl RpcFlags {
    /// Flags win over the file and the environment. A token flag replaces
    /// both keys of its token, so a file's `token_file` cannot clash with it.
    pub fn apply(&self, config: &mut RpcConfig) {
        fn set(
            value: &Option<String>,
            file: &Option<PathBuf>,
            (to_value, to_file): (&mut String, &mut PathBuf),
        ) {
            if let Some(token) = value {
                *to_value = token.clone();
                *to_file = PathBuf::new();
            }
            if let Some(path) = file {
                *to_file = path.clone();
                *to_value = String::new();
            }
        }
        set(
            &self.rpc_token,
            &self.rpc_token_file,
            config.shared_token_mut(),
        );
        set(
            &self.worker_token,
            &self.worker_token_file,
            config.token_mut(Service::Worker),
        );
        set(
            &self.itemsaver_token,
            &self.itemsaver_token_file,
            config.token_mut(Service::Itemsaver),
        );
        macro_rules! flag {
            ($($field:ident),*) => {
                $(if let Some(v) = &self.$field { config.$field = v.clone(); })*
            };
        }
        flag!(
            tls_cert,
            tls_key,
            tls_ca,
            tls_client_cert,
            tls_client_key,
            require_client_cert,
            max_connections,
            idle_timeout_ms,
            handshake_timeout_ms,
            max_handshakes,
            max_handshakes_per_ip
        );
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

/// A token from a value or a file (`keys` names both, for errors), if either
/// is set.
fn read_token(
    value: &str,
    file: &Path,
    keys: (&'static str, &'static str),
) -> Result<Option<Token>, RpcConfigError> {
    let (value_key, file_key) = keys;
    match (value.is_empty(), is_set(file)) {
        (true, false) => Ok(None),
        (false, true) => Err(invalid(
            value_key,
            format!("both `{value_key}` and `{file_key}` are set; keep one"),
        )),
        (false, false) => Token::new(value.as_bytes())
            .map(Some)
            .map_err(|e| invalid(value_key, e.to_string())),
        (true, true) => {
            let text = std::fs::read(file)
                .map_err(|e| invalid(file_key, format!("cannot read {}: {e}", file.display())))?;
            warn_if_others_can_read(file);
            Token::new(text.trim_ascii())
                .map(Some)
                .map_err(|e| invalid(file_key, format!("{}: {e}", file.display())))
        }
    }
}

#[cfg(unix)]
fn warn_if_others_can_read(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                "the RPC token file can be read by other users; `chmod 600` it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_others_can_read(_path: &Path) {}

/// The shared secret. Cheap to clone; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Arc<[u8]>);

/// A token that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenError {
    /// Zero bytes (after trimming, for a file).
    #[error("the token is empty")]
    Empty,
    /// Longer than [`MAX_TOKEN_BYTES`].
    #[error("the token is longer than {MAX_TOKEN_BYTES} bytes")]
    TooLong,
}

impl Token {
    /// A token of 1 to [`MAX_TOKEN_BYTES`] bytes.
    pub fn new(bytes: impl AsRef<[u8]>) -> Result<Token, TokenError> {
        let bytes = bytes.as_ref();
        if bytes.is_empty() {
            Err(TokenError::Empty)
        } else if bytes.len() > MAX_TOKEN_BYTES {
            Err(TokenError::TooLong)
        } else {
            Ok(Token(bytes.into()))
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether `presented` is this token, in time that depends on neither
    /// the content nor the length of the guess: both sides are hashed to
    /// 32 bytes, which are compared without an early exit.
    pub fn matches(&self, presented: &[u8]) -> bool {
        use ring::digest::{digest, SHA256};
        use subtle::ConstantTimeEq;
        let expected = digest(&SHA256, &self.0);
        let presented = digest(&SHA256, presented);
        expected.as_ref().ct_eq(presented.as_ref()).into()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// What a server asks of each connection. `Default` is open: plain TCP, no
/// token, with the default connection limits.
#[derive(Clone)]
pub struct ServerSecurity {
    /// The token clients must present; `None` accepts any client.
    pub token: Option<Token>,
    /// TLS settings; `None` is plain TCP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Authenticated connections open at once; more are refused at the end
    /// of their handshake (the client hears why).
    pub max_connections: usize,
    /// Connections still in the handshake at once; more are closed at once.
    pub max_handshakes: usize,
    /// Of those, from one peer IP address.
    pub max_handshakes_per_ip: usize,
    /// A connection with no bytes in either direction for this long is
    /// closed; `None` never.
    pub idle_timeout: Option<Duration>,
    /// Time a new connection has for TLS and the token check.
    pub handshake_timeout: Duration,
}

impl Default for ServerSecurity {
    fn default() -> Self {
        let defaults = RpcConfig::default();
        ServerSecurity {
            token: None,
            tls: None,
            max_connections: defaults.max_connections,
            max_handshakes: defaults.max_handshakes,
            max_handshakes_per_ip: defaults.max_handshakes_per_ip,
            idle_timeout: Some(Duration::from_millis(defaults.idle_timeout_ms)),
            handshake_timeout: Duration::from_millis(defaults.handshake_timeout_ms),
        }
    }
}

impl fmt::Debug for ServerSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSecurity")
            .field("token", &redacted(self.token.is_some()))
            .field("tls", &self.tls.is_some())
            .field("max_connections", &self.max_connections)
            .field("max_handshakes", &self.max_handshakes)
            .field("max_handshakes_per_ip", &self.max_handshakes_per_ip)
            .field("idle_timeout", &self.idle_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

/// What a client presents. [`ClientSecurity::OPEN`] (and `Default`) is
/// plain TCP with no token.
#[derive(Clone, Default)]
pub struct ClientSecurity {
    /// The token sent in the handshake to a worker.
    pub worker_token: Option<Token>,
    /// The token sent in the handshake to the itemsaver.
    pub itemsaver_token: Option<Token>,
    /// TLS settings; `None` is plain TCP. The server's certificate must be
    /// valid for the host name (or IP address) connected to.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl ClientSecurity {
    /// Plain TCP, no token: what [`ConnectOptions::default`] uses.
    ///
    /// [`ConnectOptions::default`]: crate::ConnectOptions
    pub const OPEN: ClientSecurity = ClientSecurity {
        worker_token: None,
        itemsaver_token: None,
        tls: None,
    };

    /// Plain TCP, presenting `token` to both services.
    pub fn with_token(token: Token) -> ClientSecurity {
        ClientSecurity {
            worker_token: Some(token.clone()),
            itemsaver_token: Some(token),
            tls: None,
        }
    }

    /// The token presented to `service`.
    pub fn token(&self, service: Service) -> Option<&Token> {
        match service {
            Service::Worker => self.worker_token.as_ref(),
            Service::Itemsaver => self.itemsaver_token.as_ref(),
        }
    }

    /// Keeps these settings for the rest of the process, for
    /// [`ConnectOptions::security`](crate::ConnectOptions::security).
    /// `ConnectOptions` is `Copy` because the engine hands it to every
    /// reconnect; a process builds its client settings once, so leaking
    /// one small struct is the simple way to keep it `Copy`.
    pub fn leak(self) -> &'static ClientSecurity {
        Box::leak(Box::new(self))
    }
}

impl fmt::Debug for ClientSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSecurity")
            .field("worker_token", &redacted(self.worker_token.is_some()))
            .field("itemsaver_token", &redacted(self.itemsaver_token.is_some()))
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The token compares equal only to itself, whatever the length of the guess.
    #[test]
    fn token_matches_only_itself() {
        let t = Token::new("s3cret").unwrap();
        assert!(t.matches(b"s3cret"));
        assert!(!t.matches(b"s3cre"));
        assert!(!t.matches(b"s3cret "));
        assert!(!t.matches(b""));
        assert_eq!(Token::new(""), Err(TokenError::Empty));
        assert_eq!(
            Token::new(vec![b'x'; MAX_TOKEN_BYTES + 1]),
            Err(TokenError::TooLong)
        );
    }

    /// Neither the config nor the settings print the secret.
    #[test]
    fn debug_never_shows_the_token() {
        let c = RpcConfig {
            token: "hunter2".into(),
            ..RpcConfig::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        let s = c.server(Service::Worker).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
        let s = c.client().unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    /// Each inconsistent combination is an error naming the key to fix.
    #[test]
    fn bad_combinations_name_the_key() {
        let key = |c: RpcConfig, server: bool| {
            if server {
                c.server(Service::Itemsaver).unwrap_err().key
            } else {
                c.client().unwrap_err().key
            }
        };
        let d = RpcConfig::default;
        let both = RpcConfig {
            token: "a".into(),
            token_file: "f".into(),
            ..d()
        };
        assert_eq!(key(both, true), "token");
        let missing = RpcConfig {
            token_file: "/nonexistent/token".into(),
            ..d()
        };
        assert_eq!(key(missing, false), "token_file");
        let cert_only = RpcConfig {
            tls_cert: "c.pem".into(),
            ..d()
        };
        assert_eq!(key(cert_only, true), "tls_key");
        let mtls_no_tls = RpcConfig {
            require_client_cert: true,
            ..d()
        };
        assert_eq!(key(mtls_no_tls, true), "require_client_cert");
        let client_cert_no_ca = RpcConfig {
            tls_client_cert: "c.pem".into(),
            tls_client_key: "k.pem".into(),
            ..d()
        };
        assert_eq!(key(client_cert_no_ca, false), "tls_ca");
        let zero = RpcConfig {
            max_connections: 0,
            ..d()
        };
        assert_eq!(key(zero, true), "max_connections");
        let e = RpcConfig {
            tls_ca: "/nonexistent/ca.pem".into(),
            ..d()
        }
        .client()
        .unwrap_err();
        assert_eq!(e.key, "tls_ca");
        assert!(e.to_string().starts_with("rpc.tls_ca: "), "{e}");
    }

    /// Flags replace the file's values; a token flag replaces both token keys.
    #[test]
    fn flags_win() {
        let mut c = RpcConfig {
            token_file: "/etc/token".into(),
            ..RpcConfig::default()
        };
        let flags = RpcFlags {
            rpc_token: Some("t".into()),
            idle_timeout_ms: Some(5),
            ..RpcFlags::default()
        };
        flags.apply(&mut c);
        assert_eq!(c.token, "t");
        assert!(c.token_file.as_os_str().is_empty());
        assert_eq!(c.idle_timeout_ms, 5);
    }

    /// A service's own token wins over the shared one for that service
    /// only; without it the shared token serves both.
    #[test]
    fn own_token_wins_for_its_service() {
        let t = |s: &str| Some(Token::new(s).unwrap());
        let shared = RpcConfig {
            token: "shared".into(),
            ..RpcConfig::default()
        };
        assert_eq!(shared.token_for(Service::Worker).unwrap(), t("shared"));
        assert_eq!(shared.token_for(Service::Itemsaver).unwrap(), t("shared"));
        let split = RpcConfig {
            itemsaver_token: "store".into(),
            ..shared.clone()
        };
        assert_eq!(split.token_for(Service::Worker).unwrap(), t("shared"));
        assert_eq!(split.token_for(Service::Itemsaver).unwrap(), t("store"));
        assert_eq!(split.server(Service::Itemsaver).unwrap().token, t("store"));
        let client = split.client().unwrap();
        assert_eq!(client.worker_token, t("shared"));
        assert_eq!(client.itemsaver_token, t("store"));
        // A tool that only talks to the itemsaver never reads the worker's file.
        let store_only = RpcConfig {
            itemsaver_token: "store".into(),
            worker_token_file: "/nonexistent/worker-token".into(),
            ..RpcConfig::default()
        };
        let c = store_only.client_for(&[Service::Itemsaver]).unwrap();
        assert_eq!((c.worker_token, c.itemsaver_token), (None, t("store")));
        assert_eq!(store_only.client().unwrap_err().key, "worker_token_file");
        let both = RpcConfig {
            worker_token: "a".into(),
            worker_token_file: "f".into(),
            ..RpcConfig::default()
        };
        assert_eq!(
            both.server(Service::Worker).unwrap_err().key,
            "worker_token"
        );
        let mut flagged = RpcConfig::default();
        RpcFlags {
            itemsaver_token_file: Some("/etc/store-token".into()),
            ..RpcFlags::default()
        }
        .apply(&mut flagged);
        assert_eq!(
            flagged.itemsaver_token_file,
            PathBuf::from("/etc/store-token")
        );
    }
}
