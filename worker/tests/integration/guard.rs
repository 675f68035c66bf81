//! The worker refuses internal addresses (issue 8): names that resolve to
//! private, loopback, link-local or metadata addresses, directly or after a
//! redirect, unless the worker's own `allow_internal` allows them; nothing
//! a request carries widens that (issue 11). Names are resolved by a table
//! in this test, never by a real resolver, and a last check on every
//! address handed to the HTTP client (literal IPs included) refuses, and
//! fails the test on, anything but loopback, so no test can connect outside
//! this machine even if the guard were broken.

use std::sync::{Arc, Mutex};

use crate::common::{loopback_only, policy, Table};
use demosite::{Site, SiteConfig};
use rpcsupport::FetchError;
use worker::fetch::Fetcher;
use worker::parse::Content;
use worker::{Worker, WorkerConfig};

/// The names these tests resolve.
fn table() -> Arc<Table> {
    Table::new(&[
        // Internal addresses no test may ever reach: the guard must drop
        // them before the client connects.
        ("metadata.test", "169.254.169.254"),
        ("intranet.test", "10.20.30.40"),
        ("v6-internal.test", "fd00:ec2::254"),
        // The local test site, which a crawl may allow by name.
        ("site.test", "127.0.0.1"),
    ])
}

fn allowing(entries: &[&str]) -> WorkerConfig {
    WorkerConfig {
        allow_internal: entries.iter().map(|e| e.to_string()).collect(),
        ..WorkerConfig::default()
    }
}

fn fetcher(config: &WorkerConfig, lookup: Arc<Table>) -> (Fetcher, Arc<Mutex<Vec<String>>>) {
    let violations = Arc::new(Mutex::new(Vec::new()));
    let fetcher = Fetcher::with_lookup(config, lookup, loopback_only(violations.clone())).unwrap();
    (fetcher, violations)
}

async fn start_site() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let site = Arc::new(Site::new(SiteConfig {
        profiles: 5,
        cities: 1,
        page_size: 20,
    }));
    tokio::spawn(demosite::serve_site(listener, site, std::future::pending()));
    port
}

fn blocked_naming(err: &FetchError, needle: &str) -> bool {
    matches!(err, FetchError::Blocked { reason, .. } if reason.contains(needle) && reason.contains("--allow_internal"))
}

/// Names resolving to metadata, private or unique-local addresses are
/// refused with a reason naming the setting that would allow them; naming
/// the host in the crawl's allowed domains changes nothing.
#[tokio::test]
async fn internal_names_are_refused_whatever_the_request_says() {
    let port = start_site().await;
    let (fetcher, violations) = fetcher(&WorkerConfig::default(), table());
    for host in [
        "metadata.test",
        "intranet.test",
        "v6-internal.test",
        "site.test",
    ] {
        let url = format!("http://{host}:{port}/");
        for domains in [&["*"][..], &[host], &[host, "*"]] {
            let err = fetcher
                .fetch(&url, &policy(domains), Content::Html)
                .await
                .unwrap_err();
            assert!(blocked_naming(&err, host), "{host} {domains:?}: {err:?}");
        }
    }
    assert!(
        violations.lock().unwrap().is_empty(),
        "{:?}",
        violations.lock().unwrap()
    );
}

/// Issue 11: a request naming the metadata address in its allowed domains
/// is refused, and it leaves nothing behind: a later request on the same
/// worker is refused too.
#[tokio::test]
async fn a_request_cannot_widen_the_exemption() {
    let port = start_site().await;
    let (fetcher, violations) = fetcher(&WorkerConfig::default(), table());
    let by_ip = format!("http://169.254.169.254:{port}/latest/meta-data");
    let by_name = format!("http://metadata.test:{port}/latest/meta-data");
    let hostile = policy(&["169.254.169.254", "metadata.test", "METADATA.test"]);
    for _ in 0..3 {
        for url in [&by_ip, &by_name] {
            let err = fetcher
                .fetch(url, &hostile, Content::Text)
                .await
                .unwrap_err();
            assert!(blocked_naming(&err, "169.254.169.254"), "{err:?}");
        }
    }
    for url in [&by_ip, &by_name] {
        let err = fetcher
            .fetch(url, &policy(&["*"]), Content::Text)
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::Blocked { .. }), "{err:?}");
    }
    assert!(violations.lock().unwrap().is_empty());
}

/// Issue 11: a worker without `allow_internal` refuses 127.0.0.1 even when
/// the engine names it in allowed_domains, over RPC as the engine calls it;
/// the error says which flag would allow it.
#[tokio::test]
async fn worker_refuses_loopback_the_engine_names() {
    let port = start_site().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = rpcsupport::HostAddr::from(listener.local_addr().unwrap());
    let worker = Worker::new(&WorkerConfig::default()).unwrap();
    tokio::spawn(worker::serve(
        listener,
        worker,
        worker::ServerOptions::default(),
        std::future::pending(),
    ));
    let client = rpcsupport::connect_crawl(&addr, rpcsupport::ConnectOptions::default())
        .await
        .unwrap();
    for parser in ["city_list", "robots"] {
        let answer = client
            .process(
                tarpc::context::current(),
                rpcsupport::Request {
                    url: format!("http://127.0.0.1:{port}/"),
                    parser: rpcsupport::ParserSpec::named(parser),
                    depth: 0,
                    hints: Default::default(),
                }
                .into(),
                policy(&["127.0.0.1"]).into(),
            )
            .await
            .unwrap();
        match answer {
            Err(rpcsupport::CrawlError::Fetch(e)) => {
                assert!(blocked_naming(&e, "--allow_internal 127.0.0.1"), "{e}")
            }
            other => panic!("{parser}: expected Blocked, got {other:?}"),
        }
    }
}

