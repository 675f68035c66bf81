//! Parsing without a document tree (issue 14): pages whose parser needs only
//! their links and what they say of themselves (the `links` parser) are read
//! in one pass over html5ever's tokenizer, the same tokenizer the tree
//! builder uses, so attribute values, character references, raw text
//! (`<script>`, `<style>`, `<textarea>`, `<noscript>`...) and comments come
//! out exactly as in the tree. What the tree builder would add is simulated
//! in the little it matters for links: which tokens are raw text, which are
//! foreign content (`<svg>`, `<math>`: CDATA, no raw text) and which
//! `<link>` tags land in the head (for the canonical URL).
//!
//! Why the tokenizer and not lol_html: lol_html hands attribute values over
//! with their character references undecoded (`?a=1&amp;b=2`), so every href
//! would need a second, hand-written decoder that must agree with
//! html5ever's; and it pulls in its own cssparser, selectors and hashbrown
//! versions. The tokenizer is already compiled in (scraper uses it), decodes
//! as the tree path does, and holds only the token being read.
//!
//! Memory: the tokenizer is fed the text in [`CHUNK_BYTES`] slices (it
//! copies what it is fed), and the page's hrefs are kept in one string
//! (at most the text's length) plus 12 bytes per anchor until the end of
//! the page, since a `<base href>` after a link still changes it.
//!
//! Known differences from the tree, on malformed markup only (the
//! differential tests show them): the tree builder clones an `<a>` left
//! open across a block (`<p><a href=x>1</p><p>2`) and a `<table>` moves
//! misplaced content before itself. Both give the same requests (a clone is
//! a duplicate, which is skipped), but a clone of a link that is counted
//! (too long, past the budget, `nofollow` obeyed) is counted once here and
//! once per clone there; and a link moved before its table is admitted in
//! source order here, tree order there.

use std::cell::{Cell, RefCell};

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use rpcsupport::{ParseError, ParseResult, Request};
use url::Url;

use super::meta::{self, Directives};
use super::{admit_links, base_url, Budget};

/// How much text the tokenizer is given at once: it copies each slice, so
/// this bounds that copy whatever the page's size.
const CHUNK_BYTES: usize = 64 * 1024;

/// The `links` parser's streaming path: [`super::links`]'s requests and
/// the page's meta (robots directives, canonical URL), from `text`.
pub fn links(
    request: &Request,
    url: &Url,
    text: &str,
    budget: &Budget,
) -> Result<ParseResult, ParseError> {
    let scan = scan(text, budget.agent());
    let base = base_url(url, scan.base.as_deref(), budget);
    let anchors = scan.anchors.iter().map(|a| {
        let href = &scan.hrefs[a.start as usize..(a.start + a.len) as usize];
        (href, a.nofollow.then_some("nofollow"))
    });
    let requests = admit_links(budget, &base, anchors)
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
    result.page.noindex = scan.directives.noindex;
    result.page.nofollow = scan.directives.nofollow;
    result.page.canonical = scan
        .canonical
        .and_then(|href| meta::canonical_from(&href, &base, url, budget))
        .map(String::from);
    Ok(result)
}

/// One `<a href>`: where its href is in [`Scan::hrefs`], and whether its
/// `rel` says `nofollow`.
struct Anchor {
    start: u32,
    len: u32,
    nofollow: bool,
}

/// What one pass over a page finds.
#[derive(Default)]
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

/// Reads `text` once, for the crawler token `agent`.
fn scan(text: &str, agent: &str) -> Scan {
    let sink = Sink {
        agent,
        scan: RefCell::new(Scan::default()),
        head: Cell::new(Head::Before),
        template_depth: Cell::new(0),
        raw: Cell::new(false),
        foreign: RefCell::new(Vec::new()),
    };
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    let input = BufferQueue::default();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(CHUNK_BYTES);
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        input.push_back(StrTendril::from_slice(&rest[..end]));
        // The sink never asks to stop for a script, so this runs to the
        // end of what it was given.
        let _ = tokenizer.feed(&input);
        rest = &rest[end..];
    }
    tokenizer.end();
    tokenizer.sink.scan.into_inner()
}

