//! Step 5: parsers. A parser is looked up by the name the engine sends
//! ([`rpcsupport::ParserSpec`]), so adding one means a new file here and a
//! line in [`Registry::standard`]; the engine and the wire format do not
//! change.
//!
//! Every parser gets the page as a [`Page`] and uses the link helpers below,
//! which do the URL work once and correctly: `<base href>`, relative
//! references, fragments, and skipping `javascript:`/`mailto:`/... links.
//! They also apply the page's [`limits::Budget`] (links per page, URL
//! length, reply size), so no parser can return more than a page may.
//!
//! A parser that needs no tree can also give a [`Parser::stream`] entry
//! point ([`stream`]: `links` does), used under `stream_parse`: the page is
//! read once by the tokenizer and no [`Html`] is built.

pub mod city;
pub mod city_list;
pub mod limits;
pub mod links;
pub mod meta;
pub mod profile;
pub mod robots;
pub mod sitemap;
pub mod stream;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

pub use limits::{Budget, PageLimits};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use rpcsupport::{ParseError, ParseResult, ParserSpec, Request};
use scraper::{Html, Selector};
use url::Url;

/// What a parser sees: the request it answers, where the page really came
/// from (after redirects) and the parsed document.
pub struct Page<'a> {
    /// The request being processed (parser args, depth).
    pub request: &'a Request,
    /// The final URL of the page.
    pub url: &'a Url,
    /// The document (empty for [`Content::Text`] parsers).
    pub html: &'a Html,
    /// The decoded text the document was parsed from (empty for
    /// [`Content::Sitemap`] parsers, which decode `body` themselves).
    pub text: &'a str,
    /// The page's bytes: `text`'s, or for a [`Content::Sitemap`] parser
    /// the body as received (transfer encodings undone, gzip not).
    pub body: &'a [u8],
    /// What the page may still add to its result.
    pub budget: &'a Budget,
}

impl Page<'_> {
    /// A `Page` error for this page and parser.
    pub fn error(&self, reason: impl Into<String>) -> ParseError {
        ParseError::Page {
            parser: self.request.parser.name.clone(),
            url: self.url.to_string(),
            reason: reason.into(),
        }
    }

    /// A request for `url`, one link deeper than this page. A `render`
    /// argument on this page's parser goes with it: it is the crawl's
    /// choice of how built-in parsers' pages are fetched (`--parser links`
    /// with `render=auto`), not an argument of one parser, so the pages it
    /// leads to are fetched the same way.
    pub fn follow(&self, url: Url, parser: &str) -> Request {
        follow(self.request, url, parser)
    }

    /// The URL relative links resolve against: the page's own URL, or its
    /// first `<base href>` when that is a valid http(s) URL no longer than
    /// `max_url_bytes` (a longer one is ignored and counted: every relative
    /// link would otherwise be at least as long).
    pub fn base_url(&self) -> Url {
        static BASE: LazyLock<Selector> = LazyLock::new(|| selector("base[href]"));
        let href = self
            .html
            .select(&BASE)
            .next()
            .and_then(|base| base.value().attr("href"));
        base_url(self.url, href, self.budget)
    }

    /// `href` resolved against `base` (see [`resolve`]), or `None` for junk
    /// and for links longer than `max_url_bytes`, as written (checked
    /// before resolving, which copies) or as resolved; those are counted.
    pub fn link(&self, base: &Url, href: &str) -> Option<Url> {
        link(self.budget, base, href)
    }

    /// The links `links` matches (see [`Page::links`]) as requests for
    /// `parser`, when the page has the `block` they belong in (`what`, in
    /// the error). Without it the page is not one the parser reads (the
    /// wrong parser for the URL, or the site changed): saying so beats an
    /// empty success.
    pub fn follow_links_in(
        &self,
        block: &Selector,
        what: &str,
        links: &Selector,
        parser: &str,
    ) -> Result<Vec<Request>, ParseError> {
        if self.html.select(block).next().is_none() {
            return Err(self.error(format!("no {what}")));
        }
        Ok(self
            .links(links)
            .into_iter()
            .map(|url| self.follow(url, parser))
            .collect())
    }

    /// The crawlable targets of the `<a href>`s matched by `links`, in page
    /// order, without duplicates or fragments. Junk hrefs are skipped, and
    /// `rel="nofollow"` ones when the crawl obeys them; past the page's
    /// link or size budget, links are counted, not returned.
    pub fn links(&self, links: &Selector) -> Vec<Url> {
        let base = self.base_url();
        let anchors = self
            .html
            .select(links)
            .filter_map(|a| Some((a.value().attr("href")?, a.value().attr("rel"))));
        admit_links(self.budget, &base, anchors)
    }
}

