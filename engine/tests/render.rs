//! Pages that need JavaScript (issue 16), end to end: the demo site's
//! script-built `/js/` section crawled by the engine with `render = "auto"`
//! rules, through one worker with a browser and one without. Skipped with a
//! notice when no Chromium is installed (CI installs it and fails the test
//! without it).

mod common;

use common::*;
use demosite::SiteOptions;
use tarpc::context;

/// The `/js/` list is a script shell whose links exist only once its script
/// ran; each `/js/profile/N` writes its table from JSON; `/js/plain/N` is
/// server-rendered. All three parsers say `render = "auto"`.
const RULES: &str = r#"
start = "js_list"

[parsers.js_list]
render = "auto"
follow = [
    { select = "a[href]", pattern = '/js/profile/\d+$', parser = "js_profile" },
    { select = "a[href]", pattern = '/js/plain/\d+$', parser = "plain_profile" },
]

[parsers.js_profile]
render = "auto"
[parsers.js_profile.item]
kind = "profile"
id = { select = "table.profile", attr = "data-id" }
[parsers.js_profile.item.fields]
name = { select = "td[data-field=name]" }
age = { select = "td[data-field=age]", regex = '(\d+)', type = "integer" }
height = { select = "td[data-field=height]", regex = '(\d+)', type = "integer" }
city = { select = "td[data-field=city]" }
education = { select = "td[data-field=education]" }

[parsers.plain_profile]
render = "auto"
[parsers.plain_profile.item]
kind = "plain_profile"
[parsers.plain_profile.item.fields]
name = { select = "td[data-field=name]" }
"#;

/// With `render = "auto"`, the crawl stores exactly the script-built
/// profiles the section holds, with the fields the server-rendered pages
/// have; the list and the profile shells are rendered (on the worker that
/// has a browser: the other gets none of them), the plain pages are not,
/// and the summary counts both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_built_pages_are_rendered_only_where_needed() {
    let Some(browser) =
        testsupport::browser::chromium("script_built_pages_are_rendered_only_where_needed")
    else {
        return;
    };
    // 8 script-built profiles (the site's default is 20): each is a
    // browser render, the test's cost; 8 show the same as 20.
    let js_profiles = 8u64;
    let plain_profiles = 5u64;
    let cluster = Cluster::builder()
        .options(SiteOptions {
            js: true,
            js_profiles,
            ..SiteOptions::default()
        })
        .worker_configs(vec![
            worker::WorkerConfig {
                browser: browser.to_str().unwrap().to_owned(),
                max_tabs: 2,
                // The site's scripts ask for their JSON as they run, so
                // the network is quiet for good well within 100 ms of the
                // load event; the default's 500 ms would only add 0.4 s
                // to each of the test's nine renders.
                render_idle_ms: 100,
                ..local_worker()
            },
            worker::WorkerConfig {
                browser: "none".into(),
                ..local_worker()
            },
        ])
        .start()
        .await;
    let plain = cluster.workers[1];
    let mut config = cluster.config();
    config.seeds = vec![format!("{}js/", cluster.url)];
    config.rules = cluster.write("js.rules.toml", RULES);
    config.parser = "js_list".into();
    config.rpc_timeout_ms = 60_000;
    let summary = cluster.run(config).await;

    assert!(summary.errors.is_empty(), "{summary}");
    assert_eq!(
        summary.pages,
        1 + js_profiles + plain_profiles,
        "the list, its script-built profiles and the plain pages: {summary}"
    );
    let rendered = summary.page.rendered_total();
    assert_eq!(
        rendered,
        1 + js_profiles,
        "the list and every script-built profile rendered, no plain page: {summary}"
    );
    let per_worker = |addr: std::net::SocketAddr| {
        summary
            .per_worker
            .iter()
            .find(|(w, _)| *w == addr.to_string())
            .map_or(0, |(_, n)| *n)
    };
    assert_eq!(
        per_worker(plain),
        0,
        "render requests go only to the worker with a browser: {summary}"
    );
    // Each page was asked of the site once: an auto page that needed the
    // browser is rendered from the body already fetched, and its
    // subresources (the scripts, the JSON) come through the worker.
    let page_requests = cluster
        .log
        .entries()
        .iter()
        .filter(|e| e.path.starts_with("/js/profile/") || e.path.starts_with("/js/plain/"))
        .count() as u64;
    assert_eq!(page_requests, js_profiles + plain_profiles);

    let client = cluster.itemsaver().await;
    let count = client.count(context::current()).await.unwrap().unwrap();
    assert_eq!(count, js_profiles + plain_profiles, "{summary}");
    for id in 1..=js_profiles {
        cluster.assert_profile_stored(id).await;
    }
}
