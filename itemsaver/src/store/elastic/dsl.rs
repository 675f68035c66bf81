//! The search language (parsed by [`crate::store::query`]) translated to
//! Elasticsearch query DSL, with the meaning the embedded store gives it.

use serde_json::{json, Value as Json};
use tantivy::query_grammar::{Occur, UserInputAst, UserInputBound, UserInputLeaf};

/// Translates a parsed query (see [`crate::store::query`]) to query DSL with the meaning
/// the embedded store gives it: terms are ANDed unless OR is written, a
/// field value is a phrase of its words, free text looks in the payload's
/// strings (`all`) and matches `kind` or `url` exactly.
pub(super) fn to_dsl(ast: &UserInputAst) -> Result<Json, String> {
    match ast {
        UserInputAst::Clause(clauses) => {
            if clauses.is_empty() {
                return Ok(json!({"match_none": {}}));
            }
            let (mut must, mut should, mut must_not) = (Vec::new(), Vec::new(), Vec::new());
            for (occur, clause) in clauses {
                let query = to_dsl(clause)?;
                match occur.unwrap_or(Occur::Must) {
                    Occur::Must => must.push(query),
                    Occur::Should => should.push(query),
                    Occur::MustNot => must_not.push(query),
                }
            }
            Ok(json!({"bool": {"must": must, "should": should, "must_not": must_not}}))
        }
        UserInputAst::Boost(inner, boost) => {
            Ok(json!({"bool": {"must": [to_dsl(inner)?], "boost": boost.into_inner()}}))
        }
        UserInputAst::Leaf(leaf) => leaf_to_dsl(leaf),
    }
}

fn leaf_to_dsl(leaf: &UserInputLeaf) -> Result<Json, String> {
    match leaf {
        UserInputLeaf::All => Ok(json!({"match_all": {}})),
        UserInputLeaf::Literal(literal) => {
            let text = literal.phrase.as_str();
            match literal.field_name.as_deref() {
                None => Ok(json!({"bool": {"should": [
                    phrase("all", text, literal.slop, literal.prefix),
                    {"term": {"kind": text}},
                    {"term": {"url": text}},
                ]}})),
                Some(field) => field_literal(field, text, literal.slop, literal.prefix),
            }
        }
        UserInputLeaf::Range {
            field,
            lower,
            upper,
        } => {
            let field = field
                .as_deref()
                .ok_or("a range needs a field, e.g. age:[20 TO 30]")?;
            check_indexed(field)?;
            let mut range = serde_json::Map::new();
            for (bound, inclusive, exclusive) in [(lower, "gte", "gt"), (upper, "lte", "lt")] {
                match bound {
                    UserInputBound::Inclusive(v) if v != "*" => {
                        range.insert(inclusive.into(), v.as_str().into());
                    }
                    UserInputBound::Exclusive(v) if v != "*" => {
                        range.insert(exclusive.into(), v.as_str().into());
                    }
                    _ => {}
                }
            }
            if range.is_empty() {
                return Ok(json!({"exists": {"field": field}}));
            }
            Ok(json!({"range": {field: range}}))
        }
        UserInputLeaf::Set { field, elements } => {
            let field = field
                .as_deref()
                .ok_or("a set needs a field, e.g. city: IN [shanghai beijing]")?;
            let any = elements
                .iter()
                .map(|e| field_literal(field, e, 0, false))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(json!({"bool": {"should": any}}))
        }
        UserInputLeaf::Exists { field } => {
            check_indexed(field)?;
            Ok(json!({"exists": {"field": field}}))
        }
        // The embedded store does not allow them either.
        UserInputLeaf::Regex { .. } => Err("regex queries are not allowed".into()),
    }
}

/// `field:text`. Keyword fields match the whole value; text and numeric
/// fields match the phrase of its words (a number as a number).
fn field_literal(field: &str, text: &str, slop: u32, prefix: bool) -> Result<Json, String> {
    check_indexed(field)?;
    Ok(match field {
        "id" | "url" | "kind" if prefix => json!({"prefix": {field: text}}),
        "id" | "url" | "kind" => json!({"term": {field: text}}),
        _ => phrase(field, text, slop, prefix),
    })
}

/// A phrase of `text`'s words in `field`; one word is a plain term. Lenient,
/// so `age:abc` on a numeric field finds nothing instead of failing, as in
/// the embedded store.
fn phrase(field: &str, text: &str, slop: u32, prefix: bool) -> Json {
    let kind = if prefix { "phrase_prefix" } else { "phrase" };
    // `payload` alone means any payload key.
    let field = if field == "payload" {
        "payload.*"
    } else {
        field
    };
    json!({"multi_match": {
        "query": text,
        "fields": [field],
        "type": kind,
        "slop": slop,
        "lenient": true,
    }})
}

fn check_indexed(field: &str) -> Result<(), String> {
    if field == "item" {
        Err("field `item` is not indexed".into())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::query;

    fn dsl(q: &str) -> Json {
        to_dsl(&query::parse(q).unwrap()).unwrap()
    }

    /// Payload fields get their prefix, ranges their bounds, keyword fields exact terms.
    #[test]
    fn translates_fields_and_ranges() {
        assert_eq!(
            dsl("age:[20 TO 30}"),
            json!({"range": {"payload.age": {"gte": "20", "lt": "30"}}})
        );
        assert_eq!(dsl("age:<30")["range"]["payload.age"], json!({"lt": "30"}));
        let q = dsl("kind:profile city:shanghai");
        assert_eq!(q["bool"]["must"][0], json!({"term": {"kind": "profile"}}));
        assert_eq!(
            q["bool"]["must"][1]["multi_match"]["fields"],
            json!(["payload.city"])
        );
    }

    /// OR becomes should, NOT must_not, and a pure negation excludes from everything.
    #[test]
    fn translates_boolean_operators() {
        let q = dsl("a OR b");
        assert_eq!(q["bool"]["should"].as_array().unwrap().len(), 2);
        let q = dsl("NOT a");
        assert_eq!(q["bool"]["must_not"].as_array().unwrap().len(), 1);
        assert_eq!(q["bool"]["must"][0], json!({"match_all": {}}));
    }

    /// Regexes and queries on the stored item are refused, as by the embedded store.
    #[test]
    fn refuses_what_the_embedded_store_refuses() {
        assert!(to_dsl(&query::parse("url:/http.*/").unwrap()).is_err());
        assert!(to_dsl(&query::parse("item:x").unwrap()).is_err());
        assert!(to_dsl(&query::parse("[1 TO 2]").unwrap()).is_err());
    }
}
