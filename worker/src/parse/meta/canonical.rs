//! The page's canonical URL: `<link rel="canonical">` in its head, or a
//! `Link` header.

use std::sync::LazyLock;

use scraper::{ElementRef, Html, Selector};
use url::Url;

use super::super::{resolve, selector, Budget, Page};

/// The document's `<head>`: the HTML parser always makes one, as a child
/// of the root, and puts there the `<meta>` and `<link>` tags that come
/// before the body's content.
fn head(html: &Html) -> Option<ElementRef<'_>> {
    html.root_element()
        .children()
        .filter_map(ElementRef::wrap)
        .find(|e| e.value().name() == "head")
}

/// The page's first `<link rel="canonical" href>` in its head (one in the
/// body is ignored, as search engines do: a page's content, comments
/// included, must not be able to name another URL as the page), resolved
/// against `<base href>` like its links and within `max_url_bytes`, when it
/// names another URL than the page's own.
pub fn canonical(page: &Page<'_>) -> Option<Url> {
    static LINK: LazyLock<Selector> = LazyLock::new(|| selector("link[rel][href]"));
    let href = head(page.html)?
        .select(&LINK)
        .find(|l| is_canonical(l.value().attr("rel").unwrap_or("")))?
        .value()
        .attr("href")?;
    canonical_from(href, &page.base_url(), page.url, page.budget)
}

/// Whether a `rel` attribute (a space-separated list, any case) names the
/// link canonical.
pub(crate) fn is_canonical(rel: &str) -> bool {
    rel.split_ascii_whitespace()
        .any(|r| r.eq_ignore_ascii_case("canonical"))
}

/// [`canonical`] of a page at `page_url` whose canonical link is `href`.
pub(crate) fn canonical_from(
    href: &str,
    base: &Url,
    page_url: &Url,
    budget: &Budget,
) -> Option<Url> {
    let url = super::super::link(budget, base, href)?;
    other_than(url, page_url)
}

/// The first `Link: <url>; rel="canonical"` of the response's `Link`
/// headers, resolved against the page's URL, at most `max_url_bytes` long,
/// when it names another URL than the page's own.
pub fn canonical_header(values: &[String], page_url: &Url, max_url_bytes: usize) -> Option<Url> {
    for value in values {
        // A value may list several links: `<a>; rel=x, <b>; rel="canonical"`.
        // URLs in angle brackets may hold commas, so split on `<` instead.
        for link in value.split('<').skip(1) {
            let Some((target, params)) = link.split_once('>') else {
                continue;
            };
            let canonical = params.split(';').any(|p| {
                let Some((key, v)) = p.split_once('=') else {
                    return false;
                };
                key.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_end_matches(',')
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("canonical"))
            });
            if !canonical || target.trim().len() > max_url_bytes {
                continue;
            }
            let url = resolve(page_url, target)?;
            if url.as_str().len() > max_url_bytes {
                return None;
            }
            return other_than(url, page_url);
        }
    }
    None
}

/// `url`, unless it is the page's own URL (fragment aside, as for links).
fn other_than(url: Url, page_url: &Url) -> Option<Url> {
    let mut own = page_url.clone();
    own.set_fragment(None);
    (url != own).then_some(url)
}
