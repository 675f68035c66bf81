//! Host syntax and frame limits of the transport.

use std::net::IpAddr;
use std::sync::Arc;

use super::server::HandshakeBudget;
use super::*;

/// The three accepted host syntaxes parse, and print back connectable.
#[test]
fn host_strings_parse() {
    let h: HostAddr = ":9000".parse().unwrap();
    assert_eq!((h.host.as_str(), h.port), ("127.0.0.1", 9000));
    let h: HostAddr = "crawl-worker-1:9001".parse().unwrap();
    assert_eq!((h.host.as_str(), h.port), ("crawl-worker-1", 9001));
    let h: HostAddr = "[::1]:9002".parse().unwrap();
    assert_eq!((h.host.as_str(), h.port), ("::1", 9002));
    assert_eq!(h.to_string(), "[::1]:9002");
}

/// The handshake budget holds per address and in total, and a slot
/// comes back when dropped (the address leaving the map with its last).
#[test]
fn handshake_budget_per_address_and_total() {
    let budget = Arc::new(HandshakeBudget::new(3, 2));
    let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
        "127.0.0.2".parse().unwrap(),
        "127.0.0.3".parse().unwrap(),
        "127.0.0.4".parse().unwrap(),
    );
    let a1 = budget.try_enter(a).unwrap();
    let _a2 = budget.try_enter(a).unwrap();
    let e = budget.try_enter(a).err().unwrap();
    assert!(e.contains("max_handshakes_per_ip"), "{e}");
    let _b1 = budget.try_enter(b).unwrap();
    let e = budget.try_enter(c).err().unwrap();
    assert!(e.contains("(max_handshakes)"), "{e}");
    drop(a1);
    let c1 = budget.try_enter(c).unwrap();
    assert_eq!(budget.open.lock().unwrap().1.len(), 3);
    drop(c1);
    assert!(!budget.open.lock().unwrap().1.contains_key(&c));
}

/// Malformed host strings are errors that say what was expected.
#[test]
fn bad_host_strings_are_rejected() {
    for bad in [
        "",
        "9000",
        ":",
        ":0",
        ":70000",
        "host:",
        ":abc",
        "::1:9000",
        "[::1]9000",
        "[zz]:1",
        " :1 x",
    ] {
        let e = bad.parse::<HostAddr>().expect_err(bad);
        assert!(e.to_string().contains("expected :PORT"), "{e}");
    }
}
