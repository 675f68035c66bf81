//! What each side presents or asks once the settings are checked:
//! [`ServerSecurity`] for a server, [`ClientSecurity`] for a client.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{redacted, RpcConfig, Service, Token};

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
