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

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

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

/// The worker's `allow_internal` setting, parsed: internal hosts and
/// networks this worker may fetch anyway. Fixed when the worker starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowInternal {
    /// Host names, lower case, without a trailing dot; each allows itself
    /// and its subdomains, whatever they resolve to.
    names: Vec<String>,
    /// Networks (a single address is a /32 or /128).
    nets: Vec<Net>,
}

/// An address block: `addr` with the bits past `prefix` cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn contains(&self, addr: IpAddr) -> bool {
        match (self.addr, canonical(addr)) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                mask_v4(u32::from(a), self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                mask_v6(u128::from(a), self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask_v4(bits: u32, prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        bits & (u32::MAX << (32 - u32::from(prefix)))
    }
}

fn mask_v6(bits: u128, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        bits & (u128::MAX << (128 - u32::from(prefix)))
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is, so
/// `127.0.0.0/8` also covers `[::ffff:127.0.0.1]`.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

impl AllowInternal {
    /// Parses `allow_internal` entries: host names (`intranet.example`),
    /// IP addresses (`127.0.0.1`, `::1`) or CIDR blocks (`10.0.0.0/8`,
    /// `fd00::/8`). The error names the bad entry and what was expected.
    pub fn parse(entries: &[String]) -> Result<AllowInternal, String> {
        let mut allow = AllowInternal::default();
        for raw in entries {
            let entry = raw.trim();
            let bad = |why: &str| Err(format!("entry {raw:?}: {why}"));
            if entry.is_empty() {
                return bad("is empty");
            }
            if entry.contains("://") {
                return bad("expected a host name, not a URL");
            }
            if let Some((addr, prefix)) = entry.split_once('/') {
                let Ok(addr) = addr.trim_matches(['[', ']']).parse::<IpAddr>() else {
                    return bad("a CIDR block must start with an IP address, e.g. 10.0.0.0/8");
                };
                let addr = canonical(addr);
                let max = if addr.is_ipv4() { 32 } else { 128 };
                let Some(prefix) = prefix.parse::<u8>().ok().filter(|&p| p <= max) else {
                    return bad(&format!("the prefix length must be 0 to {max}"));
                };
                allow.nets.push(net(addr, prefix));
            } else if let Ok(addr) = entry.trim_matches(['[', ']']).parse::<IpAddr>() {
                let addr = canonical(addr);
                let prefix = if addr.is_ipv4() { 32 } else { 128 };
                allow.nets.push(net(addr, prefix));
            } else if is_host_name(entry) {
                allow
                    .names
                    .push(entry.trim_end_matches('.').to_ascii_lowercase());
            } else {
                return bad(
                    "expected a host name, an IP address or a CIDR block such as 127.0.0.0/8",
                );
            }
        }
        Ok(allow)
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.nets.is_empty()
    }

    fn allows_addr(&self, addr: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(addr))
    }

    fn allows_name(&self, host: &str) -> bool {
        self.names.iter().any(|d| host_in_domain(host, d))
    }
}

fn net(addr: IpAddr, prefix: u8) -> Net {
    let addr = match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(mask_v4(u32::from(a), prefix))),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(mask_v6(u128::from(a), prefix))),
    };
    Net { addr, prefix }
}

/// Letters, digits, `-` and `.` in labels of 1 to 63: a DNS name, not a
/// URL, a port or a pattern.
fn is_host_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

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

    fn allow(entries: &[&str]) -> AllowInternal {
        AllowInternal::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    /// Literal internal IPs are refused unless the worker's own
    /// `allow_internal` covers them, and the refusal names that setting.
    #[test]
    fn literal_hosts() {
        let guard = Guard::new(Arc::new(SystemLookup), true, AllowInternal::default());
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(guard
            .check_url(&url("http://169.254.169.254/latest/meta-data"))
            .is_err());
        assert!(guard.check_url(&url("http://[fd00:ec2::254]/")).is_err());
        assert!(guard.check_url(&url("http://10.0.0.1:8080/")).is_err());
        let err = guard.check_url(&url("http://127.0.0.1/")).unwrap_err();
        assert!(
            err.to_string().contains("--allow_internal 127.0.0.1"),
            "{err}"
        );
        assert!(
            guard.check_url(&url("http://example.com/")).is_ok(),
            "names are the resolver's job"
        );
        let allowed = Guard::new(Arc::new(SystemLookup), true, allow(&["127.0.0.1"]));
        assert!(allowed.check_url(&url("http://127.0.0.1:9/")).is_ok());
        assert!(allowed
            .check_url(&url("http://[::ffff:127.0.0.1]/"))
            .is_ok());
        assert!(allowed.check_url(&url("http://127.0.0.2/")).is_err());
        let off = Guard::new(Arc::new(SystemLookup), false, AllowInternal::default());
        assert!(off.check_url(&url("http://10.0.0.1/")).is_ok());
    }

    /// CIDR entries cover exactly their block, v4 and v6; host bits in the
    /// entry do not matter.
    #[test]
    fn cidr_blocks() {
        let a = allow(&["127.0.0.0/8", "10.1.2.3/16", "fd00::/8", "::1"]);
        for yes in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.200.1",
            "fd12::1",
            "::1",
            "::ffff:127.0.0.3",
        ] {
            assert!(a.allows_addr(yes.parse().unwrap()), "{yes}");
        }
        for no in ["128.0.0.1", "10.2.0.1", "fc00::1", "::2", "169.254.169.254"] {
            assert!(!a.allows_addr(no.parse().unwrap()), "{no}");
        }
        let everything = allow(&["0.0.0.0/0"]);
        assert!(everything.allows_addr("10.0.0.1".parse().unwrap()));
        assert!(!everything.allows_addr("fd00::1".parse().unwrap()));
    }

    /// Names allow themselves and their subdomains, in any case.
    #[test]
    fn host_names() {
        let a = allow(&["Intranet.Example.", "localhost"]);
        assert!(a.allows_name("intranet.example"));
        assert!(a.allows_name("wiki.INTRANET.example"));
        assert!(a.allows_name("localhost"));
        assert!(!a.allows_name("intranet.example.evil"));
        assert!(!a.allows_name("xintranet.example"));
    }

    /// Bad entries are refused with the entry and what was expected.
    #[test]
    fn bad_entries() {
        for (entry, needle) in [
            ("", "empty"),
            ("10.0.0.0/33", "0 to 32"),
            ("::/129", "0 to 128"),
            ("host/8", "IP address"),
            ("http://x/", "host name"),
            ("a b", "host name"),
            ("*.example", "host name"),
            ("h:80", "host name"),
        ] {
            let err = AllowInternal::parse(&[entry.to_string()]).unwrap_err();
            assert!(
                err.contains(needle) && err.contains(&format!("{entry:?}")),
                "{entry}: {err}"
            );
        }
    }
}
