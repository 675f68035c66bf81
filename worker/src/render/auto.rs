//! `render = "auto"`: the page is fetched over HTTP and parsed first, and
//! rendered only when that was not enough. Two signs say so:
//!
//! - **a script shell** ([`is_script_shell`]): the page has at least one
//!   `<script>` and under [`SHELL_TEXT_BYTES`] of visible text in its body
//!   (text outside `script`, `style`, `noscript` and `template`). A shell
//!   (`<div id="app"></div><script src=app.js>`) shows nothing until its
//!   script runs; a server-rendered page, even a short one, shows its
//!   content.
//! - **missing content**: for a rule, its item's id or any of its fields
//!   came out empty, or it has follow selectors and found no link
//!   ([`rule_lacks`]); for a built-in parser, no item and no link
//!   ([`builtin_lacks`]).

use rpcsupport::rules::RuleSpec;
use rpcsupport::ParseResult;
use scraper::{Html, Node};

/// Visible text below which a page with scripts is a shell: a heading and
/// a "loading..." line fit; a page of content does not.
pub const SHELL_TEXT_BYTES: usize = 200;

/// Whether `html` is a script shell (see the module doc).
pub fn is_script_shell(html: &str) -> bool {
    let doc = Html::parse_document(html);
    let mut scripts = false;
    let mut text = 0usize;
    for node in doc.tree.root().descendants() {
        let hidden = || {
            node.ancestors().any(|a| {
                a.value().as_element().is_some_and(|e| {
                    matches!(
                        e.name(),
                        "script" | "style" | "noscript" | "template" | "head"
                    )
                })
            })
        };
        match node.value() {
            Node::Element(e) if e.name() == "script" => scripts = true,
            Node::Text(t) if !hidden() => {
                text += t.split_whitespace().map(|w| w.len() + 1).sum::<usize>();
                if text >= SHELL_TEXT_BYTES {
                    return false;
                }
            }
            _ => {}
        }
    }
    scripts
}

/// Whether a built-in parser found nothing: no item and no link.
pub fn builtin_lacks(result: &ParseResult) -> bool {
    result.items.is_empty() && result.requests.is_empty()
}

/// Whether rule `rule`'s result lacks what the rule extracts: its item's
/// id (when the id comes from the page) or one of its fields, or any link
/// when it has follow selectors.
pub fn rule_lacks(rule: &RuleSpec, result: &ParseResult) -> bool {
    if !rule.follow.is_empty() && result.requests.is_empty() {
        return true;
    }
    let Some(spec) = &rule.item else {
        return false;
    };
    let Some(item) = result.items.first() else {
        return true;
    };
    let id_from_page = spec.id.as_ref().is_some_and(|id| id.select.is_some());
    if id_from_page && item.id.is_none() {
        return true;
    }
    spec.fields
        .keys()
        .any(|field| match item.payload.get(field) {
            None => true,
            Some(rpcsupport::Value::List(values)) => values.is_empty(),
            Some(_) => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mount point and a script is a shell; a page with content, or one
    /// without scripts, is not.
    #[test]
    fn shells() {
        assert!(is_script_shell(
            r#"<html><head><title>Profiles of everyone in the city</title>
            <style>body { font: 16px sans-serif; margin: 0 auto; max-width: 60em }</style></head>
            <body><div id="app"></div><noscript>This site needs JavaScript to show its
            profiles; please turn it on in your browser's settings and reload.</noscript>
            <script src="/js/app.js"></script></body></html>"#
        ));
        assert!(is_script_shell(
            "<body><h1>Loading…</h1><script>render()</script></body>"
        ));
        let long = "Alice is 34 and lives in Springfield. ".repeat(10);
        assert!(!is_script_shell(&format!(
            "<body><p>{long}</p><script>track()</script></body>"
        )));
        assert!(!is_script_shell("<body><p>Tiny page.</p></body>"));
    }

    fn rule(toml_text: &str) -> RuleSpec {
        toml::from_str(toml_text).unwrap()
    }

    fn item(fields: &[(&str, rpcsupport::Value)], id: Option<&str>) -> ParseResult {
        ParseResult {
            items: vec![rpcsupport::Item {
                url: "http://a.test/".into(),
                kind: "profile".into(),
                id: id.map(str::to_owned),
                payload: fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            }],
            ..ParseResult::default()
        }
    }

    /// A rule lacks its content when a field or the page id is missing, or
    /// its follow selectors found nothing.
    #[test]
    fn rule_content() {
        let spec = rule(
            r##"
            [item]
            kind = "profile"
            id = { select = "#id" }
            fields.name = { select = "#name" }
            fields.tags = { select = ".tag", type = "list" }
            "##,
        );
        let name = ("name", rpcsupport::Value::Str("Ann".into()));
        let tags = (
            "tags",
            rpcsupport::Value::List(vec![rpcsupport::Value::Int(1)]),
        );
        assert!(!rule_lacks(
            &spec,
            &item(&[name.clone(), tags.clone()], Some("7"))
        ));
        assert!(rule_lacks(
            &spec,
            &item(&[name.clone(), tags.clone()], None)
        ));
        assert!(rule_lacks(
            &spec,
            &item(std::slice::from_ref(&tags), Some("7"))
        ));
        let empty = ("tags", rpcsupport::Value::List(vec![]));
        assert!(rule_lacks(&spec, &item(&[name, empty], Some("7"))));
        let follow = rule(
            r#"
            follow = [{ select = "a.p", parser = "p" }]
            "#,
        );
        assert!(rule_lacks(&follow, &ParseResult::default()));
        assert!(builtin_lacks(&ParseResult::default()));
    }
}
