//! Between decode and parse: how much of an HTML page the parser may take.
//!
//! The HTML parser (html5ever, under scraper) builds the whole tree with no
//! limit of its own: a 10 MiB page of tiny tags is a tree of hundreds of MB,
//! and its time grows with tags × nesting depth (100,000 nested `<div>`s
//! take over a minute). So before parsing, one linear pass over the text
//! counts elements and attributes and follows the nesting, and the page is
//! cut at the first tag past `max_html_nodes` or `max_html_depth`; the
//! parser closes whatever is open at the cut, as at any end of file.
//!
//! The nesting is a model of the parser's stack of open elements, not the
//! parser itself: void elements never open, `<p>`, `<li>`, `<td>`... close
//! their open siblings, and an end tag closes only what the parser's
//! "any other end tag" rule would (it is ignored when no such element is
//! open, or a special element like `<div>` is open inside it), so markup
//! cannot hide depth with stray end tags. Where the model differs from the
//! parser it errs deep, for odd markup only; real pages nest a few dozen
//! levels.
//!
//! Every page goes through this pass, so it is kept cheap (issue 14: it
//! was as costly as the streaming link parse after it): searches jump with
//! `memchr`, names live on the stack, and each element name is looked up
//! once per page ([`Names`]) with what the model needs of it worked out
//! once per thread, so a tag costs one hash lookup and no allocation, and
//! a page whose names the thread has seen allocates nothing.
//!
//! # Layout
//! - this file: [`html_prefix`], the pass, and the model of the stack of
//!   open elements it follows ([`Names`], `Stack`).
//! - `lex`: the bytes of a tag: searches, names, attributes stepped over.

mod lex;

use std::collections::HashMap;

use lex::{find, find_end_tag, find_seq, read_name, scan_attributes, NameBuf};

/// Elements that never have content.
const VOID: &[&str] = &[
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image", "img",
    "input", "keygen", "link", "meta", "param", "source", "track", "wbr",
];

/// Elements whose content is text up to their end tag (no tags inside).
const RAW_TEXT: &[&str] = &[
    "iframe", "noembed", "noframes", "noscript", "script", "style", "textarea", "title", "xmp",
];

/// The HTML standard's "special" elements (those that can be open, so
/// not the void ones): an ordinary end tag does not close elements opened
/// outside them.
const SPECIAL: &[&str] = &[
    "address",
    "applet",
    "article",
    "aside",
    "blockquote",
    "button",
    "caption",
    "center",
    "colgroup",
    "dd",
    "details",
    "dir",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "frameset",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "li",
    "listing",
    "main",
    "marquee",
    "menu",
    "nav",
    "object",
    "ol",
    "p",
    "pre",
    "search",
    "section",
    "select",
    "summary",
    "table",
    "tbody",
    "td",
    "template",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
];

/// For a start tag, the open elements it closes while they are the current
/// node (`<li>` ends an open `<li>`, `<tr>` an open cell and row...).
fn closes(name: &str) -> &'static [&'static str] {
    match name {
        "p" => &["p"],
        "li" => &["li", "p"],
        "dd" | "dt" => &["dd", "dt", "p"],
        "option" => &["option"],
        "optgroup" => &["option", "optgroup"],
        "td" | "th" => &["td", "th"],
        "tr" => &["td", "th", "tr"],
        "tbody" | "thead" | "tfoot" => &["td", "th", "tr", "tbody", "thead", "tfoot"],
        "rb" | "rt" | "rtc" | "rp" => &["rb", "rt", "rtc", "rp"],
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => &["h1", "h2", "h3", "h4", "h5", "h6", "p"],
        // Formatting elements that cannot nest: a second one ends the first.
        "a" => &["a"],
        "nobr" => &["nobr"],
        "button" => &["button"],
        // Most block elements close an open paragraph.
        "address" | "article" | "aside" | "blockquote" | "center" | "details" | "dir" | "div"
        | "dl" | "fieldset" | "figcaption" | "figure" | "footer" | "header" | "hgroup" | "main"
        | "menu" | "nav" | "ol" | "pre" | "section" | "summary" | "ul" | "table" | "form"
        | "hr" | "listing" | "search" => &["p"],
        _ => &[],
    }
}

