//! What the scheduler reads off a URL's text: its politeness key (host)
//! and robots.txt origin, the path robots rules match, and the
//! fingerprint dedup keeps. Every queued URL is in normal form (see
//! [`crate::scope`]), so these are string slices, not parses, on the hot
//! path; the full parse is only a fallback for anything unexpected.

use std::time::Duration;

use tokio::time::Instant;
use url::Url;

/// The politeness key of a URL (its lowercase host name, without port) and
/// its origin for robots.txt.
pub(super) fn host_of(url: &str) -> Option<(String, String)> {
    host_of_normal(url).or_else(|| {
        let url = Url::parse(url).ok()?;
        let host = url.host_str()?.to_ascii_lowercase();
        let origin = url.origin().ascii_serialization();
        Some((host, origin))
    })
}

/// [`host_of`] for a URL in normal form: `scheme://[userinfo@]host[:port]/…`.
/// `None` if it does not look like one.
fn host_of_normal(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let host = match host_port.strip_prefix('[') {
        // An IPv6 literal keeps its brackets, as `Url::host_str` does.
        Some(v6) => &host_port[..v6.find(']')? + 2],
        None => host_port.split(':').next()?,
    };
    let port = &host_port[host.len()..];
    if host.is_empty()
        || host.bytes().any(|b| b.is_ascii_uppercase())
        || !(port.is_empty()
            || port.len() > 1
                && port.starts_with(':')
                && port[1..].bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    Some((host.to_owned(), format!("{scheme}://{host_port}")))
}

/// The path and query robots.txt rules are matched against.
pub(super) fn path_and_query(url: &str) -> &str {
    // After "scheme://authority": the first '/' past the "//".
    let after_scheme = url.find("//").map_or(0, |i| i + 2);
    match url[after_scheme..].find('/') {
        Some(i) => &url[after_scheme + i..],
        None => "/",
    }
}

/// A time no crawl reaches: "until further notice" for robots rules that
/// never expire.
pub(super) fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 86_400)
}

/// The 64-bit fingerprint of a normalized URL, stable across runs so
/// fingerprints can be saved and reloaded.
pub fn fingerprint(s: &str) -> u64 {
    rpcsupport::types::fnv1a64(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reading host and origin off a normalized URL's text agrees with
    /// parsing it, for every shape of authority.
    #[test]
    fn host_of_text_matches_the_parser() {
        for raw in [
            "http://Example.COM/a?b=c",
            "https://example.com:443/x",
            "http://example.com:8080",
            "http://user:pw@Example.com:81/p",
            "http://127.0.0.1:9000/",
            "http://[::1]:8080/x",
            "https://[2001:DB8::1]/",
            "http://xn--bcher-kva.example/",
            "http://bücher.example/x",
            "http://a.test?q=1",
            "http://a.test#frag",
        ] {
            let normal = crate::scope::normalize(raw, &[]).unwrap();
            let parsed = normal.host_str().unwrap().to_owned();
            let origin = normal.origin().ascii_serialization();
            assert_eq!(
                host_of_normal(normal.as_str()),
                Some((parsed, origin)),
                "{raw} -> {normal}"
            );
        }
        for odd in [
            "ftp://a.test/",
            "http://A.test/",
            "http://a.test:x/",
            "nonsense",
        ] {
            assert_eq!(host_of_normal(odd), None, "{odd}");
        }
        // The fallback still answers for a URL not in normal form.
        assert_eq!(
            host_of("http://A.test:80/").map(|(h, _)| h),
            Some("a.test".to_owned())
        );
    }

    /// The path and query robots rules are matched against.
    #[test]
    fn robots_path() {
        assert_eq!(path_and_query("http://h:1/a/b?c=d"), "/a/b?c=d");
        assert_eq!(path_and_query("http://h"), "/");
    }

    /// A fingerprint is the same in every run: saved ones stay valid.
    #[test]
    fn fingerprint_is_stable() {
        assert_eq!(fingerprint("http://a.test/"), fingerprint("http://a.test/"));
        assert_ne!(
            fingerprint("http://a.test/"),
            fingerprint("http://a.test/x")
        );
    }
}
