//! The strict tree: pages whose tree is known without building it, for
//! parsers that select by simple selectors (the demo site's: `city_list`,
//! `city`, `profile`).
//!
//! Over the [`Model`] (which still reads links, `<base>`, robots meta and
//! the canonical URL as for `links`), [`Strict`] keeps the stack of open
//! elements as the markup writes it, and hands each element to a
//! [`Collect`]or with its open ancestors. That stack is the tree's only
//! while the tree builder does nothing but nest as written, so the page is
//! held to a subset of HTML where it provably does:
//!
//! - only the tags [`kind`] knows (no forms, no foreign content, no
//!   templates, no framesets);
//! - every end tag closes the element open last (no misnesting, so no
//!   adoption agency and no formatting elements to reconstruct; an element
//!   left open at the end of the page is fine);
//! - none of the starts the tree builder answers by closing something: no
//!   block inside an open `<p>`, no heading inside a heading, no `<a>`
//!   inside an `<a>`, an `<li>` only right inside `<ul>`/`<ol>`;
//! - tables as written in full: `tbody`/`thead`/`tfoot`/`tr` only in a
//!   table, `tr` as the only child of those, cells only in a row, and no
//!   other element or text (whitespace aside) right inside a table part,
//!   which the tree builder would move before the table;
//! - `<html>` first, `<head>` and `<body>` once each, in place, with only
//!   head content in the head and nothing started after `</body>`;
//! - no raw text element (`<script>`, `<title>`) nor U+0000 in the text a
//!   collector reads.
//!
//! A page outside it is `odd`: the caller parses it with the tree instead.
//! Implied elements (`<html>`, `<head>`, `<body>`, `<tbody>`) have no
//! attributes, so leaving them out of the stack changes no match.
//! Creation order is page order here, so "the first match" is too.

use super::{Attr, Model, Sink, StartTag, Switch};
use crate::parse::stream::model::Head;

/// An open element: its name and, as bits, which of the collector's
/// [`Collect::classes`] it has and which [`super::ATTRS`] it carries.
#[derive(Clone, Copy, Debug)]
pub(super) struct Open {
    pub(super) name: &'static str,
    pub(super) classes: u32,
    pub(super) attrs: u16,
}

/// A compound selector a strict page can be matched against: a tag (if
/// any), classes (bits of the collector's [`Collect::classes`]) and
/// attributes that must be there (bits of [`super::ATTRS`]).
#[derive(Clone, Copy)]
pub(super) struct Compound {
    pub(super) tag: Option<&'static str>,
    pub(super) classes: u32,
    pub(super) attrs: u16,
}

impl Compound {
    fn matches(&self, open: &Open) -> bool {
        self.tag.is_none_or(|t| t == open.name)
            && open.classes & self.classes == self.classes
            && open.attrs & self.attrs == self.attrs
    }
}

/// Whether `open`, inside `ancestors` (outermost first), matches the
/// selector `chain`: compounds joined by descendant combinators. Matched
/// right to left, each compound on the nearest ancestor left that fits,
/// which for descendant combinators alone finds a match if there is one.
pub(super) fn matches(chain: &[Compound], open: &Open, ancestors: &[Open]) -> bool {
    let Some((last, rest)) = chain.split_last() else {
        return false;
    };
    if !last.matches(open) {
        return false;
    }
    let mut up = ancestors.iter().rev();
    rest.iter().rev().all(|c| up.by_ref().any(|a| c.matches(a)))
}

/// What a parser reads off a strict page, element by element.
pub(super) trait Collect {
    /// The class names its selectors use: bit `i` of [`Open::classes`]
    /// is the `i`th (at most 32).
    fn classes(&self) -> &'static [&'static str];
    /// An element starts inside `ancestors` (outermost first); `anchor`
    /// is its number in the scan's anchors when it is an `<a href>`.
    fn start(
        &mut self,
        open: &Open,
        ancestors: &[Open],
        tag: &impl StartTag,
        anchor: Option<usize>,
    );
    /// The element that started last and is still open ends (a void one
    /// right after it starts).
    fn end(&mut self, open: &Open);
    /// Whether it reads the text now.
    fn wants_text(&self) -> bool;
    /// Text, decoded, while it [`Collect::wants_text`].
    fn text(&mut self, text: &str);
}