/// How much of a page to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    /// Bytes of the text to parse: all of it, or up to the `<` of the
    /// first tag past a limit (always a char boundary).
    pub end: usize,
    /// Elements and attributes before `end`.
    pub nodes: usize,
}

impl Prefix {
    /// Whether the page was cut.
    pub fn is_cut(&self, text: &str) -> bool {
        self.end < text.len()
    }
}

/// The element sets that bound what an end tag may close: an end tag is
/// ignored when an element of its set is open inside the one it names.
#[derive(Clone, Copy)]
enum Boundary {
    /// "Any other end tag": the special elements.
    Special,
    /// The default scope: applet, caption, marquee, object, table, td, th,
    /// template.
    Scope,
    /// List item scope (for `</li>`): the default scope plus ol, ul.
    ListScope,
    /// Button scope (for `</p>`): the default scope plus button.
    ButtonScope,
    /// Table scope (for the table's own parts): table, template.
    TableScope,
}

const BOUNDARIES: [Boundary; 5] = [
    Boundary::Special,
    Boundary::Scope,
    Boundary::ListScope,
    Boundary::ButtonScope,
    Boundary::TableScope,
];

impl Boundary {
    fn contains(self, name: &str) -> bool {
        const SCOPE: &[&str] = &[
            "applet", "caption", "marquee", "object", "table", "td", "th", "template",
        ];
        match self {
            Boundary::Special => SPECIAL.contains(&name),
            Boundary::Scope => SCOPE.contains(&name),
            Boundary::ListScope => SCOPE.contains(&name) || name == "ol" || name == "ul",
            Boundary::ButtonScope => SCOPE.contains(&name) || name == "button",
            Boundary::TableScope => name == "table" || name == "template",
        }
    }

    /// The set that bounds the end tag `name`.
    fn for_end_tag(name: &str) -> Boundary {
        match name {
            "table" | "tbody" | "thead" | "tfoot" | "tr" | "td" | "th" | "caption" | "colgroup" => {
                Boundary::TableScope
            }
            "li" => Boundary::ListScope,
            "p" => Boundary::ButtonScope,
            n if SPECIAL.contains(&n) => Boundary::Scope,
            _ => Boundary::Special,
        }
    }
}

/// What the stack needs to know of an element name, worked out once per
/// name and page ([`Names::id`]), not once per tag.
struct Name {
    name: Box<str>,
    /// The [`BOUNDARIES`] that contain it, one bit each in their order.
    bounds: u8,
    /// The boundary set of its end tag ([`Boundary::for_end_tag`]).
    end_bound: Boundary,
    /// What its start tag closes ([`closes`]).
    closes: &'static [&'static str],
    void: bool,
    raw_text: bool,
    /// `html`, `head`, `body`: never opened here (the parser has one each).
    root: bool,
    foreign: bool,
    /// Where it is open, innermost last: whether an end tag has anything
    /// to close is one lookup, not a walk down the stack.
    open: Vec<usize>,
}

/// Element names, each with an id. What is worked out of a name depends
/// on the name alone, so the table is kept from page to page on each
/// thread ([`STACK`]) while it holds at most [`NAMES_KEPT`] names; within
/// a page it holds as many as the page has distinct names, which
/// `max_html_nodes` bounds like everything else.
struct Names {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Name>,
    /// Ids of recent names by [`recent_slot`], so the common names skip
    /// the (DoS-resistant, so slower) hash: a cache, never the only copy.
    recent: [Option<u32>; RECENT],
}

/// Slots of [`Names::recent`].
const RECENT: usize = 64;

/// Where `name` goes in [`Names::recent`]; names that share a slot only
/// take turns.
fn recent_slot(name: &[u8]) -> usize {
    let (first, last) = (name.first().copied(), name.last().copied());
    (name.len() * 31 + usize::from(first.unwrap_or(0)) * 7 + usize::from(last.unwrap_or(0)))
        % RECENT
}

