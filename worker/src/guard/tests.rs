//! Address classes and `allow_internal` entries.

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
