//! The live dashboard (issue 15) in a real headless Chromium: a crawl's
//! pages rise while it runs, then the page says "finished" with the
//! summary's numbers. Screenshots go to the test's temp dir (and to
//! `$DASHBOARD_SCREENSHOT_DIR` when set, for the README image).

mod common;

use std::future::pending;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use engine::dashboard::Dashboard;
use testsupport::browser::{chromium, text_by_id, Browser};

/// How long the page's script may run before the DOM is read.
const BUDGET: Duration = Duration::from_millis(1_500);

fn pages_shown(dom: &str) -> u64 {
    text_by_id(dom, "pages")
        .expect("a pages card")
        .replace(',', "")
        .parse()
        .expect("a number")
}

/// Waits (up to 30 s) until the dashboard's data says `pages` pages.
async fn wait_for_pages(dashboard: &Dashboard, pages: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v: serde_json::Value = serde_json::from_str(&dashboard.json()).unwrap();
        if v["pages"].as_u64() == Some(pages) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "dashboard never showed {pages} pages: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Pages rise while the crawl runs; at the end the page shows "finished",
/// the summary's page count and the summary text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_follows_a_crawl_to_the_end() {
    let Some(chrome) = chromium("dashboard_follows_a_crawl_to_the_end") else {
        return;
    };
    let browser = Arc::new(Browser::new(chrome));
    // The site serves a page per permit: the test sets the crawl's pace,
    // so the browser's own speed cannot race it.
    let cluster = Cluster::builder().profiles(100).gated().start().await;
    let mut settings = cluster.config().validate().unwrap();
    let dashboard = Dashboard::new();
    settings.dashboard = Some(dashboard.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let page = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(rpcsupport::metrics::serve_endpoint(
        listener,
        settings.metrics.clone(),
        Some(dashboard.routes()),
        pending(),
    ));
    let crawl = tokio::spawn(engine::run(settings, pending()));

    let dom = |b: Arc<Browser>, url: String| async move {
        tokio::task::spawn_blocking(move || b.dom(&url, BUDGET))
            .await
            .unwrap()
    };
    cluster.let_through(20);
    wait_for_pages(&dashboard, 20).await;
    let first = dom(browser.clone(), page.clone()).await;
    cluster.let_through(30);
    wait_for_pages(&dashboard, 50).await;
    let second = dom(browser.clone(), page.clone()).await;
    assert_eq!(pages_shown(&first), 20);
    assert_eq!(pages_shown(&second), 50, "pages rise");
    assert_eq!(text_by_id(&second, "phase").as_deref(), Some("running"));

    cluster.open_gate();
    let summary = tokio::time::timeout(Duration::from_secs(120), crawl)
        .await
        .expect("the crawl ends")
        .unwrap()
        .unwrap();
    assert_eq!(summary.pages, cluster.site.page_count(), "{summary}");
    let last = dom(browser.clone(), page.clone()).await;
    assert_eq!(text_by_id(&last, "phase").as_deref(), Some("finished"));
    assert_eq!(pages_shown(&last), summary.pages);
    let shown_summary = text_by_id(&last, "summary").expect("the summary");
    assert!(
        shown_summary.lines().any(|l| {
            l.trim_start().starts_with("pages") && l.contains(&summary.pages.to_string())
        }),
        "{shown_summary}"
    );

    let shots = std::env::var_os("DASHBOARD_SCREENSHOT_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| cluster.path(""));
    // Both at once, in two tabs of the one browser.
    let shoot = |name: &str, size: (u32, u32)| {
        let file = shots.join(name);
        let b = browser.clone();
        let p = page.clone();
        tokio::task::spawn_blocking(move || b.screenshot(&p, BUDGET, size, &file))
    };
    let (laptop, phone) = tokio::join!(
        shoot("dashboard.png", (1280, 1100)),
        shoot("dashboard-phone.png", (390, 1600)),
    );
    laptop.unwrap();
    phone.unwrap();
}
