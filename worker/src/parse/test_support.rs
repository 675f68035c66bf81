//! Shared by the parsers' unit tests: fixtures, pages over a tree, and
//! each parser run on both the tree and the streaming path.

use super::*;

/// `html` as the page at `url` answering `request` within `budget`, for
/// tests of what a parser reads off a tree (its text is not needed).
pub fn page<'a>(
    request: &'a Request,
    url: &'a Url,
    html: &'a Html,
    budget: &'a Budget,
) -> Page<'a> {
    Page {
        request,
        url,
        html,
        text: "",
        body: b"",
        budget,
    }
}

/// Reads `worker/tests/data/{name}`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs the parser `name` on fixture `file` as if fetched from `url`.
pub fn run(
    name: &str,
    args: &[(&str, &str)],
    url: &str,
    file: &str,
) -> Result<ParseResult, ParseError> {
    let bytes = fixture(file);
    let text = crate::decode::decode(&bytes, None).text;
    run_text(name, args, url, &text)
}

/// Runs the parser `name` on `text` as if fetched from `url`.
pub fn run_text(
    name: &str,
    args: &[(&str, &str)],
    url: &str,
    text: &str,
) -> Result<ParseResult, ParseError> {
    let request = Request {
        url: url.into(),
        parser: ParserSpec {
            name: name.into(),
            args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        },
        depth: 2,
        hints: Default::default(),
    };
    let parser = Registry::standard().get(&request.parser)?.to_owned();
    run_both(
        &parser,
        &request,
        &Url::parse(url).unwrap(),
        text,
        PageLimits::default(),
        None,
    )
}

/// Runs `parser` within `limits` (obeying `rel="nofollow"` for the
/// agent `obey` names, if any) on the tree path and, if it has one, on
/// the streaming path, checks that both give the same result, and
/// returns it: every parser test runs both paths.
pub fn run_both(
    parser: &Parser,
    request: &Request,
    url: &Url,
    text: &str,
    limits: PageLimits,
    obey: Option<&str>,
) -> Result<ParseResult, ParseError> {
    let run = |stream: bool| {
        let mut budget = Budget::new(PageLimits { stream, ..limits });
        if let Some(agent) = obey {
            budget = budget.obeying(true, agent);
        }
        parser.run_with(request, url, text, &budget)
    };
    let tree = run(false);
    if parser.stream.is_some() {
        let mut streamed = run(true);
        // The one field that says which path read the page.
        if let Ok(r) = &mut streamed {
            r.page.tree_fallback = false;
        }
        assert_eq!(
            streamed, tree,
            "streaming and tree parses differ on {text:?}"
        );
    }
    tree
}

/// The URLs of `result`'s requests, with their parser names.
pub fn urls(result: &ParseResult) -> Vec<(String, String)> {
    result
        .requests
        .iter()
        .map(|r| (r.url.clone(), r.parser.name.clone()))
        .collect()
}
