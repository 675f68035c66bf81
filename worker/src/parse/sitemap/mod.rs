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
//!
//! # Layout
//!
//! - this file: the registry entry, [`read`] (gzip or not, XML or text)
//!   and the entries turned into requests within the page's limits.
//! - `input`: the capped reader and the byte-at-a-time buffer the scanners
//!   read.
//! - `xml`: the XML scanner; `text`: one URL per line.
//! - `datetime`: `<lastmod>` as Unix seconds ([`w3c_datetime`]).

mod datetime;
mod input;
#[cfg(test)]
mod tests;
mod text;
mod xml;

use std::collections::BTreeMap;
use std::io::Read;

use flate2::read::MultiGzDecoder;
use rpcsupport::{FetchHints, ParseError, ParseResult, ParserSpec, Request};
use url::Url;

use super::{is_http, Content, Page, Parser};
pub use datetime::w3c_datetime;
use input::{Bytes, Capped};
use text::scan_text;
use xml::scan_xml;

/// The gzip magic bytes: a sitemap body that starts with them is inflated
/// whatever its Content-Type says.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Registry entry; reads any content type, as bytes.
pub const PARSER: Parser = Parser {
    name: rpcsupport::SITEMAP_PARSER,
    content: Content::Sitemap,
    check_args,
    parse,
    stream: None,
    stream_may_build_tree: false,
};

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
