//! The `engine` binary turns bad input into a clear message and a non-zero
//! exit (issue 2).

use std::process::{Command, Output};

use crate::common::*;

fn engine(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_engine"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("engine runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs the engine with `args`, checks it exits 1, and returns its stderr.
fn refused(args: &[&str]) -> String {
    let out = engine(args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    stderr(&out)
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Unreachable worker hosts: exit 1, naming every host.
#[test]
fn unreachable_workers_are_named() {
    let (a, b) = (closed_port(), closed_port());
    let hosts = format!(":{a},:{b}");
    let err = refused(&[
        "--config",
        "/dev/null",
        "--seed",
        "http://127.0.0.1:1/",
        "--worker_hosts",
        &hosts,
    ]);
    assert!(
        err.contains("none of the worker hosts could be reached"),
        "{err}"
    );
    assert!(
        err.contains(&format!("127.0.0.1:{a}")) && err.contains(&format!("127.0.0.1:{b}")),
        "{err}"
    );
}

/// A malformed host string is rejected before anything is contacted.
#[test]
fn malformed_host_is_rejected() {
    let err = refused(&[
        "--config",
        "/dev/null",
        "--seed",
        "http://127.0.0.1:1/",
        "--worker_hosts",
        ":9000,localhost",
    ]);
    assert!(
        err.contains("engine.worker_hosts") && err.contains("\"localhost\""),
        "{err}"
    );
}

/// A config key of the wrong type is reported with the key's name.
#[test]
fn config_key_of_wrong_type_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "[engine]\nworker_count = \"lots\"\n").unwrap();
    let err = refused(&[
        "--config",
        path.to_str().unwrap(),
        "--seed",
        "http://127.0.0.1:1/",
    ]);
    assert!(
        err.contains("worker_count") && err.contains("[engine]"),
        "{err}"
    );
}

/// A config file named with --config must exist.
#[test]
fn missing_config_file_is_an_error() {
    let err = refused(&[
        "--config",
        "/nonexistent/crawler.toml",
        "--seed",
        "http://127.0.0.1:1/",
    ]);
    assert!(err.contains("/nonexistent/crawler.toml"));
}

/// No seed at all is a usage error that says how to give one.
#[test]
fn missing_seed_is_an_error() {
    let err = refused(&["--config", "/dev/null"]);
    assert!(err.contains("--seed"), "{err}");
}

/// `--recrawl` and `--recrawl_now` are switches (no value); a recrawl
/// without a state dir is refused naming the key, and a bad
/// `--recrawl_every` says what a duration looks like (issue 13).
#[test]
fn recrawl_switches_and_their_checks() {
    let err = refused(&[
        "--config",
        "/dev/null",
        "--seed",
        "http://127.0.0.1:1/",
        "--recrawl",
        "--recrawl_now",
    ]);
    assert!(err.contains("engine.recrawl: needs state_dir"), "{err}");
    let err = refused(&[
        "--config",
        "/dev/null",
        "--seed",
        "http://127.0.0.1:1/",
        "--state_dir",
        "/nonexistent/state",
        "--recrawl_every",
        "soon",
    ]);
    assert!(
        err.contains("engine.recrawl_every") && err.contains("10m"),
        "{err}"
    );
}

/// An unknown parser name stops the crawl with a message naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_parser_is_reported() {
    let cluster = Cluster::builder().profiles(10).start().await;
    let args = [
        "--config".to_string(),
        "/dev/null".into(),
        "--seed".into(),
        cluster.url.clone(),
        "--parser".into(),
        "no_such_parser".into(),
        "--worker_hosts".into(),
        cluster.workers[0].to_string(),
        "--itemsaver_host".into(),
        cluster.saver.to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        engine(&args)
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("unknown parser \"no_such_parser\""), "{err}");
}

const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/demosite.rules.toml"
);

/// `check-rules` validates a file but for its selectors, says so, and
/// describes it; a bad file is an error naming the parser and key (issue 6).
#[test]
fn check_rules_describes_or_rejects() {
    let out = engine(&["check-rules", RULES]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ok, 3 parsers") && text.contains("item profile (10 fields)"),
        "{text}"
    );
    // It says what it leaves to the workers (issue 12).
    assert!(
        text.contains("not checked here: CSS selectors") && text.contains("worker check-rules"),
        "{text}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[parsers.p.item]\nkind = \"k\"\nfields.age = { select = \"td\", regex = \"(\" }\n",
    )
    .unwrap();
    let err = refused(&["check-rules", bad.to_str().unwrap()]);
    assert!(
        err.contains("parser \"p\", item.fields.age.regex: bad regex"),
        "{err}"
    );
}

/// Issue 12: `engine try-rules` is the worker's now; the engine says
/// where it went, and exits non-zero.
#[test]
fn try_rules_points_at_the_worker() {
    let err = refused(&["try-rules", RULES, "page.html", "--parser", "profile_page"]);
    assert!(err.contains("worker try-rules FILE PAGE"), "{err}");
}

/// Without a terminal, progress is a concise log line at each interval
/// (issue 7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_lines_without_a_terminal() {
    // 51 pages, two at a time 20 ms each: about 0.5 s, five progress lines.
    let cluster = Cluster::builder()
        .profiles(30)
        .options(demosite::SiteOptions {
            page_delay: std::time::Duration::from_millis(20),
            ..demosite::SiteOptions::default()
        })
        .start()
        .await;
    let (url, w, saver) = (&cluster.url, cluster.workers[0], cluster.saver);
    let args: Vec<String> = [
        "--config",
        "/dev/null",
        "--seed",
        url,
        "--worker_hosts",
        &w.to_string(),
        "--itemsaver_host",
        &saver.to_string(),
        "--per_host_concurrency",
        "2",
        "--progress_interval_ms",
        "100",
        "--failures_file",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_engine"))
            .args(&args)
            .env("RUST_LOG", "info")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("progress: pages="))
        .collect();
    assert!(lines.len() >= 2, "{err}");
    for field in [
        "pages/s=",
        "queued=",
        "in_flight=",
        "items=",
        "errors=",
        "workers=1/1",
        "elapsed=",
    ] {
        assert!(lines[0].contains(field), "{field} missing in {}", lines[0]);
    }
}
