//! The `/hostile/...` routes (issue 11) serve what they promise: the crawl
//! test that uses them is only as good as these pages are hostile.

use std::time::{Duration, Instant};

use demosite::{Site, SiteConfig, SiteOptions};
use tokio::net::TcpListener;

async fn start(options: SiteOptions) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let site = std::sync::Arc::new(Site::new(SiteConfig::default()));
    let (router, _log) = demosite::router_with(site, options);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(demosite::serve_router(listener, router, async {
        let _ = stopped.await;
    }));
    (format!("http://{addr}"), stop)
}

async fn get(url: &str) -> (u16, Vec<u8>) {
    // reqwest is built with rustls but no crypto provider; plain http
    // still needs one installed to build a client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.bytes().await.unwrap().to_vec())
}

/// The index links to every hostile page, and each is as big as it says.
#[tokio::test]
async fn pages_are_as_hostile_as_promised() {
    let (base, _stop) = start(SiteOptions::default()).await;
    let (status, index) = get(&format!("{base}/hostile/?hop_ms=10&trickle=2")).await;
    assert_eq!(status, 200);
    let index = String::from_utf8(index).unwrap();
    for path in demosite::hostile::hostile_paths(10, 2) {
        assert!(index.contains(&format!("href=\"{path}\"")), "{path}");
    }

    let (_, flood) = get(&format!("{base}/hostile/link-flood/500000")).await;
    let flood = String::from_utf8(flood).unwrap();
    assert_eq!(flood.matches("<a href=").count(), 500_000);
    assert!(flood.len() < 10 * 1024 * 1024, "fits the default body cap");

    let (_, page) = get(&format!("{base}/hostile/base-href/1000000/5000")).await;
    let page = String::from_utf8(page).unwrap();
    let start = page.find("<base href=\"").unwrap() + 12;
    let end = start + page[start..].find('"').unwrap();
    assert_eq!(end - start, 1_000_000);
    assert_eq!(page.matches("<a href=\"p").count(), 5_000);

    let (_, page) = get(&format!("{base}/hostile/long-links/100/9000")).await;
    let page = String::from_utf8(page).unwrap();
    let lens: Vec<usize> = page
        .split("<a href=\"")
        .skip(1)
        .map(|s| s.find('"').unwrap())
        .collect();
    assert_eq!(lens.len(), 100);
    assert!(lens.iter().all(|&l| l == 9000), "{:?}", &lens[..3]);

    let (_, page) = get(&format!("{base}/hostile/big-attribute/1000000")).await;
    assert!(page.len() > 1_000_000 && page.len() < 1_000_200);

    let (status, body) = get(&format!("{base}/hostile/void/anything/at/all")).await;
    assert_eq!((status, body.is_empty()), (404, false));
}

/// A trickle sends one byte a second; a slow chain waits on every hop.
#[tokio::test]
async fn slow_routes_are_slow() {
    let (base, _stop) = start(SiteOptions::default()).await;
    let started = Instant::now();
    let (_, body) = get(&format!("{base}/hostile/trickle/2")).await;
    assert_eq!(body.len(), 2);
    assert!(started.elapsed() >= Duration::from_millis(900));

    let started = Instant::now();
    let (status, _) = get(&format!("{base}/hostile/slow-redirects/2/200")).await;
    assert_eq!(status, 302);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

/// A huge robots.txt is streamed to its exact size and still allows all.
#[tokio::test]
async fn huge_robots_txt() {
    let (base, _stop) = start(SiteOptions {
        robots_bytes: Some(3_000_000),
        ..SiteOptions::default()
    })
    .await;
    let (status, body) = get(&format!("{base}/robots.txt")).await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), 3_000_000);
    assert!(body.starts_with(b"User-agent: *\nAllow: /\n"));
    assert!(body.split(|&b| b == b'\n').all(|l| l.len() <= 80));
}
