//! The reader [`super::links`] uses: the HTML tokenizer's states, as
//! html5ever implements them, for what decides where tags are, with
//! everything else skipped rather than built.
//!
//! - Text: the next `<` is found with `memchr`. Text itself is read only
//!   while it can still change the model ([`Model::text_matters`]: until the
//!   body has shown something), and then only to tell whether it is all
//!   whitespace, character references included (`&#32;` is a space).
//! - Tags: names are read, and of their attributes only those the model
//!   reads of that tag ([`Sink::attrs_read`]); the others are stepped over by the
//!   same states (quoted values may hold `>`). A tag the page ends inside is
//!   dropped, as the tokenizer drops it.
//! - Comments end at the first `-->` or `--!>` (`<!-->` and `<!--->` are
//!   whole comments), bogus comments (`<?`, `<!x`, `</1`) at the first `>`,
//!   CDATA (in foreign content only) at `]]>`; doctypes at the first `>`,
//!   handed to html5ever's tokenizer, since the model reads their flags.
//! - Raw text (`<style>`, `<title>`...) runs to the end tag of the element
//!   that opened it; script data too, but through the `<!--`/`<script>`
//!   escapes that can hide a `</script>`.
//!
//! The tokenizer turns CR and CRLF into LF before anything else: here CR is
//! whitespace wherever whitespace ends something, and attribute values get
//! LF for it. It also turns U+0000 into U+FFFD in names and values.

use std::borrow::Cow;

use memchr::{memchr, memchr3, memmem};

mod raw;

use raw::comment_end;

use super::charref;
use super::{is_html_space, tokenizer, Attr, Sink, StartTag, Switch, ATTRS};

/// Reads `text` once into `model`.
pub(super) fn scan(text: &str, sink: &mut impl Sink) {
    // The tokenizer drops a byte order mark at the start.
    let at = if text.starts_with('\u{FEFF}') { 3 } else { 0 };
    Scanner {
        text,
        b: text.as_bytes(),
        sink,
        values: Values::default(),
    }
    .markup(at);
}

/// A start tag read by the scanner: the values of the attributes the model
/// reads of it.
struct Tag<'s, 'v> {
    name: &'s str,
    self_closing: bool,
    values: &'v Values<'s>,
}

/// A tag's values of the attributes in [`ATTRS`], by index.
type Values<'s> = [Option<Cow<'s, str>>; ATTRS.len()];

impl StartTag for Tag<'_, '_> {
    fn name(&self) -> &str {
        self.name
    }

    fn self_closing(&self) -> bool {
        self.self_closing
    }

    fn attr(&self, attr: Attr) -> Option<&str> {
        self.values[attr as usize].as_deref()
    }
}

struct Scanner<'t, 'm, S> {
    text: &'t str,
    b: &'t [u8],
    sink: &'m mut S,
    /// The values of the tag being read, emptied after each: one array
    /// for the page rather than one set up and dropped per tag.
    values: Values<'t>,
}

/// Whitespace where it ends a name or a value (CR becomes LF first).
fn is_space(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | b'\x0C' | b' ' | b'\r')
}

