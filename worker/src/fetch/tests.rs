//! The fetcher's pure helpers: content types and `Retry-After`.

use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::response::{is_html, retry_after};

/// Only HTML and XHTML pass, whatever the case or parameters.
#[test]
fn html_content_types() {
    assert!(is_html("text/html"));
    assert!(is_html("Text/HTML; charset=gbk"));
    assert!(is_html("application/xhtml+xml"));
    assert!(!is_html("application/json"));
    assert!(!is_html("text/plain; charset=utf-8"));
    assert!(!is_html("image/png"));
}

/// Retry-After in seconds is read; the date form is ignored.
#[test]
fn retry_after_seconds() {
    let mut h = HeaderMap::new();
    assert_eq!(retry_after(&h), None);
    h.insert(RETRY_AFTER, " 120 ".parse().unwrap());
    assert_eq!(retry_after(&h), Some(120));
    h.insert(
        RETRY_AFTER,
        "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
    );
    assert_eq!(retry_after(&h), None);
}
