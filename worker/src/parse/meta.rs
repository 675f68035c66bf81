//! What a page says about itself, for the crawler rather than the parser:
//! robots directives (`<meta name="robots">` and `X-Robots-Tag`),
//! `rel="nofollow"` links, and its canonical URL (`<link rel="canonical">`
//! or a `Link` header). Every parser gets this for free: the document half
//! is read in [`Parser::run_with`](super::Parser::run_with) and the rule
//! engine's `run_with`, the header half and the crawl's
//! [`FetchPolicy`] are applied by [`finish`] once the parser is done.
//!
//! The worker only reports the canonical URL ([`PageMeta::canonical`]); the
//! engine decides whether it is in scope and what to do with it.

use std::sync::LazyLock;

use rpcsupport::{FetchPolicy, ParseResult};
use scraper::{ElementRef, Html, Selector};
use url::Url;

use super::{resolve, selector, Page};
use crate::fetch::PageHeaders;

/// The robots directives a crawler obeys; the others (`noarchive`,
/// `max-snippet`...) are for search result pages and are ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Directives {
    /// Store nothing from the page.
    pub noindex: bool,
    /// Follow none of its links.
    pub nofollow: bool,
}

impl Directives {
    /// Adds one directive, as written in any case. `all`, `index` and
    /// `follow` are the defaults and change nothing (a page cannot undo a
    /// `noindex` it gave elsewhere by also saying `index`).
    fn add(&mut self, directive: &str) {
        let d = directive.trim();
        if d.eq_ignore_ascii_case("noindex") {
            self.noindex = true;
        } else if d.eq_ignore_ascii_case("nofollow") {
            self.nofollow = true;
        } else if d.eq_ignore_ascii_case("none") {
            self.noindex = true;
            self.nofollow = true;
        }
    }

    fn or(self, other: Directives) -> Directives {
        Directives {
            noindex: self.noindex || other.noindex,
            nofollow: self.nofollow || other.nofollow,
        }
    }
}

/// The product token of a User-Agent (`crawler/0.1` -> `crawler`), the name
/// a page uses to address this crawler alone (`<meta name="crawler">`,
/// `X-Robots-Tag: crawler: noindex`).
pub fn agent_token(user_agent: &str) -> &str {
    user_agent
        .split(|c: char| c == '/' || c.is_whitespace())
        .next()
        .unwrap_or("")
}

/// The document's `<head>`: the HTML parser always makes one, as a child
/// of the root, and puts there the `<meta>` and `<link>` tags that come
/// before the body's content.
fn head(html: &Html) -> Option<ElementRef<'_>> {
    html.root_element()
        .children()
        .filter_map(ElementRef::wrap)
        .find(|e| e.value().name() == "head")
}

/// The directives of the page's `<meta name="robots">` tags and of those
/// named for `agent` (names compare in any case; a directive list is
/// comma-separated, spaces tolerated). They belong in the head, but one
/// found later in the page is obeyed too: erring towards what the page
/// asks is the polite mistake.
pub fn robots_meta(html: &Html, agent: &str) -> Directives {
    static META: LazyLock<Selector> = LazyLock::new(|| selector("meta[name][content]"));
    let mut d = Directives::default();
    for meta in html.select(&META) {
        let el = meta.value();
        let name = el.attr("name").unwrap_or("").trim();
        let ours = name.eq_ignore_ascii_case("robots")
            || (!agent.is_empty() && name.eq_ignore_ascii_case(agent));
        if ours {
            for directive in el
                .attr("content")
                .unwrap_or("")
                .split(|c: char| c == ',' || c.is_whitespace())
            {
                d.add(directive);
            }
        }
    }
    d
}

/// Directives whose value contains a colon and that are not an agent name
/// (`unavailable_after: 25 Jun 2010`, `max-snippet: 20`).
const COLON_DIRECTIVES: [&str; 4] = [
    "unavailable_after",
    "max-snippet",
    "max-image-preview",
    "max-video-preview",
];

