//! The `[rpc]` flags every binary flattens into its own.

use std::path::PathBuf;

use super::{RpcConfig, Service};

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
