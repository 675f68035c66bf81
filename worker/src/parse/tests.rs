//! The registry and the link helpers every parser uses.

use super::*;

fn base() -> Url {
    Url::parse("http://127.0.0.1:8080/profile/5").unwrap()
}

fn r(href: &str) -> Option<String> {
    resolve(&base(), href).map(String::from)
}

/// Relative, absolute-path, dot-segment and query-only hrefs resolve
/// against the page URL.
#[test]
fn relative_links_resolve() {
    assert_eq!(r("12").unwrap(), "http://127.0.0.1:8080/profile/12");
    assert_eq!(
        r("../profile/12").unwrap(),
        "http://127.0.0.1:8080/profile/12"
    );
    assert_eq!(r("./12").unwrap(), "http://127.0.0.1:8080/profile/12");
    assert_eq!(
        r("/city/beijing").unwrap(),
        "http://127.0.0.1:8080/city/beijing"
    );
    assert_eq!(
        r("?page=2").unwrap(),
        "http://127.0.0.1:8080/profile/5?page=2"
    );
    assert_eq!(r("//127.0.0.1:9/x").unwrap(), "http://127.0.0.1:9/x");
    assert_eq!(r("  /a\n").unwrap(), "http://127.0.0.1:8080/a");
    assert_eq!(
        r("HTTP://127.0.0.1:8080/A").unwrap(),
        "http://127.0.0.1:8080/A"
    );
}

/// Fragments are dropped, and fragment-only links are skipped.
#[test]
fn fragments() {
    assert_eq!(
        r("/profile/7#comments").unwrap(),
        "http://127.0.0.1:8080/profile/7"
    );
    assert_eq!(r("#top"), None);
    assert_eq!(r(""), None);
    assert_eq!(r("   "), None);
}

/// Non-http(s) schemes and unparsable hrefs are skipped.
#[test]
fn junk_links_are_skipped() {
    for junk in [
        "javascript:void(0)",
        "JavaScript:alert(1)",
        "mailto:x@y",
        "tel:+861234",
        "data:text/html,hi",
        "ftp://127.0.0.1/file",
        "http://[not-an-ip/",
        "http://",
    ] {
        assert_eq!(r(junk), None, "{junk}");
    }
}

/// `<base href>` changes what relative links mean, fragment-only links
/// included; an unusable base is ignored.
#[test]
fn base_href_is_honoured() {
    let request = Request {
        url: base().into(),
        parser: ParserSpec::named("x"),
        depth: 0,
        hints: Default::default(),
    };
    static A: LazyLock<Selector> = LazyLock::new(|| selector("a"));
    let url = base();
    let budget = Budget::new(PageLimits::default());
    let html = Html::parse_document(
        "<html><head><base href=\"/profile/all/\"></head><body>\
         <a href=\"../12\">x</a><a href=\"#top\">t</a><a href=\"/profile/12#c\">dup</a>\
         <a href=\"13\">y</a></body></html>",
    );
    let page = crate::parse::test_support::page(&request, &url, &html, &budget);
    let links: Vec<String> = page.links(&A).into_iter().map(String::from).collect();
    assert_eq!(
        links,
        [
            "http://127.0.0.1:8080/profile/12",
            "http://127.0.0.1:8080/profile/all/13"
        ]
    );

    let html = Html::parse_document("<base href=\"javascript:x\"><a href=\"12\">x</a>");
    let page = crate::parse::test_support::page(&request, &url, &html, &budget);
    assert_eq!(page.base_url(), url);
}

/// Issue 11: a `<base href>` over `max_url_bytes` is ignored (links
/// resolve against the page), links over it are dropped, and links past
/// `max_links_per_page` are counted, not returned.
#[test]
fn link_limits_are_applied_and_counted() {
    let request = Request {
        url: base().into(),
        parser: ParserSpec::named("links"),
        depth: 0,
        hints: Default::default(),
    };
    let limits = PageLimits {
        max_links: 3,
        max_url_bytes: 100,
        ..PageLimits::default()
    };
    let text = format!(
        "<base href=\"http://other/{}/\"><a href=a>1</a><a href=\"/{}\">long</a>\
         <a href=b>2</a><a href=a>dup</a><a href=c>3</a><a href=d>4</a><a href=e>5</a>",
        "x".repeat(200),
        "y".repeat(200)
    );
    let result =
        test_support::run_both(&links::PARSER, &request, &base(), &text, limits, None).unwrap();
    assert_eq!(
        test_support::urls(&result)
            .into_iter()
            .map(|(u, _)| u)
            .collect::<Vec<_>>(),
        [
            "http://127.0.0.1:8080/profile/a",
            "http://127.0.0.1:8080/profile/b",
            "http://127.0.0.1:8080/profile/c"
        ]
    );
    let l = result.limits;
    assert_eq!(
        (l.base_href_ignored, l.urls_too_long, l.links_truncated),
        (1, 1, 2)
    );
    // A resolved URL over the limit is dropped too.
    let limits = PageLimits {
        max_url_bytes: 40,
        ..PageLimits::default()
    };
    let result = test_support::run_both(
        &links::PARSER,
        &request,
        &base(),
        "<a href=short>s</a><a href=a-relative-link-that-resolves-long>l</a>",
        limits,
        None,
    )
    .unwrap();
    assert_eq!(result.requests.len(), 1);
    assert_eq!(result.limits.urls_too_long, 1);
}

