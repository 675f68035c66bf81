//! Decoding limits: nesting depth, memory per frame byte, and round trips.

use super::*;
use crate::types::{Item, Value};
use std::collections::BTreeMap;

fn nested_list(depth: usize) -> Value {
    let mut v = Value::Null;
    for _ in 0..depth {
        v = Value::List(vec![v]);
    }
    v
}

/// The bounded codec writes exactly what tarpc's own Bincode format
/// writes, and reads it back.
#[test]
fn same_bytes_as_tarpc_bincode() {
    use tarpc::tokio_serde::Serializer;
    let item = Item {
        url: "http://x/".into(),
        kind: "k".into(),
        id: Some("1".into()),
        payload: [("v".to_string(), nested_list(5))].into(),
    };
    let mut theirs = tarpc::tokio_serde::formats::Bincode::<Item, Item>::default();
    let expected = Pin::new(&mut theirs).serialize(&item).unwrap();
    let ours = encode(&item).unwrap();
    assert_eq!(&ours[..], &expected[..]);
    let back: Item = decode(&ours, DecodeLimits::default()).unwrap();
    assert_eq!(back, item);
}

/// Nesting past the limit is an error, not a stack overflow, even for
/// a frame of a million nested lists; nesting under it decodes.
#[test]
fn deep_nesting_is_an_error() {
    // Value::List(..) is enum tag 5, then a length of 1: two bytes per level.
    let mut frame = Vec::new();
    for _ in 0..1_000_000 {
        frame.extend_from_slice(&[5, 1]);
    }
    frame.push(0);
    let before = refused_frames();
    let e = decode::<Value>(&frame, DecodeLimits::default()).unwrap_err();
    assert!(e.to_string().contains("max_depth"), "{e}");
    assert!(refused_frames() > before);

    let ok = nested_list(100);
    assert_eq!(
        decode::<Value>(&encode(&ok).unwrap(), DecodeLimits::default()).unwrap(),
        ok
    );
}

/// The deepest value the limit lets through decodes on a small stack
/// (tokio's worker threads have 2 MiB).
#[test]
fn deepest_accepted_value_fits_a_small_stack() {
    let limits = DecodeLimits::default();
    // Two levels per value level, minus one for the innermost Null.
    let deepest = nested_list(limits.max_depth as usize / 2 - 1);
    let frame = encode(&deepest).unwrap();
    let decoded = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || decode::<Value>(&frame, limits).map(|v| v == deepest))
        .unwrap()
        .join()
        .expect("no stack overflow");
    assert!(decoded.unwrap());
}

/// A frame of tiny values that would decode to many times its size is
/// refused; ordinary items pass.
#[test]
fn decoded_size_is_bounded_by_the_frame() {
    let limits = DecodeLimits {
        slack_bytes: 0,
        ..DecodeLimits::default()
    };
    // 100 000 empty items: 4 bytes each on the wire, 96 in memory.
    let empty = Item {
        url: String::new(),
        kind: String::new(),
        id: None,
        payload: BTreeMap::new(),
    };
    let frame = encode(&vec![empty; 100_000]).unwrap();
    let e = decode::<Vec<Item>>(&frame, limits).unwrap_err();
    assert!(e.to_string().contains("bytes_per_frame_byte"), "{e}");

    let ordinary: Vec<Item> = (0..1000)
        .map(|i| Item {
            url: format!("http://127.0.0.1:8080/profile/{i}"),
            kind: "profile".into(),
            id: Some(i.to_string()),
            payload: [
                ("name".to_string(), Value::from("安静的雪")),
                ("age".to_string(), Value::Int(31)),
                ("city".to_string(), Value::from("beijing")),
            ]
            .into(),
        })
        .collect();
    let frame = encode(&ordinary).unwrap();
    assert_eq!(decode::<Vec<Item>>(&frame, limits).unwrap(), ordinary);
}

/// A length header claiming more elements than the frame has bytes is
/// refused at once, without reserving memory for them.
#[test]
fn huge_length_claims_are_refused() {
    // Value::List with a varint length of u64::MAX (tag 253, 8 bytes).
    let mut frame = vec![5, 253];
    frame.extend_from_slice(&u64::MAX.to_le_bytes());
    let e = decode::<Value>(&frame, DecodeLimits::default()).unwrap_err();
    assert!(e.to_string().contains("claims"), "{e}");
    // A string claiming 1 GiB in a short frame.
    let mut frame = vec![4, 252];
    frame.extend_from_slice(&(1u32 << 30).to_le_bytes());
    decode::<Value>(&frame, DecodeLimits::default()).unwrap_err();
}
