//! A recrawl: each known page comes back unchanged, changed or gone, and
//! its records and items follow.

use rpcsupport::PageMeta;

use super::*;
use crate::scheduler::Task;
use crate::state::{unix_now, Fetched, Meta, UrlRecord, UrlStatus};

/// Leaves in `dir` a finished crawl that fetched each of `urls` (key
/// `i + 1`, ETag `"v{i}"`, content hash `i`, items `{i}a` and `{i}b`),
/// none due yet.
fn finished_crawl(dir: &Path, urls: &[&str]) {
    let (mut state, _) = StateDir::open(dir).unwrap();
    for (i, url) in urls.iter().enumerate() {
        let task = Task::new(Request::new(*url, ParserSpec::named("p"), 1));
        let mut r = UrlRecord::queued(&task);
        r.status = UrlStatus::Done;
        r.fetched = Some(Fetched {
            http_status: 200,
            etag: Some(format!("\"v{i}\"")),
            content_hash: Some(i as u64),
            interval_s: 7200,
            next_fetch: i64::MAX,
            ..Fetched::default()
        });
        r.item_keys = vec![format!("{i}a"), format!("{i}b")];
        state.store.put(i as u64 + 1, r);
    }
    let meta = Meta {
        finished: true,
        ..Meta::default()
    };
    state.commit(&meta).unwrap();
}

fn profile_item(id: &str) -> Item {
    Item {
        url: "http://a.test/".into(),
        kind: "profile".into(),
        id: Some(id.into()),
        payload: Default::default(),
    }
}

/// What the site answers the recrawl of `url`: `same` is a 304, `new-body`
/// a new body with one of its two items, anything else a 410.
fn recrawl_answer(url: &str) -> Option<Outcome> {
    match url.rsplit('/').next().unwrap() {
        "same" => answered(Ok(ParseResult {
            page: PageMeta {
                status: 304,
                unchanged: true,
                ..PageMeta::default()
            },
            ..ParseResult::default()
        })),
        "new-body" => answered(Ok(ParseResult {
            items: vec![profile_item("1a")],
            page: PageMeta {
                status: 200,
                content_hash: Some(99),
                ..PageMeta::default()
            },
            ..ParseResult::default()
        })),
        _ => answered(Err(status(410))),
    }
}

/// A recrawl tells unchanged, changed and gone pages apart by their
/// previous records: unchanged keeps its items and backs off, changed
/// stores its new items and has the one it dropped deleted, gone has all
/// its items deleted; the counts land in the summary (issue 13).
#[tokio::test(start_paused = true)]
async fn recrawl_decides_unchanged_changed_gone() {
    let dir = tempfile::tempdir().unwrap();
    let s = state_settings(dir.path(), |c| {
        c.recrawl = true;
        c.recrawl_now = true;
    });
    let urls = [
        "http://a.test/same",
        "http://a.test/new-body",
        "http://a.test/gone",
    ];
    finished_crawl(dir.path(), &urls);
    let requeue = Requeue::Recrawl {
        now: unix_now(),
        all: true,
    };
    let mut c = stateful(&s, dir.path(), Some(requeue));
    assert!(c.summary.recrawl.active && !c.summary.resumed);
    assert_eq!(c.summary.recrawl.due, 3);
    let now = Instant::now();
    let mut sent = Vec::new();
    c.dispatch(now, |id, r: &Request| sent.push((id, r.clone())));
    assert_eq!(sent.len(), 3);
    for (id, request) in sent {
        assert!(
            request.hints.etag.is_some(),
            "{request:?} goes with its validators"
        );
        c.on_outcome(id, recrawl_answer(&request.url), now);
    }
    let r = &c.summary.recrawl;
    assert_eq!((r.unchanged, r.changed, r.new, r.gone), (1, 1, 0, 1));
    let mut deletes = c.take_deletes();
    deletes.sort();
    assert_eq!(deletes, ["1b", "2a", "2b"]);
    let store = &c.state.as_ref().unwrap().store;
    // The records stay under the keys the first crawl gave them.
    let get = |url: &str| {
        let key = urls.iter().position(|u| u == &url).unwrap() as u64 + 1;
        let r = store.get(key).unwrap().unwrap();
        assert_eq!(r.url, url);
        r
    };
    let same = get(urls[0]);
    assert_eq!(same.item_keys, ["0a", "0b"], "unchanged keeps its items");
    let f = same.fetched.unwrap();
    assert_eq!(f.interval_s, 10_800, "unchanged: 1.5 times longer");
    assert_eq!(
        f.etag.as_deref(),
        Some("\"v0\""),
        "a 304 keeps the validators"
    );
    let changed = get(urls[1]);
    assert_eq!(changed.item_keys, ["1a"]);
    assert_eq!(
        changed.fetched.unwrap().interval_s,
        3_600,
        "changed: halved"
    );
    let gone = get(urls[2]);
    assert_eq!(gone.status, UrlStatus::Gone);
    assert!(gone.item_keys.is_empty());
}
