//! `worker check-rules` and `worker try-rules` (issue 6; moved from the
//! engine in issue 12): the rule-writing tools, run as a user runs them.

use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use demosite::{Site, SiteConfig};
use tokio::net::TcpListener;

const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/demosite.rules.toml"
);

fn worker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_worker"))
        .args(args)
        // Run where no config.toml exists, so only the arguments count.
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .output()
        .expect("worker runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `check-rules` compiles a file, selectors included, and describes it; a
/// bad selector or regex is an error naming the parser and key.
#[test]
fn check_rules_describes_or_rejects() {
    let out = worker(&["check-rules", RULES]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ok, 3 parsers") && text.contains("item profile (10 fields)"),
        "{text}"
    );

    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[parsers.p.item]\nkind = \"k\"\nfields.age = { select = \"td\", regex = \"(\" }\n",
            "parser \"p\", item.fields.age.regex: bad regex",
        ),
        (
            "[parsers.p]\nfollow = [{ select = \"a[\", parser = \"p\" }]\n",
            "parser \"p\", follow[0].select: bad CSS selector",
        ),
        (
            "[parsers.p]\nfollow = [{ parser = \"no_such_builtin\" }]\n",
            "unknown parser \"no_such_builtin\"",
        ),
    ];
    for (i, (rules, needle)) in cases.into_iter().enumerate() {
        let bad = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&bad, rules).unwrap();
        let out = worker(&["check-rules", bad.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{rules}");
        assert!(stderr(&out).contains(needle), "{rules}: {}", stderr(&out));
    }
}

/// `try-rules` on a saved page prints the links and the item.
#[test]
fn try_rules_on_a_local_file() {
    let page = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/profile.html");
    let base = "http://127.0.0.1:8080/profile/5";
    let out = worker(&[
        "try-rules",
        RULES,
        page,
        "--parser",
        "profile_page",
        "--base",
        base,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("http://127.0.0.1:8080/profile/734 -> profile_page"),
        "{text}"
    );
    assert!(text.contains("\"kind\": \"profile\""), "{text}");
    assert!(text.contains("\"age\": "), "{text}");
}

/// `try-rules` fetches a live page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_rules_on_a_url() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let site = Arc::new(Site::new(SiteConfig {
        profiles: 20,
        ..SiteConfig::default()
    }));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(demosite::serve_site(listener, site.clone(), async move {
        let _ = stopped.await;
    }));
    let profile = format!("http://{addr}/profile/7");
    let out = tokio::task::spawn_blocking(move || {
        worker(&["try-rules", RULES, &profile, "--parser", "profile_page"])
    })
    .await
    .unwrap();
    let _ = stop.send(());
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let name = site.profile(7).unwrap().name;
    assert!(text.contains(&format!("\"name\": \"{name}\"")), "{text}");
}
