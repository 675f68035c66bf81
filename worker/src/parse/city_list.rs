//! `city_list`: the site's front page (`/`) -> one `city` request per city.

use std::sync::LazyLock;

use rpcsupport::{ParseError, ParseResult};
use scraper::Selector;

use super::{no_args, selector, Page, Parser};

/// Registry entry.
pub const PARSER: Parser = Parser {
    name: "city_list",
    content: super::Content::Html,
    check_args: no_args,
    parse,
    stream: Some(super::stream::city_list),
    stream_may_build_tree: true,
};

static LIST: LazyLock<Selector> = LazyLock::new(|| selector(".city-list"));
static LINKS: LazyLock<Selector> = LazyLock::new(|| selector(".city-list a[href]"));

/// Every link in the `.city-list` block becomes a `city` request.
pub fn parse(page: &Page<'_>) -> Result<ParseResult, ParseError> {
    let requests =
        page.follow_links_in(&LIST, ".city-list block", &LINKS, super::city::PARSER.name)?;
    Ok(ParseResult {
        requests,
        ..ParseResult::default()
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{run, run_text, urls};
    use rpcsupport::ParseError;

    /// The demosite front page yields its 20 cities and skips junk links.
    #[test]
    fn front_page_lists_cities() {
        let result = run("city_list", &[], "http://127.0.0.1:8080/", "city_list.html").unwrap();
        let urls = urls(&result);
        assert_eq!(urls.len(), 20);
        assert_eq!(
            urls[0],
            ("http://127.0.0.1:8080/city/beijing".into(), "city".into())
        );
        assert!(urls
            .iter()
            .all(|(u, p)| u.contains("/city/") && p == "city"));
        assert!(result.items.is_empty());
        assert!(result.requests.iter().all(|r| r.depth == 3));
    }

    /// A page without the city list is a Page error, not an empty success.
    #[test]
    fn other_page_is_an_error() {
        let err = run_text("city_list", &[], "http://h/", "<p>hi</p>").unwrap_err();
        assert!(matches!(err, ParseError::Page { .. }), "{err:?}");
    }
}
