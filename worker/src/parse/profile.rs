//! `profile`: a profile page -> one `profile` item, plus a `profile`
//! request per "you may also like" link.
//!
//! The page marks each field as `<td data-field="age">31岁</td>` inside
//! `<table class="profile" data-id="123">`; numbers carry units (岁, cm,
//! kg) that are stripped.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use rpcsupport::{Item, ParseError, ParseResult, Value};
use scraper::Selector;
use url::Url;

use super::{no_args, selector, Page, Parser};

/// Registry entry.
pub const PARSER: Parser = Parser {
    name: "profile",
    content: super::Content::Html,
    check_args: no_args,
    parse,
    stream: Some(super::stream::profile),
    stream_may_build_tree: true,
};

/// The item kind.
pub const KIND: &str = "profile";

static TABLE: LazyLock<Selector> = LazyLock::new(|| selector("table.profile"));
static FIELDS: LazyLock<Selector> = LazyLock::new(|| selector("[data-field]"));
static RECOMMENDED: LazyLock<Selector> = LazyLock::new(|| selector(".guess-you-like a[href]"));

/// Payload fields and whether they are integers.
const FIELDS_SPEC: &[(&str, bool)] = &[
    ("name", false),
    ("gender", false),
    ("age", true),
    ("height", true),
    ("weight", true),
    ("income", false),
    ("marriage", false),
    ("education", false),
    ("occupation", false),
    ("city", false),
];

/// The profile table becomes the item; a missing or malformed field is left
/// out of the payload rather than failing the page.
pub fn parse(page: &Page<'_>) -> Result<ParseResult, ParseError> {
    let table = page
        .html
        .select(&TABLE)
        .next()
        .ok_or_else(|| page.error("no table.profile"))?;
    let cells = table.select(&FIELDS).filter_map(|cell| {
        let field = cell.value().attr("data-field")?;
        Some((field, cell.text().collect::<String>()))
    });
    let item = item(page.url, table.value().attr("data-id"), cells)
        .ok_or_else(|| page.error("no profile id (data-id or /profile/{id})"))?;
    let requests = page
        .links(&RECOMMENDED)
        .into_iter()
        .map(|url| page.follow(url, PARSER.name))
        .collect();
    Ok(ParseResult {
        requests,
        items: vec![item],
        ..ParseResult::default()
    })
}

/// The item of the profile at `url` whose table has `data_id` and the
/// `cells` (each `data-field` and its text, in page order), whichever way
/// the page was read; `None` without an id.
pub(crate) fn item<F: AsRef<str>, T: AsRef<str>>(
    url: &Url,
    data_id: Option<&str>,
    cells: impl Iterator<Item = (F, T)>,
) -> Option<Item> {
    // The id comes from the markup; the URL's last segment is the fallback
    // for pages that lost the attribute.
    let id = data_id
        .and_then(|id| id.trim().parse::<u64>().ok())
        .or_else(|| url.path_segments()?.next_back()?.parse().ok())?;
    let mut payload = BTreeMap::new();
    for (field, text) in cells {
        let Some(&(key, is_int)) = FIELDS_SPEC.iter().find(|(k, _)| *k == field.as_ref()) else {
            continue;
        };
        let text = text.as_ref().trim();
        let value = if is_int {
            match leading_int(text) {
                Some(n) => Value::Int(n),
                None => continue,
            }
        } else if text.is_empty() {
            continue;
        } else {
            Value::Str(text.to_owned())
        };
        // First occurrence wins, as a reader would see it.
        payload.entry(key.to_owned()).or_insert(value);
    }
    Some(Item {
        url: url.to_string(),
        kind: KIND.to_owned(),
        id: Some(id.to_string()),
        payload,
    })
}

