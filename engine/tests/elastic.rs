//! The end-to-end crawl of the demo site into an Elasticsearch-backed
//! itemsaver (issue 3). Needs `CRAWLER_TEST_ES_URL` (see `scripts/noida.sh`);
//! without it the test prints a notice and passes, except under CI (`CI`
//! set), where it fails.

mod common;

use std::future::pending;
use std::net::SocketAddr;
use std::sync::Arc;

use common::*;
use demosite::SiteConfig;
use itemsaver::store::elastic::Settings;
use itemsaver::ItemStore;
use rpcsupport::{connect_itemsaver, ConnectOptions, HostAddr, SearchRequest, Value};
use tarpc::context;

/// An itemsaver on 127.0.0.1:0 storing into `index` at `url`.
/// The server stops when the returned sender is dropped.
async fn start_es_itemsaver(
    url: &str,
    index: &str,
) -> (
    SocketAddr,
    Arc<dyn ItemStore>,
    tokio::sync::oneshot::Sender<()>,
) {
    let settings = Settings {
        urls: vec![url.parse().expect("CRAWLER_TEST_ES_URL is a URL")],
        index: index.to_owned(),
        auth: None,
        ca_cert: None,
    };
    let store: Arc<dyn ItemStore> = Arc::new(
        itemsaver::open_elastic(&settings)
            .await
            .expect("connect to Elasticsearch"),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let served = store.clone();
    tokio::spawn(async move {
        let options = itemsaver::ServerOptions::default();
        itemsaver::serve(listener, served, options, async {
            let _ = rx.await;
        })
        .await
        .expect("itemsaver serves")
    });
    (addr, store, tx)
}

/// The demo site crawled through two workers into Elasticsearch: the index
/// holds exactly one document per profile, with typed fields, and search
/// finds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawls_demo_site_into_elasticsearch() {
    let Some(url) = testsupport::elasticsearch_url("Elasticsearch crawl test") else {
        return;
    };
    let profiles = 2000;
    let (site, site_url, _site_stop) = start_site(SiteConfig {
        profiles,
        ..SiteConfig::default()
    })
    .await;
    let (w1, _s1) = start_worker().await;
    let (w2, _s2) = start_worker().await;
    let index = format!(
        "crawl-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let (saver, store, _s3) = start_es_itemsaver(&url, &index).await;

    let settings = engine_config(&site_url, &[w1, w2], saver)
        .validate()
        .unwrap();
    let summary = engine::run(settings, pending()).await.expect("crawl runs");
    assert_eq!(summary.items_saved, profiles, "{summary}");
    assert!(summary.errors.is_empty(), "{summary}");

    // The documents in the index, counted by Elasticsearch itself.
    assert_eq!(store.count().await.unwrap(), profiles);
    let client = connect_itemsaver(&HostAddr::from(saver), ConnectOptions::default())
        .await
        .unwrap();
    assert_eq!(
        client.count(context::current()).await.unwrap().unwrap(),
        profiles
    );
    let expected = site.profile(777).unwrap();
    let item = client
        .get(context::current(), "777".into())
        .await
        .unwrap()
        .unwrap()
        .expect("profile 777 stored");
    assert_eq!(item.payload["age"], Value::Int(expected.age as i64));
    assert_eq!(item.payload["name"], Value::Str(expected.name.clone()));
    let hits = client
        .search(
            context::current(),
            SearchRequest {
                query: format!("kind:profile AND age:{}", expected.age),
                from: 0,
                size: 10,
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert!(hits.total >= 1, "{hits:?}");
    assert!(hits
        .items
        .iter()
        .all(|i| i.payload["age"] == Value::Int(expected.age as i64)));
}
