//! Keeps a worker from being used to reach internal addresses (SSRF).
//!
//! By default a worker refuses to fetch from loopback, private, link-local
//! (which holds the cloud metadata address 169.254.169.254), carrier-grade
//! NAT, multicast and other special-purpose addresses, unless the crawl's
//! allowed domains name the host explicitly (the local demo and the tests
//! crawl 127.0.0.1 that way). The check is on the *resolved* address, in
//! the DNS resolver the HTTP client connects with, so a name that resolves
//! (or later re-resolves) to such an address is caught, and every redirect
//! hop goes through it. Literal IP hosts never reach a resolver, so
//! [`Guard::check_url`] checks those before each hop.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
use rpcsupport::types::host_in_domain;
use url::{Host, Url};

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

/// A fetch refused because of where it would connect.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to {addr}, a private, loopback, link-local or metadata address; refused (allow the host explicitly in the crawl's allowed domains to crawl it)")]
pub struct Blocked {
    /// The host as in the URL.
    pub host: String,
    /// The refused address.
    pub addr: IpAddr,
}

/// A last look at the addresses about to be handed to the HTTP client,
/// which will connect to them; an `Err` refuses them. Tests use it as the
/// "connector that fails if asked to connect to an internal address".
pub type Handoff = Box<dyn Fn(&str, &[IpAddr]) -> Result<(), String> + Send + Sync>;

/// The address policy, shared by the resolver and the fetcher.
pub struct Guard {
    lookup: Arc<dyn Lookup>,
    handoff: Option<Handoff>,
    enabled: bool,
    /// Domains some crawl named explicitly in its allowed domains; hosts in
    /// them may resolve to internal addresses. Only grows, and only from
    /// policies of authenticated engines.
    exempt: RwLock<Vec<String>>,
}

impl Guard {
    /// A guard over `lookup`; `enabled` false allows every address.
    pub fn new(lookup: Arc<dyn Lookup>, enabled: bool) -> Arc<Guard> {
        Guard::with_handoff(lookup, enabled, None)
    }

    /// [`Guard::new`] with a last check on what goes to the client.
    pub fn with_handoff(
        lookup: Arc<dyn Lookup>,
        enabled: bool,
        handoff: Option<Handoff>,
    ) -> Arc<Guard> {
        Arc::new(Guard {
            lookup,
            handoff,
            enabled,
            exempt: RwLock::new(Vec::new()),
        })
    }

    /// Records the domains a crawl allows explicitly (`*` allows any host
    /// but names none, so it exempts nothing).
    pub fn allow_explicit(&self, domains: &[String]) {
        if !self.enabled || domains.is_empty() {
            return;
        }
        let known = self.exempt.read().unwrap_or_else(|e| e.into_inner());
        if domains.iter().all(|d| d == "*" || known.contains(d)) {
            return;
        }
        drop(known);
        let mut exempt = self.exempt.write().unwrap_or_else(|e| e.into_inner());
        for d in domains {
            if d != "*" && !exempt.contains(d) {
                exempt.push(d.to_ascii_lowercase());
            }
        }
    }

    fn is_exempt(&self, host: &str) -> bool {
        let exempt = self.exempt.read().unwrap_or_else(|e| e.into_inner());
        exempt.iter().any(|d| host_in_domain(host, d))
    }

    /// Checks a URL whose host is a literal IP address (names are checked
    /// by the resolver when the client connects).
    pub fn check_url(&self, url: &Url) -> Result<(), Blocked> {
        if !self.enabled {
            return Ok(());
        }
        let addr = match url.host() {
            Some(Host::Ipv4(a)) => IpAddr::V4(a),
            Some(Host::Ipv6(a)) => IpAddr::V6(a),
            _ => return Ok(()),
        };
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_owned();
        if is_internal(addr) && !self.is_exempt(&host) {
            return Err(Blocked { host, addr });
        }
        Ok(())
    }

    /// The addresses of `host` the client may connect to. The error is a
    /// [`Blocked`] (boxed as is, so the fetcher can find it in the client's
    /// error chain) or the lookup's own.
    async fn resolve_checked(&self, host: String) -> Result<Vec<IpAddr>, BoxError> {
        let addrs = self.lookup.lookup(host.clone()).await?;
        let addrs = if !self.enabled || self.is_exempt(&host) {
            addrs
        } else {
            let (allowed, refused): (Vec<IpAddr>, Vec<IpAddr>) =
                addrs.into_iter().partition(|a| !is_internal(*a));
            match (allowed.is_empty(), refused.first()) {
                (true, Some(&addr)) => return Err(Box::new(Blocked { host, addr })),
                _ => allowed,
            }
        };
        if let Some(check) = &self.handoff {
            check(&host, &addrs).map_err(|e| -> BoxError { e.into() })?;
        }
        Ok(addrs)
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

/// Whether `addr` is not a public unicast address: loopback, private,
/// link-local (incl. 169.254.169.254), shared/CGNAT, unspecified,
/// broadcast, multicast, documentation, benchmarking or reserved space, and
/// the IPv6 equivalents (incl. IPv4-mapped and unique-local addresses).
pub fn is_internal(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => is_internal_v4(a),
        IpAddr::V6(a) => is_internal_v6(a),
    }
}

fn is_internal_v4(a: Ipv4Addr) -> bool {
    let [o0, o1, _, _] = a.octets();
    a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_multicast()
        || a.is_documentation()
        || o0 == 0
        || (o0 == 100 && (64..128).contains(&o1)) // shared address space (CGNAT)
        || (o0 == 198 && (18..20).contains(&o1)) // benchmarking
        || o0 >= 240 // reserved
        || (o0 == 192 && o1 == 0 && a.octets()[2] == 0) // IETF protocol assignments
}

fn is_internal_v6(a: Ipv6Addr) -> bool {
    if let Some(v4) = a.to_ipv4_mapped() {
        return is_internal_v4(v4);
    }
    let s = a.segments();
    a.is_loopback()
        || a.is_unspecified()
        || a.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local (incl. fd00:ec2::254, the AWS metadata address)
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64, may map to internal IPv4
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Internal ranges are recognised; public addresses are not.
    #[test]
    fn classifies_addresses() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "ff02::1",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_internal(public.parse().unwrap()), "{public}");
        }
    }

    /// Literal internal IPs are refused unless allowed by name.
    #[test]
    fn literal_hosts() {
        let guard = Guard::new(Arc::new(SystemLookup), true);
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(guard
            .check_url(&url("http://169.254.169.254/latest/meta-data"))
            .is_err());
        assert!(guard.check_url(&url("http://[fd00:ec2::254]/")).is_err());
        assert!(guard.check_url(&url("http://10.0.0.1:8080/")).is_err());
        assert!(guard.check_url(&url("http://127.0.0.1/")).is_err());
        assert!(
            guard.check_url(&url("http://example.com/")).is_ok(),
            "names are the resolver's job"
        );
        guard.allow_explicit(&["127.0.0.1".into(), "*".into()]);
        assert!(guard.check_url(&url("http://127.0.0.1:9/")).is_ok());
        assert!(guard.check_url(&url("http://127.0.0.2/")).is_err());
        let off = Guard::new(Arc::new(SystemLookup), false);
        assert!(off.check_url(&url("http://10.0.0.1/")).is_ok());
    }
}