impl Default for Names {
    fn default() -> Names {
        Names {
            ids: HashMap::new(),
            names: Vec::new(),
            recent: [None; RECENT],
        }
    }
}

impl Names {
    /// The id of `name`, giving it one the first time.
    fn id(&mut self, name: &str) -> u32 {
        let slot = recent_slot(name.as_bytes());
        if let Some(id) = self.recent[slot] {
            if &*self.names[id as usize].name == name {
                return id;
            }
        }
        let id = self.lookup(name);
        self.recent[slot] = Some(id);
        id
    }

    fn lookup(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        let mut bounds = 0;
        for (k, boundary) in BOUNDARIES.iter().enumerate() {
            if boundary.contains(name) {
                bounds |= 1 << k;
            }
        }
        self.names.push(Name {
            name: name.into(),
            bounds,
            end_bound: Boundary::for_end_tag(name),
            closes: closes(name),
            void: VOID.contains(&name),
            raw_text: RAW_TEXT.contains(&name),
            root: matches!(name, "html" | "head" | "body"),
            foreign: matches!(name, "svg" | "math"),
            open: Vec::new(),
        });
        self.ids.insert(name.into(), id);
        id
    }

    /// The id of `name` if it has one (from this page or an earlier one).
    fn get(&self, name: &str) -> Option<u32> {
        match self.recent[recent_slot(name.as_bytes())] {
            Some(id) if &*self.names[id as usize].name == name => Some(id),
            _ => self.ids.get(name).copied(),
        }
    }
}

/// Names a thread's table keeps for the next page; a page with more
/// (real pages use a few dozen) leaves a fresh table behind it.
const NAMES_KEPT: usize = 256;

/// Open elements a thread's stack keeps room for; a page nested deeper
/// (up to `max_html_depth`) leaves fresh vectors behind it.
const DEPTH_KEPT: usize = 1024;

thread_local! {
    /// Each thread's stack, names and vectors kept between pages so a
    /// page costs no allocation once its names have been seen.
    static STACK: std::cell::RefCell<Stack> = std::cell::RefCell::default();
}

/// The model of the parser's stack of open elements.
#[derive(Default)]
struct Stack {
    names: Names,
    /// The open elements' ids, innermost last.
    open: Vec<u32>,
    /// For each [`Boundary`] (in `BOUNDARIES` order), where its elements
    /// are open, innermost last; again so no end tag walks the stack.
    bounds: [Vec<usize>; 5],
    /// Stack length at the `<svg>` or `<math>` we are inside, where `/>`
    /// does close an element.
    foreign_from: Option<usize>,
}

impl Stack {
    /// After a page: a stack that grew past what is kept is replaced, so
    /// a hostile page's names and depth are not held after it. What each
    /// thread keeps is then at most [`NAMES_KEPT`] names and room for
    /// [`DEPTH_KEPT`] open elements in each vector and across all names.
    fn trim(&mut self) {
        let named: usize = self.names.names.iter().map(|n| n.open.capacity()).sum();
        let deep = self.open.capacity() > DEPTH_KEPT
            || self.bounds.iter().any(|b| b.capacity() > DEPTH_KEPT)
            || named > DEPTH_KEPT;
        if deep || self.names.names.len() > NAMES_KEPT {
            *self = Stack::default();
        }
    }

    /// Ready for a new page: nothing open, the names kept.
    fn reset(&mut self) {
        self.open.clear();
        self.bounds.iter_mut().for_each(Vec::clear);
        self.names.names.iter_mut().for_each(|n| n.open.clear());
        self.foreign_from = None;
    }

    fn depth(&self) -> usize {
        self.open.len()
    }

    fn push(&mut self, id: u32) {
        let i = self.open.len();
        let name = &mut self.names.names[id as usize];
        for (k, bound) in self.bounds.iter_mut().enumerate() {
            if name.bounds & (1 << k) != 0 {
                bound.push(i);
            }
        }
        if self.foreign_from.is_none() && name.foreign {
            self.foreign_from = Some(i);
        }
        name.open.push(i);
        self.open.push(id);
    }

