//! What every store must do is tested once for both stores, in
//! `tests/contract.rs`; here only what is this store's own: reopening,
//! the writer lock, group commits under parallel saves.

use super::scan::MAX_OPEN_SCANS;
use super::*;
use crate::store::SCAN_KEEP_ALIVE;
use rpcsupport::Value;

fn item(id: &str, payload: &[(&str, Value)]) -> Item {
    Item {
        url: format!("http://127.0.0.1:1/profile/{id}"),
        kind: "profile".into(),
        id: Some(id.into()),
        payload: payload
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

fn request(query: &str, from: u32, size: u32) -> SearchRequest {
    SearchRequest {
        query: query.into(),
        from,
        size,
    }
}

/// Saved items are still there after the store is closed and reopened.
#[tokio::test]
async fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let saved = item("keep", &[("age", Value::Int(40))]);
    {
        let store = open(dir.path()).unwrap();
        store.put_batch(vec![saved.clone()]).await.unwrap();
    }
    let store = open(dir.path()).unwrap();
    assert_eq!(store.count().await.unwrap(), 1);
    assert_eq!(store.get("keep").await.unwrap(), Some(saved));
    assert_eq!(
        store.search(&request("age:40", 0, 1)).await.unwrap().total,
        1
    );
}

/// A second writer on the same directory gets a clear Locked error.
#[tokio::test]
async fn second_open_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path()).unwrap();
    let err = open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    assert!(err.to_string().contains("locked"), "{err}");
}

/// At most MAX_OPEN_SCANS scans stay open; once their keep-alive runs out they are gone, and so are their cursors.
#[tokio::test]
async fn open_scans_are_bounded_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let items = vec![item("a", &[]), item("b", &[])];
    store.put_batch(items).await.unwrap();
    let first = ScanRequest {
        query: String::new(),
        after: None,
        size: 1,
    };
    let mut cursors = Vec::new();
    for _ in 0..MAX_OPEN_SCANS {
        cursors.push(store.scan(&first).await.unwrap().next.unwrap());
    }
    let err = store.scan(&first).await.unwrap_err();
    assert!(matches!(err, StoreError::Rejected(_)), "{err:?}");

    let later = tokio::time::Instant::now() + SCAN_KEEP_ALIVE + std::time::Duration::from_secs(1);
    lock(&store.inner.scans).expire(later);
    assert!(lock(&store.inner.scans).open.is_empty());
    let next = ScanRequest {
        after: Some(cursors[0].clone()),
        ..first.clone()
    };
    let err = store.scan(&next).await.unwrap_err();
    assert!(err.to_string().contains("over or expired"), "{err}");
    // Room again; a whole scan then reads both items and closes itself.
    let page = store.scan(&first).await.unwrap();
    let last = store
        .scan(&ScanRequest {
            after: page.next,
            ..first
        })
        .await
        .unwrap();
    assert_eq!(
        (page.items.len(), last.items.len(), last.next),
        (1, 1, None)
    );
    assert!(lock(&store.inner.scans).open.is_empty());
}

/// Concurrent batches are all stored (and share commits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let mut tasks = Vec::new();
    for b in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let batch = (0..10)
                .map(|i| item(&format!("{b}-{i}"), &[("b", Value::Int(b))]))
                .collect();
            store.put_batch(batch).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), SaveAck::all(10));
    }
    assert_eq!(store.count().await.unwrap(), 160);
}