/// How the tree builder treats a tag the strict tree knows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Html,
    Head,
    Body,
    /// Never has content.
    Void,
    /// `<hr>`: void, and closes an open `<p>`.
    Rule,
    /// Text up to its end tag (`<title>`, `<style>`, `<script>`).
    Raw,
    /// Closes an open `<p>` when it starts.
    Block,
    Heading,
    Li,
    /// A formatting element (kept in the tree builder's list of them).
    Formatting,
    /// Nothing special (`<span>`).
    Phrase,
    Table,
    /// `<tbody>`, `<thead>`, `<tfoot>`.
    Section,
    Tr,
    Cell,
}

/// The tags the strict tree knows, by name (as the tokenizer gives it):
/// the name as a `'static` string, for [`Open`], and its [`Kind`].
fn kind(name: &str) -> Option<(&'static str, Kind)> {
    use Kind::*;
    Some(match name {
        "html" => ("html", Html),
        "head" => ("head", Head),
        "body" => ("body", Body),
        "meta" => ("meta", Void),
        "link" => ("link", Void),
        "base" => ("base", Void),
        "img" => ("img", Void),
        "br" => ("br", Void),
        "wbr" => ("wbr", Void),
        "hr" => ("hr", Rule),
        "title" => ("title", Raw),
        "style" => ("style", Raw),
        "script" => ("script", Raw),
        "div" => ("div", Block),
        "p" => ("p", Block),
        "ul" => ("ul", Block),
        "ol" => ("ol", Block),
        "nav" => ("nav", Block),
        "header" => ("header", Block),
        "footer" => ("footer", Block),
        "section" => ("section", Block),
        "article" => ("article", Block),
        "aside" => ("aside", Block),
        "main" => ("main", Block),
        "h1" => ("h1", Heading),
        "h2" => ("h2", Heading),
        "h3" => ("h3", Heading),
        "h4" => ("h4", Heading),
        "h5" => ("h5", Heading),
        "h6" => ("h6", Heading),
        "li" => ("li", Li),
        "a" => ("a", Formatting),
        "b" => ("b", Formatting),
        "i" => ("i", Formatting),
        "em" => ("em", Formatting),
        "strong" => ("strong", Formatting),
        "small" => ("small", Formatting),
        "span" => ("span", Phrase),
        "table" => ("table", Table),
        "tbody" => ("tbody", Section),
        "thead" => ("thead", Section),
        "tfoot" => ("tfoot", Section),
        "tr" => ("tr", Tr),
        "td" => ("td", Cell),
        "th" => ("th", Cell),
        _ => return None,
    })
}

/// The attributes the strict tree reads of a start tag `name`: the
/// model's ([`super::model::attrs_read`]) and those selectors use.
fn attrs_read(name: &str) -> &'static [Attr] {
    use Attr::*;
    match name {
        "a" | "link" => &[Href, Rel, Class, DataId, DataField],
        "base" => &[Href, Class, DataId, DataField],
        "meta" => &[Name, Content, Class, DataId, DataField],
        _ => &[Class, DataId, DataField],
    }
}

/// Table parts whose only content is other table parts.
fn table_part(name: &str) -> bool {
    matches!(name, "table" | "tbody" | "thead" | "tfoot" | "tr")
}

/// The [`Model`] with the strict tree over it, for collector `C`.
pub(super) struct Strict<'a, C> {
    pub(super) model: Model<'a>,
    pub(super) collect: C,
    /// Open elements, outermost first: as deep as the page nests, which
    /// the worker's prescan bounds (`max_html_depth`) before any parser
    /// runs.
    stack: Vec<Open>,
    /// The page left the strict subset: what is collected means nothing.
    pub(super) odd: bool,
    /// A start tag was seen (so `<html>` is no longer first).
    started: bool,
    /// `</body>` or `</html>` was seen.
    closed: bool,
}

