//! The rules' spec: parsing, checks and the ruleset id.

use super::*;

const BUILTINS: &[&str] = &["profile", "city"];

fn error(toml: &str, builtins: Builtins<'_>) -> RuleError {
    match parse_file(toml) {
        Err(e) => e,
        Ok(file) => Rules::check(file, builtins).unwrap_err(),
    }
}

fn rules(toml: &str) -> Rules {
    Rules::check(parse_file(toml).unwrap(), Builtins::Known(BUILTINS)).unwrap()
}

/// Every mistake short of selector syntax is reported with the parser
/// and the key, whatever the built-ins.
#[test]
fn mistakes_name_parser_and_key() {
    // A line of rule `a`'s item (of kind "k"), and the mistake it is:
    // `parser/key: part of the reason`; `(file)` is TOML the spec refuses.
    // One case a line: the table reads better than rustfmt's five.
    #[rustfmt::skip]
    let item_lines = [
        (r#"fields.x = { select = "p", regex = "[" }"#, "a/item.fields.x.regex: bad regex"),
        (r#"id = { select = "p", regex = "(" }"#, "a/item.id.regex: bad regex"),
        (r#"fields.x = { select = "p", type = "date" }"#, "/(file): unknown variant"),
        (r#"fields.x = { regex = "p" }"#, "/(file): missing field `select`"),
        (r#"fields.x = { select = "p", type = "integer", items = "integer" }"#, "a/item.fields.x.items: only lists"),
        (r#"fields.x = { select = "p", type = "list", items = "list" }"#, "a/item.fields.x.items: lists of lists"),
        (r#"id = { from_url = "x", select = "p" }"#, "a/item.id: either"),
    ];
    for (line, want) in item_lines {
        mistake(&format!("[parsers.a.item]\nkind = \"k\"\n{line}"), want);
    }
    #[rustfmt::skip]
    let files = [
        ("[parsers.a]\nfollow = [{ pattern = \"(\", parser = \"a\" }]", "a/follow[0].pattern: bad regex"),
        ("[parsers.a.item]\nkind = \"\"", "a/item.kind: empty"),
        ("seeds = [\"http://h/\"]\n[parsers.a]", "/start: no start parser"),
        ("seeds = [\"ftp://x/\"]\nstart = \"profile\"", "/seeds[0]: not an http"),
        ("[parsers.a]\nfolow = []", "/(file): unknown field"),
    ];
    for (toml, want) in files {
        mistake(toml, want);
    }
}

/// Checks that `toml` is the mistake `want` (`parser/key: part of the
/// reason`) with the built-ins known and unchecked alike.
fn mistake(toml: &str, want: &str) {
    let (place, reason) = want.split_once(": ").expect("parser/key: reason");
    for builtins in [Builtins::Known(BUILTINS), Builtins::Unchecked] {
        let e = error(toml, builtins);
        assert_eq!(format!("{}/{}", e.parser, e.key), place, "{toml}: {e}");
        assert!(e.reason.contains(reason), "{toml}: {e}");
        assert!(e.to_string().starts_with("rules: "), "{e}");
    }
}

/// Names outside the file are checked against known built-ins, and
/// left to the workers (listed as outside parsers) when unchecked.
#[test]
fn outside_names_are_checked_only_where_known() {
    let text = r#"start = "nope"
        [parsers.a]
        follow = [{ parser = "city" }, { parser = "gone" }, { parser = "a" }]"#;
    let e = error(text, Builtins::Known(BUILTINS));
    assert_eq!((e.key.as_str(), e.parser.as_str()), ("start", ""), "{e}");
    let e = error(
        &text.replace("\"nope\"", "\"a\""),
        Builtins::Known(BUILTINS),
    );
    assert_eq!(e.key, "follow[1].parser", "{e}");
    assert!(e.reason.contains("unknown parser \"gone\""), "{e}");
    let unchecked = Rules::check(parse_file(text).unwrap(), Builtins::Unchecked).unwrap();
    assert_eq!(
        unchecked.outside_parsers().into_iter().collect::<Vec<_>>(),
        ["city", "gone", "nope"]
    );
}

/// Selector syntax is not checked here (only an HTML parser can).
#[test]
fn selectors_are_left_to_the_workers() {
    rules(
        r#"[parsers.a]
        follow = [{ select = "a[", parser = "a" }]"#,
    );
}

/// The same rules give the same id; different rules a different one;
/// only the file's own parsers carry it.
#[test]
fn ruleset_ids_are_stable() {
    let a = "[parsers.a]\nfollow = [{ parser = \"a\" }]\n";
    assert_eq!(rules(a).id(), rules(a).id());
    assert_ne!(rules(a).id(), rules("[parsers.b]\n").id());
    assert_eq!(rules(a).spec("profile"), ParserSpec::named("profile"));
    assert_eq!(
        rules(a).spec("a").args.get(RULESET_ARG).map(String::as_str),
        Some(rules(a).id())
    );
    let again: RulesFile = serde_json::from_str(&rules(a).to_json()).unwrap();
    assert_eq!(ruleset_id(&again), rules(a).id());
}

/// Issues 13 and 16: the file-level sitemap keys are checked like seeds, a
/// rule's `render` key is read, and `render_of` prefers a rule's key to a
/// parser argument.
#[test]
fn sitemap_and_render_keys() {
    let e = error(
        r#"start = "page"
        sitemaps = ["ftp://x/"]
        [parsers.page]"#,
        Builtins::Known(BUILTINS),
    );
    assert_eq!((e.key.as_str(), e.parser.as_str()), ("sitemaps[0]", ""));
    let e = error(
        r#"sitemaps = ["http://x/sitemap.xml"]
        [parsers.page]"#,
        Builtins::Known(BUILTINS),
    );
    assert_eq!(e.key, "sitemap_parser");
    let e = error(r#"sitemap_parser = "nope""#, Builtins::Known(BUILTINS));
    assert!(e.reason.contains("unknown parser"), "{e}");

    let set = rules(
        r#"sitemaps = ["http://x/sitemap.xml"]
        sitemap_parser = "page"
        [parsers.page]
        render = "auto"
        [parsers.plain]"#,
    );
    assert_eq!(set.render_of(&set.spec("page")), Ok(Render::Auto));
    assert_eq!(set.render_of(&set.spec("plain")), Ok(Render::Never));
    let mut builtin = ParserSpec::named("profile");
    builtin.args.insert(Render::ARG.into(), "always".into());
    assert_eq!(set.render_of(&builtin), Ok(Render::Always));
    builtin.args.insert(Render::ARG.into(), "sometimes".into());
    assert!(set.render_of(&builtin).unwrap_err().contains("sometimes"));
    assert!(set.outside_parsers().is_empty());
    assert!(set.describe().contains("render: auto"));
}
