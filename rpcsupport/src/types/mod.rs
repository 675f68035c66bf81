//! The data that crosses the wire between engine, workers and itemsaver.
//!
//! Everything here is encoded with bincode, which cannot decode
//! self-describing values such as `serde_json::Value` (it needs
//! `deserialize_any`). Payload values are therefore our own [`Value`] enum,
//! which bincode round-trips and which keeps numbers as numbers, so a store
//! can range-query them. [`Value::to_json`] / [`Value::from_json`] convert at
//! the edges (stores, printing).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod value;

use value::JsonItem;
pub use value::Value;

/// One page to fetch and the parser that understands it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Absolute http(s) URL.
    pub url: String,
    /// Which parser the worker runs on the fetched page.
    pub parser: ParserSpec,
    /// Links followed from the seed to reach this page (seeds are 0).
    pub depth: u32,
    /// What the engine already knows of this URL (validators from the last
    /// fetch, a sitemap's `lastmod`) and how it wants the page rendered.
    /// All empty for a URL seen for the first time.
    pub hints: FetchHints,
}

impl Request {
    /// A request with no hints: a URL seen for the first time.
    pub fn new(url: impl Into<String>, parser: ParserSpec, depth: u32) -> Request {
        Request {
            url: url.into(),
            parser,
            depth,
            hints: FetchHints::default(),
        }
    }
}

/// What travels with a [`Request`] besides its URL and parser.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchHints {
    /// The `ETag` of the last fetch; the worker sends it as
    /// `If-None-Match`.
    pub etag: Option<String>,
    /// The `Last-Modified` of the last fetch, as sent; the worker sends it
    /// as `If-Modified-Since`.
    pub last_modified: Option<String>,
    /// [`content_hash`] of the last fetched body: a body that hashes the
    /// same is answered as [`PageMeta::unchanged`] without being parsed.
    pub content_hash: Option<u64>,
    /// From a sitemap: the URL's `<lastmod>`, in seconds since the Unix
    /// epoch (the engine seeds the URL's recrawl interval from it).
    pub lastmod: Option<i64>,
    /// How the engine wants the page rendered; `None` leaves it to the
    /// parser (its `render` argument, or its rule's `render` key).
    pub render: Option<Render>,
}

/// Whether a page is rendered in a headless browser before it is parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Render {
    /// Plain HTTP fetch only (the default).
    #[default]
    Never,
    /// Always render.
    Always,
    /// Fetch over HTTP first; render only when the page lacks what the
    /// parser extracts, or its body is a script shell.
    Auto,
}

impl Render {
    /// The parser argument that sets the mode (`render=auto`).
    pub const ARG: &'static str = "render";

    /// Reads a mode as written in a rules file or a parser argument.
    pub fn parse(text: &str) -> Option<Render> {
        match text {
            "never" => Some(Render::Never),
            "always" => Some(Render::Always),
            "auto" => Some(Render::Auto),
            _ => None,
        }
    }

    /// The mode as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Render::Never => "never",
            Render::Always => "always",
            Render::Auto => "auto",
        }
    }
}

/// Why a page was rendered in a browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RenderReason {
    /// Its parser or rule says `render = "always"`.
    Always,
    /// The engine asked for it ([`FetchHints::render`]), having learnt that
    /// pages of this parser on this host need it.
    Learnt,
    /// `render = "auto"`: the fetched page's body was a script shell.
    ScriptShell,
    /// `render = "auto"`: the fetched page lacked what the parser extracts.
    Missing,
}

impl RenderReason {
    /// A short label for counting.
    pub fn kind(self) -> &'static str {
        match self {
            RenderReason::Always => "always",
            RenderReason::Learnt => "learnt",
            RenderReason::ScriptShell => "script_shell",
            RenderReason::Missing => "missing",
        }
    }
}

/// The hash of a fetched body that [`FetchHints::content_hash`] and
/// [`PageMeta::content_hash`] carry: FNV-1a 64 over the body's bytes as
/// received (after transfer decoding), stable across versions.
pub fn content_hash(body: &[u8]) -> u64 {
    fnv1a64(body)
}

/// A parser described as data, so it can travel to any worker: a name looked
/// up in the worker's registry, plus arguments for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ParserSpec {
    /// Registry name, e.g. `city_list`.
    pub name: String,
    /// Parser-specific arguments; most parsers take none.
    pub args: BTreeMap<String, String>,
}

impl ParserSpec {
    /// A parser spec without arguments.
    pub fn named(name: impl Into<String>) -> Self {
        ParserSpec {
            name: name.into(),
            args: BTreeMap::new(),
        }
    }

