//! Rules compiled and run: selectors, follows, items and their limits.

use super::*;
use rpcsupport::Request;
use scraper::Html;
use url::Url;

const BUILTINS: &[&str] = &["profile", "city"];

fn set(toml: &str) -> RuleSet {
    compile(&parse_file(toml).unwrap(), BUILTINS).unwrap()
}

fn error(toml: &str) -> RuleError {
    match parse_file(toml) {
        Err(e) => e,
        Ok(file) => compile(&file, BUILTINS).unwrap_err(),
    }
}

fn run(set: &RuleSet, rule: &str, url: &str, html: &str) -> ParseResult {
    let request = Request {
        url: url.into(),
        parser: set.spec(rule),
        depth: 1,
        hints: Default::default(),
    };
    let url = Url::parse(url).unwrap();
    let html = Html::parse_document(html);
    set.apply(
        rule,
        &Page {
            request: &request,
            url: &url,
            html: &html,
            text: "",
            body: b"",
            budget: &Budget::new(PageLimits::default()),
        },
    )
    .unwrap()
}

const PAGE: &str = r#"<html><head><base href="/base/"></head><body>
    <h1 class="name"> 小明 </h1>
    <span class="age">31岁</span><span class="h">172.5 cm</span>
    <span class="weird">n/a</span>
    <a class="pic" href="/img/1.png" title="photo">p</a>
    <div id="bio"><b>hi</b> there</div>
    <ul><li class="tag">a</li><li class="tag"> b </li><li class="n">1</li><li class="n">x</li><li class="n">3</li></ul>
    <a class="more" href="p/2">2</a><a class="more" href="p/3#c">3</a><a class="more" href="mailto:x">m</a>
    <a class="more" href="http://other.example/p/4">4</a><a class="city" href="/city/x">c</a>
</body></html>"#;

