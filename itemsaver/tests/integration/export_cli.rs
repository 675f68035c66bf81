//! The `itemsaver` binary with a token (issue 15): `itemsaver export`
//! reaches it with the same token as `count`, writes a whole file, and
//! `--http_addr` serves the search page behind that token.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rpcsupport::{ClientSecurity, ConnectOptions, HostAddr, Item, Token, Value};
use tarpc::context;
use testsupport::Server;

const BIN: &str = env!("CARGO_BIN_EXE_itemsaver");
const TOKEN: &str = "export-cli-token";

/// Waits for `needle` in the file the server writes its log to.
fn wait_for_log(path: &Path, needle: &str) -> String {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(at) = text.find(needle) {
            return text[at + needle.len()..]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no {needle:?} in the log: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A plain HTTP GET on 127.0.0.1, answered with its status line and body.
fn http_get(addr: &str, path: &str, headers: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// Export over RPC with the token writes every item and no `.partial`; without the token it fails and writes nothing; the search page wants the token too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_search_page_through_the_binary() {
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("itemsaver.log");
    let server = Server::start(
        Command::new(BIN)
            .args([
                "--port",
                "0",
                "--bind",
                "127.0.0.1",
                "--http_addr",
                "127.0.0.1:0",
            ])
            .args(["--data_dir", work.path().join("items").to_str().unwrap()])
            .env("CRAWLER_RPC_TOKEN", TOKEN)
            .env("RUST_LOG", "info")
            .current_dir(work.path())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap())),
        "itemsaver listening on ",
    );
    let host: HostAddr = server.addr().parse().unwrap();
    let security = ClientSecurity::with_token(Token::new(TOKEN).unwrap()).leak();
    let client = rpcsupport::connect_itemsaver(
        &host,
        ConnectOptions {
            security,
            ..ConnectOptions::default()
        },
    )
    .await
    .unwrap();
    let items: Vec<Item> = (0..30)
        .map(|n| Item {
            url: format!("http://127.0.0.1:1/profile/{n}"),
            kind: "profile".into(),
            id: Some(format!("p{n}")),
            payload: BTreeMap::from([("age".to_string(), Value::Int(n))]),
        })
        .collect();
    client
        .save(context::current(), items.into())
        .await
        .unwrap()
        .unwrap();

    let out = work.path().join("items.csv");
    let export = |token: Option<&str>, out: &Path| {
        let mut cmd = Command::new(BIN);
        cmd.args(["export", "--format", "csv", "--page_size", "7"])
            .args([
                "--itemsaver_host",
                server.addr(),
                "--out",
                out.to_str().unwrap(),
            ])
            .current_dir(work.path())
            .env_remove("CRAWLER_RPC_TOKEN");
        if let Some(token) = token {
            cmd.env("CRAWLER_RPC_TOKEN", token);
        }
        cmd.output().unwrap()
    };
    let done = export(Some(TOKEN), &out);
    assert!(done.status.success(), "{done:?}");
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(stderr.contains("exported 30 items"), "{stderr}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 31);
    assert!(text.starts_with("url,kind,id,age\r\n"), "{text}");
    assert!(!itemsaver::export::partial_path(&out).exists());

    let refused_out = work.path().join("refused.csv");
    let refused = export(None, &refused_out);
    assert!(!refused.status.success(), "{refused:?}");
    assert!(!refused_out.exists());

    let page = wait_for_log(&log, "search page at http://");
    let page = page.trim_end_matches('/');
    let anonymous = http_get(page, "/api/search", "");
    assert!(anonymous.starts_with("HTTP/1.1 401"), "{anonymous}");
    let authorized = http_get(
        page,
        "/api/search?q=age:%5B10%20TO%2019%5D",
        &format!("Authorization: Bearer {TOKEN}\r\n"),
    );
    assert!(authorized.starts_with("HTTP/1.1 200"), "{authorized}");
    assert!(authorized.contains("\"total\":10"), "{authorized}");
}