    fn pop(&mut self) {
        let Some(id) = self.open.pop() else {
            return;
        };
        let i = self.open.len();
        self.names.names[id as usize].open.pop();
        for bound in &mut self.bounds {
            if bound.last() == Some(&i) {
                bound.pop();
            }
        }
        if self.foreign_from == Some(i) {
            self.foreign_from = None;
        }
    }

    fn top_is(&self, names: &[&str]) -> bool {
        self.open
            .last()
            .is_some_and(|&id| names.contains(&&*self.names.names[id as usize].name))
    }

    fn start(&mut self, id: u32) {
        let closes = self.names.names[id as usize].closes;
        while self.top_is(closes) {
            self.pop();
        }
        self.push(id);
    }

    /// Closes up to the innermost open `name`, unless it is not open or an
    /// element of the tag's boundary set is open inside it.
    fn end(&mut self, name: &str) {
        let Some(id) = self.names.get(name) else {
            return;
        };
        let name = &self.names.names[id as usize];
        let Some(&at) = name.open.last() else {
            return;
        };
        // The enum's order is `bounds`' order.
        let k = name.end_bound as usize;
        if self.bounds[k].last().is_some_and(|&s| s > at) {
            return;
        }
        while self.open.len() > at {
            self.pop();
        }
    }
}

/// Where to cut `text` so the parser sees at most `max_nodes` elements and
/// attributes, nested at most `max_depth` deep.
pub fn html_prefix(text: &str, max_nodes: usize, max_depth: usize) -> Prefix {
    STACK.with(|stack| match stack.try_borrow_mut() {
        Ok(mut stack) => {
            stack.reset();
            let prefix = prefix_with(text, max_nodes, max_depth, &mut stack);
            stack.trim();
            prefix
        }
        // Not reached (the pass calls nothing that comes back here), but
        // a fresh stack gives the same answer.
        Err(_) => prefix_with(text, max_nodes, max_depth, &mut Stack::default()),
    })
}

fn prefix_with(text: &str, max_nodes: usize, max_depth: usize, stack: &mut Stack) -> Prefix {
    let b = text.as_bytes();
    let mut nodes = 0usize;
    let mut i = 0;
    let mut name = NameBuf::default();
    while let Some(lt) = find(b, i, b'<') {
        let after = lt + 1;
        match b.get(after) {
            Some(b'!') if b[after..].starts_with(b"!--") => {
                i = find_seq(b, after + 3, b"-->").map_or(b.len(), |p| p + 3);
            }
            Some(b'!' | b'?') => i = find(b, after, b'>').map_or(b.len(), |p| p + 1),
            Some(b'/') => {
                let end = read_name(b, after + 1, &mut name);
                let name = name.as_str();
                if !name.is_empty() {
                    stack.end(name);
                }
                i = find(b, end, b'>').map_or(b.len(), |p| p + 1);
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let name_end = read_name(b, after, &mut name);
                let name = name.as_str();
                let (tag_end, attrs, self_closing) = scan_attributes(b, name_end);
                nodes += 1 + attrs;
                if nodes > max_nodes {
                    return Prefix {
                        end: lt,
                        nodes: nodes - 1 - attrs,
                    };
                }
                i = tag_end;
                let id = stack.names.id(name);
                let info = &stack.names.names[id as usize];
                let (raw_text, closed) = (
                    info.raw_text,
                    info.void || info.root || (self_closing && stack.foreign_from.is_some()),
                );
                if !closed {
                    stack.start(id);
                    if stack.depth() > max_depth {
                        return Prefix {
                            end: lt,
                            nodes: nodes - 1 - attrs,
                        };
                    }
                }
                if name == "plaintext" {
                    break;
                }
                if raw_text {
                    // Its text runs to the matching end tag, which the next
                    // round reads as the end tag it is.
                    i = find_end_tag(b, i, name).unwrap_or(b.len());
                }
            }
            // A `<` that starts no tag is text.
            _ => i = after,
        }
    }
    Prefix {
        end: text.len(),
        nodes,
    }
}

#[cfg(test)]
mod tests;
