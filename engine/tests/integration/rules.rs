//! Declarative parsers (issue 6): the demo site described in the shipped
//! rules file, crawled through real workers that were started with nothing
//! but a port, gives the same items as the built-in parsers.

use std::future::pending;

use crate::common::*;
use demosite::SiteConfig;
use rpcsupport::{ConnectOptions, HostAddr};
use tarpc::context;

/// The shipped rules file for the demo site.
const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/demosite.rules.toml"
);

/// `config` set to crawl with the shipped rules from its `home` parser.
fn with_rules(mut config: engine::EngineConfig) -> engine::EngineConfig {
    config.rules = RULES.into();
    config.parser = "home".into();
    config
}

/// 120 profiles in 3 cities: two pages a city, so the rules follow the
/// pager too; ids ending in 3 are GBK, those ending in 7 have a
/// `<base href>`.
const SITE: SiteConfig = SiteConfig {
    profiles: 120,
    cities: 3,
    page_size: 20,
};

/// The shipped rules file and the built-in parsers store identical items.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_rules_match_builtin_parsers() {
    // A cluster each, so each crawl has a store of its own.
    let builtin = Cluster::builder().site(SITE).workers(2).start().await;
    let ruled = Cluster::builder().site(SITE).workers(2).start().await;
    let builtin_summary = builtin.crawl().await;
    let ruled_summary = ruled.run(with_rules(ruled.config())).await;

    for summary in [&builtin_summary, &ruled_summary] {
        assert_eq!(summary.pages, SITE.profiles + 1 + 6, "{summary}");
        assert_eq!(summary.pages, ruled.site.page_count(), "{summary}");
        assert_eq!(summary.items_saved, SITE.profiles, "{summary}");
    }
    // The two sites differ only in their port: compare the paths.
    let paths = |cluster: &Cluster, mut items: Vec<rpcsupport::Item>| {
        for item in &mut items {
            let path = item
                .url
                .strip_prefix(&cluster.url)
                .expect("an item of the site");
            item.url = format!("/{path}");
        }
        items
    };
    let a = paths(&builtin, builtin.items().await);
    let b = paths(&ruled, ruled.items().await);
    assert_eq!(a.len(), SITE.profiles as usize);
    assert_eq!(a, b, "the rules extract different items");
}

/// A worker asked for a rule set it does not hold says so (the engine then
/// sends the rules again); the engine gives every worker the rules when it
/// connects, so a worker started with only a port serves a rules crawl.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_reach_workers_that_lack_them() {
    let cluster = Cluster::builder().profiles(50).start().await;
    let (url, w1) = (&cluster.url, cluster.workers[0]);
    let config = with_rules(cluster.config());
    let settings = config.clone().validate().unwrap();
    let set = settings.rules.clone().unwrap();

    // Ask a worker directly with the rule set's id before it ever got it.
    let client = rpcsupport::connect_crawl(&HostAddr::from(w1), ConnectOptions::default())
        .await
        .unwrap();
    let request = rpcsupport::Request {
        url: url.clone(),
        parser: set.spec("home"),
        depth: 0,
        hints: Default::default(),
    };
    let answer = client
        .process(context::current(), request.into(), Default::default())
        .await
        .unwrap();
    assert!(
        matches!(
            answer,
            Err(rpcsupport::CrawlError::Parse(
                rpcsupport::ParseError::UnknownRuleset(_)
            ))
        ),
        "{answer:?}"
    );
    // The engine loads the rules at connect and crawls.
    let summary = cluster.run(config).await;
    assert_eq!(summary.items_saved, 50, "{summary}");
}

/// A rules file with a mistake the engine can see (here a bad regex)
/// stops it at start, naming the rule and the key.
#[test]
fn bad_rules_are_reported_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.rules.toml");
    std::fs::write(
        &path,
        "[parsers.home]\nfollow = [{ pattern = \"(\", parser = \"home\" }]\n",
    )
    .unwrap();
    let config = engine::EngineConfig {
        seeds: vec!["http://127.0.0.1:1/".into()],
        rules: path.to_str().unwrap().into(),
        ..engine::EngineConfig::default()
    };
    let err = config.validate().unwrap_err();
    assert_eq!(err.key, "rules");
    assert!(
        err.reason
            .contains("parser \"home\", follow[0].pattern: bad regex"),
        "{err}"
    );
}

/// Issue 12: what only a worker can check (a CSS selector, a built-in
/// parser's name) passes the engine's validation, and a worker's refusal
/// stops the crawl at start as a typed error naming the worker and its
/// verdict, before anything is fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_refusing_the_rules_stops_the_start() {
    let (w1, _s1) = start_worker().await;
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[parsers.home]\nfollow = [{ select = \"a[\", parser = \"home\" }]\n",
            "parser \"home\", follow[0].select: bad CSS selector",
        ),
        (
            "[parsers.home]\nfollow = [{ parser = \"no_such_builtin\" }]\n",
            "unknown parser \"no_such_builtin\"",
        ),
    ];
    for (i, (rules, needle)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.rules.toml"));
        std::fs::write(&path, rules).unwrap();
        // Nothing listens on the site or the itemsaver: the crawl must stop
        // before it needs either.
        let mut config = engine_config("http://127.0.0.1:1/", &[w1], ([127, 0, 0, 1], 1).into());
        config.rules = path.to_str().unwrap().into();
        config.parser = "home".into();
        let err = engine::run(config.validate().unwrap(), pending())
            .await
            .unwrap_err();
        match &err {
            engine::EngineError::RulesRefused {
                worker,
                error: rpcsupport::ParseError::BadRules(reason),
            } => {
                assert_eq!(worker, &HostAddr::from(w1));
                assert!(reason.contains(needle), "{err}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(
            err.to_string().starts_with(&format!(
                "worker {} refused the rules: ",
                HostAddr::from(w1)
            )),
            "{err}"
        );
    }
}

/// A worker that dropped the crawl's rule set mid-crawl (here: pushed out
/// by other crawls' rule sets) answers "unknown rule set"; the engine sends
/// the rules again and the crawl loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicted_rules_are_sent_again() {
    let cluster = Cluster::builder()
        .site(SITE)
        .options(demosite::SiteOptions {
            page_delay: std::time::Duration::from_millis(5),
            ..demosite::SiteOptions::default()
        })
        .start()
        .await;
    let w1 = cluster.workers[0];
    let mut config = with_rules(cluster.config());
    config.per_host_concurrency = 2;
    let crawl = tokio::spawn(engine::run(config.validate().unwrap(), pending()));

    // Once the crawl is under way, fill the worker with other rule sets.
    let client = rpcsupport::connect_crawl(&HostAddr::from(w1), ConnectOptions::default())
        .await
        .unwrap();
    loop {
        let status = client.status(context::current()).await.unwrap();
        if status.served > 20 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for i in 0..20 {
        let other = format!("{{\"seeds\":[],\"start\":null,\"parsers\":{{\"p{i}\":{{\"follow\":[],\"item\":null}}}}}}");
        client
            .load_rules(context::current(), other)
            .await
            .unwrap()
            .unwrap();
    }
    let summary = crawl.await.unwrap().unwrap();
    assert_eq!(summary.items_saved, SITE.profiles, "{summary}");
    assert!(summary.errors.is_empty(), "{summary}");
}
