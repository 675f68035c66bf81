//! The [`Model`]: the little of the tree builder that links, `<base>`,
//! robots meta and the head's canonical depend on, fed tokens in page order
//! by either reader ([`super::scanner`], [`super::tokenizer`]).

use super::meta;
use super::Anchor;
use super::Scan;

/// The attributes the model reads, by index in [`ATTRS`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Attr {
    Href,
    Rel,
    Name,
    Content,
    Type,
    Color,
    Face,
    Size,
    Class,
    DataId,
    DataField,
}

/// Their names, as the tokenizer gives them (lower case).
pub(super) const ATTRS: [&str; 11] = [
    "href",
    "rel",
    "name",
    "content",
    "type",
    "color",
    "face",
    "size",
    "class",
    "data-id",
    "data-field",
];

/// The attributes [`Model::start_tag`] reads of a start tag `name`: the
/// scanner decodes these and skips the rest. Kept next to the model so the
/// two change together.
pub(super) fn attrs_read(name: &str) -> &'static [Attr] {
    match name {
        "a" | "link" => &[Attr::Href, Attr::Rel],
        "base" => &[Attr::Href],
        "meta" => &[Attr::Name, Attr::Content],
        "input" => &[Attr::Type],
        // `breaks_out`: a `<font>` with any of these ends foreign content.
        "font" => &[Attr::Color, Attr::Face, Attr::Size],
        _ => &[],
    }
}

/// A start tag as the model reads it: its name in lower case (as the
/// tokenizer gives it), its self-closing flag and the value of the first
/// attribute of a name (later duplicates are dropped, as the tokenizer
/// drops them).
pub(super) trait StartTag {
    fn name(&self) -> &str;
    fn self_closing(&self) -> bool;
    /// Only called for the attributes [`attrs_read`] lists for the tag.
    fn attr(&self, attr: Attr) -> Option<&str>;
}

/// What the reader must do after a start tag: the tree builder switches
/// the tokenizer into a raw text state for some elements.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Switch {
    /// Go on reading markup.
    Markup,
    /// Text up to the matching end tag, character references decoded
    /// (`<title>`, `<textarea>`); to the model, the same as `Rawtext`.
    Rcdata,
    /// Text up to the matching end tag (`<style>`, `<noscript>`...).
    Rawtext,
    /// Script data, with its `<!--` escapes (`<script>`).
    Script,
    /// Everything to the end of the page is text (`<plaintext>`).
    Plaintext,
}

/// Where the tree builder would put a `<link>` now, as far as the head is
/// concerned (its insertion modes before the body, folded).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Head {
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
pub(super) fn head_tag(name: &str) -> bool {
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
fn breaks_out(tag: &impl StartTag) -> bool {
    matches!(
        tag.name(),
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
    ) || (tag.name() == "font"
        && [Attr::Color, Attr::Face, Attr::Size]
            .into_iter()
            .any(|a| tag.attr(a).is_some()))
}

/// An open foreign element: whether it is MathML (else SVG), and whether
/// its content is read as HTML again (an integration point).
#[derive(Clone, Copy)]
struct Foreign {
    math: bool,
    integration: bool,
}

/// Whether `name`, opened in MathML (`math`) or SVG, is an integration
/// point: SVG `foreignObject`, `desc`, `title`; MathML `mi`, `mo`, `mn`,
/// `ms`, `mtext`. Not MathML's `annotation-xml`, even with an HTML
/// encoding: scraper's tree never marks it as one (its tree sink keeps the
/// default answer), and the tree is what this path must match.
fn integration_point(name: &str, math: bool) -> bool {
    if math {
        matches!(name, "mi" | "mo" | "mn" | "ms" | "mtext")
    } else {
        matches!(name, "foreignobject" | "desc" | "title")
    }
}

pub(super) fn is_html_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0C' | '\r' | ' ')
}