/// [`Page::follow`] from the page answering `request`.
pub(crate) fn follow(request: &Request, url: Url, parser: &str) -> Request {
    let mut spec = ParserSpec::named(parser);
    if let Some(mode) = request.parser.args.get(rpcsupport::Render::ARG) {
        spec.args
            .insert(rpcsupport::Render::ARG.to_string(), mode.clone());
    }
    Request {
        url: url.into(),
        parser: spec,
        depth: request.depth.saturating_add(1),
        hints: Default::default(),
    }
}

/// [`Page::base_url`] for a page at `url` whose first `<base>` has `href`.
pub(crate) fn base_url(url: &Url, href: Option<&str>, budget: &Budget) -> Url {
    let Some(href) = href else {
        return url.clone();
    };
    if href.trim().len() > budget.limits().max_url_bytes {
        budget.count(|c| c.base_href_ignored = 1);
        return url.clone();
    }
    url.join(href.trim())
        .ok()
        .filter(is_http)
        .unwrap_or_else(|| url.clone())
}

/// [`Page::link`], within `budget`.
pub(crate) fn link(budget: &Budget, base: &Url, href: &str) -> Option<Url> {
    if !budget.url_fits(href.trim().len()) {
        return None;
    }
    let url = resolve(base, href)?;
    budget.url_fits(url.as_str().len()).then_some(url)
}

/// [`Page::links`] for the `(href, rel)` of a page's anchors, in page
/// order: the one place links are admitted, whichever way the page was
/// parsed (tree or [`stream`]), so both count the same.
pub(crate) fn admit_links<'h>(
    budget: &Budget,
    base: &Url,
    anchors: impl Iterator<Item = (&'h str, Option<&'h str>)>,
) -> Vec<Url> {
    let mut seen = HashSet::new();
    // The hrefs of admitted links as written: one written again resolves
    // to a URL in `seen`, so it is skipped without resolving it (with no
    // count either way). Pages repeat many (rustdoc's: 43%).
    let mut admitted = HashSet::new();
    let mut out = Vec::new();
    for (href, rel) in anchors {
        if admitted.contains(href) {
            continue;
        }
        let Some(url) = link(budget, base, href) else {
            continue;
        };
        // Only admitted links are remembered, so `seen` is bounded by
        // the budget too.
        if seen.contains(url.as_str())
            || budget.skip_nofollow(rel)
            || !budget.admit_link(url.as_str().len())
        {
            continue;
        }
        seen.insert(url.as_str().to_owned());
        admitted.insert(href);
        out.push(url);
    }
    out
}

/// Resolves `href` against `base` to a crawlable URL, or `None` for links a
/// crawler must skip: empty or fragment-only (they mean "this page", but
/// resolve against `<base href>`, not the page), unparsable, or a scheme
/// other than http(s) (`javascript:`, `mailto:`, `tel:`, `data:`...).
/// The fragment is dropped: `/a#x` and `/a#y` are one page.
pub fn resolve(base: &Url, href: &str) -> Option<Url> {
    let href = href.trim();
    if href.is_empty() || href.starts_with('#') {
        return None;
    }
    let mut url = base.join(href).ok()?;
    if !is_http(&url) {
        return None;
    }
    url.set_fragment(None);
    Some(url)
}