    /// The built-in sitemap parser ([`SITEMAP_PARSER`]) for a sitemap whose
    /// pages are parsed by `pages`: its name goes in the `parser` argument
    /// and each of its arguments `K` in `arg.K`. A sitemap index's entries
    /// get this same spec.
    pub fn sitemap(pages: &ParserSpec) -> ParserSpec {
        let mut args = BTreeMap::new();
        args.insert("parser".to_string(), pages.name.clone());
        for (k, v) in &pages.args {
            args.insert(format!("arg.{k}"), v.clone());
        }
        ParserSpec {
            name: SITEMAP_PARSER.into(),
            args,
        }
    }

    /// For a [`ParserSpec::sitemap`] spec, the parser of its pages; `None`
    /// for any other spec, or one without a `parser` argument.
    pub fn sitemap_pages(&self) -> Option<ParserSpec> {
        if self.name != SITEMAP_PARSER {
            return None;
        }
        let name = self.args.get("parser")?.clone();
        let args = self
            .args
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("arg.")?.to_string(), v.clone())))
            .collect();
        Some(ParserSpec { name, args })
    }
}

/// The built-in parser of sitemaps (XML urlset and sitemap index, gzipped or
/// not, and plain-text sitemaps): see [`ParserSpec::sitemap`].
pub const SITEMAP_PARSER: &str = "sitemap";

/// Crawl-wide rules a worker applies to every fetch, sent by the engine with
/// each request (a few bytes), so workers keep no per-crawl state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchPolicy {
    /// Hosts the crawl may reach; a redirect to any other host is not
    /// followed. A host matches a domain when equal to it or a subdomain of
    /// it (`a.example.com` matches `example.com`). Empty, or a `*` entry,
    /// means any host.
    pub allowed_domains: Vec<String>,
    /// Obey what a page asks of crawlers: `<meta name="robots">` and
    /// `X-Robots-Tag` (`nofollow`: no links returned; `noindex`: no items;
    /// `none`: both).
    pub obey_robots_meta: bool,
    /// Skip links marked `rel="nofollow"`.
    pub obey_nofollow: bool,
}

impl FetchPolicy {
    /// Whether `host` (as in a URL, any case) is inside the allowed domains.
    pub fn allows_host(&self, host: &str) -> bool {
        if self.allowed_domains.is_empty() {
            return true;
        }
        self.allowed_domains
            .iter()
            .any(|d| d == "*" || host_in_domain(host, d))
    }
}

/// Whether `host` is `domain` or one of its subdomains, ignoring case and a
/// trailing dot.
pub fn host_in_domain(host: &str, domain: &str) -> bool {
    let host = host.trim_end_matches('.');
    let d = domain.trim_end_matches('.');
    if d.is_empty() {
        return false;
    }
    host.eq_ignore_ascii_case(d)
        || (host.len() > d.len()
            && host.as_bytes()[host.len() - d.len() - 1] == b'.'
            && host.is_char_boundary(host.len() - d.len())
            && host[host.len() - d.len()..].eq_ignore_ascii_case(d))
}

/// What a worker found on one page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParseResult {
    /// Links to crawl next (the engine dedups them).
    pub requests: Vec<Request>,
    /// Structured records extracted from the page.
    pub items: Vec<Item>,
    /// What the worker's per-page limits left out (all zero for most pages).
    pub limits: ParseLimits,
    /// What the fetch and the page said about the page itself.
    pub page: PageMeta,
}

/// What a worker learnt about the page itself, beside its links and items:
/// the validators a recrawl sends back ([`FetchHints`]), what the page asks
/// of crawlers, its canonical URL, and how it was fetched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageMeta {
    /// The final response's HTTP status (200, or 304 when `unchanged` came
    /// from the server).
    pub status: u16,
    /// The page is as it was at the last fetch: the server answered 304 to
    /// the request's validators, or the body's hash equals
    /// [`FetchHints::content_hash`]. Nothing was parsed: `requests` and
    /// `items` are empty.
    pub unchanged: bool,
    /// The response's `ETag`, as sent.
    pub etag: Option<String>,
    /// The response's `Last-Modified`, as sent.
    pub last_modified: Option<String>,
    /// [`content_hash`] of the body (absent on a 304).
    pub content_hash: Option<u64>,
    /// The page's `<link rel="canonical">` (or `Link: <..>; rel="canonical"`
    /// header), resolved to an absolute URL, when it names another URL than
    /// the page's. The engine decides whether it is in scope and uses it.
    pub canonical: Option<String>,
    /// The page said `noindex` (robots meta or `X-Robots-Tag`); when the
    /// policy obeys it, `items` is empty.
    pub noindex: bool,
    /// The page said `nofollow`; when the policy obeys it, `requests` is
    /// empty.
    pub nofollow: bool,
    /// Links left out because they were marked `rel="nofollow"`.
    pub nofollow_links: u64,
    /// Items left out because the page said `noindex`.
    pub noindex_items: u64,
    /// For a sitemap: entries left out past the protocol's limits (50,000
    /// URLs or 50 MB uncompressed per file) or because they were not
    /// http(s) URLs.
    pub sitemap_dropped: u64,
    /// Set when the page was rendered in a browser, with why.
    pub rendered: Option<RenderReason>,
    /// For a rendered page: the requests its scripts, styles and frames
    /// made that the worker fetched, by host (as in their URLs), so the
    /// engine charges them to those hosts' politeness as it would charge
    /// requests of its own. At most `max_render_requests` in all.
    pub subrequests: BTreeMap<String, u32>,
}

