//! The rules' spec: what a rules file says, checked, as the engine and the
//! workers must both read it.
//!
//! A rules file names parsers; each says which links to follow (CSS
//! selector and/or URL pattern, and the parser for the followed pages) and,
//! optionally, the item to extract (kind, id, and typed fields taken from
//! CSS selectors with an optional regex). The engine checks a file at start
//! ([`Rules::check`], every mistake reported with the parser and the key)
//! and sends its canonical JSON ([`Rules::to_json`]) to each worker; the
//! worker checks it again against its own parsers and compiles it. Both
//! derive the same id from the content ([`Rules::id`]), and requests name a
//! rule parser as `ParserSpec { name, args: { ruleset: id } }`
//! ([`RULESET_ARG`]), so rule parsers and built-in parsers live side by side
//! and can follow each other.
//!
//! What this module cannot check is CSS selector syntax: only an HTML
//! parser can say whether a selector compiles, and the engine links none.
//! The workers compile selectors when the rules are loaded into them and
//! refuse rules whose selectors do not compile (`ParseError::BadRules`).
//!
//! ```toml
//! seeds = ["http://127.0.0.1:8080/"]
//! start = "home"
//!
//! [parsers.home]
//! follow = [{ select = ".city-list a", parser = "city" }]
//!
//! [parsers.profile.item]
//! kind = "profile"
//! id = { select = "table.profile", attr = "data-id" }
//! fields.age = { select = "td[data-field=age]", regex = '(\d+)', type = "integer" }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use regex::Regex;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::types::{ParserSpec, Render};

/// The argument that marks a rule parser and names its rule set.
pub const RULESET_ARG: &str = "ruleset";

/// The follow selector when a rule gives none.
pub const DEFAULT_FOLLOW_SELECTOR: &str = "a[href]";

/// A rules file as written (TOML), or the `[rules]` section of config.toml.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    /// Start URLs (the engine's `--seed` overrides them).
    #[serde(default)]
    pub seeds: Vec<String>,
    /// The parser for the seeds: a rule, or a built-in parser.
    #[serde(default)]
    pub start: Option<String>,
    /// Sitemaps to start from, beside the seeds (the engine's `--sitemap`
    /// adds to them).
    #[serde(default)]
    pub sitemaps: Vec<String>,
    /// The parser for the pages a sitemap lists: a rule, or a built-in
    /// (default: `start`).
    #[serde(default)]
    pub sitemap_parser: Option<String>,
    /// The rule parsers, by name.
    #[serde(default)]
    pub parsers: BTreeMap<String, RuleSpec>,
}

/// One rule parser.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Links to follow.
    #[serde(default)]
    pub follow: Vec<FollowSpec>,
    /// The item each page yields, if any.
    #[serde(default)]
    pub item: Option<ItemSpec>,
    /// Whether its pages are rendered in a browser first: `never`
    /// (default), `always`, or `auto` (only when the fetched page lacks the
    /// item's id or fields, or what `follow` selects, or is a script
    /// shell).
    #[serde(default)]
    pub render: Render,
}

/// Which links to follow, and with which parser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowSpec {
    /// CSS selector of the links (elements with `href`); default
    /// [`DEFAULT_FOLLOW_SELECTOR`].
    #[serde(default)]
    pub select: Option<String>,
    /// Regex the resolved URL must match.
    #[serde(default)]
    pub pattern: Option<String>,
    /// The parser for the followed pages: a rule or a built-in.
    pub parser: String,
}

/// The item a page yields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemSpec {
    /// The item's kind.
    pub kind: String,
    /// Where its id comes from; none means an id derived from URL and kind.
    #[serde(default)]
    pub id: Option<IdSpec>,
    /// Its fields, by name.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldSpec>,
}

/// The item id: a regex capture on the page URL, or an element's text or
/// attribute (with an optional regex).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdSpec {
    /// Regex on the page URL; its first capture group (or whole match).
    #[serde(default)]
    pub from_url: Option<String>,
    /// CSS selector of the element holding the id.
    #[serde(default)]
    pub select: Option<String>,
    /// Attribute holding the id (default: the element's text).
    #[serde(default)]
    pub attr: Option<String>,
    /// Regex applied to the text or attribute; first capture group.
    #[serde(default)]
    pub regex: Option<String>,
}

