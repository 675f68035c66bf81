//! A fetched page made ready for its parser (decoded, cut at the node and
//! depth limits, weighed) and parsed with panics caught.

use rpcsupport::{ParseError, ParseResult, Request};

use crate::fetch::Fetched;
use crate::parse::{Budget, Content, PageLimits};
use crate::{decode, prescan, Runner, WorkerConfig};

/// Memory the parsed tree takes per element or attribute, measured with
/// scraper 0.29 (160 to 256 bytes, the text nodes between tags included):
/// what a page weighs against `max_parse_bytes`.
const TREE_BYTES_PER_NODE: u64 = 256;

/// What a page the streaming path reads (no tree) weighs, per byte of its
/// text, in halves: it copies the hrefs out (at most the text) and keeps
/// 12 bytes per `<a>` (at most 1.5 per byte, for `<a href>` after
/// `<a href>`); `worker/tests/stream_memory.rs` measures 1.38 on a page of
/// nothing but links. Its requests are bounded apart, by `max_result_bytes`.
const STREAM_HALVES_PER_BYTE: u64 = 3;

/// `max_parse_bytes` as a permit count (a semaphore takes at most u32
/// permits at once).
pub(crate) fn parse_permits(config: &WorkerConfig) -> u64 {
    config.max_parse_bytes.min(u64::from(u32::MAX))
}

/// A fetched page ready for its parser: decoded, and cut where the parser
/// would cost more than the limits allow.
pub(crate) struct Prepared {
    /// Where the page came from, after redirects.
    url: url::Url,
    /// The text to parse (empty for a [`Content::Sitemap`] parser).
    text: String,
    /// The body as fetched, for a [`Content::Sitemap`] parser (else empty).
    raw: Vec<u8>,
    /// Whether `text` is only a prefix of the page.
    truncated: bool,
    /// Estimated memory of its parsed tree ([`Prepared::weight`]).
    tree_weight: u64,
    /// The body's share of `max_buffered_body_bytes`, which the text
    /// (usually the body's own buffer) keeps until the parse ends.
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Prepared {
    /// The text the parser reads.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// Estimated memory of parsing it with `runner`, against
    /// `max_parse_bytes`: its tree's, unless the parser reads it without
    /// one (`stream_parse`, a parser with [`crate::parse::Parser::stream`]).
    pub(crate) fn weight(&self, runner: &Runner, stream_parse: bool) -> u64 {
        match runner {
            Runner::Builtin(parser) if parser.streams_without_tree(stream_parse) => {
                (self.text.len() as u64).saturating_mul(STREAM_HALVES_PER_BYTE) / 2
            }
            _ => self.tree_weight,
        }
    }

    /// The whole page's URL, text and buffer permit, once parsed (a
    /// rendering browser is handed the text instead of fetching the page
    /// again); `None` when the text is only a prefix of the page.
    pub(crate) fn into_whole(
        self,
    ) -> Option<(url::Url, String, Option<tokio::sync::OwnedSemaphorePermit>)> {
        (!self.truncated).then_some((self.url, self.text, self._permit))
    }
}

/// Decodes `fetched` (freeing the body as it goes) and, for HTML, cuts it at
/// `max_nodes` elements and attributes or `max_depth` nesting
/// ([`prescan`]).
pub(crate) fn prepare(
    fetched: Fetched,
    content: Content,
    max_nodes: usize,
    max_depth: usize,
) -> Prepared {
    let Fetched {
        url,
        content_type,
        body,
        truncated,
        permit,
        ..
    } = fetched;
    if content == Content::Sitemap {
        // Its parser inflates and decodes as it reads, and builds no tree.
        return Prepared {
            url,
            text: String::new(),
            raw: body,
            truncated,
            tree_weight: 0,
            _permit: permit,
        };
    }
    let mut text = decode::decode_owned(body, content_type.as_deref()).text;
    let mut cut = truncated;
    let mut nodes = 0;
    if content == Content::Html {
        let prefix = prescan::html_prefix(&text, max_nodes, max_depth);
        if prefix.is_cut(&text) {
            text.truncate(prefix.end);
            cut = true;
        }
        nodes = prefix.nodes as u64;
    }
    Prepared {
        // The tree holds a copy of the text (attribute values, text nodes)
        // besides its nodes; a text parser (robots.txt) builds no tree.
        tree_weight: if content == Content::Html {
            text.len() as u64 + nodes * TREE_BYTES_PER_NODE
        } else {
            0
        },
        url,
        text,
        raw: Vec::new(),
        truncated: cut,
        _permit: permit,
    }
}

/// Parses within `limits` (skipping `rel="nofollow"` links if
/// `obey_nofollow`; `agent` is the crawler's product token), with any
/// parser panic turned into a `ParseError` so one odd page can never take
/// the request (or the worker) down.
pub(crate) fn parse_page(
    runner: &Runner,
    request: &Request,
    page: &Prepared,
    limits: PageLimits,
    obey_nofollow: bool,
    agent: &str,
) -> Result<ParseResult, ParseError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let budget = Budget::new(limits).obeying(obey_nofollow, agent);
        if page.truncated {
            budget.count(|c| c.page_truncated = 1);
        }
        match runner {
            Runner::Builtin(parser) if parser.content == Content::Sitemap => {
                parser.run_body(request, &page.url, &page.raw, &budget)
            }
            Runner::Builtin(parser) => parser.run_with(request, &page.url, &page.text, &budget),
            Runner::Rule(set, name) => set.run_with(name, request, &page.url, &page.text, &budget),
        }
    }))
    .unwrap_or_else(|_| Err(panicked(request)))
}

pub(crate) fn panicked(request: &Request) -> ParseError {
    ParseError::Page {
        parser: request.parser.name.clone(),
        url: request.url.clone(),
        reason: "parser panicked".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{links, profile};

    fn prepared(html: &str) -> Prepared {
        let fetched = Fetched {
            url: url::Url::parse("http://h/").unwrap(),
            status: 200,
            headers: Default::default(),
            content_type: Some("text/html; charset=utf-8".into()),
            body: html.as_bytes().to_vec(),
            truncated: false,
            permit: None,
        };
        prepare(fetched, Content::Html, 250_000, 512)
    }

    /// Issue 14: a page the streaming path reads weighs 1.5 times its text
    /// against `max_parse_bytes`; one parsed into a tree (another parser,
    /// or `stream_parse` off) weighs its tree.
    #[test]
    fn streamed_pages_weigh_no_tree() {
        let html = "<p><a href=/x>x</a></p>".repeat(100);
        let page = prepared(&html);
        let text = html.len() as u64;
        let tree = text + 300 * TREE_BYTES_PER_NODE;
        let links = Runner::Builtin(links::PARSER);
        assert_eq!(page.weight(&links, true), text * 3 / 2);
        assert_eq!(page.weight(&links, false), tree);
        assert_eq!(page.weight(&Runner::Builtin(profile::PARSER), true), tree);
    }
}