/// The worker's own `allow_internal` allows what it lists, by name, by
/// address or by CIDR block, and nothing else.
#[tokio::test]
async fn allow_internal_allows_exactly_its_entries() {
    let port = start_site().await;
    let site = format!("http://site.test:{port}/");
    let literal = format!("http://127.0.0.1:{port}/");
    for entries in [&["site.test"][..], &["127.0.0.1"], &["127.0.0.0/30"]] {
        let (fetcher, violations) = fetcher(&allowing(entries), table());
        assert!(
            fetcher
                .fetch(&site, &policy(&["*"]), Content::Html)
                .await
                .is_ok(),
            "{entries:?}"
        );
        // Still internal and not listed: refused.
        for other in ["intranet.test", "metadata.test", "v6-internal.test"] {
            let err = fetcher
                .fetch(
                    &format!("http://{other}:{port}/"),
                    &policy(&["*"]),
                    Content::Html,
                )
                .await
                .unwrap_err();
            assert!(
                matches!(err, FetchError::Blocked { .. }),
                "{entries:?} {other}: {err:?}"
            );
        }
        assert!(violations.lock().unwrap().is_empty());
        let by_ip = fetcher
            .fetch(&literal, &policy(&["*"]), Content::Html)
            .await;
        assert_eq!(
            by_ip.is_ok(),
            entries[0] != "site.test",
            "{entries:?}: {by_ip:?}"
        );
    }
    // Outside the block: 127.0.0.5 is loopback, so even a broken guard
    // would not leave the machine.
    let (fetcher, _) = fetcher(&allowing(&["127.0.0.0/30"]), table());
    let err = fetcher
        .fetch(
            &format!("http://127.0.0.5:{port}/"),
            &policy(&["*"]),
            Content::Html,
        )
        .await
        .unwrap_err();
    assert!(blocked_naming(&err, "127.0.0.5"), "{err:?}");
}

/// A name resolving to a private address is refused unless allowed; once
/// allowed (by its network or its name) it reaches the client, where this
/// test's last check is what stops the connection.
#[tokio::test]
async fn private_name_allowed_only_by_config() {
    let port = start_site().await;
    let url = format!("http://intranet.test:{port}/");
    let (strict, violations) = fetcher(&WorkerConfig::default(), table());
    let err = strict
        .fetch(&url, &policy(&["intranet.test"]), Content::Html)
        .await
        .unwrap_err();
    assert!(
        blocked_naming(&err, "--allow_internal intranet.test"),
        "{err:?}"
    );
    assert!(violations.lock().unwrap().is_empty());
    for entries in [&["10.0.0.0/8"][..], &["intranet.test"]] {
        let (fetcher, violations) = fetcher(&allowing(entries), table());
        let err = fetcher
            .fetch(&url, &policy(&["*"]), Content::Html)
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::Connect { .. }), "{err:?}");
        assert_eq!(
            *violations.lock().unwrap(),
            ["intranet.test -> 10.20.30.40"]
        );
    }
}

/// A bad `allow_internal` entry is refused when the worker is built.
#[test]
fn bad_allow_internal_entry_is_refused() {
    let err = Worker::new(&allowing(&["10.0.0.0/40"])).err().unwrap();
    let text = err.to_string();
    assert!(
        text.contains("allow_internal") && text.contains("10.0.0.0/40"),
        "{text}"
    );
}

/// A redirect from an allowed site to a name that resolves internally is
/// refused at the hop.
#[tokio::test]
async fn redirect_to_internal_address_is_refused() {
    let port = start_site().await;
    let lookup = table();
    let (fetcher, violations) = fetcher(&allowing(&["site.test"]), lookup.clone());
    let url = format!("http://site.test:{port}/fault/redirect-to?url=http://metadata.test:{port}/latest/meta-data");
    let err = fetcher
        .fetch(
            &url,
            &policy(&["site.test", "metadata.test", "*"]),
            Content::Html,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FetchError::Blocked { reason, .. } if reason.contains("169.254.169.254")),
        "{err:?}"
    );
    assert!(lookup.asked().contains(&"metadata.test".to_string()));
    assert!(violations.lock().unwrap().is_empty());
}

/// A redirect to a literal internal IP is refused before any connection.
#[tokio::test]
async fn redirect_to_literal_internal_ip_is_refused() {
    let port = start_site().await;
    let (fetcher, _violations) = fetcher(&allowing(&["site.test"]), table());
    // 127.0.0.2 is loopback (so nothing leaves the machine even if the
    // guard failed) and not allowed.
    let url = format!("http://site.test:{port}/fault/redirect-to?url=http://127.0.0.2:{port}/");
    let err = fetcher
        .fetch(
            &url,
            &policy(&["site.test", "127.0.0.2", "*"]),
            Content::Html,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FetchError::Blocked { reason, .. } if reason.contains("127.0.0.2")),
        "{err:?}"
    );
}

/// With the guard turned off in the worker config, internal addresses are
/// handed to the client (for deployments that crawl their own intranet);
/// the test's last check is what stops the connection here.
#[tokio::test]
async fn guard_can_be_turned_off() {
    let port = start_site().await;
    let config = WorkerConfig {
        block_private_addresses: false,
        ..WorkerConfig::default()
    };
    let (fetcher, violations) = fetcher(&config, table());
    let url = format!("http://site.test:{port}/");
    assert!(fetcher
        .fetch(&url, &policy(&["*"]), Content::Html)
        .await
        .is_ok());
    let err = fetcher
        .fetch(
            &format!("http://intranet.test:{port}/"),
            &policy(&["*"]),
            Content::Html,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Connect { .. }), "{err:?}");
    assert_eq!(
        *violations.lock().unwrap(),
        ["intranet.test -> 10.20.30.40"]
    );
}
