//! `sitemap` ([`rpcsupport::SITEMAP_PARSER`]): reads a sitemap and returns
//! the URLs it lists as requests, for the parser named in its `parser`
//! argument (see [`ParserSpec::sitemap`](rpcsupport::ParserSpec::sitemap)).
//!
//! Three formats, told apart by the bytes, not the Content-Type (servers
//! get it wrong both ways):
//!
//! - gzip, when the body starts with the gzip magic bytes (whatever the
//!   type or the `.gz` path says: a body that lacks them was already
//!   inflated by the HTTP client, as `Content-Encoding: gzip` asks), then
//!   one of the two below;
//! - XML, when the first byte past white space and a BOM is `<`: a
//!   `<urlset>` (each `<url><loc>` a page, its `<lastmod>` the request's
//!   [`FetchHints::lastmod`]) or a `<sitemapindex>` (each `<sitemap><loc>`
//!   another sitemap, with this same spec);
//! - plain text otherwise: one URL per line.
//!
//! Everything is read streaming, inflated bytes included, and nothing
//! beyond `max_sitemap_bytes` (uncompressed) is inflated; the XML scanner
//! keeps only the `<loc>` or `<lastmod>` it is inside (at most
//! `max_url_bytes`), so a sitemap costs its download plus its requests,
//! whatever it holds. Past `max_sitemap_urls` URLs, and for locs that are
//! not absolute http(s) URLs, entries are counted in
//! [`PageMeta::sitemap_dropped`](rpcsupport::PageMeta::sitemap_dropped); a
//! sitemap cut at `max_sitemap_bytes` (or a broken gzip stream) is parsed
//! up to the cut and counted as `page_truncated`.
//!
//! The XML is scanned by hand rather than with an XML library: only two
//! elements matter, and a hand scanner can skip everything else without
//! buffering it (an XML reader buffers each text node whole, and a bomb is
//! one 50 MiB text node). It decodes the predefined and numeric entities,
//! reads CDATA, skips comments, processing instructions and the doctype
//! (its entities are never expanded).

use std::collections::BTreeMap;
use std::io::Read;

use flate2::read::MultiGzDecoder;
use rpcsupport::{FetchHints, ParseError, ParseResult, ParserSpec, Request};
use url::Url;

use super::{is_http, Content, Page, Parser};

/// The gzip magic bytes: a sitemap body that starts with them is inflated
/// whatever its Content-Type says.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Registry entry; reads any content type, as bytes.
pub const PARSER: Parser = Parser {
    name: rpcsupport::SITEMAP_PARSER,
    content: Content::Sitemap,
    check_args,
    parse,
};

/// Longest `<lastmod>` kept: the longest W3C datetime with a fraction is
/// about 35 bytes.
const MAX_LASTMOD_BYTES: usize = 64;

/// Longest element name looked at; longer ones are skipped unread.
const MAX_NAME_BYTES: usize = 64;

/// The pages' parser is required; every other argument is one of its own
/// (`arg.K`).
fn check_args(args: &BTreeMap<String, String>) -> Result<(), String> {
    match args.get("parser") {
        Some(p) if !p.trim().is_empty() => {}
        _ => return Err("needs a `parser` argument: the parser of the pages it lists".into()),
    }
    match args
        .keys()
        .find(|k| *k != "parser" && !k.starts_with("arg."))
    {
        Some(k) => Err(format!(
            "unknown argument {k:?} (takes `parser` and `arg.NAME`)"
        )),
        None => Ok(()),
    }
}

fn parse(page: &Page<'_>) -> Result<ParseResult, ParseError> {
    let pages = page
        .request
        .parser
        .sitemap_pages()
        .ok_or_else(|| page.error("not a sitemap spec"))?;
    let mut out = Collector {
        page,
        pages,
        kept: 0,
        dropped: 0,
        requests: Vec::new(),
    };
    // The fetch cut the body at max_sitemap_bytes (the worker counted it).
    let fetch_cut = page.budget.counts().page_truncated > 0;
    let cut = read(
        page.body,
        fetch_cut,
        page.budget.limits().max_sitemap_bytes,
        page.budget.limits().max_url_bytes,
        |entry| out.add(entry),
    );
    if cut {
        page.budget.count(|c| c.page_truncated = 1);
    }
    let mut result = ParseResult {
        requests: out.requests,
        ..ParseResult::default()
    };
    result.page.sitemap_dropped = out.dropped;
    Ok(result)
}

