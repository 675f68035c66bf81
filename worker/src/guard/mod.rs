//! Keeps a worker from being used to reach internal addresses (SSRF).
//!
//! A worker refuses to fetch from loopback, private, link-local (which
//! holds the cloud metadata address 169.254.169.254), carrier-grade NAT,
//! multicast and other special-purpose addresses, except the hosts and
//! networks its *own* configuration lists in `allow_internal` (the local
//! demo and the tests start their workers with `--allow_internal
//! 127.0.0.1`). Nothing a caller sends widens that list: the engine's
//! allowed domains only limit where redirects may go. So whoever can reach a
//! worker can at most make it fetch public addresses, and what its operator
//! allowed.
//!
//! The check is on the *resolved* address, in the DNS resolver the HTTP
//! client connects with, so a name that resolves (or later re-resolves) to
//! such an address is caught, and every redirect hop goes through it.
//! Literal IP hosts never reach a resolver, so [`Guard::check_url`] checks
//! those before each hop.

//!
//! # Layout
//!
//! - this file: the [`Guard`] (literal IPs checked per hop, names in the
//!   resolver it gives reqwest, [`GuardResolver`]), the [`Lookup`] it
//!   resolves with, and the [`Blocked`] refusal.
//! - `allow`: [`AllowInternal`], the worker's `allow_internal`, parsed.
//! - `internal`: [`is_internal`], the special-purpose address ranges.

mod allow;
mod internal;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use allow::canonical;
pub use allow::AllowInternal;
pub use internal::is_internal;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Turns a host name into addresses. The system resolver in production; a
/// table in tests, so no test ever resolves or reaches a real address.
pub trait Lookup: Send + Sync + 'static {
    /// The addresses of `host`.
    fn lookup(&self, host: String)
        -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;
}

/// The operating system's resolver (getaddrinfo, on tokio's blocking pool).
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

/// A fetch refused because of where it would connect. The message names
/// the worker setting that would allow it, since no request can.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to {addr}, an internal (loopback, private, link-local or metadata) address; refused: only the worker's own configuration can allow it (start the worker with --allow_internal {suggest}, or list it in allow_internal in [worker])")]
pub struct Blocked {
    /// The host as in the URL.
    pub host: String,
    /// The refused address.
    pub addr: IpAddr,
    /// The `allow_internal` entry that would allow it: the address for a
    /// literal IP host, the name otherwise.
    pub suggest: String,
}

/// A last look at the addresses about to be handed to the HTTP client,
/// which will connect to them; an `Err` refuses them. Tests use it as the
/// "connector that fails if asked to connect to an internal address".
pub type Handoff = Box<dyn Fn(&str, &[IpAddr]) -> Result<(), String> + Send + Sync>;

/// The address policy, shared by the resolver and the fetcher. Immutable
/// once built: no request changes what it allows.
pub struct Guard {
    lookup: Arc<dyn Lookup>,
    handoff: Option<Handoff>,
    enabled: bool,
    allow: AllowInternal,
}

impl Guard {
    /// A guard over `lookup` allowing the internal hosts in `allow`;
    /// `enabled` false allows every address.
    pub fn new(lookup: Arc<dyn Lookup>, enabled: bool, allow: AllowInternal) -> Arc<Guard> {
        Guard::with_handoff(lookup, enabled, allow, None)
    }

    /// [`Guard::new`] with a last check on what goes to the client.
    pub fn with_handoff(
        lookup: Arc<dyn Lookup>,
        enabled: bool,
        allow: AllowInternal,
        handoff: Option<Handoff>,
    ) -> Arc<Guard> {
        Arc::new(Guard {
            lookup,
            handoff,
            enabled,
            allow,
        })
    }

    /// Checks a URL whose host is a literal IP address (names are checked
    /// by the resolver when the client connects).
    pub fn check_url(&self, url: &Url) -> Result<(), Blocked> {
        if !self.enabled {
            return Ok(());
        }
        let Some(addr) = literal_ip(url) else {
            return Ok(());
        };
        if is_internal(addr) && !self.allow.allows_addr(addr) {
            let host = url
                .host_str()
                .unwrap_or_default()
                .trim_matches(['[', ']'])
                .to_owned();
            return Err(Blocked {
                suggest: canonical(addr).to_string(),
                host,
                addr,
            });
        }
        Ok(())
    }

    /// Shows a literal IP host to the handoff check, as the resolver does
    /// for names (the client connects to a literal without resolving it).
    /// Called after [`Guard::check_url`] allowed the URL.
    pub fn handoff_literal(&self, url: &Url) -> Result<(), String> {
        let (Some(check), Some(addr)) = (&self.handoff, literal_ip(url)) else {
            return Ok(());
        };
        check(url.host_str().unwrap_or_default(), &[addr])
    }

    /// The addresses of `host` the client may connect to. The error is a
    /// [`Blocked`] (boxed as is, so the fetcher can find it in the client's
    /// error chain) or the lookup's own.
    async fn resolve_checked(&self, host: String) -> Result<Vec<IpAddr>, BoxError> {
        let addrs = self.lookup.lookup(host.clone()).await?;
        let addrs = if !self.enabled || self.allow.allows_name(&host) {
            addrs
        } else {
            let (allowed, refused): (Vec<IpAddr>, Vec<IpAddr>) = addrs
                .into_iter()
                .partition(|&a| !is_internal(a) || self.allow.allows_addr(a));
            match (allowed.is_empty(), refused.first()) {
                (true, Some(&addr)) => {
                    return Err(Box::new(Blocked {
                        suggest: host.clone(),
                        host,
                        addr,
                    }))
                }
                _ => allowed,
            }
        };
        if let Some(check) = &self.handoff {
            check(&host, &addrs).map_err(|e| -> BoxError { e.into() })?;
        }
        Ok(addrs)
    }
}

/// The host of `url` if it is an IP address.
fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host() {
        Some(Host::Ipv4(a)) => Some(IpAddr::V4(a)),
        Some(Host::Ipv6(a)) => Some(IpAddr::V6(a)),
        _ => None,
    }
}

/// The resolver handed to reqwest.
pub struct GuardResolver(pub Arc<Guard>);

impl Resolve for GuardResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let ips = guard.resolve_checked(host).await?;
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}
