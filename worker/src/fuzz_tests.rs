//! A bounded fuzz run over everything a hostile page can reach: charset
//! decoding, the pre-parse cut, HTML parsing with every parser (built-in
//! and rules), link resolution. Inputs come from a seeded generator (mangled real pages,
//! random markup, random bytes), so a failure reproduces; the bound keeps it
//! to a couple of seconds. The property: nothing panics, and every link a
//! parser returns is an absolute http(s) URL without a fragment.

use rpcsupport::{ParseError, ParseResult, ParserSpec, Request};
use url::Url;

use crate::decode::decode;
use crate::parse::{resolve, run_tree, Budget, Content, PageLimits, Registry};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const HREFS: &[&str] = &[
    "/profile/1",
    "../profile/2",
    "3",
    "?page=2",
    "#top",
    "",
    " ",
    "javascript:alert(1)",
    "mailto:a@b",
    "data:text/html,x",
    "http://[::1",
    "http://例え.テスト/",
    "//other.host/x",
    "http:///x",
    "%zz",
    "/a b",
    "http://h/%E0%A4%A",
    "https://xn--bcher-kva.example/",
    "\u{0}",
    "http://h:99999/",
    "file:///etc/passwd",
];
const TAGS: &[&str] = &[
    "div", "a", "table", "td", "ul", "li", "p", "base", "meta", "span", "script", "style", "tr",
];
const CLASSES: &[&str] = &[
    "city-list",
    "profile-list",
    "pager",
    "next",
    "profile",
    "guess-you-like",
    "name",
];
const CHARSETS: &[&str] = &[
    "utf-8",
    "gbk",
    "big5",
    "shift_jis",
    "windows-1252",
    "x-nonsense",
    "utf-16",
    "",
];

fn random_markup(rng: &mut Rng) -> String {
    let mut s = String::new();
    if rng.below(3) == 0 {
        s.push_str(&format!("<meta charset=\"{}\">", rng.pick(CHARSETS)));
    }
    for _ in 0..rng.below(60) {
        let tag = rng.pick(TAGS);
        match rng.below(6) {
            0 => s.push_str(&format!("<{tag} class=\"{}\">", rng.pick(CLASSES))),
            1 => s.push_str(&format!("<a href=\"{}\">x</a>", rng.pick(HREFS))),
            2 => s.push_str(&format!("<base href=\"{}\">", rng.pick(HREFS))),
            3 => s.push_str(&format!("</{tag}>")),
            4 => s.push_str(&format!(
                "<td data-field=\"{}\">{}</td>",
                rng.pick(&["age", "name", "height"]),
                rng.next()
            )),
            _ => s.push_str("text 文字 &amp; &#x0; &bogus; <!-- -->"),
        }
    }
    s
}

fn mangle(mut bytes: Vec<u8>, rng: &mut Rng) -> Vec<u8> {
    for _ in 0..rng.below(20) {
        if bytes.is_empty() {
            break;
        }
        let i = rng.below(bytes.len());
        match rng.below(3) {
            0 => bytes[i] = rng.next() as u8,
            1 => bytes.truncate(i),
            _ => bytes.insert(i, b"<>\"'&#\xff\xfe"[rng.below(8)]),
        }
    }
    bytes
}

/// Thousands of hostile inputs through decode, every parser and link
/// resolution: no panic, only well-formed links.
#[test]
fn hostile_pages_never_panic() {
    let registry = Registry::standard();
    let fixtures: Vec<Vec<u8>> = [
        "city_list.html",
        "city.html",
        "profile.html",
        "profile_gbk.html",
        "profile_base.html",
    ]
    .iter()
    .map(|f| crate::parse::test_support::fixture(f))
    .collect();
    let rules = crate::rules::compile(
        &crate::rules::parse_file(include_str!("../../examples/demosite.rules.toml")).unwrap(),
        &registry.names(),
    )
    .unwrap();
    let base = Url::parse("http://127.0.0.1:8080/city/x/").unwrap();
    let mut rng = Rng(0x5eed_cafe_f00d_1234);
    for round in 0..2_000 {
        let bytes = match round % 3 {
            0 => mangle(fixtures[rng.below(fixtures.len())].clone(), &mut rng),
            1 => random_markup(&mut rng).into_bytes(),
            _ => (0..rng.below(4096)).map(|_| rng.next() as u8).collect(),
        };
        let content_type = format!("text/html; charset={}", rng.pick(CHARSETS));
        let text = decode(
            &bytes,
            Some(&content_type)
                .filter(|_| round % 2 == 0)
                .map(|s| s.as_str()),
        )
        .text;
        // The prescan cuts anywhere on a char boundary and never panics.
        let prefix = crate::prescan::html_prefix(&text, 1 + rng.below(50), 1 + rng.below(8));
        assert!(prefix.end <= text.len() && text.is_char_boundary(prefix.end));
        // Parsed once for every tree parse below: the parsers' own code is
        // what this fuzzes, and html5ever gives the same tree each time.
        let html = scraper::Html::parse_document(&text);
        let budget = || Budget::new(PageLimits::default());
        let well_formed = |name: &str, run: Result<ParseResult, ParseError>| {
            // A parse error is a fine answer to garbage; a panic is not.
            if let Ok(result) = run {
                for r in &result.requests {
                    let u = Url::parse(&r.url)
                        .unwrap_or_else(|e| panic!("round {round}: {name} gave {:?}: {e}", r.url));
                    assert!(
                        matches!(u.scheme(), "http" | "https") && u.fragment().is_none(),
                        "{}",
                        r.url
                    );
                }
            }
        };
        for name in registry.names() {
            let spec = if name == rpcsupport::SITEMAP_PARSER {
                ParserSpec::sitemap(&ParserSpec::named("links"))
            } else {
                ParserSpec::named(name)
            };
            let request = Request::new(base.to_string(), spec, 1);
            let parser = registry.get(&request.parser).unwrap();
            match parser.content {
                // The sitemap parser reads the bytes themselves.
                Content::Sitemap => {
                    well_formed(name, parser.run_body(&request, &base, &bytes, &budget()))
                }
                Content::Text => well_formed(name, parser.run(&request, &base, &text)),
                Content::Html => {
                    // The streaming path, as crawls run it, where the
                    // parser has one; the tree path for every parser.
                    if parser.stream.is_some() {
                        well_formed(name, parser.run(&request, &base, &text));
                    }
                    let tree = run_tree(&html, &request, &base, &text, &budget(), parser.parse);
                    well_formed(name, tree);
                }
            }
        }
        for rule in ["home", "city_page", "profile_page"] {
            let request = Request::new(base.to_string(), rules.spec(rule), 1);
            let run = run_tree(&html, &request, &base, &text, &budget(), |page| {
                rules.apply(rule, page)
            });
            well_formed(rule, run);
        }
        let href = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
        if let Some(u) = resolve(&base, &href) {
            assert!(matches!(u.scheme(), "http" | "https") && u.fragment().is_none());
        }
    }
}
