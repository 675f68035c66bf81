//! [`Rules::check`]: names, required keys, field types, seed and sitemap
//! URLs, regexes, and that every parser named exists. Selector syntax is
//! left to the workers (see the module docs).

use regex::Regex;

use super::{ruleset_id, Builtins, FieldType, IdSpec, RuleError, RuleSpec, Rules, RulesFile};

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
