//! The `engine` binary turns bad input into a clear message and a non-zero
//! exit (issue 2).

mod common;

use std::process::{Command, Output};

use common::*;
use demosite::SiteConfig;

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
    let out = engine(&[
        "--config",
        "/dev/null",
        "--seed",
        "http://127.0.0.1:1/",
        "--worker_hosts",
        &hosts,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
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
    let out = engine(&[
        "--config",
        "/dev/null",
        "--seed",
        "http://127.0.0.1:1/",
        "--worker_hosts",
        ":9000,localhost",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
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
    let out = engine(&[
        "--config",
        path.to_str().unwrap(),
        "--seed",
        "http://127.0.0.1:1/",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("worker_count") && err.contains("[engine]"),
        "{err}"
    );
}

/// A config file named with --config must exist.
#[test]
fn missing_config_file_is_an_error() {
    let out = engine(&[
        "--config",
        "/nonexistent/crawler.toml",
        "--seed",
        "http://127.0.0.1:1/",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/nonexistent/crawler.toml"));
}

/// No seed at all is a usage error that says how to give one.
#[test]
fn missing_seed_is_an_error() {
    let out = engine(&["--config", "/dev/null"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--seed"), "{}", stderr(&out));
}

/// An unknown parser name stops the crawl with a message naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_parser_is_reported() {
    let (_site, url, _s0) = start_site(SiteConfig {
        profiles: 10,
        ..SiteConfig::default()
    })
    .await;
    let (w, _s1) = start_worker().await;
    let dir = tempfile::tempdir().unwrap();
    let (saver, _s2) = start_itemsaver(dir.path()).await;
    let args = [
        "--config".to_string(),
        "/dev/null".into(),
        "--seed".into(),
        url,
        "--parser".into(),
        "no_such_parser".into(),
        "--worker_hosts".into(),
        w.to_string(),
        "--itemsaver_host".into(),
        saver.to_string(),
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