/// One field: where it is and what to make of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// CSS selector of the element (the first match; all for lists).
    pub select: String,
    /// What to take from it: `text` (default), `html` (the element) or
    /// `inner_html`; ignored when `attr` is set.
    #[serde(default)]
    pub take: Take,
    /// Take this attribute instead.
    #[serde(default)]
    pub attr: Option<String>,
    /// Regex; its first capture group (or whole match) is kept. No match
    /// leaves the field out.
    #[serde(default)]
    pub regex: Option<String>,
    /// Trim white space (default true).
    #[serde(default = "yes")]
    pub trim: bool,
    /// `string` (default), `integer`, `float`, or `list` (every match).
    #[serde(default, rename = "type")]
    pub ty: FieldType,
    /// For lists: the type of each element (default `string`).
    #[serde(default)]
    pub items: Option<FieldType>,
}

fn yes() -> bool {
    true
}

/// What to take from an element.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Take {
    /// Its text, descendants included.
    #[default]
    Text,
    /// Its outer HTML.
    Html,
    /// Its inner HTML.
    InnerHtml,
}

/// The type a field's text is converted to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Text as is.
    #[default]
    String,
    /// A whole number; text that is not one leaves the field out.
    Integer,
    /// A number.
    Float,
    /// Every matching element, as a list.
    List,
}

/// A mistake in a rules file, naming the parser and the key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("rules: {}{key}: {reason}", in_parser(parser))]
pub struct RuleError {
    /// The rule parser (empty for file-level keys).
    pub parser: String,
    /// The key, e.g. `item.fields.age.regex`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

fn in_parser(parser: &str) -> String {
    if parser.is_empty() {
        String::new()
    } else {
        format!("parser {parser:?}, ")
    }
}

impl RuleError {
    /// A mistake at `key` of the rule `parser` (empty for file-level keys).
    pub fn new(parser: &str, key: impl Into<String>, reason: impl Into<String>) -> RuleError {
        RuleError {
            parser: parser.to_owned(),
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Which parsers outside the file a rule may name (as `start` or as a
/// follow target).
#[derive(Debug, Clone, Copy)]
pub enum Builtins<'a> {
    /// Exactly these: a worker checks against its own registry.
    Known(&'a [&'a str]),
    /// Any name: the engine cannot know which parsers its workers have
    /// before it connects, so it leaves these names to them (they refuse
    /// rules naming a parser they lack); [`Rules::outside_parsers`] lists
    /// them.
    Unchecked,
}

/// Parses the TOML text of a rules file.
pub fn parse_file(text: &str) -> Result<RulesFile, RuleError> {
    toml::from_str(text).map_err(|e| RuleError::new("", "(file)", e.to_string()))
}

/// A rules file that passed every check short of CSS selector syntax.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    file: RulesFile,
    id: String,
}

impl Rules {
    /// Checks `file`: names, required keys, the types of fields, that seeds
    /// are http(s) URLs, that every regex compiles, and that every parser
    /// named is one of the file's or allowed by `builtins`. The first
    /// mistake is returned.
    pub fn check(file: RulesFile, builtins: Builtins<'_>) -> Result<Rules, RuleError> {
        let known = |name: &str| {
            file.parsers.contains_key(name)
                || match builtins {
                    Builtins::Known(names) => names.contains(&name),
                    Builtins::Unchecked => true,
                }
        };
        if let Some(parser) = &file.sitemap_parser {
            if !known(parser) {
                return Err(RuleError::new(
                    "",
                    "sitemap_parser",
                    format!("unknown parser {parser:?}"),
                ));
            }
        }
        http_urls("sitemaps", &file.sitemaps)?;
        if !file.sitemaps.is_empty() && file.start.is_none() && file.sitemap_parser.is_none() {
            return Err(RuleError::new(
                "",
                "sitemap_parser",
                "sitemaps are given but no sitemap_parser (or start) for their pages",
            ));
        }
        if let Some(start) = &file.start {
            if !known(start) {
                return Err(RuleError::new(
                    "",
                    "start",
                    format!("unknown parser {start:?}"),
                ));
            }
        }
        if !file.seeds.is_empty() && file.start.is_none() {
            return Err(RuleError::new(
                "",
                "start",
                "seeds are given but no start parser",
            ));
        }
        http_urls("seeds", &file.seeds)?;
        for (name, spec) in &file.parsers {
            check_rule(name, spec, &known)?;
        }
        let id = ruleset_id(&file);
        Ok(Rules { file, id })
    }

