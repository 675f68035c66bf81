//! The open web (issue 13), through real workers against the demo site's
//! open-web routes: robots.txt sitemaps lead to profiles no page links;
//! what pages ask of crawlers (robots meta, `X-Robots-Tag`,
//! `rel="nofollow"`) is obeyed and counted; a print view with a canonical
//! link stores its profile once, under the profile's own URL.

use std::collections::BTreeMap;

use crate::common::*;
use demosite::{SiteConfig, SiteOptions};
use rpcsupport::Item;

/// The open-web demo site of `profiles` in `cities` (20 a page) with
/// `options`, `workers` workers and the embedded store.
async fn open_web(profiles: u64, cities: u32, options: SiteOptions, workers: usize) -> Cluster {
    Cluster::builder()
        .site(SiteConfig {
            profiles,
            cities,
            page_size: 20,
        })
        .options(SiteOptions {
            open_web: true,
            ..options
        })
        .workers(workers)
        .start()
        .await
}

const PROFILES: u64 = 120;
const SITEMAP_ONLY: u64 = 15;

/// With `use_sitemaps`, the sitemaps robots.txt names (an index of gzip
/// urlsets, and a text sitemap) bring in the profiles no page links, so
/// the store holds exactly the profiles the site expects; without it,
/// only the linked ones, and no sitemap is fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_sitemaps_find_the_unlinked_profiles() {
    for use_sitemaps in [true, false] {
        let cluster = open_web(
            PROFILES,
            3,
            SiteOptions {
                sitemap_only: SITEMAP_ONLY,
                sitemap_page: 50,
                ..SiteOptions::default()
            },
            2,
        )
        .await;
        let mut config = cluster.config();
        config.use_sitemaps = use_sitemaps;
        config.sitemap_parser = "profile".into();
        // The city sitemap lists city pages, which the profile parser
        // cannot read; the crawl reaches them from the seed anyway.
        config.exclude = vec![r"/sitemaps/cities\.xml$".into()];
        let summary = cluster.run(config).await;
        let paths = cluster.served();

        assert!(summary.errors.is_empty(), "{summary}");
        let mut ids: Vec<u64> = cluster
            .items()
            .await
            .iter()
            .map(|i| i.id.as_deref().unwrap().parse().unwrap())
            .collect();
        ids.sort_unstable();
        if !use_sitemaps {
            assert_eq!(ids, (1..=PROFILES).collect::<Vec<_>>(), "{summary}");
            assert!(
                !paths.keys().any(|p| p.contains("sitemap")),
                "no sitemap fetched: {paths:?}"
            );
            assert_eq!(summary.page.sitemaps, 0);
            continue;
        }
        let expected: Vec<u64> = cluster
            .site
            .expected_profiles(0, SITEMAP_ONLY)
            .iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(ids, expected, "{summary}");
        assert_eq!(ids.len() as u64, PROFILES + SITEMAP_ONLY);
        for p in [
            "/sitemap_index.xml",
            "/sitemap.txt",
            "/sitemaps/profiles-1.xml.gz",
        ] {
            assert_eq!(paths.get(p), Some(&1), "{p} fetched once: {paths:?}");
        }
        assert!(!paths.contains_key("/sitemaps/cities.xml"), "excluded");
        for id in PROFILES + 1..=PROFILES + SITEMAP_ONLY {
            assert_eq!(paths.get(&format!("/profile/{id}")), Some(&1), "{id}");
        }
        assert_eq!(summary.page.robots_sitemaps, 2, "{summary}");
        // The index, its three profile sitemaps (135 URLs, 50 a file) and
        // the text sitemap.
        assert_eq!(summary.page.sitemaps, 5, "{summary}");
        assert!(summary.to_string().contains("sitemaps"), "{summary}");
    }
}

/// The rules of the `/meta/` crawl: the index follows every link, each
/// page below yields an id-less profile item (filed under its URL) and
/// follows the small `/meta/` pages it links (not the profile pages'
/// relative recommendation links, which resolve under `/meta/` to 404s).
const META_RULES: &str = r#"
start = "index"

[parsers.index]
follow = [{ parser = "page" }]

[parsers.page]
follow = [{ pattern = '/meta/(links|followed/\d+|unreached/\d+)$', parser = "page" }]

[parsers.page.item]
kind = "profile"
fields.name = { select = "td[data-field=name]" }
"#;

/// Crawls `/meta/` of an open-web demo site with the robots meta and
/// nofollow policy `obey`; returns the summary, the items, the paths the
/// site served and its origin.
async fn crawl_meta(obey: bool) -> (engine::Summary, Vec<Item>, BTreeMap<String, usize>, String) {
    let cluster = open_web(50, 2, SiteOptions::default(), 1).await;
    let mut config = cluster.config();
    config.seeds = vec![format!("{}meta/", cluster.url)];
    config.rules = cluster.write("meta.rules.toml", META_RULES);
    config.parser = "index".into();
    config.obey_robots_meta = obey;
    config.obey_nofollow = obey;
    // The site's sitemaps list every profile: not this test's business.
    config.use_sitemaps = false;
    let summary = cluster.run(config).await;
    let items = cluster.items().await;
    let origin = cluster.url.trim_end_matches('/').to_owned();
    (summary, items, cluster.served(), origin)
}

