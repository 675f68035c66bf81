//! Parsing without a document tree (issue 14): pages whose parser needs only
//! their links, simple selectors and what they say of themselves (`links`,
//! and the demo site's `city_list`, `city`, `profile`) are read in one pass
//! over the text, and no tree is built.
//!
//! # Layout
//! - this file: the `links` entry points ([`links`], and
//!   [`links_tokenizer`], the reference) and what a pass finds ([`Scan`]),
//!   with what it means for a result (base URL, admitted links, page meta).
//! - `model`: the [`Model`], the little of the tree builder that links
//!   depend on; `sink`: the [`Sink`] trait through which a reader feeds it
//!   (or the strict tree over it) tokens.
//! - `scanner`: the reader the streaming parsers use. It jumps with `memchr`
//!   from `<` to `<` and reads only tag names and the attributes the sink
//!   asks for, following the HTML tokenizer's states exactly where they
//!   decide what is a tag (comments, raw text, script escapes, CDATA,
//!   quoted values); `scanner/raw` holds the raw text and script states.
//! - `charref`: character references in attribute values and text,
//!   decoded as html5ever's tokenizer decodes them (its own entity table).
//! - `tokenizer`: the same model fed by html5ever's tokenizer, the one
//!   scraper's tree builder uses: slower (it builds every attribute of every
//!   tag, a character at a time), kept as the scanner's oracle in the tests
//!   and reachable as [`TOKENIZER_LINKS`].
//! - `strict`: the stack of open elements for pages whose tree is their
//!   markup as written (a strict subset of HTML, checked as the page is
//!   read), and simple selectors (tag, classes, attributes, descendant)
//!   matched against it.
//! - `demo`: the demo site's parsers over the strict tree ([`city_list`],
//!   [`city`], [`profile`]); a page outside the subset goes to their tree
//!   path, so the result is the tree's either way.
//!
//! Declarative rules stay on the tree: their selectors and extractions
//! (attributes, text, `:nth-child` and the like) are more than the strict
//! tree matches.
//!
//! The model simulates the tree builder only where links, `<base>`, robots
//! meta and the head's canonical depend on it: which tokens are raw text,
//! which are foreign content (`<svg>`, `<math>`: CDATA, no raw text) and
//! which `<link>` tags land in the head (for the canonical URL).
//!
//! Why not lol_html: it hands attribute values over with their character
//! references undecoded (`?a=1&amp;b=2`), and pulls in its own cssparser,
//! selectors and hashbrown versions; [`charref`] would be needed anyway.
//!
//! Memory: the page's hrefs are kept in one string (at most the text's
//! length) plus 12 bytes per anchor until the end of the page, since a
//! `<base href>` after a link still changes it; the scanner holds one tag's
//! decoded values at a time.
//!
//! The tree path selects over every node scraper made, in the order they
//! were made, detached ones included (the body a `<frameset>` replaced);
//! that order is the source order this path reads in.
//!
//! Known differences of `links` from the tree, on malformed markup only (a tag-soup
//! fuzz test counts them: about 0.6% of 2,000 40-tag soups differ in a
//! request or the page meta, 2.5% more only in a count):
//! - an `<a>` left open across a block (`<p><a href=x>1</p><p>2`) is cloned
//!   by the tree builder; the clone is a duplicate, so requests agree, but
//!   a clone of a counted link (too long, past the budget, `nofollow`
//!   obeyed) is counted once per clone there, once here;
//! - a `<template>` whose content starts with table parts (`<col>`, `<tr>`)
//!   drops the other tags in it there, not here;
//! - an HTML end tag that closes an element around `<svg>`/`<math>` content
//!   (`<div><svg></div>`) ends the foreign content there, not here (ignoring
//!   it is right far more often: most such end tags close nothing);
//! - `<svg>` or `<math>` inside `<select>`.

mod charref;
mod demo;
mod model;
mod scanner;
mod sink;
mod strict;
mod tokenizer;

pub use demo::{city, city_list, profile, streams_whole};

use rpcsupport::{ParseError, ParseResult, Request};
use url::Url;

