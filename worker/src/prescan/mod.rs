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

use std::collections::HashMap;

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

/// The model of the parser's stack of open elements.
#[derive(Default)]
struct Stack {
    names: Vec<String>,
    /// Where each name is open, innermost last: whether an end tag has
    /// anything to close is one lookup, not a walk down the stack.
    at: HashMap<String, Vec<usize>>,
    /// For each [`Boundary`] (in `BOUNDARIES` order), where its elements
    /// are open, innermost last; again so no end tag walks the stack.
    bounds: [Vec<usize>; 5],
    /// Stack length at the `<svg>` or `<math>` we are inside, where `/>`
    /// does close an element.
    foreign_from: Option<usize>,
}

impl Stack {
    fn depth(&self) -> usize {
        self.names.len()
    }

    fn push(&mut self, name: &str) {
        let i = self.names.len();
        for (k, boundary) in BOUNDARIES.iter().enumerate() {
            if boundary.contains(name) {
                self.bounds[k].push(i);
            }
        }
        if self.foreign_from.is_none() && (name == "svg" || name == "math") {
            self.foreign_from = Some(i);
        }
        self.at.entry(name.to_owned()).or_default().push(i);
        self.names.push(name.to_owned());
    }

    fn pop(&mut self) {
        let Some(name) = self.names.pop() else {
            return;
        };
        let i = self.names.len();
        if let Some(at) = self.at.get_mut(&name) {
            at.pop();
        }
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
        self.names
            .last()
            .is_some_and(|n| names.contains(&n.as_str()))
    }

    fn start(&mut self, name: &str) {
        let closes = closes(name);
        while self.top_is(closes) {
            self.pop();
        }
        self.push(name);
    }

    /// Closes up to the innermost open `name`, unless it is not open or an
    /// element of the tag's boundary set is open inside it.
    fn end(&mut self, name: &str) {
        let Some(&at) = self.at.get(name).and_then(|at| at.last()) else {
            return;
        };
        // The enum's order is `bounds`' order.
        let k = Boundary::for_end_tag(name) as usize;
        if self.bounds[k].last().is_some_and(|&s| s > at) {
            return;
        }
        while self.names.len() > at {
            self.pop();
        }
    }
}

/// Where to cut `text` so the parser sees at most `max_nodes` elements and
/// attributes, nested at most `max_depth` deep.
pub fn html_prefix(text: &str, max_nodes: usize, max_depth: usize) -> Prefix {
    let b = text.as_bytes();
    let mut stack = Stack::default();
    let mut nodes = 0usize;
    let mut i = 0;
    let mut name = String::new();
    while let Some(lt) = find(b, i, b'<') {
        let after = lt + 1;
        match b.get(after) {
            Some(b'!') if b[after..].starts_with(b"!--") => {
                i = find_seq(b, after + 3, b"-->").map_or(b.len(), |p| p + 3);
            }
            Some(b'!' | b'?') => i = find(b, after, b'>').map_or(b.len(), |p| p + 1),
            Some(b'/') => {
                let end = read_name(b, after + 1, &mut name);
                if !name.is_empty() {
                    stack.end(&name);
                }
                i = find(b, end, b'>').map_or(b.len(), |p| p + 1);
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let name_end = read_name(b, after, &mut name);
                let (tag_end, attrs, self_closing) = scan_attributes(b, name_end);
                nodes += 1 + attrs;
                if nodes > max_nodes {
                    return Prefix {
                        end: lt,
                        nodes: nodes - 1 - attrs,
                    };
                }
                i = tag_end;
                let closed = VOID.contains(&name.as_str())
                    || (self_closing && stack.foreign_from.is_some())
                    || matches!(name.as_str(), "html" | "head" | "body");
                if !closed {
                    stack.start(&name);
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
                if RAW_TEXT.contains(&name.as_str()) {
                    // Its text runs to the matching end tag, which the next
                    // round reads as the end tag it is.
                    i = find_end_tag(b, i, &name).unwrap_or(b.len());
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

fn find(b: &[u8], from: usize, needle: u8) -> Option<usize> {
    b.get(from..)?
        .iter()
        .position(|&c| c == needle)
        .map(|p| from + p)
}

fn find_seq(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

/// The position of `</name` (any case) at or after `from`.
fn find_end_tag(b: &[u8], from: usize, name: &str) -> Option<usize> {
    let mut i = from;
    while let Some(lt) = find(b, i, b'<') {
        let rest = &b[lt + 1..];
        if rest.first() == Some(&b'/')
            && rest.len() > name.len()
            && rest[1..=name.len()].eq_ignore_ascii_case(name.as_bytes())
        {
            return Some(lt);
        }
        i = lt + 1;
    }
    None
}

/// Reads a tag name at `from` into `name`, lower case; returns where it
/// ends. Names are kept to 32 bytes: none that matters here is longer.
fn read_name(b: &[u8], from: usize, name: &mut String) -> usize {
    name.clear();
    let mut i = from;
    while let Some(&c) = b.get(i) {
        if c.is_ascii_whitespace() || c == b'/' || c == b'>' {
            break;
        }
        if name.len() < 32 && c.is_ascii() {
            name.push(c.to_ascii_lowercase() as char);
        }
        i += 1;
    }
    name.retain(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':');
    i
}

/// Reads a start tag's attributes from `from`: returns where the tag ends
/// (after its `>`, or the end of the text), how many attributes it has, and
/// whether it ends in `/>`.
fn scan_attributes(b: &[u8], from: usize) -> (usize, usize, bool) {
    let mut i = from;
    let mut attrs = 0;
    let mut last = 0u8;
    while let Some(&c) = b.get(i) {
        match c {
            b'>' => return (i + 1, attrs, last == b'/'),
            c if c.is_ascii_whitespace() || c == b'/' => i += 1,
            _ => {
                // An attribute name, then maybe `= value`.
                attrs += 1;
                while let Some(&c) = b.get(i) {
                    if c.is_ascii_whitespace() || matches!(c, b'/' | b'>' | b'=') {
                        break;
                    }
                    i += 1;
                }
                while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
                    i += 1;
                }
                if b.get(i) == Some(&b'=') {
                    i += 1;
                    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
                        i += 1;
                    }
                    match b.get(i) {
                        Some(&q @ (b'"' | b'\'')) => {
                            i = find(b, i + 1, q).map_or(b.len(), |p| p + 1);
                        }
                        _ => {
                            while let Some(&c) = b.get(i) {
                                if c.is_ascii_whitespace() || c == b'>' {
                                    break;
                                }
                                i += 1;
                            }
                        }
                    }
                }
                last = 0;
                continue;
            }
        }
        last = c;
    }
    (b.len(), attrs, false)
}

#[cfg(test)]
mod tests;
