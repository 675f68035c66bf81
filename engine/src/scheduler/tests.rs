//! The scheduler's interface: dedup, scope, depth, host limits, robots
//! gate and delayed retries, seen from outside.

use std::time::Duration;

use tokio::time::Instant;

use super::testing::{open, req, take};
use super::*;

/// A scheduler for any domain, with a depth limit and `politeness`.
fn scheduler(max_depth: Option<u32>, politeness: Politeness) -> Scheduler {
    let scope = Scope::new(vec!["*".into()], vec![], vec![], vec![]);
    Scheduler::new(max_depth, scope, politeness)
}

/// At most `concurrency` requests per host in flight, starting `delay`
/// apart.
fn spaced(concurrency: u32, delay: Duration) -> Politeness {
    Politeness {
        default: HostLimits { concurrency, delay },
        ..Politeness::default()
    }
}

fn obeying_robots() -> Politeness {
    Politeness {
        obey_robots: true,
        ..Politeness::default()
    }
}

/// The dashboard's hosts table: busiest first, cut at the limit, with
/// the total count of hosts.
#[test]
fn busiest_hosts_first() {
    let mut s = open();
    for (host, n) in [("a.test", 1), ("b.test", 5), ("c.test", 3)] {
        for i in 0..n {
            s.enqueue(req(&format!("http://{host}/{i}"), 0)).unwrap();
        }
    }
    let (total, rows) = s.busiest_hosts(2, Instant::now());
    assert_eq!(total, 3);
    let names: Vec<(&str, usize)> = rows.iter().map(|r| (r.host.as_str(), r.queued)).collect();
    assert_eq!(names, [("b.test", 5), ("c.test", 3)]);
}

/// A link already in normal form that was seen is a duplicate before
/// any parsing; one in another form is normalized, then found.
#[test]
fn seen_links_are_duplicates_in_any_form() {
    let mut s = Scheduler::default();
    s.enqueue(req("http://a.test/x", 0)).unwrap();
    assert_eq!(
        s.enqueue(req("http://a.test/x", 1)),
        Err(Dropped::Duplicate)
    );
    assert_eq!(
        s.enqueue(req("HTTP://A.test:80/x#top", 1)),
        Err(Dropped::Duplicate)
    );
    assert_eq!(s.len(), 1);
}

/// Equivalent spellings of one URL are crawled once.
#[test]
fn dedups_normalized_urls() {
    let mut s = open();
    assert_eq!(
        s.enqueue(req("http://Example.COM:80/a/./b/../c#frag", 0)),
        Ok(())
    );
    assert_eq!(
        s.enqueue(req("http://example.com/a/c", 1)),
        Err(Dropped::Duplicate)
    );
    assert_eq!(
        s.enqueue(req("http://example.com/a/c#other", 1)),
        Err(Dropped::Duplicate)
    );
    assert_eq!(s.enqueue(req("https://example.com/a/c", 1)), Ok(()));
    assert_eq!(s.len(), 2);
    assert_eq!(
        take(&mut s, Instant::now()).request.url,
        "http://example.com/a/c"
    );
}

/// Requests deeper than the limit are dropped; the limit itself is allowed.
#[test]
fn depth_limit() {
    let mut s = scheduler(Some(2), Politeness::default());
    assert_eq!(s.enqueue(req("http://h/1", 2)), Ok(()));
    assert_eq!(s.enqueue(req("http://h/2", 3)), Err(Dropped::TooDeep));
}

/// Non-http(s), relative and out-of-domain URLs never reach a worker.
#[test]
fn rejects_out_of_scope() {
    let mut s = Scheduler::new(
        None,
        Scope::new(vec!["h".into()], vec![], vec![], vec![]),
        Politeness::default(),
    );
    for bad in [
        "mailto:a@b",
        "javascript:void(0)",
        "/relative",
        "ftp://h/x",
        "",
    ] {
        assert_eq!(
            s.enqueue(req(bad, 0)),
            Err(Dropped::OutOfScope(OutOfScope::BadUrl)),
            "{bad}"
        );
    }
    assert_eq!(
        s.enqueue(req("http://other/x", 0)),
        Err(Dropped::OutOfScope(OutOfScope::Domain))
    );
}

