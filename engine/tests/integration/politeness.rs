//! A polite, robust crawl (issue 5): per-host limits that hold across the
//! whole worker pool, robots.txt, retries, and bad input that never stops a
//! crawl. Everything runs on loopback; each crawl is small and bounded.

use std::collections::BTreeMap;
use std::future::pending;
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use demosite::{SiteConfig, SiteOptions};

/// Request starts at the server are `delay` apart on average (one delay of
/// slack for the transit jitter of the first and last), and no three
/// consecutive starts fall within one delay. The engine spaces its
/// dispatches by the delay; on the way through a worker one request can be
/// held up (a busy core, a new connection) and arrive just before the next
/// one, so a single short gap is transit jitter, not a broken limit
/// (seen: 0.3 ms once while other builds ran). Three starts inside one
/// delay cannot come from one late request: they mean the engine sent them
/// too close.
fn assert_spaced(log: &demosite::RequestLog, delay: Duration) {
    let entries = log.entries();
    let span = entries.last().unwrap().start - entries[0].start;
    let n = entries.len() as u32;
    assert!(
        span >= delay * (n - 2),
        "{n} requests in {span:?}: closer than {delay:?} on average"
    );
    let bunched: Vec<String> = entries
        .windows(3)
        .filter(|w| w[2].start - w[0].start < delay)
        .map(|w| {
            format!(
                "{}, {}, {} within {:?}",
                w[0].path,
                w[1].path,
                w[2].path,
                w[2].start - w[0].start
            )
        })
        .collect();
    assert!(
        bunched.is_empty(),
        "three starts within one delay ({delay:?}): {bunched:?}"
    );
}

/// 60 profiles in 3 cities, a page each: 64 pages.
fn small_site() -> SiteConfig {
    SiteConfig {
        profiles: 60,
        cities: 3,
        page_size: 20,
    }
}

/// 20 profiles in 2 cities: 23 pages, for crawls that wait between
/// requests.
fn tiny_site() -> SiteConfig {
    SiteConfig {
        profiles: 20,
        cities: 2,
        page_size: 20,
    }
}

/// With three workers on one host, the server never sees more than the
/// per-host concurrency at once, and request starts are spaced by the
/// per-host delay: the engine dispatches them that far apart, so at the
/// server they are that far apart on average and never much closer (the
/// path through a worker adds a little jitter).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_host_limits_hold_across_three_workers() {
    let cluster = Cluster::builder()
        .site(SiteConfig {
            profiles: 12,
            ..tiny_site()
        })
        .workers(3)
        .start()
        .await;
    let mut config = cluster.config();
    config.per_host_concurrency = 2;
    // 16 requests (15 pages and robots.txt) 50 ms apart: 0.75 s.
    config.per_host_delay_ms = 50;
    let summary = cluster.run(config).await;

    let log = &cluster.log;
    assert_eq!(summary.pages, cluster.site.page_count(), "{summary}");
    assert!(
        log.max_concurrency() <= 2,
        "server saw {} at once",
        log.max_concurrency()
    );
    assert_spaced(log, Duration::from_millis(50));
    assert_eq!(summary.per_worker.len(), 3, "{summary}");
    assert!(summary.per_worker.iter().all(|(_, n)| *n > 0), "{summary}");
}

/// A slow host does not hold up a fast one: the fast site is crawled to
/// the end while the slow one has not answered a single page (its pages
/// wait at a gate the test opens only then).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_host_does_not_slow_another() {
    let fast = Cluster::builder().site(small_site()).start().await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let slow_opts = SiteOptions {
        gate: Some(gate.clone()),
        ..SiteOptions::default()
    };
    let slow_config = SiteConfig {
        profiles: 10,
        cities: 1,
        page_size: 20,
    };
    let (slow, slow_url, slow_log, _s0) =
        start_site_with("127.0.0.2", slow_config, slow_opts).await;
    let mut config = fast.config();
    config.seeds.push(slow_url);
    config.per_host_concurrency = 1;
    let crawl = tokio::spawn(engine::run(config.validate().unwrap(), pending()));

    let pages = |log: &demosite::RequestLog| {
        let served = served(log);
        served.values().sum::<usize>() - served.get("/robots.txt").copied().unwrap_or(0)
    };
    let started = std::time::Instant::now();
    while (pages(&fast.log) as u64) < fast.site.page_count() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the fast site was not crawled while the slow one hung"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(pages(&slow_log), 0, "the slow site answered a page");
    gate.add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
    let summary = crawl.await.unwrap().unwrap();
    assert!(summary.errors.is_empty(), "{summary}");
    assert_eq!(
        summary.pages,
        fast.site.page_count() + slow.page_count(),
        "{summary}"
    );
}

