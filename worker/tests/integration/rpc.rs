//! A real demosite and a real worker on 127.0.0.1:0, talking tarpc.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use crate::common::{local, policy, request, serve_worker};
use demosite::{Site, SiteConfig};
use rpcsupport::{
    CrawlClient, CrawlError, FetchError, ParseError, ParseResult, PolicyRef, Request, Value,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use worker::{Worker, WorkerConfig};

/// Stops the servers it belongs to when dropped.
struct Stop(#[allow(dead_code)] Vec<oneshot::Sender<()>>);

fn stopper() -> (
    oneshot::Sender<()>,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (tx, rx) = oneshot::channel::<()>();
    (tx, async move {
        let _ = rx.await;
    })
}

/// Starts a demosite; returns its base URL ("http://127.0.0.1:PORT").
async fn start_site(config: SiteConfig, stops: &mut Vec<oneshot::Sender<()>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, shutdown) = stopper();
    stops.push(tx);
    tokio::spawn(demosite::serve(listener, config, shutdown));
    format!("http://{addr}")
}

/// Starts a worker with `config` and connects a client to it.
async fn start_worker(
    config: WorkerConfig,
    stops: &mut Vec<oneshot::Sender<()>>,
) -> (CrawlClient, Worker) {
    let (client, worker, stop) = serve_worker(&config).await;
    stops.push(stop);
    (client, worker)
}

/// A demosite with the default shape plus a default worker.
async fn setup() -> (String, CrawlClient, Worker, Stop) {
    let mut stops = Vec::new();
    let site = start_site(SiteConfig::default(), &mut stops).await;
    let (client, worker) = start_worker(local(), &mut stops).await;
    (site, client, worker, Stop(stops))
}

async fn call(client: &CrawlClient, req: Request) -> Result<ParseResult, CrawlError> {
    client
        .process(
            tarpc::context::current(),
            req.into(),
            policy(&["127.0.0.1"]).into(),
        )
        .await
        .expect("RPC itself succeeds")
}

async fn fetch_error(client: &CrawlClient, url: String) -> FetchError {
    match call(client, request(url, "city_list")).await {
        Err(CrawlError::Fetch(e)) => e,
        other => panic!("expected a fetch error, got {other:?}"),
    }
}

/// The parse error `req` is answered with; any other outcome fails.
async fn parse_error(client: &CrawlClient, req: Request) -> ParseError {
    match call(client, req).await {
        Err(CrawlError::Parse(e)) => e,
        other => panic!("expected a parse error, got {other:?}"),
    }
}

/// Each parser works end to end over RPC, and profile items match the site.
#[tokio::test]
async fn each_parser_over_rpc() {
    let (base, client, _worker, _stop) = setup().await;
    let site = Site::new(SiteConfig::default());

    let list = call(&client, request(format!("{base}/"), "city_list"))
        .await
        .unwrap();
    assert_eq!(list.requests.len(), 20);
    assert_eq!(list.requests[1].url, format!("{base}/city/shanghai"));
    assert_eq!(list.requests[1].depth, 1);

    // city/shanghai is a GBK page declared in the header.
    let city = call(&client, request(format!("{base}/city/shanghai"), "city"))
        .await
        .unwrap();
    assert_eq!(city.requests.len(), 21);
    assert_eq!(city.requests[0].url, format!("{base}/profile/2"));
    assert_eq!(
        city.requests[20].url,
        format!("{base}/city/shanghai?page=2")
    );

    let profile = call(&client, request(format!("{base}/profile/5"), "profile"))
        .await
        .unwrap();
    let item = &profile.items[0];
    let expected = site.profile(5).unwrap();
    assert_eq!(item.id.as_deref(), Some("5"));
    assert_eq!(item.payload["name"], Value::from(expected.name.as_str()));
    assert_eq!(item.payload["age"], Value::Int(expected.age.into()));
    assert_eq!(item.payload["city"], Value::from(expected.city.as_str()));
    let recommended: Vec<String> = site
        .recommendations(5)
        .iter()
        .map(|id| format!("{base}/profile/{id}"))
        .collect();
    let got: Vec<String> = profile.requests.iter().map(|r| r.url.clone()).collect();
    assert_eq!(got, recommended);
}

/// GBK profiles, declared in the header or only in <meta>, decode to the
/// right Chinese names.
#[tokio::test]
async fn gbk_profiles_decode() {
    let (base, client, _worker, _stop) = setup().await;
    let site = Site::new(SiteConfig::default());
    for id in [3, 13, 23, 33] {
        assert_ne!(Site::profile_encoding(id), demosite::PageEncoding::Utf8);
        let result = call(&client, request(format!("{base}/profile/{id}"), "profile"))
            .await
            .unwrap();
        let expected = site.profile(id).unwrap();
        let item = &result.items[0];
        assert_eq!(
            item.payload["name"].as_str(),
            Some(expected.name.as_str()),
            "id {id}"
        );
        assert_eq!(
            item.payload["education"].as_str(),
            Some(expected.education.as_str())
        );
    }
}

/// An unknown parser and bad arguments are typed parse errors.
#[tokio::test]
async fn unknown_parser_is_typed() {
    let (base, client, _worker, _stop) = setup().await;
    let err = call(&client, request(format!("{base}/"), "nope"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CrawlError::Parse(ParseError::UnknownParser("nope".into()))
    );
    assert_eq!(err.kind(), "unknown_parser");
    let mut req = request(format!("{base}/city/beijing"), "city");
    req.parser.args.insert("next".into(), "sometimes".into());
    let err = parse_error(&client, req).await;
    assert!(matches!(err, ParseError::BadArgs { .. }), "{err:?}");
    // The wrong parser for a page is a Page error, not a panic.
    let err = parse_error(&client, request(format!("{base}/profile/1"), "city")).await;
    assert!(matches!(err, ParseError::Page { .. }), "{err:?}");
}

/// HTTP errors keep their status and Retry-After.
#[tokio::test]
async fn http_errors_are_statuses() {
    let (base, client, _worker, _stop) = setup().await;
    let url = format!("{base}/profile/99999");
    assert_eq!(
        fetch_error(&client, url.clone()).await,
        FetchError::Status {
            url,
            status: 404,
            retry_after_secs: None
        }
    );
    let e = fetch_error(&client, format!("{base}/fault/status/503?retry_after=7")).await;
    assert!(
        matches!(
            e,
            FetchError::Status {
                status: 503,
                retry_after_secs: Some(7),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(CrawlError::Fetch(e).is_transient());
}

/// The body cap holds with and without Content-Length.
#[tokio::test]
async fn body_cap() {
    let mut stops = Vec::new();
    let base = start_site(SiteConfig::default(), &mut stops).await;
    let config = WorkerConfig {
        max_body_bytes: 100,
        ..local()
    };
    let (tiny, _) = start_worker(config, &mut stops).await;
    let e = fetch_error(&tiny, format!("{base}/")).await;
    assert!(
        matches!(e, FetchError::TooLarge { limit: 100, .. }),
        "{e:?}"
    );

    let config = WorkerConfig {
        max_body_bytes: 100_000,
        ..local()
    };
    let (capped, _) = start_worker(config, &mut stops).await;
    for query in ["", "?chunked=1"] {
        let e = fetch_error(&capped, format!("{base}/fault/big/100001{query}")).await;
        assert!(matches!(e, FetchError::TooLarge { .. }), "{query}: {e:?}");
    }
    // Exactly at the cap is fine (parsed on the blocking pool: > 64 KiB).
    let at_cap = request(format!("{base}/fault/big/100000?chunked=1"), "city_list");
    let err = parse_error(&capped, at_cap).await;
    assert!(matches!(err, ParseError::Page { .. }), "{err:?}");
}

/// Redirects are followed up to the limit; loops, non-HTML, bad URLs and
/// refused connections each get their own error.
#[tokio::test]
async fn fetch_failures_are_typed() {
    let (base, client, _worker, _stop) = setup().await;
    // 5 redirects is within the default limit; links resolve against the
    // final URL.
    let ok = call(
        &client,
        request(format!("{base}/fault/redirect/4"), "city_list"),
    )
    .await
    .unwrap();
    assert_eq!(ok.requests[0].url, format!("{base}/city/beijing"));
    let e = fetch_error(&client, format!("{base}/fault/redirect/5")).await;
    assert!(matches!(e, FetchError::TooManyRedirects { .. }), "{e:?}");
    let e = fetch_error(&client, format!("{base}/fault/redirect-loop")).await;
    assert!(matches!(e, FetchError::TooManyRedirects { .. }), "{e:?}");

    let e = fetch_error(&client, format!("{base}/fault/not-html")).await;
    assert_eq!(
        e,
        FetchError::NotHtml {
            url: format!("{base}/fault/not-html"),
            content_type: "application/json".into()
        }
    );

    for bad in ["ftp://127.0.0.1/x", "not a url", "mailto:x@y"] {
        let e = fetch_error(&client, bad.into()).await;
        assert!(matches!(e, FetchError::InvalidUrl { .. }), "{bad}: {e:?}");
    }

    // A port nothing listens on: bind one, note it, close it.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let e = fetch_error(&client, format!("http://{closed}/")).await;
    assert!(matches!(e, FetchError::Connect { .. }), "{e:?}");
    assert!(e.is_transient());
}

/// A page slower than timeout_ms is a Timeout, and status() shows it in
/// flight meanwhile.
#[tokio::test]
async fn slow_page_times_out_and_is_counted() {
    let mut stops = Vec::new();
    let base = start_site(SiteConfig::default(), &mut stops).await;
    let config = WorkerConfig {
        timeout_ms: 300,
        ..local()
    };
    let (client, worker) = start_worker(config, &mut stops).await;
    let slow = {
        let client = client.clone();
        let url = format!("{base}/fault/slow/5000");
        tokio::spawn(async move { fetch_error(&client, url).await })
    };
    let mut seen_in_flight = false;
    for _ in 0..50 {
        let status = client.status(tarpc::context::current()).await.unwrap();
        if status.in_flight == 1 {
            seen_in_flight = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(seen_in_flight);
    let e = slow.await.unwrap();
    assert!(matches!(e, FetchError::Timeout { .. }), "{e:?}");
    let status = client.status(tarpc::context::current()).await.unwrap();
    assert_eq!((status.in_flight, status.served), (0, 1));
    assert_eq!(worker.status(), status);
}

/// Following every link from `/` with an in-process Worker fetches exactly
/// the site's pages and extracts every profile correctly.
#[tokio::test]
async fn full_crawl_in_process() {
    let mut stops = Vec::new();
    let config = SiteConfig {
        profiles: 97,
        cities: 4,
        page_size: 6,
    };
    let base = start_site(config, &mut stops).await;
    let site = Site::new(config);
    let worker = Worker::new(&local()).unwrap();
    let mut seen = BTreeSet::new();
    let mut items = Vec::new();
    let mut queue = VecDeque::from([request(format!("{base}/"), "city_list")]);
    while let Some(req) = queue.pop_front() {
        if !seen.insert(req.url.clone()) {
            continue;
        }
        let result = worker.process(req).await.expect("every linked page parses");
        queue.extend(result.requests);
        items.extend(result.items);
    }
    assert_eq!(seen.len() as u64, site.page_count());
    assert_eq!(items.len() as u64, site.profile_count());
    for item in items {
        let id: u64 = item.id.as_deref().unwrap().parse().unwrap();
        let p = site.profile(id).unwrap();
        assert_eq!(item.payload["name"].as_str(), Some(p.name.as_str()));
        assert_eq!(item.payload["weight"], Value::Int(p.weight.into()));
        assert_eq!(
            item.payload["occupation"].as_str(),
            Some(p.occupation.as_str())
        );
    }
    assert_eq!(worker.status().served, site.page_count());
}

/// A policy given on one connection can be named on it, and only on it: a
/// call naming a policy its connection does not hold is answered
/// `UnknownPolicy` and fetches nothing, and another connection to the same
/// worker holds none of the first one's policies.
#[tokio::test]
async fn policies_are_per_connection() {
    let mut stops = Vec::new();
    let site = start_site(SiteConfig::default(), &mut stops).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = rpcsupport::HostAddr::from(listener.local_addr().unwrap());
    let worker = Worker::new(&local()).unwrap();
    let (tx, shutdown) = stopper();
    stops.push(tx);
    tokio::spawn(worker::serve(
        listener,
        worker.clone(),
        worker::ServerOptions::default(),
        shutdown,
    ));
    let connect = || rpcsupport::connect_crawl(&addr, rpcsupport::ConnectOptions::default());
    let (a, b) = (connect().await.unwrap(), connect().await.unwrap());
    let ask = |client: &CrawlClient, policy: PolicyRef| {
        let client = client.clone();
        let page = request(format!("{site}/"), "city_list");
        async move {
            client
                .process(tarpc::context::current(), page.into(), policy)
                .await
                .expect("RPC itself succeeds")
        }
    };
    let given = PolicyRef::Given {
        id: 7,
        policy: policy(&["127.0.0.1"]),
    };

    assert_eq!(
        ask(&a, PolicyRef::Known(7)).await,
        Err(CrawlError::UnknownPolicy(7))
    );
    assert_eq!(
        worker.status().served,
        0,
        "nothing fetched without a policy"
    );
    let whole = ask(&a, given).await.expect("the page parses");
    let named = ask(&a, PolicyRef::Known(7)).await.expect("the page parses");
    assert_eq!(named.requests, whole.requests);
    assert!(!named.requests.is_empty());
    assert_eq!(
        ask(&b, PolicyRef::Known(7)).await,
        Err(CrawlError::UnknownPolicy(7)),
        "another connection does not see it"
    );
    assert_eq!(worker.status().served, 2);
}
