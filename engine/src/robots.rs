//! robots.txt, as RFC 9309 describes it: groups of `user-agent` lines with
//! `allow` / `disallow` rules; the group for our product token wins over the
//! `*` group; the longest matching rule wins, `allow` on a tie; `*` matches
//! any run of characters and a final `$` anchors the end. `crawl-delay` is a
//! common extension, read from the chosen group. `sitemap` lines (the
//! sitemaps protocol's extension) belong to no group: every one in the file
//! counts, whichever group it sits in.

use std::time::Duration;

/// The rules that apply to us, from one robots.txt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Robots {
    rules: Vec<Rule>,
    /// The group's `crawl-delay`, if it had one.
    pub crawl_delay: Option<Duration>,
    /// The file's `Sitemap:` URLs (absolute http(s) only), in file order,
    /// at most the `max_sitemaps` given to [`Robots::parse_with_sitemaps`].
    pub sitemaps: Vec<String>,
    /// `Sitemap:` lines left out: past the bound, or not an absolute
    /// http(s) URL.
    pub sitemaps_dropped: u64,
}

#[derive(Debug, Clone, PartialEq)]
struct Rule {
    allow: bool,
    pattern: String,
}

#[derive(Default)]
struct Group {
    agents: Vec<String>,
    rules: Vec<Rule>,
    crawl_delay: Option<Duration>,
}

impl Robots {
    /// Allows everything (robots.txt missing: 4xx).
    pub fn allow_all() -> Robots {
        Robots::default()
    }

    /// Disallows everything (robots.txt unreachable for good).
    pub fn disallow_all() -> Robots {
        Robots {
            rules: vec![Rule {
                allow: false,
                pattern: "/".into(),
            }],
            ..Robots::default()
        }
    }

    /// Parses `text` and keeps the rules for `agent` (our product token,
    /// matched case-insensitively), or the `*` group when no group names us.
    /// `Sitemap:` lines are not kept: see [`Robots::parse_with_sitemaps`].
    pub fn parse(text: &str, agent: &str) -> Robots {
        Robots::parse_with_sitemaps(text, agent, 0)
    }

    /// [`Robots::parse`], keeping up to `max_sitemaps` of the file's
    /// `Sitemap:` URLs (the rest counted in `sitemaps_dropped`).
    pub fn parse_with_sitemaps(text: &str, agent: &str, max_sitemaps: usize) -> Robots {
        let agent = agent.to_ascii_lowercase();
        let mut groups: Vec<Group> = Vec::new();
        // Consecutive user-agent lines share one group; a rule line ends
        // the run of user-agent lines.
        let mut collecting_agents = false;
        let mut sitemaps = Vec::new();
        let mut sitemaps_dropped = 0;
        // Bound the work a hostile file can cause (RFC 9309 suggests
        // parsing at least 500 KiB).
        for line in text.lines().take(50_000) {
            let line = line.split('#').next().unwrap_or("").trim();
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            let value = value.trim();
            match key.as_str() {
                "user-agent" => {
                    if !collecting_agents {
                        groups.push(Group::default());
                        collecting_agents = true;
                    }
                    let last = groups.last_mut().expect("pushed above");
                    last.agents.push(value.to_ascii_lowercase());
                }
                "allow" | "disallow" => {
                    collecting_agents = false;
                    let Some(group) = groups.last_mut() else {
                        continue;
                    };
                    // An empty disallow allows everything: no rule.
                    if value.is_empty() {
                        continue;
                    }
                    group.rules.push(Rule {
                        allow: key == "allow",
                        pattern: normalize_pattern(value),
                    });
                }
                "crawl-delay" => {
                    collecting_agents = false;
                    if let (Some(group), Ok(secs)) = (groups.last_mut(), value.parse::<f64>()) {
                        if secs.is_finite() && secs >= 0.0 {
                            group.crawl_delay = Some(Duration::from_secs_f64(secs.min(86_400.0)));
                        }
                    }
                }
                // Not a group line: it neither ends a run of user-agent
                // lines nor belongs to the group around it.
                "sitemap" => match absolute_http(value) {
                    Some(url) if sitemaps.len() < max_sitemaps => sitemaps.push(url),
                    _ => sitemaps_dropped += 1,
                },
                _ => {}
            }
        }
        let ours = |g: &&Group| {
            g.agents
                .iter()
                .any(|a| a != "*" && agent.starts_with(a.as_str()))
        };
        let star = |g: &&Group| g.agents.iter().any(|a| a == "*");
        let chosen: Vec<&Group> = if groups.iter().any(|g| ours(&g)) {
            groups.iter().filter(ours).collect()
        } else {
            groups.iter().filter(star).collect()
        };
        Robots {
            rules: chosen
                .iter()
                .flat_map(|g| g.rules.iter().cloned())
                .collect(),
            crawl_delay: chosen.iter().find_map(|g| g.crawl_delay),
            sitemaps,
            sitemaps_dropped,
        }
    }

    /// Whether `path_and_query` (e.g. `/a/b?x=1`) may be fetched.
    pub fn allows(&self, path_and_query: &str) -> bool {
        let path = normalize_pattern(path_and_query);
        let mut best: Option<(usize, bool)> = None;
        for rule in &self.rules {
            if matches(&rule.pattern, &path) {
                let len = rule.pattern.len();
                best = match best {
                    Some((l, a)) if l > len || (l == len && a) => Some((l, a)),
                    _ => Some((len, rule.allow)),
                };
            }
        }
        best.is_none_or(|(_, allow)| allow)
    }
}

