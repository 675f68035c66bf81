//! Declarative parsers, compiled: a rules file (its spec and checks are
//! the contract's, [`rpcsupport::rules`]) turned into selectors and regexes
//! built once per rule set, never per page, and run like built-in parsers
//! within the same budget.
//!
//! An engine sends a file's canonical JSON ([`crate::Worker::load_rules`]);
//! [`compile`] checks it against this worker's own parsers, compiles its
//! CSS selectors (the one check the engine cannot make: it links no HTML
//! parser) and keeps the set under the id the contract derives from its
//! content. Requests name a rule parser as
//! `ParserSpec { name, args: { ruleset: id } }`.

use std::collections::{BTreeMap, HashMap};

use regex::Regex;
use rpcsupport::rules::{Builtins, IdSpec, Rules};
use rpcsupport::{Item, ParseError, ParseResult, ParserSpec, Value};
use scraper::{ElementRef, Selector};

use crate::parse::{Budget, Page, PageLimits};

pub use rpcsupport::rules::{
    parse_file, FieldSpec, FieldType, FollowSpec, ItemSpec, RuleError, RuleSpec, RulesFile, Take,
    RULESET_ARG,
};

/// A compiled rule set: selectors and regexes built once.
#[derive(Debug)]
pub struct RuleSet {
    /// The checked spec it was compiled from: its id, its file.
    spec: Rules,
    rules: HashMap<String, Rule>,
}

#[derive(Debug)]
struct Rule {
    follow: Vec<Follow>,
    item: Option<ItemRule>,
}

#[derive(Debug)]
struct Follow {
    select: Selector,
    pattern: Option<Regex>,
    parser: String,
    /// Whether `parser` names a rule (else a built-in).
    to_rule: bool,
}

#[derive(Debug)]
struct ItemRule {
    kind: String,
    id: Option<IdRule>,
    fields: Vec<(String, FieldRule)>,
}

#[derive(Debug)]
enum IdRule {
    Url(Regex),
    Element {
        select: Selector,
        attr: Option<String>,
        regex: Option<Regex>,
    },
}

#[derive(Debug)]
struct FieldRule {
    select: Selector,
    take: Take,
    attr: Option<String>,
    regex: Option<Regex>,
    trim: bool,
    ty: FieldType,
    items: FieldType,
}

/// Checks `file` (the contract's checks, with `builtins` as the parser
/// names a rule may follow to besides the file's own) and compiles it.
pub fn compile(file: &RulesFile, builtins: &[&str]) -> Result<RuleSet, RuleError> {
    let spec = Rules::check(file.clone(), Builtins::Known(builtins))?;
    let err = |parser: &str, key: String, reason: String| RuleError::new(parser, key, reason);
    let selector = |parser: &str, key: String, css: &str| {
        Selector::parse(css).map_err(|e| err(parser, key, format!("bad CSS selector {css:?}: {e}")))
    };
    // The contract checked every regex compiles; built again here to keep.
    let regex = |parser: &str, key: String, re: &str| {
        Regex::new(re).map_err(|e| err(parser, key, format!("bad regex {re:?}: {e}")))
    };
    let mut rules = HashMap::new();
    for (name, spec) in &file.parsers {
        let mut follow = Vec::new();
        for (i, f) in spec.follow.iter().enumerate() {
            follow.push(Follow {
                select: selector(
                    name,
                    format!("follow[{i}].select"),
                    f.select
                        .as_deref()
                        .unwrap_or(rpcsupport::rules::DEFAULT_FOLLOW_SELECTOR),
                )?,
                pattern: f
                    .pattern
                    .as_deref()
                    .map(|p| regex(name, format!("follow[{i}].pattern"), p))
                    .transpose()?,
                parser: f.parser.clone(),
                to_rule: file.parsers.contains_key(&f.parser),
            });
        }
        let item = match &spec.item {
            None => None,
            Some(item) => {
                let id = match &item.id {
                    None => None,
                    Some(IdSpec {
                        from_url: Some(re), ..
                    }) => Some(IdRule::Url(regex(name, "item.id.from_url".into(), re)?)),
                    Some(IdSpec {
                        select: Some(css),
                        attr,
                        regex: re,
                        ..
                    }) => Some(IdRule::Element {
                        select: selector(name, "item.id.select".into(), css)?,
                        attr: attr.clone(),
                        regex: re
                            .as_deref()
                            .map(|r| regex(name, "item.id.regex".into(), r))
                            .transpose()?,
                    }),
                    // The contract refuses an id with neither.
                    Some(_) => None,
                };
                let mut fields = Vec::new();
                for (field, f) in &item.fields {
                    let key = |k: &str| format!("item.fields.{field}.{k}");
                    fields.push((
                        field.clone(),
                        FieldRule {
                            select: selector(name, key("select"), &f.select)?,
                            take: f.take,
                            attr: f.attr.clone(),
                            regex: f
                                .regex
                                .as_deref()
                                .map(|r| regex(name, key("regex"), r))
                                .transpose()?,
                            trim: f.trim,
                            ty: f.ty,
                            items: f.items.unwrap_or(FieldType::String),
                        },
                    ));
                }
                Some(ItemRule {
                    kind: item.kind.clone(),
                    id,
                    fields,
                })
            }
        };
        rules.insert(name.clone(), Rule { follow, item });
    }
    Ok(RuleSet { spec, rules })
}

