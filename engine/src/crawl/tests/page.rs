//! What pages say about themselves (page.rs) and render routing
//! (routing.rs), through the machine: canonical URLs, sitemap depth,
//! rendering learnt per host and parser.

use super::*;

/// A page with a canonical URL crawled already is dropped (items and
/// links); one whose canonical is new stores its items under it and the
/// canonical is not fetched.
#[tokio::test(start_paused = true)]
async fn canonical_pages_through_the_machine() {
    let s = settings(|c| c.max_depth = 1);
    let mut c = crawl(&s);
    let now = Instant::now();
    let item = |url: &str| Item {
        url: url.into(),
        kind: "profile".into(),
        id: None,
        payload: Default::default(),
    };
    let id = one(dispatch(&mut c, now).0);
    c.on_outcome(
        id,
        page(&[
            "http://a.test/p/1",
            "http://a.test/p/2/print",
            "http://a.test/p/1/print",
        ]),
        now,
    );
    let (sent, _) = dispatch(&mut c, now);
    assert_eq!(sent.len(), 3);
    let answer = |canonical: &str, url: &str| {
        answered(Ok(ParseResult {
            items: vec![item(url)],
            requests: vec![Request::new(
                "http://a.test/deeper",
                ParserSpec::named("p"),
                2,
            )],
            page: rpcsupport::PageMeta {
                canonical: Some(canonical.into()),
                ..Default::default()
            },
            ..ParseResult::default()
        }))
    };
    let by_url = |u: &str| sent.iter().find(|(_, s)| s == u).unwrap().0;
    // p/1 is queued-then-in-flight: its print copy is a duplicate.
    let dup = c.on_outcome(
        by_url("http://a.test/p/1/print"),
        answer("http://a.test/p/1", "http://a.test/p/1/print"),
        now,
    );
    assert_eq!(dup, Some(vec![]));
    assert_eq!(c.summary.page.canonical_duplicates, 1);
    let items = c
        .on_outcome(
            by_url("http://a.test/p/2/print"),
            answer("http://a.test/p/2", "http://a.test/p/2/print"),
            now,
        )
        .unwrap();
    assert_eq!(
        items[0].url, "http://a.test/p/2",
        "stored under its canonical"
    );
    assert_eq!(c.summary.page.canonical_rewritten, 1);
    let metrics = c.registry.render();
    for line in [
        r#"crawler_canonical_total{outcome="duplicate"} 1"#,
        r#"crawler_canonical_total{outcome="rewritten"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    c.on_outcome(
        by_url("http://a.test/p/1"),
        page(&["http://a.test/p/2"]),
        now,
    );
    assert_eq!(c.summary.duplicates, 1, "p/2 was claimed by its print copy");
    assert_eq!(c.summary.too_deep, 1, "the print copy's deeper link");
}

/// A sitemap's entries get the sitemap's depth: listed by a sitemap at
/// `max_depth`, they are not too deep.
#[tokio::test(start_paused = true)]
async fn sitemap_entries_keep_the_sitemap_depth() {
    let s = settings(|c| c.max_depth = 1);
    let mut c = crawl(&s);
    let now = Instant::now();
    let seed = one(dispatch(&mut c, now).0);
    c.on_outcome(seed, page(&[]), now);
    // A sitemap at depth 1 lists pages: they get depth 1 too, not 2.
    c.enqueue(Request::new(
        "http://a.test/sitemap.xml",
        ParserSpec::sitemap(&ParserSpec::named("p")),
        1,
    ));
    let id = one(dispatch(&mut c, now).0);
    let listed = answered(Ok(ParseResult {
        requests: vec![Request::new(
            "http://a.test/listed",
            ParserSpec::named("p"),
            2,
        )],
        ..ParseResult::default()
    }));
    c.on_outcome(id, listed, now);
    assert_eq!(c.summary.page.sitemaps, 1);
    let (sent, _) = dispatch(&mut c, now);
    assert_eq!(sent.len(), 1, "the listed page is not too deep");
    assert_eq!(sent[0].1, "http://a.test/listed");
}

/// Once `auto` had to render a page, later requests of that host and
/// parser are sent with `render = always`; an `Unavailable` answer sends
/// the request again without an attempt; a render request no worker took
/// fails as `no_render_worker` without counting a fetch.
#[tokio::test(start_paused = true)]
async fn render_learning_and_outcomes_through_the_machine() {
    let s = settings(|c| c.max_attempts = 1);
    let mut c = crawl(&s);
    let now = Instant::now();
    let mut sent: Vec<(CallId, Request)> = Vec::new();
    c.dispatch(now, |id, r: &Request| sent.push((id, r.clone())));
    let (id, _) = sent.pop().unwrap();
    let shell = answered(Ok(ParseResult {
        requests: vec![
            Request::new("http://a.test/2", ParserSpec::named("city_list"), 1),
            Request::new("http://a.test/3", ParserSpec::named("city_list"), 1),
            Request::new("http://a.test/4", ParserSpec::named("other"), 1),
        ],
        page: rpcsupport::PageMeta {
            rendered: Some(rpcsupport::RenderReason::ScriptShell),
            ..Default::default()
        },
        ..ParseResult::default()
    }));
    c.on_outcome(id, shell, now);
    assert_eq!(c.summary.page.rendered.get("script_shell"), Some(&1));
    c.dispatch(now, |id, r: &Request| sent.push((id, r.clone())));
    let hint = |u: &str| {
        sent.iter()
            .find(|(_, r)| r.url == u)
            .map(|(_, r)| r.hints.render)
            .unwrap()
    };
    assert_eq!(hint("http://a.test/2"), Some(rpcsupport::Render::Always));
    assert_eq!(hint("http://a.test/3"), Some(rpcsupport::Render::Always));
    assert_eq!(
        hint("http://a.test/4"),
        None,
        "another parser learnt nothing"
    );

    let unavailable = CrawlError::Render(rpcsupport::RenderError::Unavailable {
        reason: "no browser".into(),
    });
    let (id2, _) = sent
        .iter()
        .find(|(_, r)| r.url == "http://a.test/2")
        .unwrap();
    c.on_outcome(*id2, answered(Err(unavailable)), now);
    assert!(
        c.summary.errors.is_empty(),
        "no attempt used: {:?}",
        c.summary.errors
    );
    assert_eq!(c.summary.page.render_requeued, 1);
    let fetches = c.summary.fetches;
    let (id3, _) = sent
        .iter()
        .find(|(_, r)| r.url == "http://a.test/3")
        .unwrap();
    let none = Some(Outcome {
        worker: 0,
        result: CallResult::NoRenderWorker {
            waited: Duration::from_secs(1),
        },
    });
    c.on_outcome(*id3, none, now);
    assert_eq!(c.summary.errors.get("no_render_worker"), Some(&1));
    assert_eq!(c.summary.fetches, fetches, "nothing was sent");
    let mut again = Vec::new();
    c.dispatch(now, |_, r: &Request| again.push(r.url.clone()));
    assert_eq!(again, ["http://a.test/2"], "the refused request goes again");
}