/// A rejected link repeated on many pages gets the same answer each time
/// (remembered, not normalized again), with its kind kept for the counts;
/// a link of another kind in the same slot's place is not mistaken for it.
#[test]
fn repeated_rejections_keep_their_kind() {
    let mut s = Scheduler::new(
        None,
        Scope::new(
            vec!["h".into()],
            vec![],
            vec![regex::Regex::new("/private").unwrap()],
            vec![],
        ),
        Politeness::default(),
    );
    for _ in 0..3 {
        assert_eq!(
            s.enqueue(req("http://other/x", 0)),
            Err(Dropped::OutOfScope(OutOfScope::Domain))
        );
        assert_eq!(
            s.enqueue(req("http://h/private", 0)),
            Err(Dropped::OutOfScope(OutOfScope::Pattern))
        );
        assert_eq!(
            s.enqueue(req("mailto:a@b", 0)),
            Err(Dropped::OutOfScope(OutOfScope::BadUrl))
        );
    }
    assert_eq!(s.enqueue(req("http://h/public", 0)), Ok(()));
    assert_eq!(
        s.enqueue(req("http://h/public", 0)),
        Err(Dropped::Duplicate)
    );
}

/// A seen page's link with a fragment is a duplicate; an unseen page's
/// link with one is queued once, without it.
#[test]
fn fragments_of_seen_pages_are_duplicates() {
    let mut s = scheduler(None, Politeness::default());
    assert_eq!(s.enqueue(req("http://h/a", 0)), Ok(()));
    assert_eq!(s.enqueue(req("http://h/a#x", 0)), Err(Dropped::Duplicate));
    assert_eq!(s.enqueue(req("http://h/a#", 0)), Err(Dropped::Duplicate));
    assert_eq!(s.enqueue(req("http://h/b#y", 0)), Ok(()));
    assert_eq!(s.enqueue(req("http://h/b", 0)), Err(Dropped::Duplicate));
    assert_eq!(s.enqueue(req("http://h/b#z", 0)), Err(Dropped::Duplicate));
    let now = Instant::now();
    assert_eq!(take(&mut s, now).request.url, "http://h/a");
    assert_eq!(take(&mut s, now).request.url, "http://h/b");
}

/// A host never has more than `concurrency` requests in flight, and
/// its requests start at least `delay` apart, while another host is
/// served in between.
#[test]
fn per_host_limits_hold() {
    let mut s = scheduler(None, spaced(2, Duration::from_millis(100)));
    for i in 0..5 {
        s.enqueue(req(&format!("http://a/{i}"), 0)).unwrap();
        s.enqueue(req(&format!("http://b/{i}"), 0)).unwrap();
    }
    let t0 = Instant::now();
    let a0 = take(&mut s, t0);
    let b0 = take(&mut s, t0);
    assert!(a0.request.url.starts_with("http://a/") && b0.request.url.starts_with("http://b/"));
    // Both hosts wait out their delay.
    assert_eq!(
        s.next(t0),
        Next::Wait(Some(t0 + Duration::from_millis(100)))
    );
    let t1 = t0 + Duration::from_millis(100);
    let a1 = take(&mut s, t1);
    let _b1 = take(&mut s, t1);
    // Two in flight per host: nothing more until one finishes.
    let t2 = t1 + Duration::from_millis(100);
    assert_eq!(s.next(t2), Next::Wait(None));
    s.done(&a1, Duration::from_millis(5), false);
    assert!(take(&mut s, t2).request.url.starts_with("http://a/"));
    assert_eq!(s.next(t2), Next::Wait(None));
}

/// Issue 16: requests a rendered page made to a host outside the frontier
/// push that host's next start back by one delay each; an unknown host is
/// not charged, and a host without a delay is not held up.
#[test]
fn subrequests_are_charged_to_their_host() {
    let mut s = scheduler(None, spaced(4, Duration::from_millis(100)));
    for i in 0..3 {
        s.enqueue(req(&format!("http://a/{i}"), 0)).unwrap();
    }
    let t0 = Instant::now();
    take(&mut s, t0);
    // The page's scripts and JSON: three more requests to `a`.
    s.charge("A", 3, t0 + Duration::from_millis(10));
    s.charge("never-queued", 50, t0);
    assert_eq!(
        s.next(t0 + Duration::from_millis(100)),
        Next::Wait(Some(t0 + Duration::from_millis(400))),
        "one delay for the page, three for what it fetched"
    );
    take(&mut s, t0 + Duration::from_millis(400));
    // Whatever count a worker reports, charging it cannot panic.
    s.charge("a", u32::MAX, t0);

    let mut free = open();
    free.enqueue(req("http://c/1", 0)).unwrap();
    free.enqueue(req("http://c/2", 0)).unwrap();
    let t1 = Instant::now();
    take(&mut free, t1);
    free.charge("c", 10, t1);
    take(&mut free, t1);
}

