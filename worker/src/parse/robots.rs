//! `robots`: hands a robots.txt file back to the engine as text. The engine
//! fetches robots.txt through a worker like any page (so the fetch uses the
//! worker's client, limits and policy) and interprets it itself, because
//! only the engine sees every request to a host.

use rpcsupport::{Item, ParseError, ParseResult, Value};

use super::{no_args, Content, Page, Parser};

/// The item kind the engine recognises.
pub const KIND: &str = "robots.txt";

/// Registry entry; reads any content type as text.
pub const PARSER: Parser = Parser {
    name: "robots",
    content: Content::Text,
    check_args: no_args,
    parse,
    stream: None,
    stream_may_build_tree: false,
};

fn parse(page: &Page<'_>) -> Result<ParseResult, ParseError> {
    Ok(ParseResult {
        requests: Vec::new(),
        items: vec![Item {
            url: page.url.to_string(),
            kind: KIND.into(),
            id: None,
            payload: [("body".to_string(), Value::Str(page.text.to_owned()))].into(),
        }],
        ..ParseResult::default()
    })
}

#[cfg(test)]
mod tests {
    use crate::parse::test_support::run_text;

    /// The file comes back whole, as one item the engine can recognise.
    #[test]
    fn returns_the_text() {
        let body = "User-agent: *\nDisallow: /private\n";
        let result = run_text("robots", &[], "http://h/robots.txt", body).unwrap();
        assert!(result.requests.is_empty());
        assert_eq!(result.items[0].kind, super::KIND);
        assert_eq!(result.items[0].payload["body"].as_str(), Some(body));
    }
}
