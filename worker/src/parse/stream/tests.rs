//! The streaming path against the tree path on the markup where a tree
//! builder and a tokenizer could disagree.

use url::Url;

use crate::parse::test_support::run_both;
use crate::parse::{links, PageLimits};
use rpcsupport::{ParseResult, ParserSpec, Request};

/// Both paths on `html` (they must agree: `run_both` checks), obeying
/// nofollow for the agent `crawler`.
fn both(html: &str) -> ParseResult {
    let url = Url::parse("http://h/dir/page").unwrap();
    let request = Request::new(url.as_str(), ParserSpec::named("links"), 0);
    run_both(
        &links::PARSER,
        &request,
        &url,
        html,
        PageLimits::default(),
        Some("crawler"),
    )
    .unwrap()
}

fn urls(result: &ParseResult) -> Vec<&str> {
    result.requests.iter().map(|r| r.url.as_str()).collect()
}

/// Raw text (`<script>`, `<style>`, `<textarea>`, `<title>`, `<noscript>`,
/// `<xmp>`, `<iframe>`, `<plaintext>`) hides the tags in it, comments
/// too; character references in hrefs are decoded.
#[test]
fn raw_text_and_references() {
    let r = both(
        r#"<title><a href=t></title><script>document.write("<a href=s>")</script>
        <style>a{}</style><textarea><a href=ta></textarea><noscript><a href=n></noscript>
        <!-- <a href=c> --><xmp><a href=x></xmp><iframe><a href=i></iframe>
        <a href="q?a=1&amp;b=2&lt;">ok</a><a href=&#x2F;abs>abs</a>
        <plaintext><a href=p>"#,
    );
    assert_eq!(urls(&r), ["http://h/dir/q?a=1&b=2%3C", "http://h/abs"]);
}

/// A `<base href>` after the links still applies to them, only the first
/// counts, wherever it is; `<a>` in `<template>`, `<svg>` and `<math>`
/// are links in the tree too, `<svg>` CDATA is text.
#[test]
fn base_template_and_foreign_content() {
    let r = both(
        r#"<a href=1>1</a><template><a href=2></template><base href="http://b/x/">
        <base href="http://c/"><svg><a href=3></a><![CDATA[<a href=4>]]><style><a href=5></style>
        <foreignObject><script><a href=6></script><a href=7></foreignObject></svg>
        <math><mi><a href=8></mi></math><svg><p><title><a href=9></title>"#,
    );
    assert_eq!(
        urls(&r),
        [
            "http://b/x/1",
            "http://b/x/2",
            "http://b/x/3",
            "http://b/x/5",
            "http://b/x/7",
            "http://b/x/8"
        ]
    );
}

