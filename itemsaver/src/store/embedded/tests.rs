//! What every store must do is tested once for both stores, in
//! `tests/contract.rs`; here only what is this store's own: reopening,
//! the writer lock, group commits under parallel saves (and deletes).

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

/// Issue 13: saves and deletes of the same keys handed over while a commit holds the writer all go into the next group commit, in arrival order: each delete counts what was stored just before it, and the last write of each key wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saves_and_deletes_in_one_group_keep_their_order() {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    store.put_batch(vec![item("old", &[])]).await.unwrap();
    let v = |id: &str, n: i64| item(id, &[("v", Value::Int(n))]);
    let keys = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect::<Vec<_>>();
    let (d1, d2, d3) = (keys(&["k", "j", "old"]), keys(&["j", "j"]), keys(&["m"]));

    type Write<'a> = Pin<Box<dyn Future<Output = Result<u64, StoreError>> + Send + 'a>>;
    fn saved<'a>(save: impl Future<Output = Result<SaveAck, StoreError>> + Send + 'a) -> Write<'a> {
        Box::pin(async move { save.await.map(|ack| u64::from(ack.stored)) })
    }
    let mut writes: Vec<Write<'_>> = vec![
        saved(store.put_batch(vec![v("k", 1)])),
        store.delete(&d1),
        saved(store.put_batch(vec![v("k", 2), v("j", 1)])),
        store.delete(&d2),
        store.delete(&d3),
        saved(store.put_batch(vec![v("m", 1)])),
    ];
    {
        // Holding the writer, as a running commit does: each write, polled
        // once in order, queues itself and its commit task waits.
        let _writer = store.inner.writer.lock().unwrap();
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        for write in &mut writes {
            assert!(matches!(write.as_mut().poll(&mut cx), Poll::Pending));
        }
        assert_eq!(lock(&store.inner.pending).len(), 6);
    }
    let answers: Vec<u64> = futures::future::join_all(writes)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    // Saves answer their count stored; deletes what they found stored:
    // k (saved just before) and old (committed), then j once, then no m.
    assert_eq!(answers, [1, 2, 2, 1, 0, 1]);
    assert_eq!(store.get("k").await.unwrap(), Some(v("k", 2)));
    assert_eq!(store.get("j").await.unwrap(), None);
    assert_eq!(store.get("old").await.unwrap(), None);
    assert_eq!(store.get("m").await.unwrap(), Some(v("m", 1)));
    assert_eq!(store.count().await.unwrap(), 2);
}