/// What a worker's per-page limits cut from one [`ParseResult`], so a
/// hostile or huge page is a counted outcome rather than a silent loss. All
/// counts, so the engine can sum them over a crawl.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParseLimits {
    /// Links past the worker's `max_links_per_page`, not returned.
    pub links_truncated: u64,
    /// Links whose URL (as written or resolved) was longer than
    /// `max_url_bytes`, dropped.
    pub urls_too_long: u64,
    /// 1 if the page's `<base href>` was longer than `max_url_bytes` and
    /// ignored (links resolved against the page's own URL).
    pub base_href_ignored: u64,
    /// Requests and items left out to keep the reply within
    /// `max_result_bytes`.
    pub results_dropped: u64,
    /// 1 if only a prefix of the page was parsed: robots.txt past
    /// `max_robots_bytes`, HTML past `max_html_nodes` or `max_html_depth`.
    pub page_truncated: u64,
}

impl ParseLimits {
    /// Whether no limit was hit.
    pub fn is_empty(&self) -> bool {
        *self == ParseLimits::default()
    }

    /// Adds `other`'s counts to these (for totals over a crawl).
    pub fn add(&mut self, other: &ParseLimits) {
        self.links_truncated += other.links_truncated;
        self.urls_too_long += other.urls_too_long;
        self.base_href_ignored += other.base_href_ignored;
        self.results_dropped += other.results_dropped;
        self.page_truncated += other.page_truncated;
    }
}

/// A structured record extracted from a page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The page the item came from.
    pub url: String,
    /// What sort of record this is, e.g. `profile`.
    pub kind: String,
    /// Identity used to upsert; `None` means "derive one from url and kind"
    /// (see [`Item::key`]).
    pub id: Option<String>,
    /// The record's fields, typed.
    pub payload: BTreeMap<String, Value>,
}

/// Deepest [`Value`] a store takes: a payload's own values are depth 1, the
/// elements of a list among them depth 2, and so on. Both stores keep an
/// item as JSON and read it back with serde_json, whose recursion limit
/// (128) counts the item's own object and its payload too; 64 leaves room
/// to spare and is far more than any page's data needs. The itemsaver
/// refuses a deeper item by name; the wire decoder
/// ([`crate::codec::DEFAULT_MAX_DECODE_DEPTH`]) lets such an item arrive,
/// so it can be.
pub const MAX_VALUE_DEPTH: usize = 64;

impl Item {
    /// Whether any payload value nests deeper than `max` (see
    /// [`MAX_VALUE_DEPTH`]). Stops descending at `max`, so the check itself
    /// is bounded whatever the item.
    pub fn deeper_than(&self, max: usize) -> bool {
        self.payload.values().any(|v| v.deeper_than(max))
    }

    /// The id a store files this item under: its own id, or a stable one
    /// derived from kind and URL, so re-saving an id-less item still
    /// overwrites rather than duplicates.
    pub fn key(&self) -> String {
        match &self.id {
            Some(id) => id.clone(),
            None => format!(
                "h{:032x}",
                fnv1a128(&[self.kind.as_bytes(), b"\n", self.url.as_bytes()])
            ),
        }
    }