/// The tree builder, as far as links depend on it, fed the tokenizer's
/// tokens in page order; collects the [`Scan`].
pub(super) struct Model<'a> {
    agent: &'a str,
    pub(super) scan: Scan,
    pub(super) head: Head,
    /// `<template>`s open in the head: all they hold is in the head too.
    template_depth: u32,
    /// Inside a raw text element (its text is not the page's).
    raw: bool,
    /// Open foreign (`<svg>`, `<math>`) elements, innermost last, with
    /// their names. As deep as the page nests, which the worker's prescan
    /// bounds (`max_html_depth`) before any parser runs.
    foreign: Vec<(String, Foreign)>,
    /// A `<frameset>` replaced the body: nothing after it is in the tree.
    frameset: bool,
    /// Whether a `<frameset>` may still replace the body (the tree
    /// builder's "frameset-ok" flag): nothing in the body shows yet.
    frameset_ok: bool,
    /// No `<!DOCTYPE html>`: a `<table>` leaves `frameset_ok` as it is.
    quirks: bool,
}

impl<'a> Model<'a> {
    pub(super) fn new(agent: &'a str) -> Model<'a> {
        Model {
            agent,
            scan: Scan::default(),
            head: Head::Before,
            template_depth: 0,
            raw: false,
            foreign: Vec::new(),
            frameset: false,
            frameset_ok: true,
            quirks: true,
        }
    }

    /// Whether tokens are now read as HTML: outside foreign content, or
    /// right inside an integration point. The tokenizer asks (as "is the
    /// adjusted current node not in the HTML namespace") at `<![CDATA[`.
    pub(super) fn html_content(&self) -> bool {
        self.foreign.last().is_none_or(|(_, top)| top.integration)
    }

    /// Whether nothing the page still holds can change the scan: after a
    /// `<frameset>` took the body's place, every token is ignored.
    pub(super) fn done(&self) -> bool {
        self.frameset
    }

    /// Whether the page's text can still change anything: text shows in
    /// the body (ending `frameset_ok`) and ends the head; once both have
    /// happened, a reader may skip text unread.
    pub(super) fn text_matters(&self) -> bool {
        !self.frameset && (self.frameset_ok || self.head != Head::Body)
    }

    /// Moves the head state on for a token that is not head content
    /// ("anything else" in the head's insertion modes).
    fn leave_head(&mut self) {
        if self.template_depth == 0 {
            self.head = Head::Body;
        }
    }

    /// Whether `tag` (in the body) shows something, which ends the chance
    /// of a `<frameset>` replacing the body.
    fn ends_frameset_ok(&self, tag: &impl StartTag) -> bool {
        match tag.name() {
            "pre" | "listing" | "li" | "dd" | "dt" | "button" | "applet" | "marquee" | "object"
            | "area" | "br" | "embed" | "img" | "image" | "keygen" | "wbr" | "hr" | "textarea"
            | "xmp" | "iframe" | "select" | "body" => true,
            "table" => !self.quirks,
            "input" => !tag
                .attr(Attr::Type)
                .is_some_and(|t| t.eq_ignore_ascii_case("hidden")),
            _ => false,
        }
    }

    /// Tracks the head for a start tag; whether the tag is in the head.
    fn head_start(&mut self, name: &str) -> bool {
        if self.template_depth > 0 {
            if name == "template" {
                self.template_depth += 1;
            }
            return true;
        }
        let state = self.head;
        let in_head = match (state, name) {
            (Head::Body, _) => false,
            (_, "html") => state != Head::After,
            (Head::Before, "head") => {
                self.head = Head::In;
                true
            }
            (Head::In | Head::After, "head") => false,
            (Head::Before | Head::In, "noscript") => {
                self.head = Head::In;
                true
            }
            (_, n) if head_tag(n) => {
                if state == Head::Before {
                    self.head = Head::In;
                }
                true
            }
            _ => {
                self.head = Head::Body;
                false
            }
        };
        if in_head && name == "template" {
            self.template_depth = 1;
        }
        in_head
    }

    /// Tracks the head for an end tag.
    fn head_end(&mut self, name: &str) {
        if self.template_depth > 0 {
            if name == "template" {
                self.template_depth -= 1;
            }
            return;
        }
        match (self.head, name) {
            (Head::Before | Head::In, "head") => self.head = Head::After,
            (Head::Body, _) => {}
            (_, "body" | "html" | "br") => self.head = Head::Body,
            _ => {}
        }
    }

    pub(super) fn start_tag(&mut self, tag: &impl StartTag) -> Switch {
        let name = tag.name();
        if self.frameset {
            return Switch::Markup;
        }
        let html = {
            let top = self.foreign.last().map(|(_, f)| *f);
            let mut html = top.is_none_or(|f| f.integration);
            // Right inside an integration point every tag is HTML already.
            if !html && breaks_out(tag) {
                self.foreign.clear();
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
            if let Some(math) = opens.filter(|_| !tag.self_closing()) {
                let integration = integration_point(name, math);
                self.foreign
                    .push((name.to_owned(), Foreign { math, integration }));
            }
            html && opens.is_none()
        };
        // A frameset before the body shows anything takes the body's
        // place, and the tree builder ignores all that follows. What the
        // body held is detached from the tree but still selected (scraper
        // selects over every node it made), so it counts here too.
        if name == "frameset" && html && self.template_depth == 0 {
            if self.frameset_ok {
                self.frameset = true;
            }
            return Switch::Markup;
        }
        if html && self.ends_frameset_ok(tag) {
            self.frameset_ok = false;
        }
        let in_head = self.head_start(name);
        let scan = &mut self.scan;
        match name {
            "a" => {
                if let Some(href) = tag.attr(Attr::Href) {
                    let start = scan.hrefs.len();
                    // An href is part of the page, so the page's length
                    // (below 4 GiB: bodies are bounded far below) bounds it.
                    scan.hrefs.push_str(href);
                    let nofollow = tag.attr(Attr::Rel).is_some_and(meta::is_nofollow);
                    scan.anchors.push(Anchor {
                        start: start as u32,
                        len: href.len() as u32,
                        nofollow,
                    });
                }
            }
            "base" if scan.base.is_none() => {
                scan.base = tag.attr(Attr::Href).map(str::to_owned);
            }
            "meta" => {
                if let (Some(n), Some(c)) = (tag.attr(Attr::Name), tag.attr(Attr::Content)) {
                    scan.directives.read_meta(n, c, self.agent);
                }
            }
            "link" if in_head && scan.canonical.is_none() => {
                if let (Some(rel), Some(href)) = (tag.attr(Attr::Rel), tag.attr(Attr::Href)) {
                    if meta::is_canonical(rel) {
                        scan.canonical = Some(href.to_owned());
                    }
                }
            }
            _ => {}
        }
        if !html {
            return Switch::Markup;
        }
        // The tree builder switches the tokenizer for these whatever the
        // self-closing flag says (it means nothing on HTML elements).
        let switch = match name {
            "script" => Switch::Script,
            "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => Switch::Rawtext,
            "textarea" | "title" => Switch::Rcdata,
            "plaintext" => Switch::Plaintext,
            _ => return Switch::Markup,
        };
        self.raw = true;
        switch
    }

    pub(super) fn end_tag(&mut self, name: &str) {
        // In raw text the only end tag the tokenizer gives is the one
        // that closes it.
        self.raw = false;
        if self.frameset {
            return;
        }
        if name == "br" {
            // `</br>` is read as `<br>`.
            self.frameset_ok = false;
        }
        let in_foreign = self.foreign.last().is_some_and(|(_, f)| !f.integration);
        let open = self
            .foreign
            .iter()
            .rposition(|(open, _)| open.eq_ignore_ascii_case(name));
        match open {
            _ if in_foreign && matches!(name, "p" | "br") => self.foreign.clear(),
            Some(i) => self.foreign.truncate(i),
            // Not a foreign element's: the tree builder reads it as
            // HTML, and it may close an element around the foreign
            // content (`<div><svg></div>`); far more often it closes
            // nothing and is ignored (tag soup measured both), as here.
            None => {}
        }
        self.head_end(name);
    }

    /// Character tokens (`non_space`: not all of them HTML whitespace).
    pub(super) fn text(&mut self, non_space: bool) {
        if !self.raw && !self.frameset && non_space {
            self.frameset_ok = false;
            if self.head != Head::Body {
                self.leave_head();
            }
        }
    }

    /// A U+0000 character token (the tokenizer gives those apart).
    pub(super) fn null(&mut self) {
        if !self.raw {
            self.leave_head();
        }
    }

    /// A doctype token: whether its name is `html`, whether it forces
    /// quirks, and whether it has a public identifier.
    pub(super) fn doctype(&mut self, html: bool, force_quirks: bool, public_id: bool) {
        self.quirks = !html || force_quirks || public_id;
    }
}
