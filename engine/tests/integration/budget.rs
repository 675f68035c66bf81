//! `max_pages` bounds what a site sees, not only what succeeds (issue 11):
//! a page of 10,000 links to 404s crawled with `max_pages = 200` costs the
//! site at most 200 requests plus those in flight and its robots.txt.

use std::sync::{Arc, Mutex};

use crate::common::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

const LINKS: usize = 10_000;
const MAX_PAGES: u64 = 200;
const WORKERS: usize = 2;
/// Calls in flight at once (the engine's `worker_count`).
const IN_FLIGHT: usize = 8;

/// A small HTTP/1.1 server on 127.0.0.1:0 that logs every request path:
/// `/` links to `/missing/0` .. `/missing/9999`; everything else is 404.
/// One request per connection (`Connection: close`), which is all this
/// test needs.
async fn start_link_flood() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    let mut page = String::from("<html><body>");
    for i in 0..LINKS {
        page.push_str(&format!("<a href=\"/missing/{i}\">{i}</a>\n"));
    }
    page.push_str("</body></html>");
    let page = Arc::new(page);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let log = seen.clone();
            let page = page.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                // The request head is small; 64 KiB is plenty.
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head);
                let path = text.split_whitespace().nth(1).unwrap_or("").to_owned();
                log.lock().unwrap().push(path.clone());
                let (status, body) = if path == "/" {
                    ("200 OK", page.as_str())
                } else {
                    ("404 Not Found", "not here")
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (format!("http://{addr}/"), log)
}

/// With `max_pages = 200` and a page of 10,000 links to 404s, the site's own
/// log shows at most 200 crawl requests plus the calls in flight when the
/// limit was reached, plus one robots.txt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_pages_bounds_the_requests_a_site_sees() {
    let (url, log) = start_link_flood().await;
    // The demo site is idle: the crawl is of the flood.
    let cluster = Cluster::builder().workers(WORKERS).start().await;
    let mut config = cluster.config();
    config.seeds = vec![url];
    config.parser = "links".into();
    config.max_pages = MAX_PAGES;
    config.worker_count = IN_FLIGHT;
    // A 404 is final, so each link is one request (no retries to count).
    let summary = cluster.run(config).await;

    let seen = log.lock().unwrap().clone();
    let robots = seen.iter().filter(|p| *p == "/robots.txt").count();
    let crawl = seen.len() - robots;
    assert!(robots <= 1, "robots.txt fetched {robots} times");
    assert!(
        crawl as u64 <= MAX_PAGES,
        "the site saw {crawl} crawl requests for max_pages {MAX_PAGES} \
         (in flight at most {IN_FLIGHT} across {WORKERS} workers): {summary}"
    );
    // The budget was used, not merely stopped short: 1 page and 404s.
    assert_eq!(summary.fetches, MAX_PAGES, "{summary}");
    assert_eq!(summary.pages, 1, "{summary}");
    assert_eq!(
        summary.errors.get("http_404").copied(),
        Some(MAX_PAGES - 1),
        "{summary}"
    );
    assert_eq!(summary.stop_reason.as_deref(), Some("page limit reached"));
    assert_eq!(
        crawl as u64, MAX_PAGES,
        "every counted fetch reached the site"
    );
}
