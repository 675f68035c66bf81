//! The `/js/...` section (issue 16): shells with almost no text, the
//! scripts and JSON they build pages from, and (with Chromium installed)
//! the rendered DOM of a script-built profile equal to the server-rendered
//! one.

use std::sync::Arc;
use std::time::Duration;

use demosite::{Generation, Site, SiteConfig, SiteOptions};
use testsupport::browser::{chromium, Browser};
use tokio::net::TcpListener;

/// Serves `options` on 127.0.0.1; the sender stops it when dropped.
async fn start(options: SiteOptions) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (router, _log) = demosite::router_with(Arc::new(Site::new(SiteConfig::default())), options);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(demosite::serve_router(listener, router, async {
        let _ = stopped.await;
    }));
    (format!("http://{addr}"), stop)
}

async fn get(url: &str) -> (u16, String, String) {
    // reqwest is built with rustls but no crypto provider; plain http
    // still needs one installed to build a client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let r = reqwest::Client::new().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, r.text().await.unwrap())
}

fn js() -> SiteOptions {
    SiteOptions {
        js: true,
        ..SiteOptions::default()
    }
}

/// Shells hold no profile data; the scripts and JSON hold it all, and the
/// JSON follows the generation.
#[tokio::test]
async fn shells_scripts_and_json() {
    let generation = Generation::new(0);
    let (base, _stop) = start(SiteOptions {
        generation: generation.clone(),
        ..js()
    })
    .await;
    let site = Site::new(SiteConfig::default());
    let (status, _, shell) = get(&format!("{base}/js/")).await;
    assert_eq!(status, 200);
    assert!(shell.contains("<div id=\"app\"></div>\n<script src=\"/js/app.js\"></script>"));
    let (_, _, shell) = get(&format!("{base}/js/profile/3")).await;
    assert!(shell.contains("<script src=\"/js/profile.js\"></script>"));
    assert!(!shell.contains(&site.profile(3).unwrap().name));
    for script in ["app.js", "profile.js"] {
        let (status, content_type, _) = get(&format!("{base}/js/{script}")).await;
        assert_eq!(
            (status, content_type.as_str()),
            (200, "text/javascript; charset=utf-8")
        );
    }
    let (_, content_type, list) = get(&format!("{base}/api/js/list.json")).await;
    assert_eq!(content_type, "application/json");
    let ids: Vec<String> = (1..=20).map(|i| i.to_string()).collect();
    assert_eq!(
        list,
        format!("{{\"profiles\":[{}],\"plain\":[1,2,3,4,5]}}", ids.join(","))
    );
    let p = site.profile(3).unwrap();
    let (_, _, json) = get(&format!("{base}/api/js/profile/3.json")).await;
    for field in [
        format!("\"name\":\"{}\"", p.name),
        format!("\"age\":{}", p.age),
        format!("\"occupation\":\"{}\"", p.occupation),
        format!("\"city\":\"{}\"", p.city),
    ] {
        assert!(json.contains(&field), "{field} in {json}");
    }
    let (_, _, plain) = get(&format!("{base}/js/plain/2")).await;
    assert!(plain.contains("data-id=\"2\""));
    for path in [
        "/js/profile/21",
        "/api/js/profile/21.json",
        "/js/plain/6",
        "/js/nothing",
    ] {
        assert_eq!(get(&format!("{base}{path}")).await.0, 404, "{path}");
    }
    // A later generation's JSON shows the edit.
    let g = 3;
    let edited = (1..=20)
        .find(|&id| {
            site.profile_at(id, g)
                .is_some_and(|q| Some(q) != site.profile(id))
        })
        .unwrap();
    generation.set(g);
    let (_, _, json) = get(&format!("{base}/api/js/profile/{edited}.json")).await;
    let age = site.profile_at(edited, g).unwrap().age;
    assert!(json.contains(&format!("\"age\":{age},")), "{json}");
    for path in ["/js/hang", "/js/loop", "/js/dialog", "/js/blocked"] {
        assert_eq!(get(&format!("{base}{path}")).await.0, 200, "{path}");
    }
    let (_, _, blocked) = get(&format!("{base}/js/blocked")).await;
    let port = base.rsplit(':').next().unwrap();
    assert!(blocked.contains(&format!("http://internal.test:{port}/secret")));
    assert!(blocked.contains("http://169.254.169.254/latest/meta-data/"));
}

/// `<table class="profile" ...>...</table>` of a dumped DOM.
fn table(dom: &str) -> &str {
    let start = dom
        .find("<table class=\"profile\"")
        .expect("a profile table");
    let end = start + dom[start..].find("</table>").unwrap() + "</table>".len();
    &dom[start..end]
}

/// In Chromium, /js/profile/3's script writes the very table the
/// server-rendered page of profile 3 has, and /js/ lists the profiles.
#[tokio::test]
async fn rendered_dom_has_the_profile_table() {
    let Some(path) = chromium("rendered_dom_has_the_profile_table") else {
        return;
    };
    let (base, _stop) = start(js()).await;
    let browser = Arc::new(Browser::new(path));
    let dom = |url: String| {
        let browser = browser.clone();
        tokio::task::spawn_blocking(move || browser.dom(&url, Duration::from_secs(2)))
    };
    let (script, plain, list) = tokio::join!(
        dom(format!("{base}/js/profile/3")),
        dom(format!("{base}/js/plain/3")),
        dom(format!("{base}/js/")),
    );
    let (script, plain, list) = (script.unwrap(), plain.unwrap(), list.unwrap());
    assert_eq!(table(&script), table(&plain));
    let name = Site::new(SiteConfig::default()).profile(3).unwrap().name;
    assert!(table(&script).contains(&format!("data-field=\"name\">{name}<")));
    assert!(list.contains("href=\"/js/profile/20\"") && list.contains("href=\"/js/plain/5\""));
}

/// A server whose stop sender ends it, and its join handle.
async fn start_joined(
    options: SiteOptions,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (router, _log) = demosite::router_with(Arc::new(Site::new(SiteConfig::default())), options);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(demosite::serve_router(listener, router, async {
        let _ = stopped.await;
    }));
    (addr, stop, server)
}

/// `/js/never` hangs, yet does not hold a graceful shutdown: stopping the
/// server ends it at once (a 504, or the connection closed when shutdown
/// wins the race to the socket), while another server's keeps hanging.
#[tokio::test]
async fn never_ends_at_shutdown() {
    let (a, stop_a, server_a) = start_joined(js()).await;
    let (b, stop_b, _server_b) = start_joined(js()).await;
    let hang = |addr| {
        tokio::spawn(async move {
            let _ = rustls::crypto::ring::default_provider().install_default();
            match reqwest::get(format!("http://{addr}/js/never")).await {
                Ok(r) => Some(r.status().as_u16()),
                Err(_) => None,
            }
        })
    };
    let (request_a, request_b) = (hang(a), hang(b));
    // Long enough for the requests to arrive; they must still be waiting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!request_a.is_finished() && !request_b.is_finished());
    drop(stop_a);
    let status = tokio::time::timeout(Duration::from_secs(5), request_a)
        .await
        .expect("/js/never still open after shutdown")
        .unwrap();
    assert!(matches!(status, Some(504) | None), "ended with {status:?}");
    tokio::time::timeout(Duration::from_secs(5), server_a)
        .await
        .expect("server still running")
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!request_b.is_finished(), "the other server's request ended");
    request_b.abort();
    drop(stop_b);
}
