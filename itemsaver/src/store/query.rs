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

/// Parses `text` into the tree both stores run. An empty query lists
/// everything, so `search ""` pages through the store.
pub fn parse(text: &str) -> Result<UserInputAst, StoreError> {
    let text = if text.trim().is_empty() { "*" } else { text };
    let mut ast = tantivy::query_grammar::parse_query(text)
        .map_err(|_| StoreError::BadQuery(format!("cannot parse query {text:?}")))?;
    route_to_payload(&mut ast);
    complete_negations(&mut ast);
    Ok(ast)
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

    /// Empty text lists everything; broken syntax is a BadQuery.
    #[test]
    fn empty_and_broken_queries() {
        assert_eq!(format!("{:?}", parse("  ").unwrap()), "*");
        assert!(matches!(parse("(unclosed"), Err(StoreError::BadQuery(_))));
    }
}
