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
//! Memory: the tokenizer is fed the text in 64 KiB slices (it
//! copies what it is fed), and the page's hrefs are kept in one string
//! (at most the text's length) plus 12 bytes per anchor until the end of
//! the page, since a `<base href>` after a link still changes it.
//!
//! The tree path selects over every node scraper made, in the order they
//! were made, detached ones included (the body a `<frameset>` replaced);
//! that order is the source order this path reads in.
//!
//! Known differences from the tree, on malformed markup only (a tag-soup
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
        frameset: Cell::new(false),
        frameset_ok: Cell::new(true),
        quirks: Cell::new(true),
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

/// An open foreign element: whether it is MathML (else SVG), and whether
/// its content is read as HTML again (an integration point).
#[derive(Clone, Copy)]
struct Foreign {
    math: bool,
    integration: bool,
}

/// Whether `tag`, opened in MathML (`math`) or SVG, is an integration
/// point: SVG `foreignObject`, `desc`, `title`; MathML `mi`, `mo`, `mn`,
/// `ms`, `mtext`. Not MathML's `annotation-xml`, even with an HTML
/// encoding: scraper's tree never marks it as one (its tree sink keeps the
/// default answer), and the tree is what this path must match.
fn integration_point(tag: &Tag, math: bool) -> bool {
    let name = &*tag.name;
    if math {
        matches!(name, "mi" | "mo" | "mn" | "ms" | "mtext")
    } else {
        matches!(name, "foreignobject" | "desc" | "title")
    }
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
    /// Open foreign (`<svg>`, `<math>`) elements, innermost last, with
    /// their names. As deep as the page nests, which the worker's prescan
    /// bounds (`max_html_depth`) before any parser runs.
    foreign: RefCell<Vec<(String, Foreign)>>,
    /// A `<frameset>` replaced the body: nothing after it is in the tree.
    frameset: Cell<bool>,
    /// Whether a `<frameset>` may still replace the body (the tree
    /// builder's "frameset-ok" flag): nothing in the body shows yet.
    frameset_ok: Cell<bool>,
    /// No `<!DOCTYPE html>`: a `<table>` leaves `frameset_ok` as it is.
    quirks: Cell<bool>,
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
            .is_none_or(|(_, top)| top.integration)
    }

    /// Moves the head state on for a token that is not head content
    /// ("anything else" in the head's insertion modes).
    fn leave_head(&self) {
        if self.template_depth.get() == 0 {
            self.head.set(Head::Body);
        }
    }

    /// Whether `tag` (in the body) shows something, which ends the chance
    /// of a `<frameset>` replacing the body.
    fn ends_frameset_ok(&self, tag: &Tag) -> bool {
        match &*tag.name {
            "pre" | "listing" | "li" | "dd" | "dt" | "button" | "applet" | "marquee" | "object"
            | "area" | "br" | "embed" | "img" | "image" | "keygen" | "wbr" | "hr" | "textarea"
            | "xmp" | "iframe" | "select" | "body" => true,
            "table" => !self.quirks.get(),
            "input" => !attr(tag, "type").is_some_and(|t| t.eq_ignore_ascii_case("hidden")),
            _ => false,
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
        if self.frameset.get() {
            return TokenSinkResult::Continue;
        }
        let html = {
            let mut foreign = self.foreign.borrow_mut();
            let top = foreign.last().map(|(_, f)| *f);
            let mut html = top.is_none_or(|f| f.integration);
            // Right inside an integration point every tag is HTML already.
            if !html && breaks_out(tag) {
                foreign.clear();
                html = true;
            }
            let opens = match (html, name) {
                (true, "svg") => Some(false),
                (true, "math") => Some(true),
                (true, _) => None,
                // Inside MathML, `<svg>` opens SVG; else the parent's.
                (false, "svg") => Some(false),
                (false, _) => top.map(|f| f.math),
            };
            if let Some(math) = opens.filter(|_| !tag.self_closing) {
                let integration = integration_point(tag, math);
                foreign.push((name.to_owned(), Foreign { math, integration }));
            }
            html && opens.is_none()
        };
        // A frameset before the body shows anything takes the body's
        // place, and the tree builder ignores all that follows. What the
        // body held is detached from the tree but still selected (scraper
        // selects over every node it made), so it counts here too.
        if name == "frameset" && html && self.template_depth.get() == 0 {
            if self.frameset_ok.get() {
                self.frameset.set(true);
            }
            return TokenSinkResult::Continue;
        }
        if html && self.ends_frameset_ok(tag) {
            self.frameset_ok.set(false);
        }
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
        if self.frameset.get() {
            return;
        }
        let name = &*tag.name;
        if name == "br" {
            // `</br>` is read as `<br>`.
            self.frameset_ok.set(false);
        }
        {
            let mut foreign = self.foreign.borrow_mut();
            let in_foreign = foreign.last().is_some_and(|(_, f)| !f.integration);
            let open = foreign
                .iter()
                .rposition(|(open, _)| open.eq_ignore_ascii_case(name));
            match open {
                _ if in_foreign && matches!(name, "p" | "br") => foreign.clear(),
                Some(i) => foreign.truncate(i),
                // Not a foreign element's: the tree builder reads it as
                // HTML, and it may close an element around the foreign
                // content (`<div><svg></div>`); far more often it closes
                // nothing and is ignored (tag soup measured both), as here.
                None => {}
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
                if !self.raw.get() && !self.frameset.get() && !text.chars().all(is_html_space) {
                    self.frameset_ok.set(false);
                    if self.head.get() != Head::Body {
                        self.leave_head();
                    }
                }
            }
            Token::NullCharacterToken => {
                if !self.raw.get() {
                    self.leave_head();
                }
            }
            Token::DoctypeToken(doctype) => {
                let html = doctype
                    .name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case("html"));
                self.quirks
                    .set(!html || doctype.force_quirks || doctype.public_id.is_some());
            }
            Token::CommentToken(_) | Token::EOFToken | Token::ParseError(_) => {}
        }
        TokenSinkResult::Continue
    }

    fn adjusted_current_node_present_but_not_in_html_namespace(&self) -> bool {
        !self.html_content()
    }
}

#[cfg(test)]
mod tests;