use super::meta::{self, Directives};
use super::{admit_links, base_url, Budget, Parser};
use model::{is_html_space, Attr, Model, StartTag, Switch, ATTRS};
use sink::Sink;

/// The `links` parser's streaming path: [`super::links`]'s requests and
/// the page's meta (robots directives, canonical URL), from `text`.
pub fn links(
    request: &Request,
    url: &Url,
    text: &str,
    budget: &Budget,
) -> Result<ParseResult, ParseError> {
    let mut model = Model::new(budget.agent());
    scanner::scan(text, &mut model);
    Ok(result(request, url, model.scan, budget))
}

/// [`links`] with html5ever's tokenizer reading the page instead of the
/// scanner: the reference the scanner is tested against.
pub fn links_tokenizer(
    request: &Request,
    url: &Url,
    text: &str,
    budget: &Budget,
) -> Result<ParseResult, ParseError> {
    let scan = tokenizer::scan(text, Model::new(budget.agent()));
    Ok(result(request, url, scan, budget))
}

/// The `links` parser streaming with html5ever's tokenizer
/// ([`links_tokenizer`]): for differential tests and measurements.
pub const TOKENIZER_LINKS: Parser = Parser {
    stream: Some(links_tokenizer),
    ..super::links::PARSER
};

/// What a page's [`Scan`] means for the `links` parser: its requests and
/// meta.
fn result(request: &Request, url: &Url, scan: Scan, budget: &Budget) -> ParseResult {
    let base = scan.base(url, budget);
    let requests = scan
        .links(budget, &base, 0..scan.anchors.len())
        .into_iter()
        .map(|link| Request {
            url: link.into(),
            parser: rpcsupport::ParserSpec::named(super::links::PARSER.name),
            depth: request.depth.saturating_add(1),
            hints: Default::default(),
        })
        .collect();
    let mut result = ParseResult {
        requests,
        ..ParseResult::default()
    };
    scan.read_meta(&mut result, &base, url, budget);
    result
}

/// One `<a href>`: where its href is in [`Scan::hrefs`], and whether its
/// `rel` says `nofollow`.
#[derive(Debug, PartialEq, Eq)]
struct Anchor {
    start: u32,
    len: u32,
    nofollow: bool,
}

/// What one pass over a page finds.
#[derive(Debug, Default, PartialEq, Eq)]
struct Scan {
    /// Every `<a href>`'s href, one after the other.
    hrefs: String,
    anchors: Vec<Anchor>,
    /// The first `<base href>`'s href.
    base: Option<String>,
    /// The first `<link rel=canonical href>` in the head.
    canonical: Option<String>,
    /// The robots `<meta>` tags' directives, from anywhere in the page.
    directives: Directives,
}

impl Scan {
    /// The URL the page's relative links resolve against, as
    /// [`super::Page::base_url`] gives it.
    fn base(&self, url: &Url, budget: &Budget) -> Url {
        base_url(url, self.base.as_deref(), budget)
    }

    /// The anchors numbered `which` (in page order), admitted as
    /// [`super::Page::links`] admits a selector's matches.
    fn links(&self, budget: &Budget, base: &Url, which: impl Iterator<Item = usize>) -> Vec<Url> {
        let anchors = which.map(|i| {
            let a = &self.anchors[i];
            let href = &self.hrefs[a.start as usize..(a.start + a.len) as usize];
            (href, a.nofollow.then_some("nofollow"))
        });
        admit_links(budget, base, anchors)
    }

    /// Puts what the page says of itself (robots meta, canonical URL) into
    /// `result`, as [`meta::read_document`] does on the tree.
    fn read_meta(self, result: &mut ParseResult, base: &Url, url: &Url, budget: &Budget) {
        result.page.noindex = self.directives.noindex;
        result.page.nofollow = self.directives.nofollow;
        result.page.canonical = self
            .canonical
            .and_then(|href| meta::canonical_from(&href, base, url, budget))
            .map(String::from);
    }
}

#[cfg(test)]
mod tests;
