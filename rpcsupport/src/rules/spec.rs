//! The serde types of a rules file, as written: which links each parser
//! follows and which item it extracts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::types::Render;

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
    /// [`DEFAULT_FOLLOW_SELECTOR`](super::DEFAULT_FOLLOW_SELECTOR).
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
