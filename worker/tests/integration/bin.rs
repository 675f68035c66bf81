//! The `worker` binary: ready line, flags, config errors, SIGTERM.

use std::process::{Command, Stdio};

use testsupport::Server;

fn worker() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_worker"));
    // Run where no config.toml exists, so only the flags count.
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// It prints its address once listening and exits 0 on SIGTERM.
#[test]
fn ready_line_and_sigterm() {
    let mut server = Server::start(
        worker().args([
            "--port=0",
            "--timeout_ms",
            "1000",
            "--user_agent",
            "t/1",
            "--allow_internal",
            "127.0.0.1,::1,intranet.example,10.0.0.0/8",
        ]),
        "worker listening on ",
    );
    let line = server.ready_line();
    assert!(
        line.starts_with("worker listening on 127.0.0.1:"),
        "{line:?}"
    );
    assert!(server.terminate().success());
}

/// A missing explicit config file, a bad key and a bad value each fail
/// with a message naming the problem.
#[test]
fn bad_config_fails_clearly() {
    let dir = std::env::temp_dir().join(format!("worker-bin-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad_key = dir.join("bad_key.toml");
    std::fs::write(&bad_key, "[worker]\ntimeout_msec = 5\n").unwrap();
    let cases = [
        (
            vec![
                "--config".to_owned(),
                dir.join("missing.toml").display().to_string(),
            ],
            "missing.toml",
        ),
        (
            vec!["--config".to_owned(), bad_key.display().to_string()],
            "timeout_msec",
        ),
        (
            vec!["--timeout_ms".to_owned(), "0".to_owned()],
            "timeout_ms",
        ),
        (vec!["--port".to_owned(), "http".to_owned()], "--port"),
        (
            vec![
                "--allow_internal".to_owned(),
                "127.0.0.1,10.0.0.0/99".to_owned(),
            ],
            "10.0.0.0/99",
        ),
        (
            vec!["--max_result_bytes".to_owned(), "16777216".to_owned()],
            "max_result_bytes",
        ),
        (
            vec!["--max_buffered_body_bytes".to_owned(), "1000".to_owned()],
            "max_buffered_body_bytes",
        ),
    ];
    for (args, needle) in cases {
        let out = worker().args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
