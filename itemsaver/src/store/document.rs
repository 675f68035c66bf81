//! What both stores keep of an item besides its indexed fields: the item
//! as stored (read back exactly), and the text that free-text search looks
//! in.

use rpcsupport::{Item, Value};

/// The item as stored: `Item::to_json`, but with the item's own `id`
/// (possibly none) instead of the derived key, so reads return exactly what
/// was saved.
pub(crate) fn stored_json(item: &Item) -> String {
    item.json_text_with_id(item.id.as_deref())
}

/// Appends every string inside `value` to `out`, one per line.
pub(crate) fn collect_text(value: &Value, out: &mut String) {
    match value {
        Value::Str(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::List(values) => values.iter().for_each(|v| collect_text(v, out)),
        Value::Map(map) => map.values().for_each(|v| collect_text(v, out)),
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {}
    }
}