    /// The file as checked.
    pub fn file(&self) -> &RulesFile {
        &self.file
    }

    /// The id requests carry in their [`RULESET_ARG`] argument.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether `name` is one of the file's parsers.
    pub fn has(&self, name: &str) -> bool {
        self.file.parsers.contains_key(name)
    }

    /// The parser spec for `name`: a rule of this set, or a built-in.
    pub fn spec(&self, name: &str) -> ParserSpec {
        if self.has(name) {
            ParserSpec {
                name: name.to_owned(),
                args: [(RULESET_ARG.to_string(), self.id.clone())].into(),
            }
        } else {
            ParserSpec::named(name)
        }
    }

    /// How pages of the parser `spec` are rendered: its rule's `render`
    /// key when `spec` names a rule of this set, else its `render`
    /// argument ([`render_arg`]).
    pub fn render_of(&self, spec: &ParserSpec) -> Result<Render, String> {
        if spec.args.get(RULESET_ARG) == Some(&self.id) {
            if let Some(rule) = self.file.parsers.get(&spec.name) {
                return Ok(rule.render);
            }
        }
        render_arg(spec)
    }

    /// The file's text as sent to workers (canonical JSON).
    pub fn to_json(&self) -> String {
        canonical_json(&self.file)
    }

    /// The parsers the file names (as `start` or follow targets) that are
    /// not its own: built-ins the workers must have.
    pub fn outside_parsers(&self) -> BTreeSet<&str> {
        let follows = self
            .file
            .parsers
            .values()
            .flat_map(|r| r.follow.iter().map(|f| f.parser.as_str()));
        self.file
            .start
            .as_deref()
            .into_iter()
            .chain(self.file.sitemap_parser.as_deref())
            .chain(follows)
            .filter(|name| !self.has(name))
            .collect()
    }