/// robots.txt is fetched once, its Disallow skips pages (counted as
/// skipped, not failed) and its Crawl-delay spaces the requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_disallow_and_crawl_delay() {
    let options = SiteOptions {
        robots: Some("User-agent: *\nDisallow: /profile/1\nCrawl-delay: 0.05\n".into()),
        ..SiteOptions::default()
    };
    let cluster = Cluster::builder()
        .site(tiny_site())
        .options(options)
        .start()
        .await;
    let summary = cluster.crawl().await;

    let entries = cluster.log.entries();
    assert_eq!(cluster.served().get("/robots.txt"), Some(&1));
    assert_eq!(entries[0].path, "/robots.txt", "robots.txt comes first");
    // /profile/1 and /profile/10..19 are disallowed (prefix match).
    assert!(
        entries.iter().all(|e| !e.path.starts_with("/profile/1")),
        "a disallowed page was fetched"
    );
    assert_eq!(
        summary.skipped.get("robots_disallowed"),
        Some(&11),
        "{summary}"
    );
    assert!(summary.errors.is_empty(), "{summary}");
    assert_eq!(summary.items_saved, 20 - 11, "{summary}");
    // 13 requests (12 pages and robots.txt) 50 ms apart: 0.6 s.
    assert_spaced(&cluster.log, Duration::from_millis(50));
}

/// A missing robots.txt (404) allows everything; a 5xx one makes the host
/// wait and is fetched again until it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_missing_and_unavailable() {
    let cluster = Cluster::builder().site(small_site()).start().await;
    let summary = cluster.crawl().await;
    assert_eq!(summary.pages, cluster.site.page_count(), "{summary}");
    assert_eq!(cluster.served().get("/robots.txt"), Some(&1));

    let options = SiteOptions {
        robots: Some("User-agent: *\nAllow: /\n".into()),
        robots_failures: 2,
        ..SiteOptions::default()
    };
    let (site, url, log, _s) = start_site_with("127.0.0.2", small_site(), options).await;
    let mut config = cluster.config();
    config.seeds = vec![url];
    config.robots_retry_backoff_ms = 100;
    let summary = cluster.run(config).await;
    assert_eq!(summary.pages, site.page_count(), "{summary}");
    let robots: Vec<_> = log
        .entries()
        .into_iter()
        .filter(|e| e.path == "/robots.txt")
        .collect();
    assert_eq!(robots.len(), 3, "two 503s, then the file");
    // Backoff between the tries: 100 ms, then 200 ms (the default
    // robots_retry_backoff_ms is 1 s; the doubling is the gate's unit test).
    assert!(
        robots[2].start - robots[0].start >= Duration::from_millis(290),
        "{:?}",
        robots[2].start - robots[0].start
    );
    let first_page = log
        .entries()
        .into_iter()
        .find(|e| e.path != "/robots.txt")
        .unwrap();
    assert!(
        first_page.start > robots[2].start,
        "no page before robots.txt answered"
    );
}

/// Transient failures are retried with backoff (honouring Retry-After);
/// permanent ones are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_permanent_ones_not() {
    let cluster = Cluster::builder().site(small_site()).start().await;
    let url = &cluster.url;
    let mut config = cluster.config();
    config.seeds = vec![format!("{url}fault/flaky/a/2?status=500")];
    config.seeds.push(format!("{url}fault/status/404"));
    config.seeds.push(format!("{url}fault/flaky/b/1"));
    config.parser = "links".into();
    config.retry_backoff_ms = 10;
    // The site asks for Retry-After: 1; the ceiling caps it at 300 ms, so
    // the test waits 0.6 s rather than 2 s (that Retry-After is honoured
    // in full below the ceiling is a paused-time test of the loop:
    // crawl::tests).
    config.retry_max_backoff_ms = 300;
    let started = std::time::Instant::now();
    let summary = cluster.run(config).await;

    assert_eq!(summary.fetch_retries.get("http_500"), Some(&2), "{summary}");
    assert_eq!(summary.fetch_retries.get("http_503"), Some(&1), "{summary}");
    assert_eq!(
        summary.errors,
        BTreeMap::from([("http_404".to_string(), 1)]),
        "{summary}"
    );
    assert_eq!(cluster.served().get("/fault/status/404"), Some(&1));
    assert_eq!(
        summary.pages, 2,
        "both flaky pages end up fetched: {summary}"
    );
    // Retry-After on both failures of flaky/a outweighs the 10 + 20 ms
    // backoff: each retry waits the 300 ms ceiling.
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "Retry-After ignored: {:?}",
        started.elapsed()
    );
}

