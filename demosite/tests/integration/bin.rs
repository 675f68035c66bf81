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

/// One raw HTTP/1.1 GET: status line and body (no client needed).
fn http_get(addr: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// The open-web, generation and js flags reach the site.
#[test]
fn open_web_flags() {
    let mut server = Server::start(
        Command::new(env!("CARGO_BIN_EXE_demosite"))
            .args([
                "--port",
                "0",
                "--profiles",
                "50",
                "--open_web",
                "--sitemap_only",
                "3",
                "--generation",
                "2",
                "--js",
            ])
            .stderr(Stdio::null()),
        "demosite listening on ",
    );
    let line = server.ready_line();
    let addr = line
        .strip_prefix("demosite listening on http://")
        .and_then(|l| l.split_once('/'))
        .unwrap()
        .0
        .to_owned();
    let site = demosite::Site::new(demosite::SiteConfig {
        profiles: 50,
        ..demosite::SiteConfig::default()
    });
    let (status, body) = http_get(&addr, "/sitemap.txt");
    assert!(status.contains(" 200 "), "{status}");
    let live = (51..=53).filter(|&id| site.profile_at(id, 2).is_some());
    assert_eq!(body.lines().count(), live.count(), "{body}");
    let removed = (1..=53).find(|&id| site.profile_at(id, 2).is_none());
    if let Some(id) = removed {
        assert!(http_get(&addr, &format!("/profile/{id}"))
            .0
            .contains(" 410 "));
    }
    assert!(http_get(&addr, "/js/").0.contains(" 200 "));
    assert!(server.terminate().success());
}
