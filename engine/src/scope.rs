//! What gets crawled: URL normalization (the form used for dedup) and the
//! crawl's scope (allowed domains, include/exclude patterns).

use std::borrow::Cow;
use std::collections::HashSet;

use regex::Regex;
use rpcsupport::FetchPolicy;
use url::Url;

/// Why a URL is not crawled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfScope {
    /// Not an absolute http(s) URL.
    BadUrl,
    /// Its host is not in the allowed domains.
    Domain,
    /// It matches no include pattern, or an exclude pattern.
    Pattern,
}

/// The checked scope of one crawl.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Allowed domains, also sent to workers so redirects stay inside.
    pub policy: FetchPolicy,
    /// The same domains, for admitting links.
    domains: Domains,
    include: Vec<Regex>,
    exclude: Vec<Regex>,
    /// Query parameters removed before dedup; a trailing `*` matches a
    /// prefix (`utm_*`).
    strip_params: Vec<String>,
}

impl Scope {
    /// A scope; patterns are already compiled by config validation.
    pub fn new(
        allowed_domains: Vec<String>,
        include: Vec<Regex>,
        exclude: Vec<Regex>,
        strip_params: Vec<String>,
    ) -> Scope {
        Scope {
            domains: Domains::new(&allowed_domains),
            policy: FetchPolicy {
                allowed_domains,
                obey_robots_meta: false,
                obey_nofollow: false,
            },
            include,
            exclude,
            strip_params,
        }
    }

    /// The same scope, obeying (or not) what pages ask of crawlers:
    /// robots meta / `X-Robots-Tag`, and `rel="nofollow"` links. The
    /// workers apply both (the policy goes to every worker connection).
    pub fn with_robots_meta(mut self, obey_robots_meta: bool, obey_nofollow: bool) -> Scope {
        self.policy.obey_robots_meta = obey_robots_meta;
        self.policy.obey_nofollow = obey_nofollow;
        self
    }

    /// The normalized URL if it is in scope.
    pub fn admit(&self, raw: &str) -> Result<String, OutOfScope> {
        let url = normalize(raw, &self.strip_params).ok_or(OutOfScope::BadUrl)?;
        if !url.host_str().is_some_and(|h| self.domains.allows(h)) {
            return Err(OutOfScope::Domain);
        }
        let text = url.as_str();
        if (!self.include.is_empty() && !self.include.iter().any(|r| r.is_match(text)))
            || self.exclude.iter().any(|r| r.is_match(text))
        {
            return Err(OutOfScope::Pattern);
        }
        Ok(url.into())
    }
}

/// The allowed domains as a set, so admitting a link costs a look-up per
/// label of its host, not a comparison per domain: a broad crawl's domains
/// are its seeds' hosts, thousands of them. Answers as
/// [`FetchPolicy::allows_host`] does.
#[derive(Debug, Clone)]
struct Domains {
    /// Lowercased, without trailing dots; none of them empty.
    set: HashSet<String>,
    /// No domain given, or `*`: every host.
    any: bool,
}

impl Default for Domains {
    /// No domain given: every host, as an empty policy allows.
    fn default() -> Self {
        Domains::new(&[])
    }
}

impl Domains {
    fn new(domains: &[String]) -> Domains {
        Domains {
            any: domains.is_empty() || domains.iter().any(|d| d == "*"),
            set: domains
                .iter()
                .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
                .filter(|d| !d.is_empty())
                .collect(),
        }
    }

    /// Whether `host` is one of the domains or a subdomain of one.
    fn allows(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        let host = host.trim_end_matches('.');
        // Parsed URLs have their domain lowercased already: no copy then.
        let host = match host.bytes().any(|b| b.is_ascii_uppercase()) {
            true => Cow::Owned(host.to_ascii_lowercase()),
            false => Cow::Borrowed(host),
        };
        self.set.contains(host.as_ref())
            || host
                .match_indices('.')
                .any(|(i, _)| self.set.contains(&host[i + 1..]))
    }
}

/// Scope rejections remembered by the fingerprint of the raw link, so a
/// link that many pages repeat (a site-wide footer's offsite links) is
/// normalized once, not on every page. The scope does not change during a
/// crawl and [`Scope::admit`] depends on the text alone, so a remembered
/// rejection is the answer admitting it again would give. Direct-mapped,
/// [`RejectCache::SLOTS`] slots: a fixed 256 KiB however many links a
/// crawl meets; a link whose slot was taken is normalized again.
#[derive(Debug)]
pub struct RejectCache {
    /// (fingerprint, why), fingerprint 0 for an empty slot.
    slots: Box<[(u64, OutOfScope)]>,
}