fn is_http(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https") && url.host().is_some()
}

/// Compiles a selector written in this crate. Only called from `LazyLock`
/// statics with literal selectors, which tests exercise, so a typo fails
/// every test rather than a crawl.
pub(crate) fn selector(css: &str) -> Selector {
    Selector::parse(css).unwrap_or_else(|e| panic!("bad built-in selector {css:?}: {e}"))
}

/// A parser's entry point.
pub type ParseFn = fn(&Page<'_>) -> Result<ParseResult, ParseError>;

/// A parser's streaming entry point (see [`Parser::stream`]): the result
/// before [`Budget::finish`], page meta included.
pub type StreamFn = fn(&Request, &Url, &str, &Budget) -> Result<ParseResult, ParseError>;

/// Checks a parser's arguments; the error says what is wrong.
pub type CheckArgsFn = fn(&BTreeMap<String, String>) -> Result<(), String>;

/// What a parser reads, which decides what the worker accepts for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// HTML pages only; other content types are `FetchError::NotHtml` and
    /// never reach the parser.
    Html,
    /// Any content type, as text (e.g. robots.txt); no HTML parse is done.
    /// Only the first `max_robots_bytes` are read (whole lines), the rest
    /// is ignored and the page counted as `page_truncated`.
    Text,
    /// A sitemap: any content type, as bytes (the parser inflates gzip
    /// and reads XML or text itself, streaming). Only the first
    /// `max_sitemap_bytes` are read, the rest is ignored and counted as
    /// `page_truncated`.
    Sitemap,
}

/// One registered parser.
#[derive(Clone, Copy)]
pub struct Parser {
    /// The name requests use.
    pub name: &'static str,
    /// What it reads.
    pub content: Content,
    /// Validates arguments before anything is fetched.
    pub check_args: CheckArgsFn,
    /// Extracts requests and items.
    pub parse: ParseFn,
    /// The same parser without a document tree, for [`Content::Html`]
    /// parsers that need none: gives exactly what `parse` and the page's
    /// meta would, and is used when the settings allow (`stream_parse`).
    pub stream: Option<StreamFn>,
    /// Whether `stream` hands the pages it cannot read to the tree (the
    /// demo site's parsers do, on markup outside their strict subset): such
    /// a page is weighed as a tree against `max_parse_bytes` all the same.
    pub stream_may_build_tree: bool,
}

impl Parser {
    /// Whether this parser, streaming under `stream_parse`, never builds
    /// a tree, so a page it reads weighs only its text.
    pub fn streams_without_tree(&self, stream_parse: bool) -> bool {
        stream_parse
            && self.stream.is_some()
            && !self.stream_may_build_tree
            && self.content == Content::Html
    }
}

impl Parser {
    /// Parses `text` (already decoded) as the page at `url` and runs the
    /// parser on it, within the default [`PageLimits`].
    pub fn run(&self, request: &Request, url: &Url, text: &str) -> Result<ParseResult, ParseError> {
        self.run_with(request, url, text, &Budget::new(PageLimits::default()))
    }

    /// Like [`Parser::run`], within `budget`; the result fits it and
    /// carries its counts.
    pub fn run_with(
        &self,
        request: &Request,
        url: &Url,
        text: &str,
        budget: &Budget,
    ) -> Result<ParseResult, ParseError> {
        if let Some(stream) = self.stream.filter(|_| budget.limits().stream) {
            return Ok(budget.finish(stream(request, url, text, budget)?));
        }
        if self.content == Content::Html {
            let html = Html::parse_document(text);
            return run_tree(&html, request, url, text, budget, self.parse);
        }
        self.run_plain(request, url, text, text.as_bytes(), budget)
    }

