//! `city`: one page of a city's profiles -> a `profile` request per
//! profile, plus a `city` request for the next page.
//!
//! Argument: `next` = `true` (default) or `false`: whether to follow the
//! next-page link (false crawls only the pages it is given).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use rpcsupport::{ParseError, ParseResult, Request};
use scraper::Selector;

use super::{selector, Page, Parser};

/// Registry entry.
pub const PARSER: Parser = Parser {
    name: "city",
    content: super::Content::Html,
    check_args,
    parse,
    stream: Some(super::stream::city),
    stream_may_build_tree: true,
};

static LIST: LazyLock<Selector> = LazyLock::new(|| selector("ul.profile-list"));
static PROFILES: LazyLock<Selector> = LazyLock::new(|| selector("ul.profile-list a[href]"));
static NEXT: LazyLock<Selector> = LazyLock::new(|| selector(".pager a.next[href]"));

fn check_args(args: &BTreeMap<String, String>) -> Result<(), String> {
    for (key, value) in args {
        match (key.as_str(), value.as_str()) {
            ("next", "true" | "false") => {}
            ("next", other) => return Err(format!("`next` must be true or false, got {other:?}")),
            (other, _) => return Err(format!("unknown argument {other:?} (known: next)")),
        }
    }
    Ok(())
}

/// Whether `request` asks for the next page to be followed (`next`).
pub(crate) fn follows_next(request: &Request) -> bool {
    request.parser.args.get("next").map(String::as_str) != Some("false")
}

/// Profile links from `ul.profile-list`, then the `.pager a.next` link.
pub fn parse(page: &Page<'_>) -> Result<ParseResult, ParseError> {
    let mut requests = page.follow_links_in(
        &LIST,
        "ul.profile-list",
        &PROFILES,
        super::profile::PARSER.name,
    )?;
    if follows_next(page.request) {
        // Only the first: a pager repeated at the top and bottom of a page
        // would otherwise give the same link twice.
        if let Some(next) = page.links(&NEXT).into_iter().next() {
            requests.push(page.follow(next, PARSER.name));
        }
    }
    Ok(ParseResult {
        requests,
        ..ParseResult::default()
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{run, run_text, urls};
    use rpcsupport::ParseError;

    const URL: &str = "http://127.0.0.1:8080/city/beijing";

    /// A first page yields its 20 profiles (relative links resolved) and
    /// the relative `?page=2` next link.
    #[test]
    fn first_page() {
        let result = run("city", &[], URL, "city.html").unwrap();
        let urls = urls(&result);
        assert_eq!(urls.len(), 21);
        assert_eq!(
            urls[0],
            ("http://127.0.0.1:8080/profile/1".into(), "profile".into())
        );
        assert_eq!(
            urls[1],
            ("http://127.0.0.1:8080/profile/21".into(), "profile".into())
        );
        assert!(urls[..20]
            .iter()
            .all(|(u, p)| u.contains("/profile/") && p == "profile"));
        assert_eq!(
            urls[20],
            (
                "http://127.0.0.1:8080/city/beijing?page=2".into(),
                "city".into()
            )
        );
    }

    /// The last page has no next link; `next=false` drops it anyway.
    #[test]
    fn last_page_and_next_false() {
        let last = run("city", &[], &format!("{URL}?page=3"), "city_last.html").unwrap();
        assert_eq!(last.requests.len(), 10);
        assert!(last.requests.iter().all(|r| r.parser.name == "profile"));
        let first = run("city", &[("next", "false")], URL, "city.html").unwrap();
        assert_eq!(first.requests.len(), 20);
    }

    /// Bad argument values and names are BadArgs.
    #[test]
    fn bad_args() {
        for args in [[("next", "maybe")], [("nxt", "true")]] {
            let err = run_text("city", &args, URL, "").unwrap_err();
            assert!(matches!(err, ParseError::BadArgs { .. }), "{err:?}");
        }
    }

    /// Odd markup: no list is a Page error; an empty list is fine.
    #[test]
    fn odd_markup() {
        assert!(run_text("city", &[], URL, "<html>").is_err());
        let empty = run_text("city", &[], URL, "<ul class=profile-list></ul>").unwrap();
        assert!(empty.requests.is_empty());
    }
}