/// Reads the sitemap in `body` (gzip or not, XML or text; `cut` if it is
/// only the start of the file), at most `max_bytes` of it uncompressed,
/// handing each entry to `emit`. Returns whether it was cut: by the caller,
/// past `max_bytes`, or a broken gzip stream.
pub fn read(
    body: &[u8],
    cut: bool,
    max_bytes: u64,
    max_url_bytes: usize,
    emit: impl FnMut(Entry),
) -> bool {
    let source: Box<dyn Read + '_> = if body.starts_with(&GZIP_MAGIC) {
        Box::new(MultiGzDecoder::new(body))
    } else {
        Box::new(body)
    };
    let mut input = Bytes::new(Capped::new(source, max_bytes));
    input.source.cut = cut;
    let xml = input.sniff_xml();
    if xml {
        scan_xml(&mut input, max_url_bytes, emit);
    } else {
        scan_text(&mut input, max_url_bytes, emit);
    }
    input.broken || input.source.cut
}

/// What an entry points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A page (`<url>`, or a line of a text sitemap).
    Page,
    /// Another sitemap (`<sitemap>` of a sitemap index).
    Sitemap,
}

/// One `<url>` or `<sitemap>` element, or one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What it points to.
    pub kind: EntryKind,
    /// Its `<loc>`, entity-decoded and trimmed; `None` when missing or
    /// longer than `max_url_bytes`.
    pub loc: Option<String>,
    /// Whether the loc was left out for being too long.
    pub too_long: bool,
    /// Its `<lastmod>`, as written.
    pub lastmod: Option<String>,
}

/// Turns entries into requests, within the page's limits.
struct Collector<'a, 'p> {
    page: &'a Page<'p>,
    pages: ParserSpec,
    /// Entries turned into requests (or dropped only for the reply size).
    kept: usize,
    /// Entries past `max_sitemap_urls`, or without a usable loc.
    dropped: u64,
    requests: Vec<Request>,
}

impl Collector<'_, '_> {
    fn add(&mut self, entry: Entry) {
        let budget = self.page.budget;
        if entry.too_long {
            budget.count(|c| c.urls_too_long += 1);
            return;
        }
        if self.kept >= budget.limits().max_sitemap_urls {
            self.dropped += 1;
            return;
        }
        // Sitemaps list absolute URLs only: a relative loc is not resolved.
        let Some(mut url) = entry
            .loc
            .as_deref()
            .and_then(|loc| Url::parse(loc).ok())
            .filter(is_http)
        else {
            self.dropped += 1;
            return;
        };
        url.set_fragment(None);
        if !budget.url_fits(url.as_str().len()) {
            return;
        }
        self.kept += 1;
        // An index's sitemaps are one level deeper too, so a chain of
        // indexes (which the protocol forbids) ends at the crawl's depth
        // limit.
        let depth = self.page.request.depth.saturating_add(1);
        let lastmod = entry.lastmod.as_deref().and_then(w3c_datetime);
        let request = match entry.kind {
            EntryKind::Page => Request {
                url: url.into(),
                parser: self.pages.clone(),
                depth,
                hints: FetchHints {
                    lastmod,
                    ..FetchHints::default()
                },
            },
            EntryKind::Sitemap => Request {
                url: url.into(),
                parser: self.page.request.parser.clone(),
                depth,
                hints: FetchHints {
                    lastmod,
                    ..FetchHints::default()
                },
            },
        };
        if budget.admit_request(&request) {
            self.requests.push(request);
        }
    }
}

/// A reader that gives at most `left` bytes and then notes whether there
/// was more (`cut`), so inflating stops at the limit (one byte past it, to
/// tell).
struct Capped<R> {
    inner: R,
    left: u64,
    cut: bool,
}