    /// Runs a [`Content::Sitemap`] parser on `body`, the bytes as fetched,
    /// within `budget`.
    pub fn run_body(
        &self,
        request: &Request,
        url: &Url,
        body: &[u8],
        budget: &Budget,
    ) -> Result<ParseResult, ParseError> {
        self.run_plain(request, url, "", body, budget)
    }

    /// Runs a parser that reads no HTML ([`Content::Text`] or
    /// [`Content::Sitemap`]): no tree is built, and a text says nothing of
    /// itself to read.
    fn run_plain(
        &self,
        request: &Request,
        url: &Url,
        text: &str,
        body: &[u8],
        budget: &Budget,
    ) -> Result<ParseResult, ParseError> {
        let html = Html::new_document();
        let result = (self.parse)(&Page {
            request,
            url,
            html: &html,
            text,
            body,
            budget,
        })?;
        Ok(budget.finish(result))
    }
}

/// Runs `parse` on `html`, the tree parsed from `text`, as the HTML page
/// at `url`, adds what the document says of itself
/// ([`meta::read_document`]) and fits the result to `budget`: the tree
/// path of every HTML parser, built-in or rule. (The caller parses, so
/// the fuzz test can parse each input once for all parsers.)
pub(crate) fn run_tree(
    html: &Html,
    request: &Request,
    url: &Url,
    text: &str,
    budget: &Budget,
    parse: impl FnOnce(&Page<'_>) -> Result<ParseResult, ParseError>,
) -> Result<ParseResult, ParseError> {
    Ok(budget.finish(read_tree(html, request, url, text, budget, parse)?))
}

/// [`run_tree`] before [`Budget::finish`]: what a [`StreamFn`] gives, for
/// the streaming parsers that hand a page they cannot read to the tree.
pub(crate) fn read_tree(
    html: &Html,
    request: &Request,
    url: &Url,
    text: &str,
    budget: &Budget,
    parse: impl FnOnce(&Page<'_>) -> Result<ParseResult, ParseError>,
) -> Result<ParseResult, ParseError> {
    let page = Page {
        request,
        url,
        html,
        text,
        body: text.as_bytes(),
        budget,
    };
    let mut result = parse(&page)?;
    meta::read_document(&page, &mut result);
    Ok(result)
}

/// For parsers that take no arguments.
pub fn no_args(args: &BTreeMap<String, String>) -> Result<(), String> {
    match args.keys().next() {
        None => Ok(()),
        Some(key) => Err(format!("takes no arguments, got {key:?}")),
    }
}

/// The parsers a worker knows, by name. Built once per [`crate::Worker`].
pub struct Registry {
    parsers: HashMap<&'static str, Parser>,
}

impl Registry {
    /// The demosite parsers (`city_list`, `city`, `profile`), the generic
    /// `links` (follow every link), `robots`, which the engine uses to
    /// fetch robots.txt, and `sitemap`.
    pub fn standard() -> Registry {
        let mut registry = Registry {
            parsers: HashMap::new(),
        };
        registry.add(city_list::PARSER);
        registry.add(city::PARSER);
        registry.add(profile::PARSER);
        registry.add(robots::PARSER);
        registry.add(links::PARSER);
        registry.add(sitemap::PARSER);
        registry
    }

    /// Registers `parser`, replacing any of the same name.
    pub fn add(&mut self, parser: Parser) {
        self.parsers.insert(parser.name, parser);
    }

    /// The parser `spec` names, after checking its arguments.
    pub fn get(&self, spec: &ParserSpec) -> Result<&Parser, ParseError> {
        let parser = self
            .parsers
            .get(spec.name.as_str())
            .ok_or_else(|| ParseError::UnknownParser(spec.name.clone()))?;
        (parser.check_args)(&spec.args).map_err(|reason| ParseError::BadArgs {
            parser: spec.name.clone(),
            reason,
        })?;
        Ok(parser)
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.parsers.keys().copied().collect();
        names.sort_unstable();
        names
    }
}