/// Obeyed: no page behind a `nofollow` (meta, header, or rel) is
/// requested, per the site's log; `noindex` pages (meta or header) store
/// no item; the print views store their profile once, under
/// `/profile/N`; an off-site canonical is ignored; each is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_meta_nofollow_and_canonical_are_obeyed() {
    let (summary, items, paths, origin) = crawl_meta(true).await;
    assert!(summary.errors.is_empty(), "{summary}");

    let unreached: Vec<&String> = paths
        .keys()
        .filter(|p| p.starts_with("/meta/unreached/"))
        .collect();
    assert!(
        unreached.is_empty(),
        "nofollow was not obeyed: {unreached:?}"
    );
    for n in 1..=5 {
        assert!(
            paths.contains_key(&format!("/meta/followed/{n}")),
            "{paths:?}"
        );
    }
    let urls: Vec<&str> = items.iter().map(|i| i.url.as_str()).collect();
    for kind in ["noindex", "header"] {
        assert!(
            !urls.iter().any(|u| u.contains(&format!("/meta/{kind}/"))),
            "a {kind} page stored an item: {urls:?}"
        );
    }
    assert!(!urls.iter().any(|u| u.contains("print")), "{urls:?}");
    for id in 1..=5 {
        let own = format!("{origin}/profile/{id}");
        assert_eq!(
            urls.iter().filter(|u| **u == own).count(),
            1,
            "profile {id} once, under its own URL: {urls:?}"
        );
        assert!(
            !paths.contains_key(&format!("/profile/{id}")),
            "the canonical URL itself is not fetched again: {paths:?}"
        );
    }
    let p = &summary.page;
    // noindex: 5 meta + 5 header pages; nofollow: 5 meta + 5 header.
    assert_eq!((p.noindex, p.nofollow), (10, 10), "{summary}");
    assert_eq!(p.noindex_items, 10, "{summary}");
    assert_eq!(p.nofollow_links, 5, "{summary}");
    assert_eq!(p.canonical_rewritten, 5, "{summary}");
    assert_eq!(p.canonical_duplicates, 5, "{summary}");
    assert_eq!(p.canonical_ignored, 1, "{summary}");
    let text = summary.to_string();
    assert!(
        text.contains("robots meta") && text.contains("canonical"),
        "{text}"
    );
}

/// Not obeyed: the same crawl reaches the pages behind every nofollow and
/// stores the noindex pages' items; the pages still say what they say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_meta_and_nofollow_can_be_ignored() {
    let (summary, items, paths, _origin) = crawl_meta(false).await;
    assert!(summary.errors.is_empty(), "{summary}");
    let unreached = paths
        .keys()
        .filter(|p| p.starts_with("/meta/unreached/"))
        .count();
    assert_eq!(unreached, 15, "every nofollow link followed: {paths:?}");
    let urls: Vec<&str> = items.iter().map(|i| i.url.as_str()).collect();
    for kind in ["noindex", "header"] {
        for id in 1..=5 {
            let suffix = format!("/meta/{kind}/{id}");
            assert!(
                urls.iter().any(|u| u.ends_with(&suffix)),
                "{suffix}: {urls:?}"
            );
        }
    }
    assert_eq!(summary.page.noindex_items, 0, "{summary}");
    assert_eq!(summary.page.nofollow_links, 0, "{summary}");
    // Canonical URLs are the engine's, whatever the robots policy.
    assert_eq!(summary.page.canonical_rewritten, 5, "{summary}");
}

/// A sitemap given as a seed (`sitemaps`, no seed page at all) is crawled
/// like the others: the junk in it (`javascript:`, `ftp:`, relative and
/// empty locs, a malformed tail) is dropped and counted, an off-site loc
/// is out of scope, and the pages it lists keep the sitemap's depth, so
/// `max_depth = 1` still follows their links one step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_given_sitemap_with_junk_is_crawled_and_counted() {
    let cluster = open_web(60, 2, SiteOptions::default(), 1).await;
    let mut config = cluster.config();
    config.seeds = Vec::new();
    config.sitemaps = vec![format!("{}sitemaps/junk.xml", cluster.url)];
    config.sitemap_parser = "profile".into();
    config.max_depth = 1;
    // Only the given sitemap: robots.txt's list every profile.
    config.use_sitemaps = false;
    let summary = cluster.run(config).await;
    let paths = cluster.served();

    assert!(summary.errors.is_empty(), "{summary}");
    assert_eq!(paths.get("/sitemaps/junk.xml"), Some(&1), "{paths:?}");
    assert_eq!(summary.page.sitemaps, 1, "{summary}");
    assert!(summary.page.sitemap_dropped >= 3, "{summary}");
    assert!(summary.out_of_scope >= 1, "the off-site loc: {summary}");
    let ids: Vec<String> = cluster
        .items()
        .await
        .into_iter()
        .filter_map(|i| i.id)
        .collect();
    for id in ["1", "2"] {
        assert!(ids.iter().any(|i| i == id), "profile {id}: {ids:?}");
    }
    // The sitemap, profiles 1 and 2 (depth 0, as the sitemap), and their
    // recommendations (depth 1); theirs are too deep.
    assert!(summary.pages > 3, "listed pages were cut short: {summary}");
    assert!(summary.too_deep > 0, "{summary}");
}