impl Default for RejectCache {
    fn default() -> Self {
        RejectCache {
            slots: vec![(0, OutOfScope::BadUrl); Self::SLOTS].into_boxed_slice(),
        }
    }
}

impl RejectCache {
    /// Slots (a power of two).
    pub const SLOTS: usize = 1 << 14;

    fn slot(fp: u64) -> usize {
        // The fingerprint is a hash already: its low bits are as good as any.
        (fp as usize) & (Self::SLOTS - 1)
    }

    /// Why the link with raw fingerprint `fp` was rejected, if remembered.
    pub fn get(&self, fp: u64) -> Option<OutOfScope> {
        let (held, why) = self.slots[Self::slot(fp)];
        (fp != 0 && held == fp).then_some(why)
    }

    /// Remembers that the link with raw fingerprint `fp` was rejected.
    pub fn insert(&mut self, fp: u64, why: OutOfScope) {
        self.slots[Self::slot(fp)] = (fp, why);
    }
}

/// The form of a URL used for dedup: scheme and host lowercased, default
/// port dropped, dot segments resolved (all done by parsing), no fragment,
/// percent-encoding in one form (uppercase hex; unreserved characters
/// decoded), and the `strip` query parameters removed. `None` for anything
/// but absolute http(s) URLs.
pub fn normalize(raw: &str, strip: &[String]) -> Option<Url> {
    let mut url = Url::parse(raw.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    url.set_fragment(None);
    // Path and query are rewritten only when the rewrite changes them
    // (setting them re-parses, which costs more than checking).
    if url.path().contains('%') {
        let path = canonical_percent(url.path());
        url.set_path(&path);
    }
    let stripped = |pair: &str| {
        let name = pair.split('=').next().unwrap_or("");
        strip.iter().any(|s| match s.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == s,
        })
    };
    if let Some(query) = url
        .query()
        .filter(|q| q.contains('%') || q.split('&').any(|p| p.is_empty() || stripped(p)))
    {
        let kept: Vec<String> = query
            .split('&')
            .filter(|pair| !pair.is_empty() && !stripped(pair))
            .map(canonical_percent)
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.set_query(Some(&kept.join("&")));
        }
    }
    Some(url)
}

/// `%7e` -> `~`, `%2f` -> `%2F`: unreserved characters decoded, every other
/// escape in uppercase hex. Reserved characters stay escaped, since
/// decoding them could change the URL's meaning.
fn canonical_percent(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let (Some(h), Some(l)) = (hex(b.get(i + 1)), hex(b.get(i + 2))) {
                let byte = h * 16 + l;
                if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                    out.push(byte as char);
                } else {
                    out.push('%');
                    out.push(char::from(b[i + 1]).to_ascii_uppercase());
                    out.push(char::from(b[i + 2]).to_ascii_uppercase());
                }
                i += 3;
                continue;
            }
        }
        let ch = s[i..].chars().next().expect("in bounds");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

