//! The search language, parsed once for every store.
//!
//! Both stores read a query with tantivy's query grammar (free text,
//! `field:value`, `"a phrase"`, `age:[20 TO 30]`, `age:<30`, `age:*`,
//! AND/OR/NOT, `+`/`-`, parentheses) and then [`parse`] rewrites the tree
//! the same way for both, so a query cannot mean one thing to the embedded
//! store and another to Elasticsearch: the embedded store hands the tree to
//! tantivy's `QueryParser`, the Elasticsearch store translates it to query
//! DSL (`store::elastic`). Elasticsearch's own `query_string` parser was not
//! used because its syntax and defaults differ in the corners (default
//! operator, escaping, `IN` sets, pure negations), and then the same text
//! would give different hits.

use tantivy::query_grammar::{Occur, UserInputAst, UserInputLeaf};

use super::StoreError;

/// Field names that are not payload keys. Both stores index these at the
/// top level; any other field name in a query means that key of the payload
/// (`age:31` is `payload.age:31`).
pub const TOP_LEVEL_FIELDS: [&str; 6] = ["id", "url", "kind", "all", "item", "payload"];

/// Longest query text accepted, in bytes: far above what a person types or
/// a tool builds, and a bound on what the parser and the tree rewrites
/// below spend on one query.
pub const MAX_QUERY_BYTES: usize = 4096;

/// Deepest nesting accepted: parentheses deep, plus `NOT`s. The query
/// grammar and the rewrites below recurse once per level; this keeps that
/// far from any stack's end (a debug build parses the deepest query
/// accepted in under 512 KiB of stack, a quarter of a tokio thread's).
pub const MAX_QUERY_DEPTH: usize = 32;

/// Parses `text` into the tree both stores run. An empty query lists
/// everything, so `search ""` pages through the store. Text longer than
/// [`MAX_QUERY_BYTES`] or nested deeper than [`MAX_QUERY_DEPTH`] is a
/// `BadQuery`, checked before any parsing.
pub fn parse(text: &str) -> Result<UserInputAst, StoreError> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(StoreError::BadQuery(format!(
            "query is {} bytes, at most {MAX_QUERY_BYTES} allowed",
            text.len()
        )));
    }
    if nesting(text) > MAX_QUERY_DEPTH {
        return Err(StoreError::BadQuery(format!(
            "query nests deeper than {MAX_QUERY_DEPTH} levels (parentheses and NOTs)"
        )));
    }
    let text = if text.trim().is_empty() { "*" } else { text };
    let mut ast = tantivy::query_grammar::parse_query(text)
        .map_err(|_| StoreError::BadQuery(format!("cannot parse query {text:?}")))?;
    route_to_payload(&mut ast);
    complete_negations(&mut ast);
    Ok(ast)
}

/// How deeply `text` nests: the deepest `(` outside quoted phrases and
/// escapes, plus every `NOT` (each wraps what follows in a level of the
/// tree, and a chain of a thousand of them recurses as deep as a thousand
/// parentheses). A stray `)` is left to the parser to refuse.
fn nesting(text: &str) -> usize {
    let (mut depth, mut deepest, mut nots) = (0usize, 0usize, 0usize);
    let (mut quoted, mut escaped) = (false, false);
    let mut word = String::new();
    for c in text.chars().chain([' ']) {
        let in_word = !quoted && !escaped && (c.is_alphanumeric() || c == '_');
        if !in_word {
            if word == "NOT" {
                nots += 1;
            }
            word.clear();
        }
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            _ if quoted => {}
            '(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' => depth = depth.saturating_sub(1),
            // Words are short here; a long one is never "NOT".
            _ if in_word && word.len() < 4 => word.push(c),
            _ if in_word => word.push('_'),
            _ => {}
        }
    }
    deepest + nots
}

/// Whether `name` addresses a top-level field rather than a payload key.
pub fn is_top_level(name: &str) -> bool {
    TOP_LEVEL_FIELDS.contains(&name) || name.starts_with("payload.")
}

/// Rewrites field names that are not top-level fields to `payload.<name>`,
/// so users need not write the prefix. Payload keys named like a top-level
/// field (`kind`, `url`, `id`, `all`) still need it.
fn route_to_payload(ast: &mut UserInputAst) {
    match ast {
        UserInputAst::Clause(clauses) => {
            for (_, clause) in clauses {
                route_to_payload(clause);
            }
        }
        UserInputAst::Boost(inner, _) => route_to_payload(inner),
        UserInputAst::Leaf(leaf) => {
            let field = match leaf.as_mut() {
                UserInputLeaf::Literal(literal) => literal.field_name.as_mut(),
                UserInputLeaf::Range { field, .. }
                | UserInputLeaf::Set { field, .. }
                | UserInputLeaf::Regex { field, .. } => field.as_mut(),
                UserInputLeaf::Exists { field } => Some(field),
                UserInputLeaf::All => None,
            };
            if let Some(name) = field {
                if !is_top_level(name) {
                    *name = format!("payload.{name}");
                }
            }
        }
    }
}

