//! `links`: a generic crawler parser. Follows every `<a href>` on the page
//! with itself and extracts no items: enough to walk any site (the engine's
//! scope decides which links are kept). Under `stream_parse` (the default)
//! its pages are read in one pass without a tree ([`super::stream::links`]),
//! with the same result.

use std::sync::LazyLock;

use rpcsupport::{ParseError, ParseResult};
use scraper::Selector;

use super::{no_args, selector, stream, Content, Page, Parser};

/// Registry entry.
pub const PARSER: Parser = Parser {
    name: "links",
    content: Content::Html,
    check_args: no_args,
    parse,
    stream: Some(stream::links),
    stream_may_build_tree: false,
};

static A: LazyLock<Selector> = LazyLock::new(|| selector("a[href]"));

fn parse(page: &Page<'_>) -> Result<ParseResult, ParseError> {
    Ok(ParseResult {
        requests: page
            .links(&A)
            .into_iter()
            .map(|url| page.follow(url, PARSER.name))
            .collect(),
        items: Vec::new(),
        ..ParseResult::default()
    })
}

#[cfg(test)]
mod tests {
    use crate::parse::test_support::{run_text, urls};

    /// Every crawlable link is followed with `links`; junk is skipped.
    #[test]
    fn follows_all_links() {
        let html = r#"<a href="/a">a</a><a href="b#x">b</a><a href="mailto:x@y">m</a><a href="http://other/c">c</a>"#;
        let result = run_text("links", &[], "http://h/dir/page", html).unwrap();
        assert_eq!(
            urls(&result),
            [
                ("http://h/a".to_string(), "links".to_string()),
                ("http://h/dir/b".to_string(), "links".to_string()),
                ("http://other/c".to_string(), "links".to_string()),
            ]
        );
        assert!(result.items.is_empty());
    }

    /// A repeated href is skipped without being resolved again once it
    /// was admitted, and counted each time it was not: nofollow, too long
    /// or past the budget (both paths, through `run_both`).
    #[test]
    fn repeated_hrefs_count_as_before() {
        use crate::parse::test_support::run_both;
        use crate::parse::{links, PageLimits};
        use rpcsupport::{ParserSpec, Request};
        let long = format!("/{}", "x".repeat(200));
        let html = format!(
            "<a href=/a><a href=/a rel=nofollow><a href=/n rel=nofollow><a href=/n rel=nofollow>\
             <a href=/n><a href={long}><a href={long}><a href=/b><a href=/c><a href=/c><a href=/b>"
        );
        let url = url::Url::parse("http://h/").unwrap();
        let request = Request::new(url.as_str(), ParserSpec::named("links"), 0);
        let limits = PageLimits {
            max_url_bytes: 100,
            max_links: 3,
            ..PageLimits::default()
        };
        let r = run_both(
            &links::PARSER,
            &request,
            &url,
            &html,
            limits,
            Some("crawler"),
        )
        .unwrap();
        let got: Vec<_> = r.requests.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(got, ["http://h/a", "http://h/n", "http://h/b"]);
        assert_eq!(r.page.nofollow_links, 2);
        assert_eq!(r.limits.urls_too_long, 2);
        assert_eq!(r.limits.links_truncated, 2);
    }
}
