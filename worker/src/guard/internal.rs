//! Which addresses are internal: every special-purpose range, IPv4 and
//! IPv6.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
