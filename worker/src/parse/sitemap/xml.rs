//! The XML scanner: `<urlset>` and `<sitemapindex>` entries, read a byte
//! at a time, keeping only the `<loc>` or `<lastmod>` being read (see the
//! module's docs for why it is not an XML library).

use std::io::Read;

use super::input::Bytes;
use super::{Entry, EntryKind};

/// Longest `<lastmod>` kept: the longest W3C datetime with a fraction is
/// about 35 bytes.
const MAX_LASTMOD_BYTES: usize = 64;

/// Longest element name looked at; longer ones are skipped unread.
const MAX_NAME_BYTES: usize = 64;

/// Bytes of the element being captured, bounded.
struct Capture {
    field: Field,
    /// Depth of the captured element.
    depth: usize,
    bytes: Vec<u8>,
    max: usize,
    overflow: bool,
}

impl Capture {
    fn push(&mut self, b: u8) {
        // Leading white space (the file's indentation) is not the value's
        // and must not count against its length.
        if self.bytes.is_empty() && b.is_ascii_whitespace() {
            return;
        }
        if self.bytes.len() >= self.max {
            self.overflow = true;
        } else {
            self.bytes.push(b);
        }
    }

    fn push_all(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push(b);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Loc,
    Lastmod,
}

/// The entry element being read: its kind, depth and fields so far.
struct Open {
    depth: usize,
    entry: Entry,
}

/// Scans XML for `<url>`/`<sitemap>` entries and their direct `<loc>` and
/// `<lastmod>` children (an image sitemap's `<image:loc>` is a grandchild
/// and not taken), in any namespace prefix, in any case.
pub(super) fn scan_xml<R: Read>(
    input: &mut Bytes<R>,
    max_url_bytes: usize,
    emit: impl FnMut(Entry),
) {
    let mut scan = Scan {
        depth: 0,
        open: None,
        capture: None,
        max_url_bytes,
        emit,
    };
    while let Some(b) = input.next() {
        if b != b'<' {
            scan.text(input, b);
            continue;
        }
        match input.peek() {
            Some(b'!') => {
                input.pos += 1;
                scan.markup(input);
            }
            Some(b'?') => input.until(b"?>", |_| {}),
            Some(b'/') => {
                input.pos += 1;
                scan.end_tag(input);
            }
            _ => scan.start_tag(input),
        }
    }
    scan.finish();
}

/// Where the scan is: its element depth, the entry it is inside, the
/// field it is capturing.
struct Scan<F> {
    depth: usize,
    open: Option<Open>,
    capture: Option<Capture>,
    max_url_bytes: usize,
    emit: F,
}

impl<F: FnMut(Entry)> Scan<F> {
    /// A byte of text (`b`, not `<`): kept when a field is being captured,
    /// entities decoded.
    fn text<R: Read>(&mut self, input: &mut Bytes<R>, b: u8) {
        if let Some(c) = self.capture.as_mut() {
            if b == b'&' {
                entity(input, c);
            } else {
                c.push(b);
            }
        }
    }

    /// After `<!`: a comment, a CDATA section (kept when a field is being
    /// captured) or a declaration, skipped through its end.
    fn markup<R: Read>(&mut self, input: &mut Bytes<R>) {
        if input.eat(b"--") {
            input.until(b"-->", |_| {});
        } else if input.eat(b"[CDATA[") {
            match self.capture.as_mut() {
                Some(c) => input.until(b"]]>", |b| c.push(b)),
                None => input.until(b"]]>", |_| {}),
            }
        } else {
            skip_declaration(input);
        }
    }

    /// After `</`: the end tag, read through its `>`, closes an element.
    fn end_tag<R: Read>(&mut self, input: &mut Bytes<R>) {
        // Which element ends is told by depth, not name: a mismatched end
        // tag in a broken file still closes one.
        read_name(input);
        input.until(b">", |_| {});
        self.depth = self.depth.saturating_sub(1);
        self.close();
    }

    /// After `<`: a start tag, read through its `>`. Inside an entry, a
    /// direct `<loc>` or `<lastmod>` child starts a capture; outside one,
    /// a `<url>` or `<sitemap>` opens an entry. A self-closing tag holds
    /// nothing and opens nothing.
    fn start_tag<R: Read>(&mut self, input: &mut Bytes<R>) {
        let name = read_name(input);
        if skip_attributes(input) {
            return;
        }
        let local = local_name(&name);
        match &self.open {
            Some(o) if self.capture.is_none() && self.depth == o.depth + 1 => {
                let field = if local.eq_ignore_ascii_case(b"loc") {
                    Some((Field::Loc, self.max_url_bytes + 1))
                } else if local.eq_ignore_ascii_case(b"lastmod") {
                    Some((Field::Lastmod, MAX_LASTMOD_BYTES))
                } else {
                    None
                };
                self.capture = field.map(|(field, max)| Capture {
                    field,
                    depth: self.depth,
                    bytes: Vec::new(),
                    max,
                    overflow: false,
                });
            }
            Some(_) => {}
            None => {
                let kind = if local.eq_ignore_ascii_case(b"url") {
                    Some(EntryKind::Page)
                } else if local.eq_ignore_ascii_case(b"sitemap") {
                    Some(EntryKind::Sitemap)
                } else {
                    None
                };
                self.open = kind.map(|kind| Open {
                    depth: self.depth,
                    entry: Entry {
                        kind,
                        loc: None,
                        too_long: false,
                        lastmod: None,
                    },
                });
            }
        }
        self.depth += 1;
    }