/// The directives of `X-Robots-Tag` header values that apply to `agent`:
/// the unprefixed ones, and those after `agent:`. An `otherbot:` prefix
/// addresses the directives after it, up to the next prefix, to another
/// crawler, and they are ignored.
pub fn robots_header(values: &[String], agent: &str) -> Directives {
    let mut d = Directives::default();
    for value in values {
        // An agent prefix lasts to the end of its header value.
        let mut ours = true;
        for part in value.split(',') {
            let mut directive = part.trim();
            if let Some((name, rest)) = directive.split_once(':') {
                let name = name.trim();
                if !COLON_DIRECTIVES
                    .iter()
                    .any(|c| name.eq_ignore_ascii_case(c))
                {
                    ours = name.eq_ignore_ascii_case(agent);
                    directive = rest;
                }
            }
            if ours {
                d.add(directive);
            }
        }
    }
    d
}

/// Whether a `rel` attribute (a space-separated list, any case) marks the
/// link `nofollow` (`rel="ugc nofollow"` does).
pub fn is_nofollow(rel: &str) -> bool {
    rel.split_ascii_whitespace()
        .any(|r| r.eq_ignore_ascii_case("nofollow"))
}

/// The page's first `<link rel="canonical" href>` in its head (one in the
/// body is ignored, as search engines do: a page's content, comments
/// included, must not be able to name another URL as the page), resolved
/// against `<base href>` like its links and within `max_url_bytes`, when it
/// names another URL than the page's own.
pub fn canonical(page: &Page<'_>) -> Option<Url> {
    static LINK: LazyLock<Selector> = LazyLock::new(|| selector("link[rel][href]"));
    let href = head(page.html)?
        .select(&LINK)
        .find(|l| {
            l.value()
                .attr("rel")
                .unwrap_or("")
                .split_ascii_whitespace()
                .any(|r| r.eq_ignore_ascii_case("canonical"))
        })?
        .value()
        .attr("href")?;
    let url = page.link(&page.base_url(), href)?;
    other_than(url, page.url)
}

/// The first `Link: <url>; rel="canonical"` of the response's `Link`
/// headers, resolved against the page's URL, at most `max_url_bytes` long,
/// when it names another URL than the page's own.
pub fn canonical_header(values: &[String], page_url: &Url, max_url_bytes: usize) -> Option<Url> {
    for value in values {
        // A value may list several links: `<a>; rel=x, <b>; rel="canonical"`.
        // URLs in angle brackets may hold commas, so split on `<` instead.
        for link in value.split('<').skip(1) {
            let Some((target, params)) = link.split_once('>') else {
                continue;
            };
            let canonical = params.split(';').any(|p| {
                let Some((key, v)) = p.split_once('=') else {
                    return false;
                };
                key.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_end_matches(',')
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("canonical"))
            });
            if !canonical || target.trim().len() > max_url_bytes {
                continue;
            }
            let url = resolve(page_url, target)?;
            if url.as_str().len() > max_url_bytes {
                return None;
            }
            return other_than(url, page_url);
        }
    }
    None
}

/// `url`, unless it is the page's own URL (fragment aside, as for links).
fn other_than(url: Url, page_url: &Url) -> Option<Url> {
    let mut own = page_url.clone();
    own.set_fragment(None);
    (url != own).then_some(url)
}

/// Reads what an HTML page says of itself into its result: robots meta
/// (for the crawler's `agent` token too) and canonical URL. Called once
/// the parser has run, on the same document.
pub(crate) fn read_document(page: &Page<'_>, result: &mut ParseResult) {
    let d = robots_meta(page.html, page.budget.agent());
    result.page.noindex = d.noindex;
    result.page.nofollow = d.nofollow;
    result.page.canonical = canonical(page).map(String::from);
}

