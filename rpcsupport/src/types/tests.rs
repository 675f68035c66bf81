//! Wire types: request keys, values and their limits.

use std::collections::BTreeMap;

use super::*;

fn sample_item() -> Item {
    let mut payload = BTreeMap::new();
    payload.insert("name".into(), Value::from("安静的雪"));
    payload.insert("age".into(), Value::Int(31));
    payload.insert("height".into(), Value::Float(172.5));
    payload.insert("verified".into(), Value::Bool(true));
    payload.insert("tags".into(), Value::List(vec!["a".into(), Value::Null]));
    let mut nested = BTreeMap::new();
    nested.insert("min".into(), Value::Int(-3));
    payload.insert("income".into(), Value::Map(nested));
    Item {
        url: "http://127.0.0.1:8080/profile/7".into(),
        kind: "profile".into(),
        id: Some("7".into()),
        payload,
    }
}

/// Encodes and decodes `value` with the exact codec our transport uses.
fn round_trip<T>(value: &T) -> T
where
    T: Serialize + for<'de> Deserialize<'de>,
{
    let bytes = crate::codec::encode(value).expect("encodes");
    crate::codec::decode(&bytes, crate::codec::DecodeLimits::default()).expect("decodes")
}

/// Every wire type survives the bincode codec tarpc uses, numbers included.
#[test]
fn wire_types_round_trip_through_bincode() {
    let result = ParseResult {
        requests: vec![Request {
            url: "http://x/a".into(),
            parser: ParserSpec {
                name: "profile".into(),
                args: [("k".to_string(), "v".to_string())].into(),
            },
            depth: 3,
            hints: Default::default(),
        }],
        items: vec![sample_item()],
        limits: ParseLimits {
            links_truncated: 7,
            ..ParseLimits::default()
        },
        page: Default::default(),
    };
    let back = round_trip(&result);
    assert_eq!(back, result);
    assert_eq!(back.items[0].payload["age"], Value::Int(31));

    let err = crate::CrawlError::from(crate::FetchError::Status {
        url: "http://x/".into(),
        status: 503,
        retry_after_secs: Some(4),
    });
    assert_eq!(round_trip(&err), err);

    let ack = SaveAck {
        stored: 9,
        refused: vec![Refusal {
            key: "p1".into(),
            reason: "too big".into(),
        }],
    };
    assert_eq!(round_trip(&ack), ack);
}

/// Allowed domains match themselves and their subdomains, nothing else.
#[test]
fn policy_matches_domains_and_subdomains() {
    let p = FetchPolicy {
        allowed_domains: vec!["example.com".into(), "127.0.0.1".into()],
        obey_robots_meta: false,
        obey_nofollow: false,
    };
    for ok in [
        "example.com",
        "EXAMPLE.com",
        "a.b.example.com",
        "127.0.0.1",
        "example.com.",
    ] {
        assert!(p.allows_host(ok), "{ok}");
    }
    for bad in ["badexample.com", "example.com.evil", "127.0.0.2", "com", ""] {
        assert!(!p.allows_host(bad), "{bad}");
    }
    assert!(FetchPolicy::default().allows_host("anything"));
}

/// The JSON text written straight from an item is exactly the text of
/// its JSON tree, and `json_len` its length: escapes, non-ASCII,
/// floats (whole, tiny, huge, not finite), nesting, no id.
#[test]
fn json_text_matches_the_json_tree() {
    let mut odd = sample_item();
    odd.id = None;
    odd.url = "http://h/\"q\"\\\n\t\u{1}é".into();
    for (i, f) in [3.0, -0.0, 1e-300, 1.5e300, f64::NAN, f64::INFINITY, 0.1]
        .into_iter()
        .enumerate()
    {
        odd.payload.insert(format!("f{i}"), Value::Float(f));
    }
    odd.payload.insert("\u{7f}k\"".into(), Value::Int(i64::MIN));
    odd.payload.insert(
        "deep".into(),
        Value::List(vec![Value::Map(odd.payload.clone()), Value::List(vec![])]),
    );
    for item in [
        sample_item(),
        odd,
        Item {
            url: String::new(),
            kind: String::new(),
            id: Some(String::new()),
            payload: BTreeMap::new(),
        },
    ] {
        let tree = item.to_json().to_string();
        assert_eq!(item.json_text_with_id(Some(&item.key())), tree);
        assert_eq!(item.json_len(), tree.len());
        let mut own_id = item.to_json();
        own_id["id"] = item
            .id
            .clone()
            .map_or(serde_json::Value::Null, serde_json::Value::String);
        assert_eq!(
            item.json_text_with_id(item.id.as_deref()),
            own_id.to_string()
        );
    }
}

/// JSON conversion keeps integers as integers and floats as floats.
#[test]
fn item_json_round_trip_keeps_types() {
    let item = sample_item();
    let json = item.to_json();
    assert!(json["payload"]["age"].is_i64());
    assert!(json["payload"]["height"].is_f64());
    assert_eq!(Item::from_json(&json).unwrap(), item);
}

/// Depth counts a scalar as one level and each list or map around it
/// as one more.
#[test]
fn depth_counts_levels() {
    let mut v = Value::Int(1);
    assert!(!v.deeper_than(1));
    for _ in 0..9 {
        v = Value::List(vec![Value::Null, v]);
    }
    assert!(!v.deeper_than(10));
    assert!(v.deeper_than(9));
    let mut item = sample_item();
    assert!(!item.deeper_than(2));
    item.payload.insert("deep".into(), v);
    assert!(item.deeper_than(MAX_VALUE_DEPTH.min(9)));
}

/// An item without id gets the same derived key every time, distinct per kind.
#[test]
fn derived_key_is_stable_and_kind_specific() {
    let mut a = sample_item();
    a.id = None;
    let mut b = a.clone();
    assert_eq!(a.key(), b.key());
    b.kind = "other".into();
    assert_ne!(a.key(), b.key());
    assert_eq!(a.key().len(), 33);
}

/// A shared argument is on the wire exactly as the value it shares, and
/// the end that decodes it holds the only handle, so it moves the value
/// out.
#[test]
fn shared_is_the_value_on_the_wire() {
    let batch = vec![sample_item(), sample_item()];
    let shared = Shared::new(batch.clone());
    let kept = shared.share();
    let bytes = crate::codec::encode(&batch).unwrap();
    assert_eq!(crate::codec::encode(&shared).unwrap(), bytes);
    let decoded: Shared<Vec<Item>> =
        crate::codec::decode(&bytes, crate::codec::DecodeLimits::default()).unwrap();
    assert_eq!(*decoded, batch);
    let items_at = decoded.as_ptr();
    let moved = decoded.into_inner();
    assert_eq!(moved.as_ptr(), items_at, "moved, not copied");
    // With another handle alive, taking the value out copies it.
    let copy = shared.into_inner();
    assert_eq!(copy, *kept);
    assert_ne!(copy.as_ptr(), kept.as_ptr());
}