/// Where the tree builder would put a `<link>` now, as far as the head is
/// concerned (its insertion modes before the body, folded).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Head {
    /// No head yet: a head-only tag opens it.
    Before,
    /// In the head.
    In,
    /// After `</head>`: head-only tags still go into the head.
    After,
    /// In the body (or past it): nothing goes into the head any more.
    Body,
}

/// Start tags that belong in the head (the "in head" insertion mode's);
/// `noscript` only before `</head>`.
fn head_tag(name: &str) -> bool {
    matches!(
        name,
        "base"
            | "basefont"
            | "bgsound"
            | "link"
            | "meta"
            | "noframes"
            | "script"
            | "style"
            | "template"
            | "title"
    )
}

/// HTML tags that end foreign content (`<svg>`, `<math>`) when they start
/// inside it, as the tree builder's rules for foreign content list them.
fn breaks_out(tag: &Tag) -> bool {
    matches!(
        &*tag.name,
        "b" | "big"
            | "blockquote"
            | "body"
            | "br"
            | "center"
            | "code"
            | "dd"
            | "div"
            | "dl"
            | "dt"
            | "em"
            | "embed"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "head"
            | "hr"
            | "i"
            | "img"
            | "li"
            | "listing"
            | "menu"
            | "meta"
            | "nobr"
            | "ol"
            | "p"
            | "pre"
            | "ruby"
            | "s"
            | "small"
            | "span"
            | "strong"
            | "strike"
            | "sub"
            | "sup"
            | "table"
            | "tt"
            | "u"
            | "ul"
            | "var"
    ) || (&*tag.name == "font"
        && tag
            .attrs
            .iter()
            .any(|a| matches!(&*a.name.local, "color" | "face" | "size")))
}

/// Foreign elements whose content is HTML again (integration points).
fn integration_point(name: &str) -> bool {
    matches!(
        name,
        "foreignobject" | "desc" | "title" | "mi" | "mo" | "mn" | "ms" | "mtext" | "annotation-xml"
    )
}

/// What the tokenizer tells; the state is in cells because the tokenizer
/// hands its sink out by shared reference.
struct Sink<'a> {
    agent: &'a str,
    scan: RefCell<Scan>,
    head: Cell<Head>,
    /// `<template>`s open in the head: all they hold is in the head too.
    template_depth: Cell<u32>,
    /// Inside a raw text element (its text is not the page's).
    raw: Cell<bool>,
    /// Open foreign (`<svg>`, `<math>`) elements, innermost last.
    foreign: RefCell<Vec<String>>,
}

fn attr<'t>(tag: &'t Tag, name: &str) -> Option<&'t str> {
    tag.attrs
        .iter()
        .find(|a| &*a.name.local == name)
        .map(|a| &*a.value)
}

fn is_html_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0C' | '\r' | ' ')
}

