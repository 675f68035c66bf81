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
//!
//! - this file: [`Rules`] (the checked file, its id, the specs requests
//!   carry, what `check-rules` prints), [`RuleError`], [`Builtins`],
//!   [`parse_file`] and [`render_arg`].
//! - `spec.rs`: the serde types of a rules file, [`RulesFile`] down to
//!   [`FieldSpec`].
//! - `check.rs`: [`Rules::check`], every check short of selector syntax.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use thiserror::Error;

use crate::types::{ParserSpec, Render};

mod check;
mod spec;

pub use spec::{FieldSpec, FieldType, FollowSpec, IdSpec, ItemSpec, RuleSpec, RulesFile, Take};

/// The argument that marks a rule parser and names its rule set.
pub const RULESET_ARG: &str = "ruleset";

/// The follow selector when a rule gives none.
pub const DEFAULT_FOLLOW_SELECTOR: &str = "a[href]";

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
