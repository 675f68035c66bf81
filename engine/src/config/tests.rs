//! Validation: defaults, inline rules, and bad values named by their key.

use super::*;

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
    ];
    for (config, key) in cases {
        let err = config.validate().unwrap_err();
        assert_eq!(err.key, key, "{err}");
        assert!(err.to_string().starts_with(&format!("engine.{key}: ")));
    }
}
