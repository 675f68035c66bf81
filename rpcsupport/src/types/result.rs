//! What a worker answers for a page: the [`ParseResult`] and what it
//! learnt about the page itself ([`PageMeta`], [`ParseLimits`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{fnv1a64, Item, RenderReason, Request};

/// The hash of a fetched body that
/// [`FetchHints::content_hash`](super::FetchHints::content_hash) and
/// [`PageMeta::content_hash`] carry: FNV-1a 64 over the body's bytes as
/// received (after transfer decoding), stable across versions.
pub fn content_hash(body: &[u8]) -> u64 {
    fnv1a64(body)
}

/// What a worker found on one page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParseResult {
    /// Links to crawl next (the engine dedups them).
    pub requests: Vec<Request>,
    /// Structured records extracted from the page.
    pub items: Vec<Item>,
    /// What the worker's per-page limits left out (all zero for most pages).
    pub limits: ParseLimits,
    /// What the fetch and the page said about the page itself.
    pub page: PageMeta,
}

/// What a worker learnt about the page itself, beside its links and items:
/// the validators a recrawl sends back ([`FetchHints`](super::FetchHints)),
/// what the page asks of crawlers, its canonical URL, and how it was
/// fetched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageMeta {
    /// The final response's HTTP status (200, or 304 when `unchanged` came
    /// from the server).
    pub status: u16,
    /// The page is as it was at the last fetch: the server answered 304 to
    /// the request's validators, or the body's hash equals
    /// [`FetchHints::content_hash`](super::FetchHints::content_hash).
    /// Nothing was parsed: `requests` and `items` are empty.
    pub unchanged: bool,
    /// The response's `ETag`, as sent.
    pub etag: Option<String>,
    /// The response's `Last-Modified`, as sent.
    pub last_modified: Option<String>,
    /// [`content_hash`] of the body (absent on a 304).
    pub content_hash: Option<u64>,
    /// The page's `<link rel="canonical">` (or `Link: <..>; rel="canonical"`
    /// header), resolved to an absolute URL, when it names another URL than
    /// the page's. The engine decides whether it is in scope and uses it.
    pub canonical: Option<String>,
    /// The page said `noindex` (robots meta or `X-Robots-Tag`); when the
    /// policy obeys it, `items` is empty.
    pub noindex: bool,
    /// The page said `nofollow`; when the policy obeys it, `requests` is
    /// empty.
    pub nofollow: bool,
    /// Links left out because they were marked `rel="nofollow"`.
    pub nofollow_links: u64,
    /// Items left out because the page said `noindex`.
    pub noindex_items: u64,
    /// For a sitemap: entries left out past the protocol's limits (50,000
    /// URLs or 50 MB uncompressed per file) or because they were not
    /// http(s) URLs.
    pub sitemap_dropped: u64,
    /// Set when the page was rendered in a browser, with why.
    pub rendered: Option<RenderReason>,
    /// Set when a parser that streams (under the worker's `stream_parse`)
    /// read this page as a document tree instead, its markup being outside
    /// what the stream reads exactly: the same result, at a tree's cost in
    /// time and memory.
    pub tree_fallback: bool,
    /// For a rendered page: the requests its scripts, styles and frames
    /// made that the worker fetched, by host (as in their URLs), so the
    /// engine charges them to those hosts' politeness as it would charge
    /// requests of its own. At most `max_render_requests` in all.
    pub subrequests: BTreeMap<String, u32>,
}

/// What a worker's per-page limits cut from one [`ParseResult`], so a
/// hostile or huge page is a counted outcome rather than a silent loss. All
/// counts, so the engine can sum them over a crawl.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParseLimits {
    /// Links past the worker's `max_links_per_page`, not returned.
    pub links_truncated: u64,
    /// Links whose URL (as written or resolved) was longer than
    /// `max_url_bytes`, dropped.
    pub urls_too_long: u64,
    /// 1 if the page's `<base href>` was longer than `max_url_bytes` and
    /// ignored (links resolved against the page's own URL).
    pub base_href_ignored: u64,
    /// Requests and items left out to keep the reply within
    /// `max_result_bytes`.
    pub results_dropped: u64,
    /// 1 if only a prefix of the page was parsed: robots.txt past
    /// `max_robots_bytes`, HTML past `max_html_nodes` or `max_html_depth`.
    pub page_truncated: u64,
}

impl ParseLimits {
    /// Whether no limit was hit.
    pub fn is_empty(&self) -> bool {
        *self == ParseLimits::default()
    }

    /// Adds `other`'s counts to these (for totals over a crawl).
    pub fn add(&mut self, other: &ParseLimits) {
        self.links_truncated += other.links_truncated;
        self.urls_too_long += other.urls_too_long;
        self.base_href_ignored += other.base_href_ignored;
        self.results_dropped += other.results_dropped;
        self.page_truncated += other.page_truncated;
    }
}