/// Gives every group made only of exclusions (`NOT beijing`,
/// `a AND (NOT b)`) a "match everything" to exclude from, as a search box
/// user means. Unchanged, tantivy refuses such a query outright and
/// Elasticsearch would treat nested and top-level groups differently.
fn complete_negations(ast: &mut UserInputAst) {
    match ast {
        UserInputAst::Clause(clauses) => {
            for (_, clause) in clauses.iter_mut() {
                complete_negations(clause);
            }
            if !clauses.is_empty()
                && clauses
                    .iter()
                    .all(|(occur, _)| *occur == Some(Occur::MustNot))
            {
                clauses.push((
                    Some(Occur::Must),
                    UserInputAst::Leaf(Box::new(UserInputLeaf::All)),
                ));
            }
        }
        UserInputAst::Boost(inner, _) => complete_negations(inner),
        UserInputAst::Leaf(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(ast: &UserInputAst, out: &mut Vec<String>) {
        match ast {
            UserInputAst::Clause(clauses) => clauses.iter().for_each(|(_, c)| fields(c, out)),
            UserInputAst::Boost(inner, _) => fields(inner, out),
            UserInputAst::Leaf(leaf) => match leaf.as_ref() {
                UserInputLeaf::Literal(l) => out.extend(l.field_name.clone()),
                UserInputLeaf::Range { field, .. } => out.extend(field.clone()),
                UserInputLeaf::Exists { field } => out.push(field.clone()),
                _ => {}
            },
        }
    }

    /// Payload keys get the `payload.` prefix; top-level fields and prefixed keys keep their name.
    #[test]
    fn payload_fields_are_prefixed() {
        let ast = parse("age:[20 TO 30] kind:profile payload.city:x height:* url:y").unwrap();
        let mut names = Vec::new();
        fields(&ast, &mut names);
        assert_eq!(
            names,
            [
                "payload.age",
                "kind",
                "payload.city",
                "payload.height",
                "url"
            ]
        );
    }

    /// A pure negation gets something to exclude from; a mixed group does not.
    #[test]
    fn negations_are_completed() {
        let dbg = |q: &str| format!("{:?}", parse(q).unwrap());
        // In the tree's notation `+*` is "must match everything".
        assert_eq!(dbg("NOT beijing"), "(-beijing +*)");
        assert!(!dbg("shanghai -beijing").contains("+*"));
        assert!(dbg("shanghai AND (NOT beijing)").contains("+*"));
    }

    /// Issue 11: a query over the length or nesting limit is a BadQuery,
    /// never a stack overflow; one just under them parses, on a small stack.
    #[test]
    fn long_or_deep_queries_are_bad_queries() {
        let bad = |q: &str| matches!(parse(q), Err(StoreError::BadQuery(_)));
        assert!(bad(&"(".repeat(100_000)));
        assert!(bad(&"a ".repeat(MAX_QUERY_BYTES)));
        let deep = format!("{}a{}", "(".repeat(40), ")".repeat(40));
        assert!(bad(&deep));
        // Parentheses in a phrase are text, not nesting.
        assert!(parse(&format!("\"{}\"", "(".repeat(100))).is_ok());
        assert!(bad(&"NOT ".repeat(MAX_QUERY_DEPTH + 1)));
        assert!(!bad("NOTE NOTHING \"NOT NOT\" a"));
        let half = MAX_QUERY_DEPTH / 2;
        let worst = [
            format!(
                "{}a{}",
                "(".repeat(MAX_QUERY_DEPTH),
                ")".repeat(MAX_QUERY_DEPTH)
            ),
            "-".repeat(MAX_QUERY_BYTES),
            "NOT ".repeat(MAX_QUERY_DEPTH),
            "NOT (".repeat(half) + "a" + &")".repeat(half),
            "a AND ".repeat(MAX_QUERY_BYTES / 6),
            "a OR b ".repeat(MAX_QUERY_BYTES / 7),
            "+(".repeat(MAX_QUERY_DEPTH) + "a",
            "a:[1 TO 2] ".repeat(MAX_QUERY_BYTES / 11),
        ];
        std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(move || {
                for q in worst {
                    // Parsed or refused, but answered.
                    let _ = parse(&q);
                }
            })
            .unwrap()
            .join()
            .expect("no stack overflow");
    }

    /// Empty text lists everything; broken syntax is a BadQuery.
    #[test]
    fn empty_and_broken_queries() {
        assert_eq!(format!("{:?}", parse("  ").unwrap()), "*");
        assert!(matches!(parse("(unclosed"), Err(StoreError::BadQuery(_))));
    }
}