/// The number a field starts with: `31岁` -> 31, `172cm` -> 172.
fn leading_int(text: &str) -> Option<i64> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{run, run_text, urls};
    use super::*;

    fn str_field<'a>(item: &'a Item, key: &str) -> &'a str {
        item.payload[key].as_str().unwrap()
    }

    /// A UTF-8 profile page yields every field, typed, and its four
    /// recommendations in their varied link forms.
    #[test]
    fn utf8_profile() {
        let result = run(
            "profile",
            &[],
            "http://127.0.0.1:8080/profile/5",
            "profile.html",
        )
        .unwrap();
        let item = &result.items[0];
        assert_eq!(item.id.as_deref(), Some("5"));
        assert_eq!(item.kind, "profile");
        assert_eq!(item.url, "http://127.0.0.1:8080/profile/5");
        assert_eq!(item.payload.len(), 10);
        assert_eq!(item.payload["age"], Value::Int(54));
        assert!(item.payload["height"].as_i64().is_some());
        assert_eq!(str_field(item, "city"), "天津");
        assert_eq!(str_field(item, "name"), "许勇超");
        assert_eq!(
            urls(&result),
            [
                ("http://127.0.0.1:8080/profile/734".into(), "profile".into()),
                ("http://127.0.0.1:8080/profile/540".into(), "profile".into()),
                ("http://127.0.0.1:8080/profile/675".into(), "profile".into()),
                ("http://127.0.0.1:8080/profile/487".into(), "profile".into()),
            ]
        );
        assert!(result.requests.iter().all(|r| r.depth == 3));
    }

    /// Links on a `<base href>` page resolve against the base.
    #[test]
    fn base_href_profile() {
        let result = run(
            "profile",
            &[],
            "http://127.0.0.1:8080/profile/17",
            "profile_base.html",
        )
        .unwrap();
        assert_eq!(result.requests.len(), 4);
        for r in &result.requests {
            let path = r
                .url
                .strip_prefix("http://127.0.0.1:8080/profile/")
                .unwrap();
            assert!(path.parse::<u64>().is_ok(), "{}", r.url);
        }
    }

    /// A GBK page (declared only in <meta>) decodes to the right name.
    #[test]
    fn gbk_profile() {
        let bytes = super::super::test_support::fixture("profile_gbk.html");
        assert!(std::str::from_utf8(&bytes).is_err(), "fixture must be GBK");
        let result = run(
            "profile",
            &[],
            "http://127.0.0.1:8080/profile/13",
            "profile_gbk.html",
        )
        .unwrap();
        let item = &result.items[0];
        assert_eq!(item.id.as_deref(), Some("13"));
        let expected = demosite::Site::new(demosite::SiteConfig::default())
            .profile(13)
            .unwrap();
        assert_eq!(str_field(item, "name"), expected.name);
        assert_eq!(str_field(item, "income"), expected.income);
        assert_eq!(
            item.payload["weight"],
            Value::Int(i64::from(expected.weight))
        );
    }

    /// Odd HTML never panics: no table is a Page error, missing or garbled
    /// fields are left out, and the id falls back to the URL.
    #[test]
    fn odd_markup() {
        let url = "http://127.0.0.1:8080/profile/77";
        assert!(matches!(
            run_text("profile", &[], url, "<html><body><p>gone</p>"),
            Err(ParseError::Page { .. })
        ));
        let result = run_text(
            "profile",
            &[],
            url,
            "<table class=profile><tr><td data-field=age>unknown</td>\
             <td data-field=name> 王芳 </td><td data-field=name>second</td>\
             <td data-field=hobby>x</td><td data-field=height>",
        )
        .unwrap();
        let item = &result.items[0];
        assert_eq!(item.id.as_deref(), Some("77"));
        assert_eq!(item.payload.len(), 1);
        assert_eq!(str_field(item, "name"), "王芳");
        assert!(run_text(
            "profile",
            &[],
            "http://h/profile/x",
            "<table class=profile>"
        )
        .is_err());
        for garbage in [
            "",
            "<<<>>>",
            "<table class=profile data-id=1><tr><td data-field",
            "\u{0}\u{FFFD}",
        ] {
            let _ = run_text("profile", &[], url, garbage);
        }
    }

    /// Units are stripped from numbers.
    #[test]
    fn leading_ints() {
        assert_eq!(leading_int("31岁"), Some(31));
        assert_eq!(leading_int("172cm"), Some(172));
        assert_eq!(leading_int("cm"), None);
        assert_eq!(leading_int(""), None);
    }
}