impl<R: Read> Capped<R> {
    fn new(inner: R, limit: u64) -> Self {
        Capped {
            inner,
            left: limit,
            cut: false,
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            if !self.cut {
                let mut probe = [0u8; 1];
                self.cut = self.inner.read(&mut probe)? > 0;
            }
            return Ok(0);
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// A byte at a time from a reader, through a fixed buffer. A read error
/// (a corrupt or cut gzip stream) ends the input and is noted.
struct Bytes<R> {
    source: R,
    buf: Box<[u8; 8192]>,
    pos: usize,
    len: usize,
    broken: bool,
}

impl<R: Read> Bytes<R> {
    fn new(source: R) -> Self {
        Bytes {
            source,
            buf: Box::new([0; 8192]),
            pos: 0,
            len: 0,
            broken: false,
        }
    }

    fn peek(&mut self) -> Option<u8> {
        if self.pos == self.len {
            if self.broken {
                return None;
            }
            loop {
                match self.source.read(&mut self.buf[..]) {
                    Ok(n) => {
                        self.pos = 0;
                        self.len = n;
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        self.broken = true;
                        return None;
                    }
                }
            }
            if self.len == 0 {
                return None;
            }
        }
        Some(self.buf[self.pos])
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    /// Consumes `word` if the input goes on with it; otherwise consumes
    /// the bytes that matched (harmless where it is used: inside `<!`).
    fn eat(&mut self, word: &[u8]) -> bool {
        for &w in word {
            if self.peek() != Some(w) {
                return false;
            }
            self.pos += 1;
        }
        true
    }

    /// Skips a BOM and white space; whether what follows looks like XML.
    fn sniff_xml(&mut self) -> bool {
        if self.peek() == Some(0xEF) {
            self.eat(&[0xEF, 0xBB, 0xBF]);
        }
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
        self.peek() == Some(b'<')
    }

    /// Skips past the next `end` (2 or 3 bytes), feeding the bytes before
    /// it to `keep`.
    fn until(&mut self, end: &[u8], mut keep: impl FnMut(u8)) {
        let mut window: Vec<u8> = Vec::with_capacity(end.len());
        while let Some(b) = self.next() {
            if window.len() == end.len() {
                keep(window.remove(0));
            }
            window.push(b);
            if window == end {
                return;
            }
        }
    }
}

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
fn scan_xml<R: Read>(input: &mut Bytes<R>, max_url_bytes: usize, mut emit: impl FnMut(Entry)) {
    let mut depth = 0usize;
    let mut open: Option<Open> = None;
    let mut capture: Option<Capture> = None;
    while let Some(b) = input.next() {
        if b != b'<' {
            if let Some(c) = capture.as_mut() {
                if b == b'&' {
                    entity(input, c);
                } else {
                    c.push(b);
                }
            }
            continue;
        }
        match input.peek() {
            Some(b'!') => {
                input.pos += 1;
                if input.eat(b"--") {
                    input.until(b"-->", |_| {});
                } else if input.eat(b"[CDATA[") {
                    match capture.as_mut() {
                        Some(c) => input.until(b"]]>", |b| c.push(b)),
                        None => input.until(b"]]>", |_| {}),
                    }
                } else {
                    skip_declaration(input);
                }
            }
            Some(b'?') => input.until(b"?>", |_| {}),
            Some(b'/') => {
                input.pos += 1;
                // Which element ends is told by depth, not name: a
                // mismatched end tag in a broken file still closes one.
                read_name(input);
                input.until(b">", |_| {});
                depth = depth.saturating_sub(1);
                end_element(depth, &mut open, &mut capture, &mut emit);
            }
            _ => {
                let name = read_name(input);
                let self_closing = skip_attributes(input);
                let local = local_name(&name);
                if let Some(o) = open.as_mut() {
                    let field = if local.eq_ignore_ascii_case(b"loc") {
                        Some((Field::Loc, max_url_bytes + 1))
                    } else if local.eq_ignore_ascii_case(b"lastmod") {
                        Some((Field::Lastmod, MAX_LASTMOD_BYTES))
                    } else {
                        None
                    };
                    if let Some((field, max)) = field.filter(|_| depth == o.depth + 1) {
                        if capture.is_none() && !self_closing {
                            capture = Some(Capture {
                                field,
                                depth,
                                bytes: Vec::new(),
                                max,
                                overflow: false,
                            });
                        }
                    }
                } else {
                    let kind = if local.eq_ignore_ascii_case(b"url") {
                        Some(EntryKind::Page)
                    } else if local.eq_ignore_ascii_case(b"sitemap") {
                        Some(EntryKind::Sitemap)
                    } else {
                        None
                    };
                    if let Some(kind) = kind.filter(|_| !self_closing) {
                        open = Some(Open {
                            depth,
                            entry: Entry {
                                kind,
                                loc: None,
                                too_long: false,
                                lastmod: None,
                            },
                        });
                    }
                }
                if !self_closing {
                    depth += 1;
                }
            }
        }
    }
    // An entry the input ended inside (a cut or malformed tail) is lost:
    // counted, as an entry without a loc.
    if let Some(o) = open {
        emit(Entry {
            loc: None,
            too_long: false,
            ..o.entry
        });
    }
}

/// Handles the end of an element at `depth`: a captured field is stored in
/// its entry, an entry is handed on.
fn end_element(
    depth: usize,
    open: &mut Option<Open>,
    capture: &mut Option<Capture>,
    emit: &mut impl FnMut(Entry),
) {
    if capture.as_ref().is_some_and(|c| c.depth == depth) {
        let c = capture.take().expect("checked just above");
        if let Some(o) = open.as_mut() {
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
    if open.as_ref().is_some_and(|o| o.depth == depth) {
        emit(open.take().expect("checked just above").entry);
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

/// A text sitemap: each non-blank line a page URL (lines over
/// `max_url_bytes` are not kept whole). A last line without its newline,
/// when the input was cut, is left out.
fn scan_text<R: Read>(
    input: &mut Bytes<Capped<R>>,
    max_url_bytes: usize,
    mut emit: impl FnMut(Entry),
) {
    fn flush(line: &mut Vec<u8>, overflow: &mut bool, emit: &mut impl FnMut(Entry)) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim();
        if *overflow || !text.is_empty() {
            emit(Entry {
                kind: EntryKind::Page,
                loc: (!*overflow).then(|| text.to_owned()),
                too_long: *overflow,
                lastmod: None,
            });
        }
        line.clear();
        *overflow = false;
    }
    let mut line = Vec::new();
    let mut overflow = false;
    while let Some(b) = input.next() {
        if b == b'\n' {
            flush(&mut line, &mut overflow, &mut emit);
        } else if line.len() > max_url_bytes {
            overflow = true;
        } else {
            line.push(b);
        }
    }
    if !input.broken && !input.source.cut {
        flush(&mut line, &mut overflow, &mut emit);
    }
}

/// A W3C datetime (the sitemaps protocol's `<lastmod>`) as seconds since
/// the Unix epoch: `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or
/// `YYYY-MM-DDThh:mm[:ss[.s+]]` with `Z` or `±hh:mm` (missing, read as
/// UTC, as many sitemaps write it). `None` for anything else.
pub fn w3c_datetime(text: &str) -> Option<i64> {
    let s = text.trim().as_bytes();
    let num = |b: &[u8]| -> Option<i64> {
        if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(b).ok()?.parse().ok()
    };
    let year = num(s.get(..4)?)?;
    let (mut month, mut day) = (1, 1);
    let mut rest = &s[4..];
    if !rest.is_empty() {
        if rest[0] != b'-' {
            return None;
        }
        month = num(rest.get(1..3)?)?;
        rest = &rest[3..];
        if !rest.is_empty() {
            if rest[0] != b'-' {
                return None;
            }
            day = num(rest.get(1..3)?)?;
            rest = &rest[3..];
        }
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut seconds = days_from_civil(year, month, day) * 86_400;
    if rest.is_empty() {
        return Some(seconds);
    }
    // A time needs a full date.
    if s.len() < 10 || !matches!(rest[0], b'T' | b't') {
        return None;
    }
    let hour = num(rest.get(1..3)?)?;
    if rest.get(3) != Some(&b':') {
        return None;
    }
    let minute = num(rest.get(4..6)?)?;
    rest = &rest[6..];
    let mut second = 0;
    if rest.first() == Some(&b':') {
        second = num(rest.get(1..3)?)?;
        rest = &rest[3..];
        if rest.first() == Some(&b'.') {
            let digits = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 {
                return None;
            }
            rest = &rest[1 + digits..];
        }
    }
    // 60 is a leap second.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    seconds += hour * 3600 + minute * 60 + second;
    let offset = match rest {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (num(&[*h1, *h2])?, num(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    Some(seconds - offset)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests;