/// Unknown names and bad arguments are typed errors.
#[test]
fn registry_lookup() {
    let registry = Registry::standard();
    assert_eq!(
        registry.names(),
        ["city", "city_list", "links", "profile", "robots", "sitemap"]
    );
    assert_eq!(
        registry.get(&ParserSpec::named("nope")).err(),
        Some(ParseError::UnknownParser("nope".into()))
    );
    let mut spec = ParserSpec::named("profile");
    spec.args.insert("x".into(), "1".into());
    assert!(matches!(
        registry.get(&spec),
        Err(ParseError::BadArgs { parser, .. }) if parser == "profile"
    ));
}

/// `rel="nofollow"` links are skipped and counted only when the budget
/// obeys them; other `rel` values do not matter.
#[test]
fn nofollow_links_when_obeyed() {
    let request = Request::new(base().as_str(), ParserSpec::named("links"), 0);
    let text = r#"<a href=a rel="nofollow">1</a><a href=b rel="UGC NoFollow">2</a>
        <a href=c rel="noopener">3</a><a href=d>4</a>"#;
    let run = |obey: bool| {
        let agent = obey.then_some("crawler");
        test_support::run_both(
            &links::PARSER,
            &request,
            &base(),
            text,
            PageLimits::default(),
            agent,
        )
        .unwrap()
    };
    let all = run(false);
    assert_eq!((all.requests.len(), all.page.nofollow_links), (4, 0));
    let obeyed = run(true);
    assert_eq!(
        test_support::urls(&obeyed)
            .into_iter()
            .map(|(u, _)| u)
            .collect::<Vec<_>>(),
        [
            "http://127.0.0.1:8080/profile/c",
            "http://127.0.0.1:8080/profile/d"
        ]
    );
    assert_eq!(obeyed.page.nofollow_links, 2);
}

/// A parser's result carries the page's robots meta and canonical URL,
/// whatever the parser.
#[test]
fn document_meta_is_read() {
    let request = Request::new(base().as_str(), ParserSpec::named("links"), 0);
    let text =
        r#"<head><meta name="robots" content="noindex"><link rel="canonical" href="/x"></head>"#;
    let result = test_support::run_both(
        &links::PARSER,
        &request,
        &base(),
        text,
        PageLimits::default(),
        None,
    )
    .unwrap();
    assert!(result.page.noindex && !result.page.nofollow);
    assert_eq!(
        result.page.canonical.as_deref(),
        Some("http://127.0.0.1:8080/x")
    );
}

/// Issue 16: a page fetched with a `render` argument passes it on to the
/// requests it follows, whatever their parser; other arguments stay behind.
#[test]
fn followed_links_keep_the_render_argument() {
    let mut spec = ParserSpec::named("links");
    spec.args.insert("render".into(), "auto".into());
    spec.args.insert("other".into(), "x".into());
    let request = Request::new(base().to_string(), spec, 2);
    let url = base();
    let budget = Budget::new(PageLimits::default());
    let html = Html::parse_document("<a href=\"/x\">x</a>");
    let page = crate::parse::test_support::page(&request, &url, &html, &budget);
    let next = page.follow(url.join("/x").unwrap(), "profile");
    assert_eq!(next.parser.name, "profile");
    assert_eq!(
        next.parser.args,
        [("render".to_string(), "auto".to_string())].into()
    );
    assert_eq!(next.depth, 3);

    let plain = Request::new(base().to_string(), ParserSpec::named("links"), 0);
    let page = Page {
        request: &plain,
        ..page
    };
    assert!(page.follow(url.clone(), "links").parser.args.is_empty());
}