fn hex(b: Option<&u8>) -> Option<u8> {
    let c = *b?;
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        normalize(s, &["utm_*".into(), "gclid".into()])
            .map(String::from)
            .unwrap_or_default()
    }

    /// The set of domains answers as the policy's own check does, for
    /// every host against every list: subdomains, case, trailing dots,
    /// empty and `*` entries, look-alike suffixes.
    #[test]
    fn domains_answer_as_the_policy_does() {
        let hosts = [
            "example.com",
            "EXAMPLE.com.",
            "a.example.com",
            "a.b.example.com",
            "badexample.com",
            "example.com.evil.test",
            "com",
            "127.0.2.7",
            "127.0.2.70",
            "x..example.com",
            "",
        ];
        let lists: [&[&str]; 8] = [
            &[],
            &["*"],
            &["example.com"],
            &["Example.COM."],
            &["b.example.com", "127.0.2.7"],
            &["", "."],
            &["com", "evil.test"],
            &["other.test", "*", "x"],
        ];
        for list in lists {
            let list: Vec<String> = list.iter().map(|d| d.to_string()).collect();
            let policy = FetchPolicy {
                allowed_domains: list.clone(),
                ..FetchPolicy::default()
            };
            let domains = Domains::new(&list);
            let default = Domains::default();
            for host in hosts {
                assert_eq!(
                    default.allows(host),
                    FetchPolicy::default().allows_host(host)
                );
                assert_eq!(
                    domains.allows(host),
                    policy.allows_host(host),
                    "{host:?} against {list:?}"
                );
            }
        }
    }

    /// A normal form is its own normal form: the scheduler relies on this
    /// to drop a seen link without normalizing it.
    #[test]
    fn normalization_is_idempotent() {
        for raw in [
            "HTTP://Example.COM:80/a/./b/../c#x",
            "https://example.com:443/%7euser/%2f?%7e=%2a&&utm_x=1",
            "http://h/p?",
            "http://user:pw@h:8080/a%20b/?q=a+b&r=%C3%A9",
            "http://[::1]:80/x/../y",
            "http://bücher.example/ä?ö=ü",
            "http://h/%25%32%35",
            "http://h/a b/<c>?d e=f\"g",
        ] {
            let once = norm(raw);
            assert!(!once.is_empty(), "{raw}");
            assert_eq!(norm(&once), once, "{raw}");
        }
    }

    /// Spellings of one URL normalize to one string.
    #[test]
    fn normalization() {
        assert_eq!(
            norm("HTTP://Example.COM:80/a/./b/../c#x"),
            "http://example.com/a/c"
        );
        assert_eq!(
            norm("https://example.com:443/%7euser/%2f"),
            "https://example.com/~user/%2F"
        );
        assert_eq!(
            norm("http://h/p?utm_source=x&id=3&gclid=9"),
            "http://h/p?id=3"
        );
        assert_eq!(norm("http://h/p?utm_medium=1"), "http://h/p");
        assert_eq!(norm("http://h/p?a=%7e"), "http://h/p?a=~");
        assert_eq!(norm("http://h"), "http://h/");
        assert_eq!(norm("http://h/p?"), "http://h/p");
        assert_eq!(norm("http://h/p?a=1&&b=2&"), "http://h/p?a=1&b=2");
        assert_eq!(norm("http://h/p?a=1&b=%2a"), "http://h/p?a=1&b=%2A");
        assert_eq!(norm("http://h/p?b=2&a=1"), "http://h/p?b=2&a=1");
        assert_eq!(
            norm("http://xn--bcher-kva.example/"),
            norm("http://bücher.example/")
        );
        for bad in [
            "mailto:a@b",
            "javascript:x",
            "/rel",
            "ftp://h/",
            "data:text/html,x",
            "",
        ] {
            assert_eq!(norm(bad), "", "{bad}");
        }
    }

    /// Domains, includes and excludes decide what is in scope.
    #[test]
    fn scope_rules() {
        let scope = Scope::new(
            vec!["example.com".into()],
            vec![Regex::new("/(shop|blog)/").unwrap()],
            vec![Regex::new(r"\.pdf$").unwrap()],
            vec![],
        );
        assert!(scope.admit("http://example.com/shop/1").is_ok());
        assert!(scope.admit("http://www.example.com/blog/x").is_ok());
        assert_eq!(
            scope.admit("http://other.com/shop/1"),
            Err(OutOfScope::Domain)
        );
        assert_eq!(
            scope.admit("http://example.com/about"),
            Err(OutOfScope::Pattern)
        );
        assert_eq!(
            scope.admit("http://example.com/shop/a.pdf"),
            Err(OutOfScope::Pattern)
        );
        assert_eq!(scope.admit("nonsense"), Err(OutOfScope::BadUrl));
    }

    /// Huge and exotic inputs are handled without panics.
    #[test]
    fn exotic_urls_never_panic() {
        let long = format!("http://h/{}", "a".repeat(100_000));
        assert!(normalize(&long, &[]).is_some());
        for s in [
            "http://[::1]:80/",
            "http://h/%",
            "http://h/%e",
            "http://h/%zz%",
            "http://h/ä%C3%A4",
            "http://h/?&&=&",
            "http://ü.例え.jp/",
        ] {
            let _ = normalize(s, &[]);
        }
    }

    /// The reject cache answers only for the fingerprint it holds; a later
    /// rejection in the same slot replaces the earlier one.
    #[test]
    fn reject_cache_holds_one_per_slot() {
        let mut cache = RejectCache::default();
        assert_eq!(cache.get(7), None);
        assert_eq!(cache.get(0), None, "an empty slot is no answer");
        cache.insert(7, OutOfScope::Domain);
        assert_eq!(cache.get(7), Some(OutOfScope::Domain));
        let same_slot = 7 + RejectCache::SLOTS as u64;
        assert_eq!(cache.get(same_slot), None);
        cache.insert(same_slot, OutOfScope::Pattern);
        assert_eq!(cache.get(same_slot), Some(OutOfScope::Pattern));
        assert_eq!(cache.get(7), None, "replaced");
    }
}
