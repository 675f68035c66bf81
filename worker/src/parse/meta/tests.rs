//! Robots directives, canonical URLs and what `finish` obeys.

use super::*;
use crate::parse::{Budget, PageLimits};
use rpcsupport::{ParserSpec, Request};
use scraper::Html;

fn meta(html: &str) -> Directives {
    robots_meta(&Html::parse_document(html), "crawler")
}

/// Robots meta: names and values in any case, comma lists, `none`,
/// our own agent's name, and other agents' tags ignored.
#[test]
fn robots_meta_tags() {
    let both = Directives {
        noindex: true,
        nofollow: true,
    };
    let noindex = Directives {
        noindex: true,
        nofollow: false,
    };
    assert_eq!(meta(r#"<meta name="robots" content="noindex">"#), noindex);
    assert_eq!(
        meta(r#"<meta name="ROBOTS" content="NoIndex, NOFOLLOW">"#),
        both
    );
    assert_eq!(meta(r#"<meta name="robots" content="none">"#), both);
    assert_eq!(
        meta(r#"<meta name="robots" content="all"><meta name="robots" content="index, follow">"#),
        Directives::default()
    );
    assert_eq!(meta(r#"<meta name="Crawler" content="noindex">"#), noindex);
    assert_eq!(
        meta(r#"<meta name="otherbot" content="noindex, nofollow">"#),
        Directives::default()
    );
    assert_eq!(
        meta(r#"<meta name="description" content="noindex">"#),
        Directives::default()
    );
    // A tag in the body is obeyed too.
    assert_eq!(
        meta(r#"<p>text</p><meta name="robots" content="noindex">"#),
        noindex
    );
    assert_eq!(agent_token("crawler/0.1"), "crawler");
    assert_eq!(agent_token("MyBot (+http://x)"), "MyBot");
}

/// X-Robots-Tag: plain values, several headers, `none`, our agent's
/// prefix obeyed, another agent's ignored, colon directives kept apart.
#[test]
fn robots_header_values() {
    let h = |vs: &[&str]| {
        robots_header(
            &vs.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
            "crawler",
        )
    };
    assert_eq!(h(&[]), Directives::default());
    assert_eq!(
        h(&["noindex, nofollow"]),
        Directives {
            noindex: true,
            nofollow: true
        }
    );
    assert_eq!(h(&["NONE"]), h(&["noindex", "nofollow"]));
    assert_eq!(h(&["otherbot: noindex"]), Directives::default());
    assert_eq!(h(&["otherbot: noindex, nofollow"]), Directives::default());
    assert_eq!(
        h(&["otherbot: noindex", "crawler: nofollow"]),
        Directives {
            noindex: false,
            nofollow: true
        }
    );
    assert_eq!(
        h(&["unavailable_after: 25 Jun 2010 15:00:00 PST, noindex"]),
        Directives {
            noindex: true,
            nofollow: false
        }
    );
}

/// `rel` is a space-separated list in any case.
#[test]
fn rel_nofollow() {
    assert!(is_nofollow("nofollow"));
    assert!(is_nofollow("ugc  NoFollow"));
    assert!(is_nofollow("noopener nofollow noreferrer"));
    assert!(!is_nofollow("noopener"));
    assert!(!is_nofollow("nofollowme"));
    assert!(!is_nofollow(""));
}

fn canonical_of(url: &str, html: &str, max_url_bytes: usize) -> Option<String> {
    let request = Request::new(url, ParserSpec::named("links"), 0);
    let url = Url::parse(url).unwrap();
    let html = Html::parse_document(html);
    let budget = Budget::new(PageLimits {
        max_url_bytes,
        ..PageLimits::default()
    });
    let page = crate::parse::test_support::page(&request, &url, &html, &budget);
    canonical(&page).map(String::from)
}

/// Canonical links: relative, absolute, against `<base href>`, the
/// first one only, the page's own URL (fragment aside) and an
/// over-long one give none.
#[test]
fn canonical_links() {
    let page = "http://h/profile/7/print";
    let c = |html: &str| canonical_of(page, html, 8192);
    assert_eq!(
        c(r#"<link rel="canonical" href="/profile/7">"#).as_deref(),
        Some("http://h/profile/7")
    );
    assert_eq!(
        c(r#"<link rel="Canonical" href="http://h/profile/7#x">"#).as_deref(),
        Some("http://h/profile/7")
    );
    assert_eq!(
        c(r#"<base href="http://h/a/"><link rel="canonical" href="b">"#).as_deref(),
        Some("http://h/a/b")
    );
    assert_eq!(
        c(r#"<link rel="canonical" href="/1"><link rel="canonical" href="/2">"#).as_deref(),
        Some("http://h/1")
    );
    assert_eq!(c(r#"<link rel="canonical" href="print#top">"#), None);
    assert_eq!(c(r#"<link rel="alternate" href="/x">"#), None);
    assert_eq!(
        c(r#"<p>user text</p><link rel="canonical" href="/elsewhere">"#),
        None
    );
    assert_eq!(c(r#"<link rel="canonical" href="javascript:x">"#), None);
    let long = format!(r#"<link rel="canonical" href="/{}">"#, "x".repeat(200));
    assert_eq!(canonical_of(page, &long, 100), None);
    assert!(canonical_of(page, &long, 8192).is_some());
}

/// `Link` headers: the canonical one among several, relative to the
/// page, not the page itself, not too long.
#[test]
fn canonical_link_headers() {
    let page = Url::parse("http://h/a?print=1").unwrap();
    let c = |vs: &[&str], max| {
        canonical_header(
            &vs.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
            &page,
            max,
        )
        .map(String::from)
    };
    assert_eq!(
        c(
            &[r#"</style.css>; rel=preload, </a>; rel="canonical""#],
            100
        )
        .as_deref(),
        Some("http://h/a")
    );
    assert_eq!(
        c(&["<http://other/x>; REL=canonical"], 100).as_deref(),
        Some("http://other/x")
    );
    assert_eq!(c(&[r#"</a?print=1>; rel="canonical""#], 100), None);
    assert_eq!(c(&[r#"</a>; rel="next""#], 100), None);
    assert_eq!(c(&[r#"</aaaaaaaaaaaaaaa>; rel="canonical""#], 12), None);
}

/// Obeying: nofollow empties the requests, noindex the items (counted);
/// without the policy the flags are only reported.
#[test]
fn finish_obeys_when_asked() {
    let url = Url::parse("http://h/p").unwrap();
    let result = ParseResult {
        requests: vec![Request::new("http://h/q", ParserSpec::named("links"), 1)],
        items: vec![rpcsupport::Item {
            url: "http://h/p".into(),
            kind: "k".into(),
            id: None,
            payload: Default::default(),
        }],
        ..ParseResult::default()
    };
    let headers = PageHeaders {
        robots: vec!["noindex, nofollow".into()],
        links: vec!["</c>; rel=canonical".into()],
        ..PageHeaders::default()
    };
    let mut off = result.clone();
    finish(
        &mut off,
        &headers,
        &FetchPolicy::default(),
        &url,
        100,
        "crawler",
    );
    assert!(off.page.noindex && off.page.nofollow);
    assert_eq!((off.requests.len(), off.items.len()), (1, 1));
    assert_eq!(off.page.canonical.as_deref(), Some("http://h/c"));
    let obey = FetchPolicy {
        obey_robots_meta: true,
        ..FetchPolicy::default()
    };
    let mut on = result.clone();
    finish(&mut on, &headers, &obey, &url, 100, "crawler");
    assert_eq!((on.requests.len(), on.items.len()), (0, 0));
    assert_eq!(on.page.noindex_items, 1);
}
