//! The host syntax every flag and config key uses: `:9000`, `host:port`,
//! `[::1]:9000`.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// A host to connect to: `:9000` (127.0.0.1), `host:port` or `[::1]:9000`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostAddr {
    /// Hostname or IP address, without brackets.
    pub host: String,
    /// TCP port, never 0.
    pub port: u16,
}

/// A host string that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("bad host {input:?}: {reason} (expected :PORT, HOST:PORT or [IPv6]:PORT)")]
pub struct HostError {
    /// The string as given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for HostAddr {
    type Err = HostError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| HostError {
            input: input.to_owned(),
            reason,
        };
        let s = input.trim();
        let (host, port) = if let Some(port) = s.strip_prefix(':') {
            ("127.0.0.1", port)
        } else if let Some(rest) = s.strip_prefix('[') {
            let (host, port) = rest
                .split_once("]:")
                .ok_or_else(|| err("missing \"]:PORT\""))?;
            host.parse::<std::net::Ipv6Addr>()
                .map_err(|_| err("not an IPv6 address in brackets"))?;
            (host, port)
        } else {
            let (host, port) = s.rsplit_once(':').ok_or_else(|| err("missing \":PORT\""))?;
            if host.contains(':') {
                return Err(err("IPv6 addresses need brackets"));
            }
            (host, port)
        };
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(err("bad host name"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| err("port is not a number from 1 to 65535"))?;
        if port == 0 {
            return Err(err("port is not a number from 1 to 65535"));
        }
        Ok(HostAddr {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for HostAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl From<std::net::SocketAddr> for HostAddr {
    fn from(addr: std::net::SocketAddr) -> Self {
        HostAddr {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }
}
