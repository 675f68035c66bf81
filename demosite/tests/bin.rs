//! The `demosite` binary: the ready line scripts parse.

use std::process::{Command, Stdio};

use testsupport::Server;

/// It prints one parseable ready line and exits 0 on SIGTERM.
#[test]
fn ready_line_and_sigterm() {
    let mut server = Server::start(
        Command::new(env!("CARGO_BIN_EXE_demosite"))
            .args([
                "--port",
                "0",
                "--profiles",
                "50",
                "--cities",
                "5",
                "--page_size",
                "10",
            ])
            .stderr(Stdio::null()),
        "demosite listening on ",
    );
    let line = server.ready_line();
    // 1 city list + 5 cities x 1 page + 50 profiles.
    assert!(
        line.starts_with("demosite listening on http://127.0.0.1:")
            && line.ends_with("/ profiles=50 pages=56 hosts=1\n"),
        "{line:?}"
    );
    assert!(server.terminate().success());
}

/// Zero cities is refused with a message.
#[test]
fn zero_cities_is_an_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_demosite"))
        .args(["--port", "0", "--cities", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cities"));
}