    /// The whole item as a JSON object (`url`, `kind`, `id`, `payload`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "url": self.url,
            "kind": self.kind,
            "id": self.key(),
            "payload": self.payload_json(),
        })
    }

    /// The payload as a JSON object (as in [`Item::to_json`]).
    pub fn payload_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.payload
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        )
    }

    /// The text of [`Item::to_json`] with `id` in place of the key (`None`
    /// writes `null`): what a store keeps to give back exactly what was
    /// saved. Written straight from the item, without building the JSON
    /// tree first (several times cheaper).
    pub fn json_text_with_id(&self, id: Option<&str>) -> String {
        serde_json::to_string(&JsonItem { item: self, id }).expect("writing to a String")
    }

    /// The length in bytes of `to_json().to_string()`, counted without
    /// writing it anywhere.
    pub fn json_len(&self) -> usize {
        struct Count(usize);
        impl std::io::Write for Count {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0 += buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut count = Count(0);
        let key = self.key();
        serde_json::to_writer(
            &mut count,
            &JsonItem {
                item: self,
                id: Some(&key),
            },
        )
        .expect("counting cannot fail");
        count.0
    }

    /// Inverse of [`Item::to_json`]; `None` if a required key is missing.
    pub fn from_json(json: &serde_json::Value) -> Option<Item> {
        let text = |k: &str| json.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let payload = match json.get("payload").map(Value::from_json) {
            Some(Value::Map(m)) => m,
            None | Some(Value::Null) => BTreeMap::new(),
            Some(_) => return None,
        };
        Some(Item {
            url: text("url")?,
            kind: text("kind")?,
            id: text("id"),
            payload,
        })
    }
}

/// FNV-1a, 64 bits: tiny and stable across versions, platforms and runs
/// (unlike `std`'s hasher), so what it hashes can be saved and compared
/// between processes: the engine's URL fingerprints, rule-set ids.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// FNV-1a, 128 bits: tiny, stable across versions and platforms (unlike
/// `std`'s hasher), and wide enough that derived ids do not collide in
/// practice.
fn fnv1a128(parts: &[&[u8]]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let mut h = OFFSET;
    for part in parts {
        for &b in *part {
            h ^= b as u128;
            h = h.wrapping_mul(PRIME);
        }
    }
    h
}

/// The itemsaver's answer to a batch: every item in it is durable, except
/// the ones named in `refused`, which the store turned down for good
/// (sending them again would fail the same way). The engine forgets the
/// whole batch on this answer and records the refused items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaveAck {
    /// Items written (upserted) by this batch.
    pub stored: u32,
    /// Items not stored, one entry per key, with the reason.
    pub refused: Vec<Refusal>,
}

impl SaveAck {
    /// Every one of `stored` items stored, none refused.
    pub fn all(stored: u32) -> SaveAck {
        SaveAck {
            stored,
            refused: Vec::new(),
        }
    }
}

/// One item a store will not take, named by its [`Item::key`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The item's key.
    pub key: String,
    /// Why, in the store's words.
    pub reason: String,
}

/// A search over stored items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchRequest {
    /// Query text: free text, `field:value`, AND/OR/NOT.
    pub query: String,
    /// Hits to skip (for paging).
    pub from: u32,
    /// Hits to return.
    pub size: u32,
}

/// One page of search hits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResponse {
    /// Hits for the whole query, not just this page.
    pub total: u64,
    /// The hits on this page, best first.
    pub items: Vec<Item>,
}

/// One page of a scan: every item matching `query`, in an order that stays
/// fixed for the whole scan, a page at a time. Unlike [`SearchRequest`]
/// it has no `from`, so the millionth item costs what the first does
/// (`itemsaver export` reads a whole store this way).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRequest {
    /// Query text, as in [`SearchRequest::query`]; empty means every item.
    pub query: String,
    /// Where the previous page ended ([`ScanPage::next`]); `None` starts
    /// a new scan.
    pub after: Option<ScanCursor>,
    /// Most items on the page. The store may send fewer (it caps both the
    /// count and the bytes of a page), so only [`ScanPage::next`] being
    /// `None` means the end.
    pub size: u32,
}

/// Where a scan goes on: opaque to clients, meaningful only to the store
/// that made it, and only for a while (the store keeps the scan's snapshot
/// open for some minutes after each page; a later page is refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanCursor(pub String);

/// One page of a scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanPage {
    /// The items on this page.
    pub items: Vec<Item>,
    /// Pass as [`ScanRequest::after`] for the next page; `None` once the
    /// scan is done.
    pub next: Option<ScanCursor>,
    /// How many items match, as of the snapshot the scan reads; set on the
    /// first page only (counting costs a pass over the hits).
    pub total: Option<u64>,
}

/// A worker's answer to a health check: cheap, independent of any page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStatus {
    /// Requests being processed right now.
    pub in_flight: u32,
    /// Requests finished since the worker started.
    pub served: u64,
    /// Its built-in parsers, so the engine can check names at start.
    pub parsers: Vec<String>,
    /// Whether it has a browser and can serve requests that need rendering.
    pub can_render: bool,
}

#[cfg(test)]
mod tests;