/// The canonical link is read in the head only: implied head, after
/// `</head>`, in a head `<template>`; not after text or a body tag.
#[test]
fn canonical_only_in_head() {
    let c = |html: &str| both(html).page.canonical;
    let yes = Some("http://h/c".to_string());
    assert_eq!(c(r#"<link rel=canonical href=/c>"#), yes);
    assert_eq!(
        c(r#"<!doctype html><html><head><title>t</title><link rel="x canonical" href=/c>"#),
        yes
    );
    assert_eq!(
        c(r#"<head></head> <link rel=canonical href=/c><body>"#),
        yes
    );
    assert_eq!(
        c(r#"<head><template><p>x<link rel=canonical href=/c></template>"#),
        yes
    );
    assert_eq!(
        c(r#"<head><noscript><link rel=canonical href=/a></noscript><link rel=canonical href=/c>"#),
        yes
    );
    assert_eq!(c(r#"text<link rel=canonical href=/c>"#), None);
    assert_eq!(c(r#"<head><p><link rel=canonical href=/c>"#), None);
    assert_eq!(
        c(r#"<head></head><noscript></noscript><link rel=canonical href=/c>"#),
        None
    );
    assert_eq!(c(r#"<body><link rel=canonical href=/c>"#), None);
    assert_eq!(c(r#"</head>x<link rel=canonical href=/c>"#), None);
}

/// Robots meta anywhere, `rel=nofollow` links skipped and counted, and
/// the limits counted alike on both paths.
#[test]
fn meta_nofollow_and_limits() {
    let r = both(
        r#"<p>x</p><meta name=Crawler content="noindex"><a href=a rel=nofollow>
        <a href=b>b</a><a href=b>again</a><a href=javascript:x><a href=#top>"#,
    );
    assert!(r.page.noindex && !r.page.nofollow);
    assert_eq!(urls(&r), ["http://h/dir/b"]);
    assert_eq!(r.page.nofollow_links, 1);
    let long = format!(
        "<base href=/{}><a href=/{}>",
        "b".repeat(9000),
        "a".repeat(9000)
    );
    let r = both(&long);
    assert_eq!((r.limits.base_href_ignored, r.limits.urls_too_long), (1, 1));
}

/// Unclosed and misnested tags, void elements and stray end tags.
#[test]
fn malformed_markup() {
    let r = both(
        r#"<div><a href=1><span><a href=2></div></a></span><a href=3 href=4><br/></br>
        <table><tr><td><a href=5></td></tr></table><select><a href=6></select>
        <svg><g><a href=7></svg><a href=8><frameset><a href=9>"#,
    );
    assert_eq!(urls(&r).len(), 8);
}

/// An HTML tag right inside `<foreignObject>` does not end the `<svg>`
/// around it: a CDATA section after it is still foreign content's.
#[test]
fn integration_points_keep_foreign_content() {
    let r = both(
        r#"<svg><foreignObject><div>x</div></foreignObject><![CDATA[<a href=1>]]></svg><a href=2>"#,
    );
    assert_eq!(urls(&r), ["http://h/dir/2"]);
}

/// Tag soup from a fixed seed, bounded in count: each page is `parts`
/// fragments drawn from the markup the two paths could disagree on.
fn soup(seed: u64, parts: usize) -> String {
    const PIECES: &[&str] = &[
        "<a href=1>",
        "<a href=2 rel=nofollow>",
        "<a href='3#x'>",
        "</a>",
        "<a href=&#x34;>",
        "<base href=/b/>",
        "<base href=http://o/>",
        "<meta name=robots content=noindex>",
        "<meta name=robots content=nofollow>",
        "<link rel=canonical href=/c1>",
        "<link rel=canonical href=/c2>",
        "<head>",
        "</head>",
        "<body>",
        "</body>",
        "<html>",
        "</html>",
        "<svg>",
        "</svg>",
        "<math>",
        "</math>",
        "<foreignObject>",
        "</foreignObject>",
        "<mi>",
        "</mi>",
        "<template>",
        "</template>",
        "<script>",
        "</script>",
        "<style>",
        "</style>",
        "<title>",
        "</title>",
        "<textarea>",
        "</textarea>",
        "<noscript>",
        "</noscript>",
        "<table>",
        "</table>",
        "<tr>",
        "<td>",
        "</td>",
        "<p>",
        "</p>",
        "<div>",
        "</div>",
        "<select>",
        "</select>",
        "<option>",
        "<frameset>",
        "<iframe>",
        "</iframe>",
        "<!-- c -->",
        "<![CDATA[<a href=5>]]>",
        "text",
        " ",
        "\n",
        "<br>",
        "</br>",
        "<b>",
        "</b>",
        "<font color=red>",
        "<xmp>",
        "</xmp>",
        "<a href=6>",
        "<form>",
        "</form>",
        "<li>",
        "<ul>",
        "<h1>",
        "<span>",
        "<img src=x>",
        "<input>",
        "<button>",
        "<object>",
        "<applet>",
        "<marquee>",
        "<caption>",
        "<colgroup>",
        "<col>",
        "<tbody>",
        "<th>",
        "<desc>",
        "</desc>",
        "<annotation-xml encoding=text/html>",
        "</annotation-xml>",
        "<nobr>",
        "<dd>",
    ];
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = String::new();
    for _ in 0..parts {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push_str(PIECES[(x % PIECES.len() as u64) as usize]);
    }
    out
}

/// Fuzz (2,000 fixed-seed pages of 40-piece tag soup): both paths give the same requests, limits and page meta on all
/// but a few, the known differences of the module doc (a tree-only count of
/// cloned `nofollow` links is set aside and counted), which must stay
/// under 1% of pages and are printed.
#[test]
fn tag_soup_agrees() {
    let url = Url::parse("http://h/dir/page").unwrap();
    let request = Request::new(url.as_str(), ParserSpec::named("links"), 0);
    let (mut differ, mut clones) = (Vec::new(), 0);
    for seed in 0..2_000 {
        let html = soup(seed, 40);
        let run = |stream: bool| {
            let budget = crate::parse::Budget::new(PageLimits {
                stream,
                ..PageLimits::default()
            })
            .obeying(true, "crawler");
            links::PARSER
                .run_with(&request, &url, &html, &budget)
                .unwrap()
        };
        let (tree, mut streamed) = (run(false), run(true));
        if tree.page.nofollow_links > streamed.page.nofollow_links {
            clones += 1;
            streamed.page.nofollow_links = tree.page.nofollow_links;
        }
        if tree != streamed {
            differ.push(format!(
                "{html:?}\n  tree   {:?} {:?} {:?}\n  stream {:?} {:?} {:?}",
                urls(&tree),
                tree.limits,
                tree.page,
                urls(&streamed),
                streamed.limits,
                streamed.page
            ));
        }
    }
    for d in differ.iter().take(3) {
        eprintln!("tag soup, known difference: {d}");
    }
    assert!(
        differ.len() < 20,
        "{} differ:\n{}",
        differ.len(),
        differ[..differ.len().min(6)].join("\n")
    );
    assert!(clones < 100, "{clones} pages count cloned nofollow links");
    eprintln!(
        "tag soup: {} of 2000 pages differ, {clones} more count cloned nofollow links apart",
        differ.len()
    );
}

/// A frameset document: the `<head>`'s meta and canonical count, nothing
/// after `<frameset>` does (not even `<noframes>` links); links before it
/// count (the tree detaches them, but scraper still selects them); a
/// `<frameset>` after the body shows something is ignored.
#[test]
fn frameset_documents() {
    let r = both(
        r#"<!DOCTYPE html><html><head><meta name=robots content=nofollow>
        <link rel=canonical href=/c></head><frameset><frame src=/f>
        <noframes><a href=/n>n</a></noframes></frameset><a href=/after>"#,
    );
    assert!(urls(&r).is_empty());
    assert!(r.page.nofollow);
    assert_eq!(r.page.canonical.as_deref(), Some("http://h/c"));
    let r = both(r#"<a href=/detached><frameset><a href=/ignored>"#);
    assert_eq!(urls(&r), ["http://h/detached"]);
    let r = both(r#"<p>text</p><a href=/kept><frameset><a href=/too>"#);
    assert_eq!(urls(&r), ["http://h/kept", "http://h/too"]);
}

/// The foreign element stack is as deep as the page nests, and the
/// worker's prescan cuts a page at `max_html_depth` before it is parsed,
/// SVG nesting included.
#[test]
fn foreign_nesting_is_cut_by_the_prescan() {
    let text = format!("<svg>{}<a href=x>", "<g>".repeat(2_000));
    let prefix = crate::prescan::html_prefix(&text, 250_000, 512);
    assert!(prefix.is_cut(&text));
    assert!(prefix.end < 600 * 3, "cut at {}", prefix.end);
}
