//! Validation: defaults, inline rules, and bad values named by their key.

use super::*;
use rpcsupport::ParserSpec;

fn with_seed() -> EngineConfig {
    EngineConfig {
        seeds: vec!["http://127.0.0.1:8080/".into()],
        ..EngineConfig::default()
    }
}

/// The defaults plus one seed validate.
#[test]
fn defaults_with_a_seed_are_valid() {
    let s = with_seed().validate().unwrap();
    assert_eq!(s.workers.len(), 2);
    assert_eq!(s.itemsaver.to_string(), "127.0.0.1:1234");
    assert_eq!(s.max_depth, None);
    assert_eq!(s.seeds[0].parser.name, "city_list");
    assert_eq!(
        s.scope.policy.allowed_domains,
        vec!["127.0.0.1".to_string()]
    );
    assert!(s.politeness.obey_robots);
    assert_eq!(s.state_cache_bytes, 16 << 20, "state_cache_mb = 16");
}

/// Rules given inline (a `[rules]` section) are used when no rules file
/// is named, seeds and start parser included.
#[test]
fn inline_rules_section() {
    let text = "[rules]\nseeds = [\"http://127.0.0.1:9/\"]\nstart = \"home\"\n[rules.parsers.home]\nfollow = [{ parser = \"home\" }]\n";
    let inline: Option<RulesFile> = rpcsupport::config::parse_section(text, "rules").unwrap();
    let config = EngineConfig {
        inline_rules: inline,
        ..EngineConfig::default()
    };
    let s = config.validate().unwrap();
    let set = s.rules.unwrap();
    assert_eq!(s.seeds[0].url, "http://127.0.0.1:9/");
    assert_eq!(s.seeds[0].parser, set.spec("home"));
}

/// Each bad value is reported under its own key.
#[test]
fn bad_values_name_their_key() {
    let cases: Vec<(EngineConfig, &str)> = vec![
        (
            EngineConfig {
                worker_hosts: vec!["nonsense".into()],
                ..with_seed()
            },
            "worker_hosts",
        ),
        (
            EngineConfig {
                worker_hosts: vec![],
                ..with_seed()
            },
            "worker_hosts",
        ),
        (
            EngineConfig {
                worker_hosts: vec![":1".into(), "127.0.0.1:1".into()],
                ..with_seed()
            },
            "worker_hosts",
        ),
        (
            EngineConfig {
                itemsaver_host: "x:y".into(),
                ..with_seed()
            },
            "itemsaver_host",
        ),
        (EngineConfig::default(), "seeds"),
        (
            EngineConfig {
                seeds: vec!["ftp://x/".into()],
                ..with_seed()
            },
            "seeds",
        ),
        (
            EngineConfig {
                seeds: vec!["not a url".into()],
                ..with_seed()
            },
            "seeds",
        ),
        (
            EngineConfig {
                worker_count: 0,
                ..with_seed()
            },
            "worker_count",
        ),
        (
            EngineConfig {
                parser: " ".into(),
                ..with_seed()
            },
            "parser",
        ),
        (
            EngineConfig {
                sitemaps: vec!["ftp://x/sitemap.xml".into()],
                ..with_seed()
            },
            "sitemaps",
        ),
        (
            EngineConfig {
                sitemaps: vec!["/sitemap.xml".into()],
                ..with_seed()
            },
            "sitemaps",
        ),
        (
            EngineConfig {
                state_cache_mb: 0,
                ..with_seed()
            },
            "state_cache_mb",
        ),
        (
            EngineConfig {
                state_cache_mb: 1025,
                ..with_seed()
            },
            "state_cache_mb",
        ),
    ];
    for (config, key) in cases {
        let err = config.validate().unwrap_err();
        assert_eq!(err.key, key, "{err}");
        assert!(err.to_string().starts_with(&format!("engine.{key}: ")));
    }
}

/// The policy obeys robots meta and rel=nofollow by default, and each
/// can be turned off; robots.txt sitemaps are followed with the seed
/// parser unless told otherwise.
#[test]
fn open_web_defaults() {
    let s = with_seed().validate().unwrap();
    assert!(s.scope.policy.obey_robots_meta && s.scope.policy.obey_nofollow);
    assert_eq!(s.sitemap_pages, ParserSpec::named("city_list"));
    assert_eq!(
        s.politeness.sitemaps,
        Some(ParserSpec::sitemap(&ParserSpec::named("city_list")))
    );
    assert_eq!(s.politeness.max_robots_sitemaps, 50);
    let s = EngineConfig {
        obey_robots_meta: false,
        obey_nofollow: false,
        use_sitemaps: false,
        ..with_seed()
    }
    .validate()
    .unwrap();
    assert!(!s.scope.policy.obey_robots_meta && !s.scope.policy.obey_nofollow);
    assert_eq!(s.politeness.sitemaps, None);
}

/// Sitemaps alone are enough to start: they become depth-0 seeds for the
/// sitemap parser, whose pages get `sitemap_parser`, and their hosts are
/// in scope.
#[test]
fn sitemaps_are_seeds() {
    let s = EngineConfig {
        sitemaps: vec!["http://127.0.0.2:9/sitemap.xml".into()],
        sitemap_parser: "profile".into(),
        ..EngineConfig::default()
    }
    .validate()
    .unwrap();
    assert_eq!(s.seeds.len(), 1);
    assert_eq!(s.seeds[0].url, "http://127.0.0.2:9/sitemap.xml");
    assert_eq!(s.seeds[0].depth, 0);
    assert_eq!(
        s.seeds[0].parser.sitemap_pages(),
        Some(ParserSpec::named("profile"))
    );
    assert_eq!(s.scope.policy.allowed_domains, ["127.0.0.2"]);
}

/// A rules file's sitemaps add to the engine's, with its sitemap_parser
/// (a rule) for their pages.
#[test]
fn rules_sitemaps_and_parser() {
    let text = "[rules]\nsitemaps = [\"http://127.0.0.1:9/s.xml\"]\nsitemap_parser = \"page\"\n[rules.parsers.page]\nfollow = [{ parser = \"page\" }]\n";
    let inline: Option<RulesFile> = rpcsupport::config::parse_section(text, "rules").unwrap();
    let config = EngineConfig {
        inline_rules: inline,
        sitemaps: vec!["http://127.0.0.1:9/other.xml".into()],
        ..EngineConfig::default()
    };
    let s = config.validate().unwrap();
    let set = s.rules.clone().unwrap();
    let urls: Vec<&str> = s.seeds.iter().map(|r| r.url.as_str()).collect();
    assert_eq!(
        urls,
        ["http://127.0.0.1:9/other.xml", "http://127.0.0.1:9/s.xml"]
    );
    assert_eq!(s.sitemap_pages, set.spec("page"));
    assert_eq!(s.seeds[1].parser, ParserSpec::sitemap(&set.spec("page")));
}