/// Follow rules pick links by selector and pattern, resolve them
/// (base href, fragments), and mark rule vs built-in targets.
#[test]
fn follow_links() {
    let s = set(r#"
        [parsers.page]
        follow = [
            { select = "a.more", pattern = "/p/\\d+$", parser = "page" },
            { select = "a.city", parser = "city" },
        ]
    "#);
    let r = run(&s, "page", "http://h/x/y", PAGE);
    let got: Vec<(&str, &str, Option<&String>)> = r
        .requests
        .iter()
        .map(|q| {
            (
                q.url.as_str(),
                q.parser.name.as_str(),
                q.parser.args.get(RULESET_ARG),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("http://h/base/p/2", "page", Some(&s.id().to_string())),
            ("http://h/base/p/3", "page", Some(&s.id().to_string())),
            (
                "http://other.example/p/4",
                "page",
                Some(&s.id().to_string())
            ),
            ("http://h/city/x", "city", None),
        ]
    );
    assert_eq!(r.requests[0].depth, 2);
    assert!(r.items.is_empty());
}

/// Text, attribute, inner HTML, regex capture, trimming and types.
#[test]
fn item_fields() {
    let s = set(r##"
        [parsers.page.item]
        kind = "person"
        id = { from_url = '/people/(\d+)' }
        fields.name = { select = ".name" }
        fields.raw_name = { select = ".name", trim = false }
        fields.age = { select = ".age", regex = '(\d+)', type = "integer" }
        fields.height = { select = ".h", regex = '([\d.]+)', type = "float" }
        fields.photo = { select = "a.pic", attr = "href" }
        fields.bio = { select = "#bio", take = "inner_html" }
        fields.tags = { select = ".tag", type = "list" }
        fields.numbers = { select = ".n", type = "list", items = "integer" }
        fields.broken = { select = ".weird", type = "integer" }
        fields.missing = { select = ".nothing-here" }
        fields.nomatch = { select = ".age", regex = 'kg' }
    "##);
    let r = run(&s, "page", "http://h/people/42", PAGE);
    let item = &r.items[0];
    assert_eq!(item.kind, "person");
    assert_eq!(item.id.as_deref(), Some("42"));
    let p = &item.payload;
    assert_eq!(p["name"], Value::Str("小明".into()));
    assert_eq!(p["raw_name"], Value::Str(" 小明 ".into()));
    assert_eq!(p["age"], Value::Int(31));
    assert_eq!(p["height"], Value::Float(172.5));
    assert_eq!(p["photo"], Value::Str("/img/1.png".into()));
    assert_eq!(p["bio"], Value::Str("<b>hi</b> there".into()));
    assert_eq!(p["tags"], Value::List(vec!["a".into(), "b".into()]));
    assert_eq!(
        p["numbers"],
        Value::List(vec![Value::Int(1), Value::Int(3)])
    );
    for absent in ["broken", "missing", "nomatch"] {
        assert!(!p.contains_key(absent), "{absent} should be absent");
    }
}

/// The id can come from an element's attribute, through a regex; a
/// missing id element leaves the id to be derived.
#[test]
fn id_from_element() {
    let s = set(r#"
        [parsers.page.item]
        kind = "k"
        id = { select = "a.pic", attr = "href", regex = '/img/(\d+)' }
    "#);
    assert_eq!(
        run(&s, "page", "http://h/", PAGE).items[0].id.as_deref(),
        Some("1")
    );
    assert_eq!(
        run(&s, "page", "http://h/", "<p>none</p>").items[0].id,
        None
    );
}

/// Issue 11: rule parsers get the same budget as built-in ones: links
/// past the cap are counted, and an item too big for the reply is
/// dropped and counted rather than sent.
#[test]
fn rules_obey_the_page_budget() {
    let s = set(r#"
        [parsers.page]
        follow = [{ parser = "page" }]
        [parsers.page.item]
        kind = "k"
        fields.all = { select = "*", take = "html", type = "list" }
    "#);
    let request = Request {
        url: "http://h/".into(),
        parser: s.spec("page"),
        depth: 0,
        hints: Default::default(),
    };
    let html: String = (0..50).map(|i| format!("<a href=/{i}>{i}</a>")).collect();
    let budget = Budget::new(PageLimits {
        max_links: 10,
        max_url_bytes: 100,
        max_result_bytes: 2000,
        ..PageLimits::default()
    });
    let r = s
        .run_with(
            "page",
            &request,
            &Url::parse("http://h/").unwrap(),
            &html,
            &budget,
        )
        .unwrap();
    assert_eq!(r.requests.len(), 10);
    assert_eq!(r.limits.links_truncated, 40);
    assert!(r.items.is_empty(), "the item is over the reply budget");
    assert_eq!(r.limits.results_dropped, 1);
}

/// What only the worker finds is reported with the parser and the key:
/// selectors that do not compile (the engine links no CSS parser), and
/// parsers this worker does not have. The spec's own checks
/// (`rpcsupport::rules`' tests go through each) run first: a file with a
/// bad regex and a bad selector is refused for the regex.
#[test]
fn worker_mistakes_name_parser_and_key() {
    let cases = [
        (
            r#"[parsers.a]
            follow = [{ select = "a[", parser = "a" }]"#,
            "a",
            "follow[0].select",
            "bad CSS selector",
        ),
        (
            r#"[parsers.a.item]
            kind = "k"
            id = { select = "p[" }"#,
            "a",
            "item.id.select",
            "bad CSS selector",
        ),
        (
            r#"[parsers.a.item]
            kind = "k"
            fields.x = { select = ":nope" }"#,
            "a",
            "item.fields.x.select",
            "bad CSS selector",
        ),
        (
            r#"[parsers.a]
            follow = [{ parser = "nope" }]"#,
            "a",
            "follow[0].parser",
            "unknown parser",
        ),
        (r#"start = "nope""#, "", "start", "unknown parser"),
        (
            r#"[parsers.a]
            follow = [{ select = "a[", pattern = "(", parser = "a" }]"#,
            "a",
            "follow[0].pattern",
            "bad regex",
        ),
    ];
    for (toml, parser, key, reason) in cases {
        let e = error(toml);
        let found = (e.parser.as_str(), e.key.as_str(), e.reason.contains(reason));
        assert_eq!(found, (parser, key, true), "{toml}: {e}");
        assert!(e.to_string().starts_with("rules: "), "{e}");
    }
}

/// The same rules give the same id; different rules a different one.
#[test]
fn ruleset_ids_are_stable() {
    let a = "[parsers.a]\nfollow = [{ parser = \"a\" }]\n";
    assert_eq!(set(a).id(), set(a).id());
    assert_ne!(set(a).id(), set("[parsers.b]\n").id());
    assert_eq!(set(a).spec("profile"), ParserSpec::named("profile"));
}
