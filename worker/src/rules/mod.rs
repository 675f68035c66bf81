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
    let mut rules = HashMap::new();
    for (name, rule) in &file.parsers {
        let follow = compile_follows(file, name, rule)?;
        let item = rule
            .item
            .as_ref()
            .map(|item| compile_item(name, item))
            .transpose()?;
        rules.insert(name.clone(), Rule { follow, item });
    }
    Ok(RuleSet { spec, rules })
}

/// A CSS selector of rule `parser` at `key`, compiled.
fn selector(parser: &str, key: String, css: &str) -> Result<Selector, RuleError> {
    Selector::parse(css)
        .map_err(|e| RuleError::new(parser, key, format!("bad CSS selector {css:?}: {e}")))
}

/// A regex of rule `parser` at `key`. The contract checked that every regex
/// compiles; it is built again here to keep.
fn regex(parser: &str, key: String, re: &str) -> Result<Regex, RuleError> {
    Regex::new(re).map_err(|e| RuleError::new(parser, key, format!("bad regex {re:?}: {e}")))
}

/// The `follow` list of rule `name`.
fn compile_follows(
    file: &RulesFile,
    name: &str,
    rule: &RuleSpec,
) -> Result<Vec<Follow>, RuleError> {
    let mut follow = Vec::new();
    for (i, f) in rule.follow.iter().enumerate() {
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
    Ok(follow)
}

/// The `item` of rule `name`: its id and its fields.
fn compile_item(name: &str, item: &ItemSpec) -> Result<ItemRule, RuleError> {
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
    Ok(ItemRule {
        kind: item.kind.clone(),
        id,
        fields,
    })
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
        crate::parse::run_tree(&html, request, url, text, budget, |page| {
            self.apply(name, page)
        })
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
                if seen.contains(&key)
                    || page.budget.skip_nofollow(el.value().attr("rel"))
                    || !page.budget.admit_link(url.as_str().len())
                {
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
mod tests;