/// Every failure route of the test site gets its outcome (retried, skipped
/// or failed with a reason) and the crawl goes on to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_never_stops_a_crawl() {
    // A fetch timeout of 500 ms: the slow page's two tries cost 1 s.
    let cluster = Cluster::builder()
        .site(small_site())
        .worker_configs(vec![worker::WorkerConfig {
            timeout_ms: 500,
            max_body_bytes: 1024 * 1024,
            ..local_worker()
        }])
        .start()
        .await;
    let url = &cluster.url;
    // The off-site target: a loopback address outside the allowed domains,
    // so even a broken guard would never leave this machine.
    let (_other, other_url, other_log, _s0) =
        start_site_with("127.0.0.2", small_site(), SiteOptions::default()).await;
    let routes = [
        "fault/slow/1500",
        "fault/truncated",
        "fault/flaky/c/1?status=500",
        "fault/status/429?retry_after=1",
        "fault/redirect-loop",
        &format!("fault/redirect-to?url={other_url}"),
        // Four and two times the 1 MiB cap: too large all the same, and
        // the site does not spend the CPU the fetch timeout needs building
        // 50 MB or gzipping 5 MB in a debug build.
        "fault/big/4194304",
        "fault/gzip-bomb/2097152",
        "fault/invalid-utf8",
        "fault/wrong-charset",
        "fault/binary",
        "fault/nested/20000",
        "fault/links",
        "fault/not-html",
        "fault/status/404",
    ];
    let failures = cluster.path("failures.jsonl");
    let mut config = cluster.config();
    config.seeds = routes.iter().map(|r| format!("{url}{r}")).collect();
    config.parser = "links".into();
    config.retry_times = 1;
    config.retry_backoff_ms = 10;
    // The 429's Retry-After: 1 is capped to 300 ms.
    config.retry_max_backoff_ms = 300;
    config.failures_file = failures.display().to_string();
    let summary = cluster.run(config).await;

    let errors = |k: &str| summary.errors.get(k).copied().unwrap_or(0);
    assert_eq!(errors("timeout"), 1, "slow page: {summary}");
    assert_eq!(errors("connect"), 1, "truncated body: {summary}");
    assert_eq!(errors("http_429"), 1, "{summary}");
    assert_eq!(errors("too_many_redirects"), 1, "{summary}");
    assert_eq!(errors("too_large"), 2, "big body and gzip bomb: {summary}");
    assert_eq!(errors("http_404"), 1, "{summary}");
    assert_eq!(summary.failed(), 7, "{summary}");
    assert_eq!(
        summary.skipped.get("offsite_redirect"),
        Some(&1),
        "{summary}"
    );
    assert_eq!(summary.skipped.get("not_html"), Some(&1), "{summary}");
    assert!(
        other_log.entries().is_empty(),
        "an off-site redirect was followed"
    );
    // Retried once each: timeout, truncated, 429, and the flaky page.
    assert_eq!(summary.fetch_retries.values().sum::<u64>(), 4, "{summary}");
    // Pages that parse: flaky (after its retry), invalid UTF-8, wrong
    // charset, binary, nested, links, plus /fault/status/204 they link to.
    assert_eq!(summary.pages, 7, "{summary}");
    // Junk hrefs never leave the worker; off-site ones (unicode hosts, the
    // huge URL) are dropped by the engine's scope.
    assert!(summary.out_of_scope >= 3, "{summary}");
    let failures = std::fs::read_to_string(failures).unwrap();
    assert_eq!(failures.lines().count(), 7);
    assert!(failures.contains("\"kind\":\"too_large\""));
}
