//! The worker refuses internal addresses (issue 8): names that resolve to
//! private, loopback, link-local or metadata addresses, directly or after a
//! redirect. Names are resolved by a table in this test, never by a real
//! resolver, and a last check on every address handed to the HTTP client
//! refuses (and fails the test on) anything but loopback, so no test can
//! connect outside this machine even if the guard were broken.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use demosite::{Site, SiteConfig};
use rpcsupport::{FetchError, FetchPolicy};
use worker::fetch::Fetcher;
use worker::guard::{Handoff, Lookup};
use worker::parse::Content;
use worker::WorkerConfig;

/// A resolver from a fixed table; records every name asked for.
struct Table {
    names: HashMap<&'static str, IpAddr>,
    asked: Mutex<Vec<String>>,
}

impl Lookup for Table {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> {
        self.asked.lock().unwrap().push(host.clone());
        let found = self.names.get(host.as_str()).copied();
        Box::pin(async move {
            found
                .map(|a| vec![a])
                .ok_or_else(|| io::Error::other("no such test host"))
        })
    }
}

fn table() -> Arc<Table> {
    Arc::new(Table {
        names: HashMap::from([
            // Internal addresses no test may ever reach: the guard must
            // drop them before the client connects.
            ("metadata.test", "169.254.169.254".parse().unwrap()),
            ("intranet.test", "10.20.30.40".parse().unwrap()),
            ("v6-internal.test", "fd00:ec2::254".parse().unwrap()),
            // The local test site, which a crawl may allow by name.
            ("site.test", "127.0.0.1".parse().unwrap()),
        ]),
        asked: Mutex::new(Vec::new()),
    })
}

/// The "connector that fails the test": any non-loopback address reaching
/// the client is refused and recorded.
fn loopback_only(violations: Arc<Mutex<Vec<String>>>) -> Option<Handoff> {
    Some(Box::new(move |host: &str, addrs: &[IpAddr]| {
        if let Some(bad) = addrs.iter().find(|a| !a.is_loopback()) {
            violations.lock().unwrap().push(format!("{host} -> {bad}"));
            return Err(format!("test refuses to connect to {bad}"));
        }
        Ok(())
    }))
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

fn policy(domains: &[&str]) -> FetchPolicy {
    FetchPolicy {
        allowed_domains: domains.iter().map(|d| d.to_string()).collect(),
    }
}

/// Names resolving to metadata, private or unique-local addresses are
/// refused with a clear reason; the site allowed by name is fetched.
#[tokio::test]
async fn internal_names_are_refused_unless_allowed() {
    let port = start_site().await;
    let (fetcher, violations) = fetcher(&WorkerConfig::default(), table());
    for host in ["metadata.test", "intranet.test", "v6-internal.test"] {
        let url = format!("http://{host}:{port}/");
        let err = fetcher
            .fetch(&url, &policy(&["*"]), Content::Html)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, FetchError::Blocked { reason, .. } if reason.contains(host)),
            "{host}: {err:?}"
        );
    }
    // 127.0.0.1 is internal too: refused unless the crawl names the host.
    let url = format!("http://site.test:{port}/");
    let err = fetcher
        .fetch(&url, &policy(&["*"]), Content::Html)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Blocked { .. }), "{err:?}");
    let page = fetcher
        .fetch(&url, &policy(&["site.test"]), Content::Html)
        .await
        .unwrap();
    assert!(!page.body.is_empty());
    assert!(
        violations.lock().unwrap().is_empty(),
        "{:?}",
        violations.lock().unwrap()
    );
}

/// A redirect from an allowed site to a name that resolves internally is
/// refused at the hop.
#[tokio::test]
async fn redirect_to_internal_address_is_refused() {
    let port = start_site().await;
    let lookup = table();
    let (fetcher, violations) = fetcher(&WorkerConfig::default(), lookup.clone());
    let url = format!("http://site.test:{port}/fault/redirect-to?url=http://metadata.test:{port}/latest/meta-data");
    let err = fetcher
        .fetch(
            &url,
            &policy(&["site.test", "metadata.test.invalid", "*"]),
            Content::Html,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FetchError::Blocked { reason, .. } if reason.contains("169.254.169.254")),
        "{err:?}"
    );
    assert!(lookup
        .asked
        .lock()
        .unwrap()
        .contains(&"metadata.test".to_string()));
    assert!(violations.lock().unwrap().is_empty());
}

/// A redirect to a literal internal IP is refused before any connection.
#[tokio::test]
async fn redirect_to_literal_internal_ip_is_refused() {
    let port = start_site().await;
    let (fetcher, _violations) = fetcher(&WorkerConfig::default(), table());
    // 127.0.0.2 is loopback (so nothing leaves the machine even if the
    // guard failed) and not allowed by name.
    let url = format!("http://site.test:{port}/fault/redirect-to?url=http://127.0.0.2:{port}/");
    let err = fetcher
        .fetch(&url, &policy(&["site.test", "*"]), Content::Html)
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
