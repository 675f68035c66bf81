use std::io::Write;

use super::*;
use crate::parse::{Budget, PageLimits, Registry};

fn pages() -> ParserSpec {
    let mut spec = ParserSpec::named("profile");
    spec.args.insert("ruleset".into(), "r1".into());
    spec
}

fn request() -> Request {
    Request::new("http://h/sitemap.xml", ParserSpec::sitemap(&pages()), 3)
}

fn run_with(body: &[u8], limits: PageLimits) -> ParseResult {
    let request = request();
    let url = Url::parse(&request.url).unwrap();
    PARSER
        .run_body(&request, &url, body, &Budget::new(limits))
        .unwrap()
}

fn run(body: &[u8]) -> ParseResult {
    run_with(body, PageLimits::default())
}

fn urls(result: &ParseResult) -> Vec<&str> {
    result.requests.iter().map(|r| r.url.as_str()).collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

const URLSET: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment with <url><loc>http://h/not-this</loc></url> inside -->
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url>
    <loc> http://h/profile/1?a=1&amp;b=2 </loc>
    <lastmod>2024-01-02</lastmod>
    <image:image><image:loc>http://h/img/1.png</image:loc></image:image>
  </url>
  <url><loc><![CDATA[http://h/profile/2?x=<y>]]></loc><lastmod>2024-01-02T03:04:05Z</lastmod></url>
  <URL><LOC>http://h/profile/&#51;#frag</LOC><lastmod>not a date</lastmod></URL>
  <sm:url xmlns:sm="http://www.sitemaps.org/schemas/sitemap/0.9"><sm:loc>http://h/profile/&#x34;</sm:loc></sm:url>
</urlset>
"#;

/// A urlset: each `<url><loc>` is a request for the pages' parser, one
/// level deeper, with its lastmod; entities, CDATA, comments, case and
/// prefixes are handled, and an image's `<image:loc>` is not a page.
#[test]
fn urlset_entries() {
    let result = run(URLSET.as_bytes());
    assert_eq!(
        urls(&result),
        [
            "http://h/profile/1?a=1&b=2",
            "http://h/profile/2?x=%3Cy%3E",
            "http://h/profile/3",
            "http://h/profile/4",
        ]
    );
    for r in &result.requests {
        assert_eq!(r.parser, pages());
        assert_eq!(r.depth, 4);
    }
    let lastmods: Vec<_> = result.requests.iter().map(|r| r.hints.lastmod).collect();
    assert_eq!(
        lastmods,
        [
            Some(1_704_153_600),
            Some(1_704_153_600 + 3 * 3600 + 4 * 60 + 5),
            None,
            None
        ]
    );
    assert_eq!(result.page.sitemap_dropped, 0);
    assert!(result.limits.is_empty(), "{:?}", result.limits);
}

/// A sitemap index: each `<sitemap><loc>` is a request for this same
/// sitemap spec.
#[test]
fn index_entries() {
    let xml = r#"<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
        <sitemap><loc>http://h/sitemaps/profiles-1.xml.gz</loc><lastmod>2024-05</lastmod></sitemap>
        <sitemap><loc>http://h/sitemaps/cities.xml</loc></sitemap>
    </sitemapindex>"#;
    let result = run(xml.as_bytes());
    assert_eq!(
        urls(&result),
        [
            "http://h/sitemaps/profiles-1.xml.gz",
            "http://h/sitemaps/cities.xml"
        ]
    );
    for r in &result.requests {
        assert_eq!(r.parser, request().parser);
        assert_eq!(r.depth, 4);
    }
    assert_eq!(result.requests[0].hints.lastmod, Some(1_714_521_600));
}

/// Gzip is recognised by its magic bytes and inflated: the same entries
/// as the plain file. A text sitemap gzipped works too.
#[test]
fn gzip_sitemaps() {
    assert_eq!(run(&gzip(URLSET.as_bytes())), run(URLSET.as_bytes()));
    let text = gzip(b"http://h/a\nhttp://h/b\n");
    assert_eq!(urls(&run(&text)), ["http://h/a", "http://h/b"]);
}

/// A text sitemap: one URL per line, blank lines and CRs ignored, a BOM
/// skipped, junk lines dropped and counted.
#[test]
fn text_sitemap() {
    let body = "\u{feff}http://h/a\r\n\n  https://h/b  \nnot a url\nftp://h/c\nhttp://h/d";
    let result = run(body.as_bytes());
    assert_eq!(urls(&result), ["http://h/a", "https://h/b", "http://h/d"]);
    assert_eq!(result.page.sitemap_dropped, 2);
    assert!(result.requests.iter().all(|r| r.hints.lastmod.is_none()));
}

/// Non-http(s), relative and missing locs, and an entry the file ends
/// inside, are dropped and counted; off-site ones are kept (scope is the
/// engine's).
#[test]
fn junk_entries() {
    let xml = r#"<urlset>
        <url><loc>javascript:alert(1)</loc></url>
        <url><loc>ftp://h/file</loc></url>
        <url><loc>/relative/path</loc></url>
        <url><lastmod>2024</lastmod></url>
        <url><loc>http://elsewhere.test/x</loc></url>
        <url><loc>http://h/ok</loc></url>
        <url><loc>http://h/unclosed"#;
    let result = run(xml.as_bytes());
    assert_eq!(urls(&result), ["http://elsewhere.test/x", "http://h/ok"]);
    assert_eq!(result.page.sitemap_dropped, 5);
}

/// A loc longer than `max_url_bytes` is not kept whole and is counted as
/// too long.
#[test]
fn long_locs() {
    let xml = format!(
        "<urlset><url><loc>http://h/{}</loc></url><url><loc>http://h/ok</loc></url></urlset>",
        "x".repeat(500)
    );
    let limits = PageLimits {
        max_url_bytes: 100,
        ..PageLimits::default()
    };
    let result = run_with(xml.as_bytes(), limits);
    assert_eq!(urls(&result), ["http://h/ok"]);
    assert_eq!(result.limits.urls_too_long, 1);
    let text = format!("http://h/{}\nhttp://h/ok\n", "y".repeat(500));
    let result = run_with(text.as_bytes(), limits);
    assert_eq!(urls(&result), ["http://h/ok"]);
    assert_eq!(result.limits.urls_too_long, 1);
}

/// The protocol's limit: of 60,000 URLs, 50,000 are kept and 10,000
/// dropped and counted (the default reply size holds the 50,000).
#[test]
fn url_limit() {
    let mut xml = String::from("<urlset>");
    for i in 0..60_000 {
        xml.push_str(&format!(
            "<url><loc>http://127.0.0.1:8080/profile/{i}</loc></url>"
        ));
    }
    xml.push_str("</urlset>");
    let result = run(xml.as_bytes());
    assert_eq!(result.requests.len(), 50_000);
    assert_eq!(result.page.sitemap_dropped, 10_000);
    assert_eq!(
        result.requests[49_999].url,
        "http://127.0.0.1:8080/profile/49999"
    );
    assert!(result.limits.is_empty(), "{:?}", result.limits);
}

/// A plain sitemap past `max_sitemap_bytes` is parsed up to the limit and
/// counted as cut, not failed.
#[test]
fn byte_limit_plain() {
    let mut xml = String::from("<urlset>");
    for i in 0..100 {
        xml.push_str(&format!("<url><loc>http://h/{i:03}</loc></url>"));
    }
    let entry = "<url><loc>http://h/000</loc></url>".len() as u64;
    let limits = PageLimits {
        max_sitemap_bytes: 8 + 10 * entry + 5,
        ..PageLimits::default()
    };
    let result = run_with(xml.as_bytes(), limits);
    assert_eq!(result.requests.len(), 10);
    assert_eq!(result.limits.page_truncated, 1);
    assert_eq!(result.page.sitemap_dropped, 1, "the entry cut in half");
}

/// A gzip bomb (64 MiB of zeros in about 64 KiB) is inflated only up to
/// `max_sitemap_bytes`, one byte past it to tell, through fixed buffers,
/// and the sitemap is counted as cut.
#[test]
fn gzip_bomb_stops_at_the_limit() {
    let member = gzip(&vec![0u8; 1 << 20]);
    let bomb: Vec<u8> = std::iter::repeat_n(&member[..], 64)
        .flatten()
        .copied()
        .collect();
    assert!(bomb.len() < 128 * 1024, "{}", bomb.len());
    let limit = 256 * 1024;
    // What the parser reads through: the inflater behind the cap.
    let mut capped = Capped::new(MultiGzDecoder::new(&bomb[..]), limit);
    let mut sink = [0u8; 4096];
    let mut total = 0u64;
    loop {
        let n = capped.read(&mut sink).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    assert_eq!(total, limit);
    assert!(capped.cut);
    let limits = PageLimits {
        max_sitemap_bytes: limit,
        ..PageLimits::default()
    };
    let started = std::time::Instant::now();
    let result = run_with(&bomb, limits);
    assert!(result.requests.is_empty());
    assert_eq!(result.limits.page_truncated, 1);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// A gzip stream cut short (the fetch's cap) keeps what inflated before
/// the cut and is counted as cut.
#[test]
fn cut_gzip() {
    let mut xml = String::from("<urlset>");
    for i in 0..2000 {
        xml.push_str(&format!("<url><loc>http://h/p/{i}</loc></url>"));
    }
    let gz = gzip(xml.as_bytes());
    let result = run(&gz[..gz.len() / 2]);
    assert!(!result.requests.is_empty() && result.requests.len() < 2000);
    assert_eq!(result.limits.page_truncated, 1);
}

/// W3C datetimes in every form the protocol allows, as Unix seconds;
/// anything else is None.
#[test]
fn lastmod_forms() {
    assert_eq!(w3c_datetime("1970"), Some(0));
    assert_eq!(w3c_datetime("2024"), Some(1_704_067_200));
    assert_eq!(w3c_datetime("2024-03"), Some(1_709_251_200));
    assert_eq!(w3c_datetime("2024-02-29"), Some(1_709_164_800));
    assert_eq!(
        w3c_datetime("2024-02-29T10:30Z"),
        Some(1_709_164_800 + 37_800)
    );
    assert_eq!(
        w3c_datetime("2024-02-29T10:30:15+01:00"),
        Some(1_709_164_800 + 37_815 - 3600)
    );
    assert_eq!(
        w3c_datetime("2024-02-29T10:30:15.123-02:30"),
        Some(1_709_164_800 + 37_815 + 9000)
    );
    assert_eq!(
        w3c_datetime(" 2024-02-29T10:30:15 "),
        Some(1_709_164_800 + 37_815)
    );
    for bad in [
        "",
        "24",
        "2024-13",
        "2023-02-29",
        "2024-1-1",
        "2024-01-01T25:00Z",
        "2024-01-01T10Z",
        "2024-01-01T10:00+5",
        "2024-01-01 10:00",
        "2024-01-01T10:00:00.Z",
        "yesterday",
        "2024-01-01T10:00ZZ",
    ] {
        assert_eq!(w3c_datetime(bad), None, "{bad:?}");
    }
}

/// The spec needs its pages' parser; other arguments must be `arg.*`.
#[test]
fn arguments_are_checked() {
    let registry = Registry::standard();
    assert!(registry.get(&request().parser).is_ok());
    let bare = ParserSpec::named(rpcsupport::SITEMAP_PARSER);
    assert!(matches!(
        registry.get(&bare),
        Err(ParseError::BadArgs { parser, .. }) if parser == "sitemap"
    ));
    let mut odd = request().parser;
    odd.args.insert("x".into(), "1".into());
    assert!(matches!(
        registry.get(&odd),
        Err(ParseError::BadArgs { .. })
    ));
}

/// A text sitemap the fetch cut (counted before the parser runs) leaves
/// out its partial last line.
#[test]
fn text_cut_by_the_fetch() {
    let request = request();
    let url = Url::parse(&request.url).unwrap();
    let budget = Budget::new(PageLimits::default());
    budget.count(|c| c.page_truncated = 1);
    let result = PARSER
        .run_body(
            &request,
            &url,
            b"http://h/a\nhttp://h/b\nhttp://h/partia",
            &budget,
        )
        .unwrap();
    assert_eq!(urls(&result), ["http://h/a", "http://h/b"]);
    assert_eq!(result.limits.page_truncated, 1);
}