/// The tokenizer's "data" state and what it leads to, until the end of
/// the text (every `Option` below is `None` at the end of the text).
impl<'t, S: Sink> Scanner<'t, '_, S> {
    fn markup(&mut self, mut at: usize) {
        let b = self.b;
        loop {
            let Some(lt) = memchr(b'<', &b[at..]).map(|p| at + p) else {
                self.text_between(at, b.len());
                return;
            };
            self.text_between(at, lt);
            let next = match b.get(lt + 1) {
                Some(b'!') => self.declaration(lt + 2),
                Some(b'/') => self.end_tag_open(lt + 2),
                Some(c) if c.is_ascii_alphabetic() => self.start_tag(lt + 1),
                // A bogus comment, the `?` its first character.
                Some(b'?') => self.to_gt(lt + 1),
                // Not a tag: the `<` is text, and what follows is read again.
                _ => {
                    self.stray("<");
                    Some(lt + 1)
                }
            };
            match next {
                Some(next) if !self.sink.done() => at = next,
                _ => return,
            }
        }
    }

    /// Text from `from` to `to` (no `<` in it), told to the model if it
    /// still cares.
    fn text_between(&mut self, from: usize, to: usize) {
        if from >= to {
            return;
        }
        if self.sink.wants_chars() {
            let text = self.decoded(from, to, false);
            self.sink.chars(&text);
            if text.chars().any(|c| c != '\0' && !is_html_space(c)) {
                self.sink.text(true);
            } else if text.contains('\0') {
                self.sink.null();
            }
            return;
        }
        if !self.sink.text_matters() {
            return;
        }
        let b = &self.b[..to];
        let (mut at, mut null) = (from, false);
        while at < to {
            match b[at] {
                c if is_space(c) => at += 1,
                0 => {
                    null = true;
                    at += 1;
                }
                b'&' => match charref::decode(b, at + 1, false) {
                    Some(d) if d.chars().iter().all(|&c| super::is_html_space(c)) => at = d.end,
                    _ => return self.sink.text(true),
                },
                _ => return self.sink.text(true),
            }
        }
        if null {
            self.sink.null();
        }
    }

    /// After `<!`, at `at`: a comment, a doctype, CDATA or a bogus comment.
    fn declaration(&mut self, at: usize) -> Option<usize> {
        let b = self.b;
        let rest = &b[at..];
        if rest.starts_with(b"--") {
            return comment_end(b, at + 2);
        }
        if rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b"doctype") {
            let end = self.to_gt(at + 7);
            let markup = &self.text[at - 2..end.unwrap_or(b.len())];
            if let Some((html, quirks, public)) = tokenizer::doctype(markup) {
                self.sink.doctype(html, quirks, public);
            }
            return end;
        }
        if !self.sink.html_content() && rest.starts_with(b"[CDATA[") {
            let from = at + 7;
            let end = memmem::find(&b[from..], b"]]>").map(|p| from + p);
            let data = &b[from..end.unwrap_or(b.len())];
            if data.iter().any(|&c| c != 0 && !is_space(c)) {
                self.sink.text(true);
            } else if data.contains(&0) {
                self.sink.null();
            }
            return end.map(|e| e + 3);
        }
        self.to_gt(at)
    }

    /// Just past the next `>` from `at`: where a bogus comment or a
    /// doctype ends.
    fn to_gt(&self, at: usize) -> Option<usize> {
        memchr(b'>', &self.b[at..]).map(|p| at + p + 1)
    }

    /// After `</`, at `at`.
    fn end_tag_open(&mut self, at: usize) -> Option<usize> {
        match self.b.get(at) {
            Some(c) if c.is_ascii_alphabetic() => {
                let (name_end, name) = self.tag_name(at);
                let (end, _) = self.attributes(name_end, &[])?;
                self.sink.end_tag(&name);
                Some(end)
            }
            // `</>` is nothing.
            Some(b'>') => Some(at + 1),
            Some(_) => self.to_gt(at),
            None => {
                // `</` at the end is text.
                self.stray("</");
                None
            }
        }
    }

    /// A start tag whose name starts at `at`, and the raw text it may open.
    fn start_tag(&mut self, at: usize) -> Option<usize> {
        let (name_end, name) = self.tag_name(at);
        let wanted = self.sink.attrs_read(&name);
        let (end, self_closing) = self.attributes(name_end, wanted)?;
        let switch = self.sink.start_tag(&Tag {
            name: &name,
            self_closing,
            values: &self.values,
        });
        for &a in wanted {
            self.values[a as usize] = None;
        }
        match switch {
            Switch::Markup => Some(end),
            Switch::Rcdata | Switch::Rawtext => self.raw_text(end, at, name_end),
            Switch::Script => self.script(end, at, name_end),
            Switch::Plaintext => None,
        }
    }

    /// The tag name from `at`: where it ends, and the name as the
    /// tokenizer gives it (see [`lowered`]).
    fn tag_name(&self, at: usize) -> (usize, Cow<'t, str>) {
        let b = self.b;
        let (mut end, mut changes) = (at, false);
        while let Some(&c) = b.get(end) {
            if is_space(c) || c == b'/' || c == b'>' {
                break;
            }
            changes |= c.is_ascii_uppercase() || c == 0;
            end += 1;
        }
        let text: &'t str = self.text;
        let raw = &text[at..end];
        (
            end,
            if changes {
                lowered(raw)
            } else {
                Cow::Borrowed(raw)
            },
        )
    }

    /// A tag's attributes from `at` (the "before attribute name" state) to
    /// its end: where the text goes on after the `>`, and whether the tag
    /// ended in `/>`. Of the names in `wanted`, the first value of each
    /// goes into `self.values` (the tokenizer drops later duplicates).
    fn attributes(&mut self, mut at: usize, wanted: &[Attr]) -> Option<(usize, bool)> {
        let b = self.b;
        loop {
            while b.get(at).is_some_and(|&c| is_space(c)) {
                at += 1;
            }
            match *b.get(at)? {
                b'>' => return Some((at + 1, false)),
                b'/' => {
                    at += 1;
                    if *b.get(at)? == b'>' {
                        return Some((at + 1, true));
                    }
                    // Anything else is read again as the start of a name.
                    continue;
                }
                _ => {}
            }
            // An attribute name: its first character is part of it
            // whatever it is (`=` included).
            let name_start = at;
            at += 1;
            while b
                .get(at)
                .is_some_and(|&c| !is_space(c) && !matches!(c, b'/' | b'>' | b'='))
            {
                at += 1;
            }
            let name = &b[name_start..at];
            let slot = wanted
                .iter()
                .map(|&a| a as usize)
                .find(|&i| ATTRS[i].as_bytes().eq_ignore_ascii_case(name))
                .filter(|&i| self.values[i].is_none());
            while b.get(at).is_some_and(|&c| is_space(c)) {
                at += 1;
            }
            if *b.get(at)? != b'=' {
                // No value: the `/`, `>` or next name is read again.
                if let Some(i) = slot {
                    self.values[i] = Some(Cow::Borrowed(""));
                }
                continue;
            }
            at += 1;
            while b.get(at).is_some_and(|&c| is_space(c)) {
                at += 1;
            }
            let (from, to) = match *b.get(at)? {
                q @ (b'"' | b'\'') => {
                    let from = at + 1;
                    let to = from + memchr(q, &b[from..])?;
                    // What follows the quote is read as "before attribute
                    // name" reads it, even with no space between.
                    at = to + 1;
                    (from, to)
                }
                // `a=>`: an empty value; the `>` ends the tag.
                b'>' => (at, at),
                _ => {
                    let from = at;
                    while !is_space(*b.get(at)?) && b[at] != b'>' {
                        at += 1;
                    }
                    (from, at)
                }
            };
            if let Some(i) = slot {
                self.values[i] = Some(self.decoded(from, to, true));
            }
        }
    }

    /// Characters that are text though they look like markup (`<` not
    /// starting a tag).
    fn stray(&mut self, text: &str) {
        if self.sink.wants_chars() {
            self.sink.chars(text);
        }
        self.sink.text(true);
    }

    /// An attribute value (`attribute`) or text as the tokenizer gives it:
    /// references decoded, CR and CRLF as LF, U+0000 as U+FFFD in a value
    /// and kept in text (a copy only when that changes it). It ends at
    /// `to`, where its quote, delimiter or `<` is.
    fn decoded(&self, from: usize, to: usize, attribute: bool) -> Cow<'t, str> {
        let text: &'t str = self.text;
        let b = &self.b[..to];
        let special = |at: usize| memchr3(b'&', b'\r', 0, &b[at..]).map(|p| at + p);
        let Some(first) = special(from) else {
            return Cow::Borrowed(&text[from..to]);
        };
        let mut out = String::with_capacity(to - from);
        let mut at = from;
        let mut next = Some(first);
        while let Some(s) = next {
            out.push_str(&text[at..s]);
            at = s + 1;
            match b[s] {
                b'&' => match charref::decode(b, at, attribute) {
                    Some(d) => {
                        out.extend(d.chars());
                        at = d.end;
                    }
                    None => out.push('&'),
                },
                b'\r' => {
                    out.push('\n');
                    if b.get(at) == Some(&b'\n') {
                        at += 1;
                    }
                }
                _ => out.push(if attribute { '\u{FFFD}' } else { '\0' }),
            }
            next = special(at);
        }
        out.push_str(&text[at..to]);
        Cow::Owned(out)
    }
}

/// A tag name as the tokenizer gives it: ASCII lower case, U+0000 as
/// U+FFFD (a copy only when that changes it).
fn lowered(raw: &str) -> Cow<'_, str> {
    if !raw.bytes().any(|c| c.is_ascii_uppercase() || c == 0) {
        return Cow::Borrowed(raw);
    }
    raw.chars()
        .map(|c| {
            if c == '\0' {
                '\u{FFFD}'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}