/// A `Sitemap:` value, if it is an absolute http(s) URL (the protocol asks
/// for one; a relative path has no base to resolve against that the file's
/// author could rely on).
fn absolute_http(value: &str) -> Option<String> {
    let url = url::Url::parse(value).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.host().is_some()).then(|| url.into())
}

/// Percent-encoding is compared in one form: uppercase hex, and characters
/// that need no encoding decoded, so `/%7euser` and `/~user` are one path.
fn normalize_pattern(p: &str) -> String {
    let bytes = p.as_bytes();
    let mut out = String::with_capacity(p.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            // Both are ASCII, so these are char boundaries.
            let hex = &p[i + 1..i + 3];
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    out.push(b as char);
                } else {
                    out.push('%');
                    out.push_str(&hex.to_ascii_uppercase());
                }
                i += 3;
                continue;
            }
        }
        let ch = p[i..].chars().next().expect("in bounds");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// `*` matches any run, a trailing `$` anchors; otherwise a prefix match.
fn matches(pattern: &str, path: &str) -> bool {
    let (pattern, anchored) = match pattern.strip_suffix('$') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut pos = 0;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            if !path.starts_with(part) {
                return false;
            }
            pos = part.len();
        } else if i == parts.len() - 1 && anchored {
            // The last piece must end the path.
            return path.len() >= pos + part.len() && path.ends_with(part);
        } else {
            match path[pos..].find(part) {
                Some(at) => pos += at + part.len(),
                None => return false,
            }
        }
    }
    !anchored || pos == path.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# comment
User-agent: otherbot
Disallow: /

User-agent: *
Disallow: /private/
Allow: /private/open
Disallow: /*.pdf$
Crawl-delay: 2

User-agent: Crawler
User-agent: friend
Disallow: /no-crawler
Crawl-delay: 0.5
";

    /// The `*` group applies when no group names us; longest match wins,
    /// allow wins ties, wildcards and `$` work.
    #[test]
    fn star_group_rules() {
        let r = Robots::parse(FILE, "somebot");
        assert!(r.allows("/"));
        assert!(r.allows("/public/page"));
        assert!(!r.allows("/private/x"));
        assert!(r.allows("/private/open/door"));
        assert!(!r.allows("/docs/a.pdf"));
        assert!(r.allows("/docs/a.pdf?download=1"));
        assert_eq!(r.crawl_delay, Some(Duration::from_secs(2)));
    }

    /// A group naming our product token (case-insensitively) replaces `*`.
    #[test]
    fn our_group_wins() {
        let r = Robots::parse(FILE, "crawler");
        assert!(!r.allows("/no-crawler/x"));
        assert!(r.allows("/private/x"));
        assert_eq!(r.crawl_delay, Some(Duration::from_millis(500)));
    }

    /// Empty or missing files, and an empty Disallow, allow everything.
    #[test]
    fn empty_allows_all() {
        assert!(Robots::parse("", "x").allows("/any"));
        assert!(Robots::parse("User-agent: *\nDisallow:\n", "x").allows("/any"));
        assert!(Robots::allow_all().allows("/a"));
        assert!(!Robots::disallow_all().allows("/a"));
    }

    /// Equal paths in different percent-encodings match each other.
    #[test]
    fn percent_encoding_is_normalized() {
        let r = Robots::parse("User-agent: *\nDisallow: /%7Euser/\n", "x");
        assert!(!r.allows("/~user/page"));
        assert!(!r.allows("/%7euser/page"));
    }

    /// `Sitemap:` lines count wherever they stand (inside a group, before
    /// any, after the last), do not end a run of user-agent lines, keep
    /// only absolute http(s) URLs, and stop at the bound.
    #[test]
    fn sitemap_lines_are_file_wide_and_bounded() {
        let text = "\
Sitemap: http://a.test/one.xml
User-agent: otherbot
sitemap: https://a.test/two.xml.gz
User-agent: crawler
Disallow: /x
SITEMAP:   http://b.test/three.txt   # comment
Sitemap: /relative.xml
Sitemap: ftp://a.test/four.xml
Sitemap: javascript:alert(1)
Sitemap: http://a.test/five.xml
";
        let r = Robots::parse_with_sitemaps(text, "crawler", 10);
        assert_eq!(
            r.sitemaps,
            [
                "http://a.test/one.xml",
                "https://a.test/two.xml.gz",
                "http://b.test/three.txt",
                "http://a.test/five.xml"
            ]
        );
        assert_eq!(r.sitemaps_dropped, 3);
        // The sitemap line between the two user-agent lines did not split
        // them: the crawler group's rule is otherbot's too.
        assert!(!r.allows("/x"));
        assert!(!Robots::parse(text, "otherbot").allows("/x"));
        let bounded = Robots::parse_with_sitemaps(text, "crawler", 2);
        assert_eq!(bounded.sitemaps.len(), 2);
        assert_eq!(bounded.sitemaps_dropped, 5);
        assert!(Robots::parse(text, "crawler").sitemaps.is_empty());
    }

    /// Garbage never panics and allows by default.
    #[test]
    fn garbage_is_harmless() {
        let r = Robots::parse("\u{0}\u{ffff}::::\nDisallow\nAllow: *\n%%%\n", "x");
        assert!(r.allows("/x"));
        assert!(Robots::parse("User-agent: *\nDisallow: /%zz", "x").allows("/a"));
        assert!(!matches("/a*b$", "/a"));
        assert!(matches("/a*b$", "/axxb"));
        assert!(matches("*", ""));
    }
}
