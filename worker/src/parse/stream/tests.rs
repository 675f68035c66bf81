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