/// robots.txt is fetched first, once per host; disallowed URLs are
/// skipped and counted; Crawl-delay raises the host delay.
#[test]
fn robots_gate_the_host() {
    let mut s = scheduler(None, obeying_robots());
    s.enqueue(req("http://h:8080/private/1", 0)).unwrap();
    s.enqueue(req("http://h:8080/public/1", 0)).unwrap();
    s.enqueue(req("http://h:8080/public/2", 0)).unwrap();
    let t0 = Instant::now();
    let robots = take(&mut s, t0);
    assert!(robots.robots);
    assert_eq!(robots.request.url, "http://h:8080/robots.txt");
    assert_eq!(
        s.next(t0),
        Next::Wait(None),
        "the host waits for its robots.txt"
    );
    s.done(&robots, Duration::ZERO, false);
    s.robots_answer(
        &robots,
        RobotsAnswer::File("User-agent: *\nDisallow: /private\nCrawl-delay: 1\n"),
        t0,
    );
    // The robots fetch counts as a request: the delay runs from it.
    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(s.next(t0), Next::Wait(Some(t1)));
    let first = take(&mut s, t1);
    assert_eq!(first.request.url, "http://h:8080/public/1");
    assert_eq!(s.take_counts().robots_disallowed, 1);
    assert_eq!(s.next(t1), Next::Wait(Some(t1 + Duration::from_secs(1))));
}

/// An unavailable robots.txt delays the host and is fetched again; a
/// missing one allows all.
#[test]
fn robots_unavailable_then_missing() {
    let mut s = scheduler(None, obeying_robots());
    s.enqueue(req("http://h/a", 0)).unwrap();
    let t0 = Instant::now();
    let robots = take(&mut s, t0);
    s.done(&robots, Duration::ZERO, false);
    s.robots_answer(&robots, RobotsAnswer::Unavailable, t0);
    assert_eq!(s.next(t0), Next::Wait(Some(t0 + Duration::from_secs(1))));
    let t1 = t0 + Duration::from_secs(1);
    let again = take(&mut s, t1);
    assert!(again.robots);
    s.done(&again, Duration::ZERO, false);
    s.robots_answer(&again, RobotsAnswer::Missing, t1);
    assert_eq!(take(&mut s, t1).request.url, "http://h/a");
    assert_eq!(s.next(t1), Next::Idle);
}

/// A task retried later waits out its time, then goes first.
#[test]
fn delayed_retry() {
    let mut s = open();
    s.enqueue(req("http://h/a", 0)).unwrap();
    let t0 = Instant::now();
    let mut t = take(&mut s, t0);
    s.done(&t, Duration::ZERO, false);
    t.retries += 1;
    s.retry(t.clone(), Some(t0 + Duration::from_secs(2)));
    assert_eq!(s.next(t0), Next::Wait(Some(t0 + Duration::from_secs(2))));
    assert_eq!(take(&mut s, t0 + Duration::from_secs(2)), t);
    assert!(s.is_idle());
}

/// A finished call feeds the adaptive throttle, a robots fetch does not.
#[test]
fn done_feeds_the_throttle() {
    let p = Politeness {
        autothrottle: true,
        obey_robots: true,
        ..Politeness::default()
    };
    let mut s = scheduler(None, p);
    s.enqueue(req("http://h/a", 0)).unwrap();
    let now = Instant::now();
    let robots = take(&mut s, now);
    s.done(&robots, Duration::from_millis(10), true);
    assert_eq!(
        s.hosts["h"].delay,
        Duration::ZERO,
        "robots fetches do not throttle"
    );
    s.robots_answer(&robots, RobotsAnswer::Missing, now);
    let page = take(&mut s, now);
    s.done(&page, Duration::from_millis(10), true);
    assert_eq!(s.hosts["h"].delay, Duration::from_millis(250));
}

/// The sitemaps a robots.txt names come back as depth-0 requests for the
/// sitemap parser when they are followed, and not at all otherwise.
#[test]
fn robots_sitemaps_come_back_as_requests() {
    let pages = ParserSpec::named("profile");
    let file =
        "User-agent: *\nSitemap: http://h/sitemap_index.xml\nSitemap: http://h/sitemap.txt\n";
    for follow in [true, false] {
        let p = Politeness {
            obey_robots: true,
            sitemaps: follow.then(|| ParserSpec::sitemap(&pages)),
            ..Politeness::default()
        };
        let mut s = scheduler(Some(1), p);
        s.enqueue(req("http://h/", 0)).unwrap();
        let t0 = Instant::now();
        let robots = take(&mut s, t0);
        s.done(&robots, Duration::ZERO, false);
        let sitemaps = s.robots_answer(&robots, RobotsAnswer::File(file), t0);
        if !follow {
            assert!(sitemaps.is_empty());
            continue;
        }
        let urls: Vec<&str> = sitemaps.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(urls, ["http://h/sitemap_index.xml", "http://h/sitemap.txt"]);
        assert!(sitemaps.iter().all(|r| r.depth == 0));
        assert_eq!(sitemaps[0].parser.sitemap_pages(), Some(pages.clone()));
    }
}
