//! What the engine sends a worker: the [`Request`], its parser, its
//! hints and the crawl-wide [`FetchPolicy`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
    /// [`content_hash`](super::content_hash) of the last fetched body: a
    /// body that hashes the same is answered as
    /// [`PageMeta::unchanged`](super::PageMeta::unchanged) without being
    /// parsed.
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

/// Crawl-wide rules a worker applies to every fetch. They travel as a
/// [`PolicyRef`]: whole once per connection, by id after that, since
/// `allowed_domains` holds every seed's host by default and a broad crawl
/// has thousands of seeds.
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

/// The fetch policy of one `process` call: given whole, or named by the id
/// it was given under earlier on the same connection. A worker keeps a few
/// policies per connection (its `policies_per_connection`), the oldest
/// forgotten first, and none across connections, so one caller's ids never
/// reach another's calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyRef {
    /// This policy, for this call; the connection keeps it under `id` for
    /// later calls (replacing what it held under that id).
    Given {
        /// The caller's name for it, on this connection.
        id: u64,
        /// The policy.
        policy: FetchPolicy,
    },
    /// The policy given earlier on this connection under this id. A worker
    /// that does not hold it (forgotten, or a new connection) answers
    /// [`crate::CrawlError::UnknownPolicy`] and fetches nothing; the caller
    /// gives it again.
    Known(u64),
}

impl From<FetchPolicy> for PolicyRef {
    /// The policy given under id 0.
    fn from(policy: FetchPolicy) -> Self {
        PolicyRef::Given { id: 0, policy }
    }
}

impl Default for PolicyRef {
    fn default() -> Self {
        FetchPolicy::default().into()
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
