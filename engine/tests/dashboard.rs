//! The live dashboard (issue 15) in a real headless Chromium: a crawl's
//! pages rise while it runs, then the page says "finished" with the
//! summary's numbers. Screenshots go to the test's temp dir (and to
//! `$DASHBOARD_SCREENSHOT_DIR` when set, for the README image).

mod common;

use std::future::pending;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use demosite::{SiteConfig, SiteOptions};
use engine::dashboard::Dashboard;
use testsupport::browser::{chromium, text_by_id, Browser};

/// How long the page's script may run before the DOM is read.
const BUDGET: Duration = Duration::from_millis(2_500);

fn pages_shown(dom: &str) -> u64 {
    text_by_id(dom, "pages")
        .expect("a pages card")
        .replace(',', "")
        .parse()
        .expect("a number")
}

/// Pages rise while the crawl runs; at the end the page shows "finished",
/// the summary's page count and the summary text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_follows_a_crawl_to_the_end() {
    let Some(chrome) = chromium("dashboard_follows_a_crawl_to_the_end") else {
        return;
    };
    let browser = Arc::new(Browser::new(chrome));
    // Slow pages and few calls at once: the crawl lasts several seconds.
    let (site, url, _log, _s) = start_site_with(
        "127.0.0.1",
        SiteConfig {
            profiles: 400,
            ..SiteConfig::default()
        },
        SiteOptions {
            page_delay: Duration::from_millis(20),
            ..SiteOptions::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (worker, _w) = start_worker().await;
    let (saver, _i) = start_itemsaver(dir.path()).await;
    let mut config = engine_config(&url, &[worker], saver);
    config.worker_count = 4;
    config.per_host_concurrency = 4;
    let mut settings = config.validate().unwrap();
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
    let first = dom(browser.clone(), page.clone()).await;
    let second = dom(browser.clone(), page.clone()).await;
    let (p1, p2) = (pages_shown(&first), pages_shown(&second));
    assert!(p1 > 0 && p2 > p1, "pages should rise: {p1} then {p2}");
    assert_eq!(text_by_id(&second, "phase").as_deref(), Some("running"));

    let summary = tokio::time::timeout(Duration::from_secs(120), crawl)
        .await
        .expect("the crawl ends")
        .unwrap()
        .unwrap();
    assert_eq!(summary.pages, site.page_count(), "{summary}");
    let last = dom(browser.clone(), page.clone()).await;
    assert_eq!(text_by_id(&last, "phase").as_deref(), Some("finished"));
    assert_eq!(pages_shown(&last), summary.pages);
    let shown_summary = text_by_id(&last, "summary").expect("the summary");
    assert!(
        shown_summary.contains(&summary.pages.to_string()),
        "{shown_summary}"
    );

    let shots = std::env::var_os("DASHBOARD_SCREENSHOT_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().to_owned());
    for (name, size) in [
        ("dashboard.png", (1280, 1100)),
        ("dashboard-phone.png", (390, 1600)),
    ] {
        let file = shots.join(name);
        let b = browser.clone();
        let p = page.clone();
        tokio::task::spawn_blocking(move || b.screenshot(&p, BUDGET, size, &file))
            .await
            .unwrap();
    }
}
