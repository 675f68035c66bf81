//! The demo parsers' streaming path against their tree path on tag soup
//! made of their own markup.

use url::Url;

use crate::parse::test_support::run_both;
use crate::parse::{city, city_list, profile, PageLimits};
use rpcsupport::{ParserSpec, Request};

/// Markup that may leave a page strict, among the demo pages' own.
const BENIGN: &[&str] = &[
    "31岁",
    "王&amp;芳",
    " ",
    "\n",
    "&#32;\r\n",
    "<th>k</th>",
    "<br>",
    "<br/>",
    "<img data-field=age>",
    "<base href=/b/>",
    "<meta name=robots content=nofollow>",
    "<link rel=canonical href=/c>",
    "<script>x</script>",
    "<title>t</title>",
    "<!-- c -->",
    "<a href=/n rel=nofollow>n</a>",
    "<b>b</b>",
    "<span>s</span>",
    "<SPAN Data-Field=name>S</SPAN>",
    "<hr>",
];

/// Markup the strict tree must refuse, or that the tree builder reads
/// otherwise than nested as written.
const ODD: &[&str] = &[
    "</span>",
    "</td>",
    "<td>",
    "<tr>",
    "<p>",
    "<li>",
    "<head>",
    "</head>",
    "<body>",
    "</body>",
    "<html>",
    "</html>",
    "<form>",
    "<svg>",
    "<template>",
    "<select>",
    "<caption>",
    "<frameset>",
    "\u{0}",
];

/// Elements soups nest properly: start tag and name.
const NESTED: &[(&str, &str)] = &[
    ("<table class=profile data-id=9>", "table"),
    ("<table class='x profile'>", "table"),
    ("<table>", "table"),
    ("<tbody>", "tbody"),
    ("<tr>", "tr"),
    ("<td data-field=name>", "td"),
    ("<td data-field=age>", "td"),
    ("<th data-field=height>", "th"),
    ("<span data-field=city>", "span"),
    ("<div class=guess-you-like>", "div"),
    ("<div class=city-list>", "div"),
    ("<div class=pager>", "div"),
    ("<ul class=profile-list>", "ul"),
    ("<ul>", "ul"),
    ("<li>", "li"),
    ("<a href=/profile/7>", "a"),
    ("<a href=?page=2 class=next>", "a"),
    ("<p>", "p"),
    ("<h2>", "h2"),
    ("<b>", "b"),
];

/// Soup from a fixed seed: an optional well-formed start, then `parts`
/// steps, each closing the element open last, opening one of [`NESTED`]
/// (properly nested as far as tags go; the tree builder may still read it
/// otherwise) or adding one of [`BENIGN`] or, rarely, [`ODD`].
fn soup(seed: u64, parts: usize) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    let mut out = String::new();
    if next(2) == 0 {
        out.push_str("<!DOCTYPE html><html><head><title>t</title></head><body>");
    }
    let mut open = Vec::new();
    for _ in 0..parts {
        match next(10) {
            0..=2 => {
                if let Some(name) = open.pop() {
                    out.push_str(&format!("</{name}>"));
                }
            }
            3..=7 => {
                // Mostly what may be there, as a page would have it.
                let within = |names: &[&str]| open.iter().any(|o| names.contains(o));
                let fits = |name: &str| match open.last().copied() {
                    Some("table" | "tbody") => name == "tr",
                    Some("tr") => matches!(name, "td" | "th"),
                    top => match name {
                        "tr" | "td" | "th" | "tbody" => false,
                        "li" => matches!(top, Some("ul")),
                        "table" => !within(&["p", "a", "b"]),
                        "div" | "ul" | "p" | "h2" => !within(&["p", "h2"]),
                        "a" => !within(&["a"]),
                        _ => true,
                    },
                };
                let (tag, name) = NESTED[next(NESTED.len())];
                if fits(name) || next(8) == 0 {
                    out.push_str(tag);
                    open.push(name);
                }
            }
            8 => out.push_str(BENIGN[next(BENIGN.len())]),
            _ if next(8) == 0 => out.push_str(ODD[next(ODD.len())]),
            _ => {}
        }
    }
    out
}

/// Fuzz (4,000 fixed-seed soups of 30 steps, each read by the three demo
/// parsers): the stream and the tree always agree, result or error, and
/// the stream reads a good share itself.
#[test]
fn demo_soup_agrees() {
    let url = Url::parse("http://h/profile/77").unwrap();
    let mut streamed = 0;
    for seed in 0..4_000 {
        let html = soup(seed, 30);
        for parser in [&city_list::PARSER, &city::PARSER, &profile::PARSER] {
            let request = Request::new(url.as_str(), ParserSpec::named(parser.name), 0);
            let limits = PageLimits {
                max_links: 3,
                ..PageLimits::default()
            };
            // `run_both` fails the test if the two differ.
            let _ = run_both(parser, &request, &url, &html, limits, Some("crawler"));
            streamed += usize::from(super::streams_whole(parser.name, &url, &html) == Some(true));
        }
    }
    assert!(streamed > 800, "only {streamed} soups streamed");
}
