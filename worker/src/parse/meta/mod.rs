//! What a page says about itself, for the crawler rather than the parser:
//! robots directives (`<meta name="robots">` and `X-Robots-Tag`),
//! `rel="nofollow"` links, and its canonical URL (`<link rel="canonical">`
//! or a `Link` header). Every parser gets this for free: the document half
//! is read in [`Parser::run_with`](super::Parser::run_with) and the rule
//! engine's `run_with`, the header half and the crawl's
//! [`FetchPolicy`] are applied by [`finish`] once the parser is done.
//!
//! The worker only reports the canonical URL ([`PageMeta::canonical`](rpcsupport::PageMeta::canonical)); the
//! engine decides whether it is in scope and what to do with it.

//!
//! # Layout
//!
//! - this file: `read_document` and [`finish`], which put what a page
//!   says of itself into its result and obey it as the policy asks.
//! - `directives`: [`Directives`] from robots meta tags and
//!   `X-Robots-Tag`, and `rel="nofollow"`.
//! - `canonical`: the canonical URL, from the head or a `Link` header.

mod canonical;
mod directives;
#[cfg(test)]
mod tests;

use rpcsupport::{FetchPolicy, ParseResult};
use url::Url;

use super::Page;
use crate::fetch::PageHeaders;
pub use canonical::{canonical, canonical_header};
pub(crate) use canonical::{canonical_from, is_canonical};
pub use directives::{is_nofollow, robots_header, robots_meta, Directives};

/// The product token of a User-Agent (`crawler/0.1` -> `crawler`), the name
/// a page uses to address this crawler alone (`<meta name="crawler">`,
/// `X-Robots-Tag: crawler: noindex`).
pub fn agent_token(user_agent: &str) -> &str {
    user_agent
        .split(|c: char| c == '/' || c.is_whitespace())
        .next()
        .unwrap_or("")
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