    /// What the file describes, one line per start, seed, parser, follow
    /// rule, item and field: what `check-rules` prints.
    pub fn describe(&self) -> String {
        let file = &self.file;
        let mut out = String::new();
        if let Some(start) = &file.start {
            let _ = writeln!(out, "start: {start}");
        }
        for seed in &file.seeds {
            let _ = writeln!(out, "seed: {seed}");
        }
        for sitemap in &file.sitemaps {
            let _ = writeln!(out, "sitemap: {sitemap}");
        }
        if let Some(parser) = &file.sitemap_parser {
            let _ = writeln!(out, "sitemap pages: {parser}");
        }
        for (name, rule) in &file.parsers {
            let _ = writeln!(out, "parser {name}:");
            if rule.render != Render::Never {
                let _ = writeln!(out, "  render: {}", rule.render.as_str());
            }
            for f in &rule.follow {
                let _ = writeln!(
                    out,
                    "  follow {}{} -> {}",
                    f.select.as_deref().unwrap_or(DEFAULT_FOLLOW_SELECTOR),
                    f.pattern
                        .as_deref()
                        .map(|p| format!(" matching {p}"))
                        .unwrap_or_default(),
                    f.parser
                );
            }
            if let Some(item) = &rule.item {
                let _ = writeln!(out, "  item {} ({} fields)", item.kind, item.fields.len());
                for (field, spec) in &item.fields {
                    let _ = writeln!(
                        out,
                        "    {field}: {:?} from {}{}{}",
                        spec.ty,
                        spec.select,
                        spec.attr
                            .as_deref()
                            .map(|a| format!(" @{a}"))
                            .unwrap_or_default(),
                        spec.regex
                            .as_deref()
                            .map(|r| format!(" ~ {r}"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        out
    }
}

/// Checks that every URL of the file-level list `key` is an http(s) URL;
/// the first that is not is the mistake, named `key[i]`.
fn http_urls(key: &str, urls: &[String]) -> Result<(), RuleError> {
    for (i, url) in urls.iter().enumerate() {
        match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => {
                return Err(RuleError::new(
                    "",
                    format!("{key}[{i}]"),
                    format!("{url:?} is not an http(s) URL"),
                ))
            }
        }
    }
    Ok(())
}

/// A parser's `render` argument ([`Render::ARG`]): `never` when absent, an
/// error naming the value when it is not a mode.
pub fn render_arg(spec: &ParserSpec) -> Result<Render, String> {
    match spec.args.get(Render::ARG) {
        None => Ok(Render::Never),
        Some(v) => Render::parse(v).ok_or_else(|| {
            format!(
                "parser {:?}: render = {v:?} is not one of never, always, auto",
                spec.name
            )
        }),
    }
}

/// Checks one rule parser (all but its selectors).
fn check_rule(name: &str, spec: &RuleSpec, known: &dyn Fn(&str) -> bool) -> Result<(), RuleError> {
    let regex = |key: String, re: &str| {
        Regex::new(re)
            .map(drop)
            .map_err(|e| RuleError::new(name, key, format!("bad regex {re:?}: {e}")))
    };
    if name.trim().is_empty() {
        return Err(RuleError::new(name, "name", "empty parser name"));
    }
    for (i, f) in spec.follow.iter().enumerate() {
        if !known(&f.parser) {
            return Err(RuleError::new(
                name,
                format!("follow[{i}].parser"),
                format!("unknown parser {:?}", f.parser),
            ));
        }
        if let Some(p) = &f.pattern {
            regex(format!("follow[{i}].pattern"), p)?;
        }
    }
    let Some(item) = &spec.item else {
        return Ok(());
    };
    if item.kind.trim().is_empty() {
        return Err(RuleError::new(name, "item.kind", "empty item kind"));
    }
    match &item.id {
        None => {}
        Some(IdSpec {
            from_url: Some(re),
            select: None,
            attr: None,
            regex: None,
        }) => regex("item.id.from_url".into(), re)?,
        Some(IdSpec {
            from_url: None,
            select: Some(_),
            regex: Some(re),
            ..
        }) => regex("item.id.regex".into(), re)?,
        Some(IdSpec {
            from_url: None,
            select: Some(_),
            regex: None,
            ..
        }) => {}
        Some(_) => {
            return Err(RuleError::new(
                name,
                "item.id",
                "give either from_url, or select (with optional attr and regex)",
            ))
        }
    }
    for (field, f) in &item.fields {
        let key = |k: &str| format!("item.fields.{field}.{k}");
        if f.ty != FieldType::List && f.items.is_some() {
            return Err(RuleError::new(
                name,
                key("items"),
                "only lists (type = \"list\") have items",
            ));
        }
        if f.items == Some(FieldType::List) {
            return Err(RuleError::new(
                name,
                key("items"),
                "lists of lists are not supported",
            ));
        }
        if let Some(re) = &f.regex {
            regex(key("regex"), re)?;
        }
    }
    Ok(())
}

fn canonical_json(file: &RulesFile) -> String {
    // Plain data (strings, maps with string keys, enums, bools): nothing
    // in it can fail to serialize.
    serde_json::to_string(file).expect("rules serialize")
}

/// A stable id for a rule set: a hash of its canonical JSON form, so the
/// same rules give the same id on the engine and on every worker.
fn ruleset_id(file: &RulesFile) -> String {
    let json = canonical_json(file);
    format!("r{:016x}", crate::types::fnv1a64(json.as_bytes()))
}

#[cfg(test)]
mod tests;