impl RuleSet {
    /// The id requests carry in their `ruleset` argument.
    pub fn id(&self) -> &str {
        self.spec.id()
    }

    /// The checked spec it was compiled from.
    pub fn rules(&self) -> &Rules {
        &self.spec
    }

    /// Whether `name` is one of this set's parsers.
    pub fn has(&self, name: &str) -> bool {
        self.rules.contains_key(name)
    }

    /// The parser spec for `name`: a rule of this set, or a built-in.
    pub fn spec(&self, name: &str) -> ParserSpec {
        self.spec.spec(name)
    }

    /// Parses `text` as the page at `url` and runs the rule `name` on it,
    /// within the default [`PageLimits`].
    pub fn run(
        &self,
        name: &str,
        request: &rpcsupport::Request,
        url: &url::Url,
        text: &str,
    ) -> Result<ParseResult, ParseError> {
        self.run_with(
            name,
            request,
            url,
            text,
            &Budget::new(PageLimits::default()),
        )
    }

    /// Like [`RuleSet::run`], within `budget`; the result fits it and
    /// carries its counts.
    pub fn run_with(
        &self,
        name: &str,
        request: &rpcsupport::Request,
        url: &url::Url,
        text: &str,
        budget: &Budget,
    ) -> Result<ParseResult, ParseError> {
        let html = scraper::Html::parse_document(text);
        let result = self.apply(
            name,
            &Page {
                request,
                url,
                html: &html,
                text,
                budget,
            },
        )?;
        Ok(budget.finish(result))
    }

    /// Runs the rule `name` on `page`.
    pub fn apply(&self, name: &str, page: &Page<'_>) -> Result<ParseResult, ParseError> {
        let rule = self
            .rules
            .get(name)
            .ok_or_else(|| ParseError::UnknownParser(name.to_owned()))?;
        let base = page.base_url();
        let mut requests = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for f in &rule.follow {
            for el in page.html.select(&f.select) {
                let Some(href) = el.value().attr("href") else {
                    continue;
                };
                let Some(url) = page.link(&base, href) else {
                    continue;
                };
                if f.pattern
                    .as_ref()
                    .is_some_and(|p| !p.is_match(url.as_str()))
                {
                    continue;
                }
                let key = (url.as_str().to_owned(), f.parser.as_str());
                // Only admitted links are remembered, so `seen` is bounded
                // by the page's budget too.
                if seen.contains(&key) || !page.budget.admit_link(url.as_str().len()) {
                    continue;
                }
                seen.insert(key);
                let mut request = page.follow(url, &f.parser);
                if f.to_rule {
                    request.parser = self.spec(&f.parser);
                }
                requests.push(request);
            }
        }
        let items = match &rule.item {
            Some(item) => vec![self.extract(item, page)],
            None => Vec::new(),
        };
        Ok(ParseResult {
            requests,
            items,
            ..ParseResult::default()
        })
    }

    fn extract(&self, rule: &ItemRule, page: &Page<'_>) -> Item {
        let id = match &rule.id {
            None => None,
            Some(IdRule::Url(re)) => capture(re, page.url.as_str()),
            Some(IdRule::Element {
                select,
                attr,
                regex,
            }) => page
                .html
                .select(select)
                .next()
                .and_then(|el| take(el, Take::Text, attr.as_deref(), true))
                .and_then(|text| match regex {
                    Some(re) => capture(re, &text),
                    None => Some(text),
                })
                .filter(|id| !id.is_empty()),
        };
        let mut payload = BTreeMap::new();
        for (name, f) in &rule.fields {
            if let Some(value) = field_value(f, page) {
                payload.insert(name.clone(), value);
            }
        }
        Item {
            url: page.url.to_string(),
            kind: rule.kind.clone(),
            id,
            payload,
        }
    }
}

/// The first capture group of `re` in `text`, or the whole match.
fn capture(re: &Regex, text: &str) -> Option<String> {
    let c = re.captures(text)?;
    Some(c.get(1).or_else(|| c.get(0))?.as_str().to_owned())
}

