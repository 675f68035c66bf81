//! Robots directives: `<meta name="robots">`, `X-Robots-Tag` and
//! `rel="nofollow"`.

use std::sync::LazyLock;

use scraper::{Html, Selector};

use super::super::selector;

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

    /// Adds the directives of one `<meta name content>` tag if it is
    /// addressed to robots or to `agent` (see [`robots_meta`]).
    pub(crate) fn read_meta(&mut self, name: &str, content: &str, agent: &str) {
        let name = name.trim();
        let ours = name.eq_ignore_ascii_case("robots")
            || (!agent.is_empty() && name.eq_ignore_ascii_case(agent));
        if ours {
            for directive in content.split(|c: char| c == ',' || c.is_whitespace()) {
                self.add(directive);
            }
        }
    }

    pub(super) fn or(self, other: Directives) -> Directives {
        Directives {
            noindex: self.noindex || other.noindex,
            nofollow: self.nofollow || other.nofollow,
        }
    }
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
        d.read_meta(
            el.attr("name").unwrap_or(""),
            el.attr("content").unwrap_or(""),
            agent,
        );
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
