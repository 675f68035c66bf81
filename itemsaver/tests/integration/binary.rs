//! The `itemsaver` binary: ready line, subcommands, errors, clean SIGTERM exit.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use rpcsupport::{ConnectOptions, HostAddr, Item, Value};
use tarpc::context;
use testsupport::Server;

const BIN: &str = env!("CARGO_BIN_EXE_itemsaver");

/// Starts the binary on 127.0.0.1 with a free port and waits for its ready line.
fn start(work_dir: &Path, data_dir: &Path) -> Server {
    start_with(work_dir, &["--data_dir", data_dir.to_str().unwrap()])
}

fn start_with(work_dir: &Path, store_args: &[&str]) -> Server {
    Server::start(
        Command::new(BIN)
            .args(["--port", "0", "--bind", "127.0.0.1"])
            .args(store_args)
            // So no stray config.toml from the caller's directory is read.
            .current_dir(work_dir)
            .stderr(Stdio::null()),
        "itemsaver listening on ",
    )
}

fn run(work_dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(work_dir)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// Serve, save over RPC, then `count` and `search` print what was saved; SIGTERM exits 0.
#[tokio::test]
async fn serves_counts_searches_and_stops() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("items");
    let mut server = start(work.path(), &data);
    assert!(
        server.ready_line().ends_with(", 0 items)\n"),
        "{}",
        server.ready_line()
    );

    let host: HostAddr = server.addr().parse().unwrap();
    let client = rpcsupport::connect_itemsaver(&host, ConnectOptions::default())
        .await
        .unwrap();
    let mut payload = BTreeMap::new();
    payload.insert("name".to_string(), Value::from("Quiet Snow"));
    payload.insert("age".to_string(), Value::Int(31));
    let item = Item {
        url: "http://127.0.0.1:1/profile/7".into(),
        kind: "profile".into(),
        id: Some("7".into()),
        payload,
    };
    client
        .save(context::current(), vec![item].into())
        .await
        .unwrap()
        .unwrap();

    let out = stdout(&run(
        work.path(),
        &["count", "--itemsaver_host", server.addr()],
    ));
    assert_eq!(out, "1\n");
    let out = stdout(&run(
        work.path(),
        &["search", "snow", "--itemsaver_host", server.addr()],
    ));
    assert!(out.starts_with("1 hits"), "{out}");
    for expected in ["id: 7", "kind: profile", "age: 31", "name: Quiet Snow"] {
        assert!(out.contains(expected), "{expected:?} missing from {out}");
    }

    // A second server on the same data directory refuses to start.
    let second = run(
        work.path(),
        &["--port", "0", "--data_dir", data.to_str().unwrap()],
    );
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("locked"));

    assert!(server.terminate().success());

    // Restarted, it finds the item again.
    let server = start(work.path(), &data);
    assert!(
        server.ready_line().ends_with(", 1 items)\n"),
        "{}",
        server.ready_line()
    );
}

/// Bad flags, a missing explicit config and an unreachable host exit non-zero with a message.
#[test]
fn errors_exit_non_zero() {
    let work = tempfile::tempdir().unwrap();
    let cases: [&[&str]; 6] = [
        &["--config", "missing.toml"],
        &["--bind", "not an address", "--port", "0"],
        &["--port", "0", "--es_url", "ftp://127.0.0.1:9200"],
        &[
            "--port",
            "0",
            "--es_url",
            "http://127.0.0.1:1",
            "--index",
            "Bad Name",
        ],
        &["count", "--itemsaver_host", "nonsense"],
        // Port 1 on 127.0.0.1: nothing listens there in a test environment.
        &["count", "--itemsaver_host", ":1"],
    ];
    for args in cases {
        let output = run(work.path(), args);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(!output.stderr.is_empty(), "{args:?} printed no message");
    }
    let output = run(
        work.path(),
        &["--port", "0", "--es_url", "http://127.0.0.1:1"],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot reach Elasticsearch at http://127.0.0.1:1"),
        "{stderr}"
    );
}

/// With `--es_url`, the binary serves from Elasticsearch, and `count` and `search` work the same (issue 3).
#[tokio::test]
async fn serves_from_elasticsearch() {
    let Some(url) = testsupport::elasticsearch_url("serves_from_elasticsearch") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let index = format!("binary-{}", std::process::id());
    let server = start_with(work.path(), &["--es_url", &url, "--index", &index]);
    assert!(
        server
            .ready_line()
            .contains(&format!("elasticsearch index {index} at ")),
        "{}",
        server.ready_line()
    );
    let host: HostAddr = server.addr().parse().unwrap();
    let client = rpcsupport::connect_itemsaver(&host, ConnectOptions::default())
        .await
        .unwrap();
    let items: Vec<Item> = (0..3)
        .map(|i| Item {
            url: format!("http://127.0.0.1:1/profile/{i}"),
            kind: "profile".into(),
            id: Some(i.to_string()),
            payload: [
                ("name".to_string(), Value::from(format!("Quiet Snow {i}"))),
                ("age".to_string(), Value::Int(30 + i)),
            ]
            .into(),
        })
        .collect();
    client
        .save(context::current(), items.into())
        .await
        .unwrap()
        .unwrap();
    let out = stdout(&run(
        work.path(),
        &["count", "--itemsaver_host", server.addr()],
    ));
    assert_eq!(out, "3\n");
    let out = stdout(&run(
        work.path(),
        &[
            "search",
            "snow AND age:>30",
            "--size",
            "1",
            "--itemsaver_host",
            server.addr(),
        ],
    ));
    assert!(out.starts_with("2 hits, showing 1 to 1"), "{out}");
}