    /// The end of the element at `depth`: a captured field is stored in
    /// its entry, an entry is handed on.
    fn close(&mut self) {
        let depth = self.depth;
        if self.capture.as_ref().is_some_and(|c| c.depth == depth) {
            let c = self.capture.take().expect("checked just above");
            if let Some(o) = self.open.as_mut() {
                let text = String::from_utf8_lossy(&c.bytes).trim().to_owned();
                match c.field {
                    Field::Loc if o.entry.loc.is_none() && !o.entry.too_long => {
                        if c.overflow {
                            o.entry.too_long = true;
                        } else {
                            o.entry.loc = Some(text);
                        }
                    }
                    Field::Lastmod if o.entry.lastmod.is_none() && !c.overflow => {
                        o.entry.lastmod = Some(text);
                    }
                    _ => {}
                }
            }
        }
        if self.open.as_ref().is_some_and(|o| o.depth == depth) {
            (self.emit)(self.open.take().expect("checked just above").entry);
        }
    }

    /// An entry the input ended inside (a cut or malformed tail) is lost:
    /// counted, as an entry without a loc.
    fn finish(mut self) {
        if let Some(o) = self.open.take() {
            (self.emit)(Entry {
                loc: None,
                too_long: false,
                ..o.entry
            });
        }
    }
}

/// An element name, up to the first space, `/` or `>` (at most
/// [`MAX_NAME_BYTES`] kept).
fn read_name<R: Read>(input: &mut Bytes<R>) -> Vec<u8> {
    let mut name = Vec::new();
    while let Some(b) = input.peek() {
        if b.is_ascii_whitespace() || b == b'/' || b == b'>' {
            break;
        }
        input.pos += 1;
        if name.len() < MAX_NAME_BYTES {
            name.push(b);
        }
    }
    name
}

/// The name without its namespace prefix.
fn local_name(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|&b| b == b':') {
        Some(p) => &name[p + 1..],
        None => name,
    }
}

/// Skips a start tag's attributes through its `>`; whether it was
/// self-closing (`/>`).
fn skip_attributes<R: Read>(input: &mut Bytes<R>) -> bool {
    let mut slash = false;
    while let Some(b) = input.next() {
        match b {
            b'"' | b'\'' => {
                input.until(&[b], |_| {});
                slash = false;
            }
            b'>' => return slash,
            b'/' => slash = true,
            _ => slash = b.is_ascii_whitespace() && slash,
        }
    }
    false
}

/// Skips `<!DOCTYPE ...>` and other declarations, internal subset
/// (`[...]`) included.
fn skip_declaration<R: Read>(input: &mut Bytes<R>) {
    let mut brackets = 0usize;
    while let Some(b) = input.next() {
        match b {
            b'[' => brackets += 1,
            b']' => brackets = brackets.saturating_sub(1),
            b'>' if brackets == 0 => return,
            _ => {}
        }
    }
}

/// Decodes the entity after a `&` into `capture`: `&amp;` `&lt;` `&gt;`
/// `&quot;` `&apos;` and `&#N;` / `&#xH;`. Anything else is kept as
/// written.
fn entity<R: Read>(input: &mut Bytes<R>, capture: &mut Capture) {
    let mut name = [0u8; 12];
    let mut len = 0;
    while let Some(b) = input.peek() {
        if b == b';' || b == b'<' || b == b'&' || b.is_ascii_whitespace() || len == name.len() {
            break;
        }
        name[len] = b;
        len += 1;
        input.pos += 1;
    }
    let name = &name[..len];
    if input.peek() != Some(b';') {
        capture.push(b'&');
        capture.push_all(name);
        return;
    }
    input.pos += 1;
    let decoded = match name {
        b"amp" => Some('&'),
        b"lt" => Some('<'),
        b"gt" => Some('>'),
        b"quot" => Some('"'),
        b"apos" => Some('\''),
        [b'#', b'x' | b'X', hex @ ..] => std::str::from_utf8(hex)
            .ok()
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32),
        [b'#', dec @ ..] => std::str::from_utf8(dec)
            .ok()
            .and_then(|d| d.parse::<u32>().ok())
            .and_then(char::from_u32),
        _ => None,
    };
    match decoded.filter(|&c| c != '\0') {
        Some(c) => {
            let mut utf8 = [0u8; 4];
            capture.push_all(c.encode_utf8(&mut utf8).as_bytes());
        }
        None => {
            capture.push(b'&');
            capture.push_all(name);
            capture.push(b';');
        }
    }
}
