//! Tests of the URL store: group commits, background commits, acks.

use super::super::record::UrlStatus;
use super::*;
use crate::scheduler::Task;
use rpcsupport::{ParserSpec, Request};
use std::path::Path;

const CACHE: usize = (DEFAULT_CACHE_MB as usize) << 20;

fn file(dir: &Path) -> File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join("urls.redb"))
        .unwrap()
}

fn record(i: u64) -> UrlRecord {
    UrlRecord::queued(&Task::new(Request::new(
        format!("http://h/{i}"),
        ParserSpec::named("p"),
        1,
    )))
}

fn item(key: &str) -> Item {
    Item {
        url: "http://h/".into(),
        kind: "t".into(),
        id: Some(key.into()),
        payload: Default::default(),
    }
}

/// Nothing reaches the file before a commit; after it, records, unacked
/// items, deletes and the counters come back on reopen.
#[test]
fn group_commit_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, contents) = UrlStore::open(file(dir.path()), CACHE).unwrap();
    assert!(contents.meta.is_none());
    for i in 0..10 {
        store.put(i, record(i));
    }
    store.items_sent(&[item("a"), item("b")]);
    store.deletes_queued(&["gone".into()]);
    assert_eq!(store.changes(), 13);
    assert_eq!(store.url_count().unwrap(), 0, "not committed yet");
    assert_eq!(store.get(3).unwrap().unwrap().url, "http://h/3");
    let meta = Meta {
        summary: Summary {
            pages: 4,
            ..Summary::default()
        },
        ..Meta::default()
    };
    store.commit(&meta).unwrap();
    assert_eq!(store.changes(), 0);
    store.items_acked(&["a".into()]);
    // Dropped without a commit: the ack of "a" is lost, so "a" is
    // still unacked (sent again: the itemsaver upserts).
    drop(store);
    let (store, contents) = UrlStore::open(file(dir.path()), CACHE).unwrap();
    assert_eq!(store.url_count().unwrap(), 10);
    assert_eq!(contents.meta.unwrap().summary.pages, 4);
    let mut keys: Vec<String> = contents.unacked.iter().map(Item::key).collect();
    keys.sort();
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(contents.deletes, ["gone"]);
    let mut seen = 0;
    store
        .scan(|_, _, v| {
            assert_eq!(UrlStatus::of(v), Some(UrlStatus::Queued));
            seen += 1;
        })
        .unwrap();
    assert_eq!(seen, 10);
}

/// A commit under way leaves the store usable: reads see its batch,
/// new changes wait for the next one, and a failed commit's changes
/// come back for the next try.
#[test]
fn background_commit_and_failed_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = UrlStore::open(file(dir.path()), CACHE).unwrap();
    store.put(1, record(1));
    let job = store.begin_commit(&Meta::default()).unwrap();
    assert!(
        store.begin_commit(&Meta::default()).is_none(),
        "one at a time"
    );
    assert!(store.commit(&Meta::default()).is_err());
    store.put(2, record(2));
    assert_eq!(
        store.get(1).unwrap().unwrap().url,
        "http://h/1",
        "being written"
    );
    assert_eq!(store.changes(), 1);
    // This one "fails": its record comes back under the newer change.
    drop(job);
    store.end_commit(false);
    assert_eq!(store.changes(), 2);
    let job = store.begin_commit(&Meta::default()).unwrap();
    job.run().unwrap();
    store.end_commit(true);
    assert_eq!(store.url_count().unwrap(), 2);
    assert_eq!(store.changes(), 0);
}

/// An item key sent twice stays unacked until both copies are acked;
/// acked deletes are forgotten.
#[test]
fn acks_remove_unacked_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = UrlStore::open(file(dir.path()), CACHE).unwrap();
    store.items_sent(&[item("k"), item("k"), item("j")]);
    store.deletes_queued(&["d1".into(), "d2".into()]);
    store.commit(&Meta::default()).unwrap();
    store.items_acked(&["k".into(), "j".into()]);
    store.deletes_acked(&["d1".into()]);
    store.commit(&Meta::default()).unwrap();
    drop(store);
    let (mut store, contents) = UrlStore::open(file(dir.path()), CACHE).unwrap();
    assert_eq!(
        contents.unacked.iter().map(Item::key).collect::<Vec<_>>(),
        ["k"]
    );
    assert_eq!(contents.deletes, ["d2"]);
    store.items_acked(&["k".into()]);
    store.commit(&Meta::default()).unwrap();
    drop(store);
    let (_, contents) = UrlStore::open(file(dir.path()), CACHE).unwrap();
    assert!(contents.unacked.is_empty());
}