/// Adds what the response's headers say of an HTML page (`X-Robots-Tag`,
/// a canonical `Link`, used when the document names none) to `result`,
/// and obeys the page's directives as `policy` asks: `nofollow` leaves out
/// every request, `noindex` every item (counted in `noindex_items`). The
/// flags themselves are reported either way.
pub fn finish(
    result: &mut ParseResult,
    headers: &PageHeaders,
    policy: &FetchPolicy,
    page_url: &Url,
    max_url_bytes: usize,
    agent: &str,
) {
    let page = &mut result.page;
    let d = robots_header(&headers.robots, agent).or(Directives {
        noindex: page.noindex,
        nofollow: page.nofollow,
    });
    page.noindex = d.noindex;
    page.nofollow = d.nofollow;
    if page.canonical.is_none() {
        page.canonical =
            canonical_header(&headers.links, page_url, max_url_bytes).map(String::from);
    }
    if policy.obey_robots_meta {
        if d.nofollow {
            result.requests.clear();
        }
        if d.noindex {
            page.noindex_items += result.items.len() as u64;
            result.items.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{Budget, PageLimits};
    use rpcsupport::{ParserSpec, Request};

    fn meta(html: &str) -> Directives {
        robots_meta(&Html::parse_document(html), "crawler")
    }

    /// Robots meta: names and values in any case, comma lists, `none`,
    /// our own agent's name, and other agents' tags ignored.
    #[test]
    fn robots_meta_tags() {
        let both = Directives {
            noindex: true,
            nofollow: true,
        };
        let noindex = Directives {
            noindex: true,
            nofollow: false,
        };
        assert_eq!(meta(r#"<meta name="robots" content="noindex">"#), noindex);
        assert_eq!(
            meta(r#"<meta name="ROBOTS" content="NoIndex, NOFOLLOW">"#),
            both
        );
        assert_eq!(meta(r#"<meta name="robots" content="none">"#), both);
        assert_eq!(
            meta(
                r#"<meta name="robots" content="all"><meta name="robots" content="index, follow">"#
            ),
            Directives::default()
        );
        assert_eq!(meta(r#"<meta name="Crawler" content="noindex">"#), noindex);
        assert_eq!(
            meta(r#"<meta name="otherbot" content="noindex, nofollow">"#),
            Directives::default()
        );
        assert_eq!(
            meta(r#"<meta name="description" content="noindex">"#),
            Directives::default()
        );
        // A tag in the body is obeyed too.
        assert_eq!(
            meta(r#"<p>text</p><meta name="robots" content="noindex">"#),
            noindex
        );
        assert_eq!(agent_token("crawler/0.1"), "crawler");
        assert_eq!(agent_token("MyBot (+http://x)"), "MyBot");
    }

    /// X-Robots-Tag: plain values, several headers, `none`, our agent's
    /// prefix obeyed, another agent's ignored, colon directives kept apart.
    #[test]
    fn robots_header_values() {
        let h = |vs: &[&str]| {
            robots_header(
                &vs.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
                "crawler",
            )
        };
        assert_eq!(h(&[]), Directives::default());
        assert_eq!(
            h(&["noindex, nofollow"]),
            Directives {
                noindex: true,
                nofollow: true
            }
        );
        assert_eq!(h(&["NONE"]), h(&["noindex", "nofollow"]));
        assert_eq!(h(&["otherbot: noindex"]), Directives::default());
        assert_eq!(h(&["otherbot: noindex, nofollow"]), Directives::default());
        assert_eq!(
            h(&["otherbot: noindex", "crawler: nofollow"]),
            Directives {
                noindex: false,
                nofollow: true
            }
        );
        assert_eq!(
            h(&["unavailable_after: 25 Jun 2010 15:00:00 PST, noindex"]),
            Directives {
                noindex: true,
                nofollow: false
            }
        );
    }

    /// `rel` is a space-separated list in any case.
    #[test]
    fn rel_nofollow() {
        assert!(is_nofollow("nofollow"));
        assert!(is_nofollow("ugc  NoFollow"));
        assert!(is_nofollow("noopener nofollow noreferrer"));
        assert!(!is_nofollow("noopener"));
        assert!(!is_nofollow("nofollowme"));
        assert!(!is_nofollow(""));
    }

    fn canonical_of(url: &str, html: &str, max_url_bytes: usize) -> Option<String> {
        let request = Request::new(url, ParserSpec::named("links"), 0);
        let url = Url::parse(url).unwrap();
        let html = Html::parse_document(html);
        let budget = Budget::new(PageLimits {
            max_url_bytes,
            ..PageLimits::default()
        });
        let page = Page {
            request: &request,
            url: &url,
            html: &html,
            text: "",
            body: b"",
            budget: &budget,
        };
        canonical(&page).map(String::from)
    }

    /// Canonical links: relative, absolute, against `<base href>`, the
    /// first one only, the page's own URL (fragment aside) and an
    /// over-long one give none.
    #[test]
    fn canonical_links() {
        let page = "http://h/profile/7/print";
        let c = |html: &str| canonical_of(page, html, 8192);
        assert_eq!(
            c(r#"<link rel="canonical" href="/profile/7">"#).as_deref(),
            Some("http://h/profile/7")
        );
        assert_eq!(
            c(r#"<link rel="Canonical" href="http://h/profile/7#x">"#).as_deref(),
            Some("http://h/profile/7")
        );
        assert_eq!(
            c(r#"<base href="http://h/a/"><link rel="canonical" href="b">"#).as_deref(),
            Some("http://h/a/b")
        );
        assert_eq!(
            c(r#"<link rel="canonical" href="/1"><link rel="canonical" href="/2">"#).as_deref(),
            Some("http://h/1")
        );
        assert_eq!(c(r#"<link rel="canonical" href="print#top">"#), None);
        assert_eq!(c(r#"<link rel="alternate" href="/x">"#), None);
        assert_eq!(
            c(r#"<p>user text</p><link rel="canonical" href="/elsewhere">"#),
            None
        );
        assert_eq!(c(r#"<link rel="canonical" href="javascript:x">"#), None);
        let long = format!(r#"<link rel="canonical" href="/{}">"#, "x".repeat(200));
        assert_eq!(canonical_of(page, &long, 100), None);
        assert!(canonical_of(page, &long, 8192).is_some());
    }

    /// `Link` headers: the canonical one among several, relative to the
    /// page, not the page itself, not too long.
    #[test]
    fn canonical_link_headers() {
        let page = Url::parse("http://h/a?print=1").unwrap();
        let c = |vs: &[&str], max| {
            canonical_header(
                &vs.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
                &page,
                max,
            )
            .map(String::from)
        };
        assert_eq!(
            c(
                &[r#"</style.css>; rel=preload, </a>; rel="canonical""#],
                100
            )
            .as_deref(),
            Some("http://h/a")
        );
        assert_eq!(
            c(&["<http://other/x>; REL=canonical"], 100).as_deref(),
            Some("http://other/x")
        );
        assert_eq!(c(&[r#"</a?print=1>; rel="canonical""#], 100), None);
        assert_eq!(c(&[r#"</a>; rel="next""#], 100), None);
        assert_eq!(c(&[r#"</aaaaaaaaaaaaaaa>; rel="canonical""#], 12), None);
    }

    /// Obeying: nofollow empties the requests, noindex the items (counted);
    /// without the policy the flags are only reported.
    #[test]
    fn finish_obeys_when_asked() {
        let url = Url::parse("http://h/p").unwrap();
        let result = ParseResult {
            requests: vec![Request::new("http://h/q", ParserSpec::named("links"), 1)],
            items: vec![rpcsupport::Item {
                url: "http://h/p".into(),
                kind: "k".into(),
                id: None,
                payload: Default::default(),
            }],
            ..ParseResult::default()
        };
        let headers = PageHeaders {
            robots: vec!["noindex, nofollow".into()],
            links: vec!["</c>; rel=canonical".into()],
            ..PageHeaders::default()
        };
        let mut off = result.clone();
        finish(
            &mut off,
            &headers,
            &FetchPolicy::default(),
            &url,
            100,
            "crawler",
        );
        assert!(off.page.noindex && off.page.nofollow);
        assert_eq!((off.requests.len(), off.items.len()), (1, 1));
        assert_eq!(off.page.canonical.as_deref(), Some("http://h/c"));
        let obey = FetchPolicy {
            obey_robots_meta: true,
            ..FetchPolicy::default()
        };
        let mut on = result.clone();
        finish(&mut on, &headers, &obey, &url, 100, "crawler");
        assert_eq!((on.requests.len(), on.items.len()), (0, 0));
        assert_eq!(on.page.noindex_items, 1);
    }
}