impl Sink<'_> {
    /// Whether tokens are now read as HTML: outside foreign content, or
    /// right inside an integration point.
    fn html_content(&self) -> bool {
        self.foreign
            .borrow()
            .last()
            .is_none_or(|top| integration_point(top))
    }

    /// Moves the head state on for a token that is not head content
    /// ("anything else" in the head's insertion modes).
    fn leave_head(&self) {
        if self.template_depth.get() == 0 {
            self.head.set(Head::Body);
        }
    }

    /// Tracks the head for a start tag; whether the tag is in the head.
    fn head_start(&self, name: &str) -> bool {
        if self.template_depth.get() > 0 {
            if name == "template" {
                self.template_depth.set(self.template_depth.get() + 1);
            }
            return true;
        }
        let state = self.head.get();
        let in_head = match (state, name) {
            (Head::Body, _) => false,
            (_, "html") => state != Head::After,
            (Head::Before, "head") => {
                self.head.set(Head::In);
                true
            }
            (Head::In | Head::After, "head") => false,
            (Head::Before | Head::In, "noscript") => {
                self.head.set(Head::In);
                true
            }
            (_, n) if head_tag(n) => {
                if state == Head::Before {
                    self.head.set(Head::In);
                }
                true
            }
            _ => {
                self.head.set(Head::Body);
                false
            }
        };
        if in_head && name == "template" {
            self.template_depth.set(1);
        }
        in_head
    }

    /// Tracks the head for an end tag.
    fn head_end(&self, name: &str) {
        let depth = self.template_depth.get();
        if depth > 0 {
            if name == "template" {
                self.template_depth.set(depth - 1);
            }
            return;
        }
        match (self.head.get(), name) {
            (Head::Before | Head::In, "head") => self.head.set(Head::After),
            (Head::Body, _) => {}
            (_, "body" | "html" | "br") => self.head.set(Head::Body),
            _ => {}
        }
    }

    fn start_tag(&self, tag: &Tag) -> TokenSinkResult<()> {
        let name = &*tag.name;
        let html = {
            let mut foreign = self.foreign.borrow_mut();
            let mut html = foreign.last().is_none_or(|top| integration_point(top));
            // Right inside an integration point every tag is HTML already.
            if !html && breaks_out(tag) {
                foreign.clear();
                html = true;
            }
            if (!html || name == "svg" || name == "math") && !tag.self_closing {
                foreign.push(name.to_owned());
            }
            html && name != "svg" && name != "math"
        };
        let in_head = self.head_start(name);
        let mut scan = self.scan.borrow_mut();
        match name {
            "a" => {
                if let Some(href) = attr(tag, "href") {
                    let start = scan.hrefs.len();
                    // An href is part of the page, so the page's length
                    // (below 4 GiB: bodies are bounded far below) bounds it.
                    scan.hrefs.push_str(href);
                    let nofollow = attr(tag, "rel").is_some_and(meta::is_nofollow);
                    scan.anchors.push(Anchor {
                        start: start as u32,
                        len: href.len() as u32,
                        nofollow,
                    });
                }
            }
            "base" if scan.base.is_none() => {
                scan.base = attr(tag, "href").map(str::to_owned);
            }
            "meta" => {
                if let (Some(n), Some(c)) = (attr(tag, "name"), attr(tag, "content")) {
                    scan.directives.read_meta(n, c, self.agent);
                }
            }
            "link" if in_head && scan.canonical.is_none() => {
                if let (Some(rel), Some(href)) = (attr(tag, "rel"), attr(tag, "href")) {
                    if meta::is_canonical(rel) {
                        scan.canonical = Some(href.to_owned());
                    }
                }
            }
            _ => {}
        }
        if !html {
            return TokenSinkResult::Continue;
        }
        // The tree builder switches the tokenizer for these whatever the
        // self-closing flag says (it means nothing on HTML elements).
        let kind = match name {
            "script" => RawKind::ScriptData,
            "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => RawKind::Rawtext,
            "textarea" | "title" => RawKind::Rcdata,
            "plaintext" => {
                self.raw.set(true);
                return TokenSinkResult::Plaintext;
            }
            _ => return TokenSinkResult::Continue,
        };
        self.raw.set(true);
        TokenSinkResult::RawData(kind)
    }

    fn end_tag(&self, tag: &Tag) {
        // In raw text the only end tag the tokenizer gives is the one
        // that closes it.
        self.raw.set(false);
        let name = &*tag.name;
        {
            let mut foreign = self.foreign.borrow_mut();
            if matches!(name, "p" | "br") && !foreign.is_empty() {
                foreign.clear();
            } else if let Some(i) = foreign
                .iter()
                .rposition(|open| open.eq_ignore_ascii_case(name))
            {
                foreign.truncate(i);
            }
        }
        self.head_end(name);
    }
}

impl TokenSink for Sink<'_> {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        match token {
            Token::TagToken(tag) => match tag.kind {
                TagKind::StartTag => return self.start_tag(&tag),
                TagKind::EndTag => self.end_tag(&tag),
            },
            Token::CharacterTokens(text) => {
                if !self.raw.get()
                    && self.head.get() != Head::Body
                    && !text.chars().all(is_html_space)
                {
                    self.leave_head();
                }
            }
            Token::NullCharacterToken => {
                if !self.raw.get() {
                    self.leave_head();
                }
            }
            Token::CommentToken(_)
            | Token::DoctypeToken(_)
            | Token::EOFToken
            | Token::ParseError(_) => {}
        }
        TokenSinkResult::Continue
    }

    fn adjusted_current_node_present_but_not_in_html_namespace(&self) -> bool {
        !self.html_content()
    }
}

#[cfg(test)]
mod tests;
