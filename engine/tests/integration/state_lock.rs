//! One engine per state dir (issue 11): a second engine started on a
//! directory in use stops at once with an error naming it and the pid of
//! the engine holding it, and the first crawls on to its end.

use std::future::pending;
use std::time::{Duration, Instant};

use crate::common::*;
use engine::EngineError;

/// The second engine on a state dir gets `StateDirLocked` with the
/// directory and our pid; the first is untouched and finishes its crawl.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_engine_on_a_state_dir_is_refused() {
    // The site serves no page until the gate opens, so the first crawl is
    // still running whatever the second engine takes.
    let cluster = Cluster::builder().profiles(100).gated().start().await;
    let state_dir = cluster.path("state");
    let mut config = cluster.config();
    config.state_dir = state_dir.display().to_string();

    let first = tokio::spawn(engine::run(config.clone().validate().unwrap(), pending()));
    // The lock file holds the first engine's pid once it owns the dir.
    let start = Instant::now();
    let lock = state_dir.join("lock");
    while std::fs::read_to_string(&lock).map_or(true, |t| t.trim().is_empty()) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "first engine never took the lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let second = engine::run(config.validate().unwrap(), pending()).await;
    match second {
        Err(EngineError::StateDirLocked { path, pid }) => {
            assert_eq!(path, state_dir);
            assert_eq!(pid, Some(std::process::id()));
            let message = EngineError::StateDirLocked { path, pid }.to_string();
            assert!(
                message.contains(&state_dir.display().to_string()),
                "{message}"
            );
            assert!(message.contains("in use by another engine"), "{message}");
        }
        Err(e) => panic!("expected StateDirLocked, got {e}"),
        Ok(summary) => panic!("the second engine crawled: {summary}"),
    }
    assert!(
        !first.is_finished(),
        "the first engine must still be crawling"
    );

    cluster.open_gate();
    let summary = first.await.unwrap().expect("the first engine runs on");
    assert!(!summary.interrupted, "{summary}");
    assert_eq!(summary.pages, cluster.site.page_count(), "{summary}");
    assert!(summary.errors.is_empty(), "{summary}");
}
