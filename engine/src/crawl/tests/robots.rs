//! robots.txt: a host waits for its file, and what each answer means.

use super::*;
use crate::crawl::outcome::robots_answer;
use crate::scheduler::RobotsAnswer;

/// A 5xx robots.txt makes the host wait (1 s), then the file is fetched
/// again; once it is missing (404) the page goes.
#[tokio::test(start_paused = true)]
async fn robots_5xx_makes_the_host_wait() {
    let s = settings(|c| c.obey_robots = true);
    let mut c = crawl(&s);
    let t0 = Instant::now();
    let id = one(dispatch(&mut c, t0).0);
    c.on_outcome(id, answered(Err(status(503))), t0);
    let (sent, step) = dispatch(&mut c, t0);
    assert!(sent.is_empty());
    assert_eq!(step, Step::Wait(Some(t0 + Duration::from_secs(1))));
    tokio::time::advance(Duration::from_secs(1)).await;
    let (sent, _) = dispatch(&mut c, Instant::now());
    assert_eq!(sent[0].1, "http://a.test/robots.txt", "fetched again");
    c.on_outcome(sent[0].0, answered(Err(status(404))), Instant::now());
    let (sent, _) = dispatch(&mut c, Instant::now());
    assert_eq!(sent[0].1, "http://a.test/");
    assert_eq!(c.summary.fetches, 0, "robots fetches do not count");
}

/// A robots.txt fetch's outcome: the file, missing (4xx but 429,
/// unusable) or unavailable (5xx, 429, a failed call).
#[test]
fn robots_answer_decisions() {
    let ok = CallResult::Answered(Ok(ParseResult::default()));
    assert_eq!(robots_answer(&ok), RobotsAnswer::File(""));
    let r = |e, want| assert_eq!(robots_answer(&CallResult::Answered(Err(e))), want);
    r(status(404), RobotsAnswer::Missing);
    r(status(429), RobotsAnswer::Unavailable);
    r(status(503), RobotsAnswer::Unavailable);
    let too_large = CrawlError::Fetch(FetchError::TooLarge {
        url: "http://a.test/robots.txt".into(),
        limit: 1,
    });
    r(too_large, RobotsAnswer::Missing);
    let failed = CallResult::Failed {
        kind: "rpc_deadline",
        reason: String::new(),
        lost: None,
    };
    assert_eq!(robots_answer(&failed), RobotsAnswer::Unavailable);
}