fn take(el: ElementRef<'_>, how: Take, attr: Option<&str>, trim: bool) -> Option<String> {
    let raw = match (attr, how) {
        (Some(a), _) => el.value().attr(a)?.to_owned(),
        (None, Take::Text) => el.text().collect::<String>(),
        (None, Take::Html) => el.html(),
        (None, Take::InnerHtml) => el.inner_html(),
    };
    Some(if trim { raw.trim().to_owned() } else { raw })
}

/// Text -> typed value; `None` when the element, the regex match or the
/// number is missing (the field is then left out).
fn convert(f: &FieldRule, text: String, ty: FieldType) -> Option<Value> {
    let text = match &f.regex {
        Some(re) => capture(re, &text)?,
        None => text,
    };
    let text = if f.trim { text.trim().to_owned() } else { text };
    match ty {
        FieldType::String | FieldType::List => Some(Value::Str(text)),
        FieldType::Integer => text
            .replace([',', '_'], "")
            .parse::<i64>()
            .ok()
            .map(Value::Int),
        FieldType::Float => text
            .replace([',', '_'], "")
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .map(Value::Float),
    }
}

fn field_value(f: &FieldRule, page: &Page<'_>) -> Option<Value> {
    if f.ty == FieldType::List {
        // A list grows with the page (`select = "*"`, `take = "html"`):
        // stop once it alone is past the reply budget. The item is then
        // too big to send and `Budget::finish` drops and counts it.
        let mut values = Vec::new();
        let mut size = 0;
        for el in page.html.select(&f.select) {
            let Some(value) =
                take(el, f.take, f.attr.as_deref(), f.trim).and_then(|t| convert(f, t, f.items))
            else {
                continue;
            };
            size += crate::parse::limits::value_size(&value);
            values.push(value);
            if !page.budget.value_fits(size) {
                break;
            }
        }
        return Some(Value::List(values));
    }
    let el = page.html.select(&f.select).next()?;
    let text = take(el, f.take, f.attr.as_deref(), f.trim)?;
    convert(f, text, f.ty)
}

#[cfg(test)]
mod tests {
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
        };
        let html: String = (0..50).map(|i| format!("<a href=/{i}>{i}</a>")).collect();
        let budget = Budget::new(PageLimits {
            max_links: 10,
            max_url_bytes: 100,
            max_result_bytes: 2000,
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

    /// Every kind of mistake is reported with the parser and the key.
    #[test]
    fn validation_errors_name_parser_and_key() {
        let cases = [
            (
                r#"[parsers.a]
                follow = [{ select = "a[", parser = "a" }]"#,
                "a",
                "follow[0].select",
                "bad CSS selector",
            ),
            (
                r#"[parsers.a]
                follow = [{ pattern = "(", parser = "a" }]"#,
                "a",
                "follow[0].pattern",
                "bad regex",
            ),
            (
                r#"[parsers.a]
                follow = [{ parser = "nope" }]"#,
                "a",
                "follow[0].parser",
                "unknown parser",
            ),
            (
                r#"[parsers.a.item]
                kind = "k"
                fields.x = { select = "p", regex = "[" }"#,
                "a",
                "item.fields.x.regex",
                "bad regex",
            ),
            (
                r#"[parsers.a.item]
                kind = "k"
                fields.x = { select = "p", type = "date" }"#,
                "",
                "(file)",
                "unknown variant",
            ),
            (
                r#"[parsers.a.item]
                kind = "k"
                fields.x = { regex = "p" }"#,
                "",
                "(file)",
                "missing field `select`",
            ),
            (
                r#"[parsers.a.item]
                kind = "k"
                fields.x = { select = "p", type = "integer", items = "integer" }"#,
                "a",
                "item.fields.x.items",
                "only lists",
            ),
            (
                r#"[parsers.a.item]
                kind = """#,
                "a",
                "item.kind",
                "empty",
            ),
            (
                r#"[parsers.a.item]
                kind = "k"
                id = { from_url = "x", select = "p" }"#,
                "a",
                "item.id",
                "either",
            ),
            (r#"start = "nope""#, "", "start", "unknown parser"),
            (
                r#"seeds = ["ftp://x/"]
                start = "profile""#,
                "",
                "seeds[0]",
                "not an http",
            ),
            (
                r#"[parsers.a]
                folow = []"#,
                "",
                "(file)",
                "unknown field",
            ),
        ];
        for (toml, parser, key, reason) in cases {
            let e = error(toml);
            assert_eq!(
                (e.parser.as_str(), e.key.as_str()),
                (parser, key),
                "{toml}: {e}"
            );
            assert!(e.reason.contains(reason), "{toml}: {e}");
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
}
