//! The worker's `allow_internal` setting: host names and networks it may
//! fetch although they are internal.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rpcsupport::types::host_in_domain;

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
pub(super) fn canonical(addr: IpAddr) -> IpAddr {
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

    pub(super) fn allows_addr(&self, addr: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(addr))
    }

    pub(super) fn allows_name(&self, host: &str) -> bool {
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