impl<'a, C: Collect> Strict<'a, C> {
    pub(super) fn new(agent: &'a str, collect: C) -> Strict<'a, C> {
        Strict {
            model: Model::new(agent),
            collect,
            stack: Vec::new(),
            odd: false,
            started: false,
            closed: false,
        }
    }

    fn open(&self, name: &str) -> bool {
        self.stack.iter().any(|o| o.name == name)
    }

    /// Whether a start tag of `kind` keeps the page strict here.
    fn allowed(&self, name: &str, kind: Kind) -> bool {
        let top = self.stack.last().map(|o| o.name);
        let at_root = top.is_none_or(|t| t == "html") && self.stack.len() <= 1;
        match kind {
            Kind::Html => !self.started,
            Kind::Head => at_root && self.model.head == Head::Before,
            Kind::Body => at_root && self.model.head != Head::Body && !self.closed,
            _ if self.closed => false,
            _ if top == Some("head") => {
                matches!(kind, Kind::Void | Kind::Raw) && super::model::head_tag(name)
            }
            Kind::Section => top == Some("table"),
            Kind::Tr => matches!(top, Some("table" | "tbody" | "thead" | "tfoot")),
            Kind::Cell => top == Some("tr"),
            _ if top.is_some_and(table_part) => false,
            Kind::Raw => !self.collect.wants_text(),
            Kind::Block | Kind::Rule => !self.open("p"),
            Kind::Heading => !self.open("p") && !self.stack.iter().any(|o| heading(o.name)),
            Kind::Li => !self.open("p") && matches!(top, Some("ul" | "ol")),
            Kind::Table => !self.open("p") && !self.stack.iter().any(|o| formatting(o.name)),
            Kind::Formatting => name != "a" || !self.open("a"),
            Kind::Void | Kind::Phrase => true,
        }
    }

    /// `tag`'s classes as bits of the collector's, and which attributes
    /// it carries as bits of [`super::ATTRS`].
    fn bits(&self, tag: &impl StartTag) -> (u32, u16) {
        let known = self.collect.classes();
        let classes = tag.attr(Attr::Class).map_or(0, |class| {
            // As scraper splits it, and case-sensitive: scraper matches
            // classes as in a no-quirks document whatever the page's mode.
            class.split_ascii_whitespace().fold(0, |bits, c| {
                bits | known.iter().position(|&k| k == c).map_or(0, |i| 1 << i)
            })
        });
        let attrs = attrs_read(tag.name())
            .iter()
            .filter(|&&a| tag.attr(a).is_some())
            .fold(0, |bits, &a| bits | 1 << a as u16);
        (classes, attrs)
    }
}

fn heading(name: &str) -> bool {
    matches!(name, "h1" | "h2" | "h3" | "h4" | "h5" | "h6")
}

fn formatting(name: &str) -> bool {
    kind(name).is_some_and(|(_, k)| k == Kind::Formatting)
}

impl<C: Collect> Sink for Strict<'_, C> {
    fn attrs_read(&self, name: &str) -> &'static [Attr] {
        attrs_read(name)
    }

    fn start_tag(&mut self, tag: &impl StartTag) -> Switch {
        let name = tag.name();
        let known = kind(name).filter(|&(_, k)| !self.odd && self.allowed(name, k));
        let Some((name, kind)) = known else {
            self.odd = true;
            return Switch::Markup;
        };
        self.started = true;
        let anchors = self.model.scan.anchors.len();
        let switch = self.model.start_tag(tag);
        let anchor = (self.model.scan.anchors.len() > anchors).then_some(anchors);
        let (classes, attrs) = self.bits(tag);
        let open = Open {
            name,
            classes,
            attrs,
        };
        self.collect.start(&open, &self.stack, tag, anchor);
        if matches!(kind, Kind::Void | Kind::Rule) {
            self.collect.end(&open);
        } else {
            self.stack.push(open);
        }
        switch
    }

    fn end_tag(&mut self, name: &str) {
        self.model.end_tag(name);
        if self.odd {
            return;
        }
        match self.stack.pop() {
            Some(open) if open.name == name => {
                self.collect.end(&open);
                self.closed |= matches!(name, "body" | "html");
            }
            _ => self.odd = true,
        }
    }

    fn text(&mut self, non_space: bool) {
        self.model.text(non_space);
        let top = self.stack.last().map(|o| o.name);
        if non_space && top.is_some_and(|t| t == "head" || table_part(t)) {
            self.odd = true;
        }
    }

    fn null(&mut self) {
        self.model.null();
    }

    fn doctype(&mut self, html: bool, force_quirks: bool, public_id: bool) {
        self.model.doctype(html, force_quirks, public_id);
    }

    fn html_content(&self) -> bool {
        self.model.html_content()
    }

    fn done(&self) -> bool {
        self.odd || self.model.done()
    }

    fn text_matters(&self) -> bool {
        self.model.text_matters()
    }

    fn wants_chars(&self) -> bool {
        let top = self.stack.last().map(|o| o.name);
        !self.odd
            && (self.collect.wants_text() || top.is_some_and(|t| t == "head" || table_part(t)))
    }

    fn chars(&mut self, text: &str) {
        if self.collect.wants_text() {
            if text.contains('\0') {
                self.odd = true;
            } else {
                self.collect.text(text);
            }
        }
    }
}
