//! Crawling the open web, worker side (issue 13): conditional fetches,
//! what pages ask of crawlers, canonical URLs and sitemaps, through a real
//! worker over tarpc and a small site of the test's own on 127.0.0.1:0.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::common::{policy, request, serve_worker};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use rpcsupport::{CrawlClient, FetchHints, FetchPolicy, ParseResult, ParserSpec, Request};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use worker::WorkerConfig;

const ETAG: &str = "\"v1\"";
const LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";
const PROFILE: &str = include_str!("../data/profile.html");

/// One request the site saw: path and the conditional headers it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    path: String,
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// The site, its request log, and the servers' stop handles.
struct Setup {
    base: String,
    log: Log,
    client: CrawlClient,
    _stops: Vec<oneshot::Sender<()>>,
}

impl Setup {
    /// The test's own site and a worker with `config`.
    async fn start(config: WorkerConfig) -> Setup {
        let log = Log::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = Router::new()
            .fallback(site)
            .with_state((log.clone(), base.clone()));
        Setup::serve(listener, router, log, config).await
    }

    /// The demo site with its open-web routes on, and a worker with
    /// `config`.
    async fn demosite(config: WorkerConfig) -> (Setup, Arc<demosite::RequestLog>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let options = demosite::SiteOptions {
            open_web: true,
            sitemap_only: 3,
            ..demosite::SiteOptions::default()
        };
        let site = demosite::Site::new(demosite::SiteConfig::default());
        let (router, log) = demosite::router_with(Arc::new(site), options);
        let setup = Setup::serve(listener, router, Log::default(), config).await;
        (setup, log)
    }

    /// Serves `router` on `listener` and starts a worker with `config`.
    async fn serve(listener: TcpListener, router: Router, log: Log, config: WorkerConfig) -> Setup {
        let mut stops = Vec::new();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        stops.push(tx);
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
        });

        let (client, _worker, stop) = serve_worker(&WorkerConfig {
            allow_internal: vec!["127.0.0.1".into()],
            ..config
        })
        .await;
        stops.push(stop);
        Setup {
            base,
            log,
            client,
            _stops: stops,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Processes `request` under a policy obeying robots meta and
    /// nofollow as `obey` says.
    async fn call(&self, request: Request, obey: bool) -> ParseResult {
        self.client
            .process(
                tarpc::context::current(),
                request.into(),
                FetchPolicy {
                    obey_robots_meta: obey,
                    obey_nofollow: obey,
                    ..policy(&["127.0.0.1"])
                }
                .into(),
            )
            .await
            .expect("RPC itself succeeds")
            .expect("the page is processed")
    }

    /// The conditional headers of the requests for `path`.
    fn seen(&self, path: &str) -> Vec<Seen> {
        let log = self.log.lock().unwrap();
        log.iter().filter(|s| s.path == path).cloned().collect()
    }
}

fn answer(status: StatusCode, headers: &[(&str, &str)], body: impl Into<Body>) -> Response {
    let mut r = Response::builder().status(status);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(body.into()).unwrap()
}

fn html(body: String) -> Response {
    answer(
        StatusCode::OK,
        &[("content-type", "text/html; charset=utf-8")],
        body,
    )
}

/// The profile fixture with `extra` in its head.
fn profile_with(extra: &str) -> String {
    PROFILE.replacen("<head>", &format!("<head>{extra}"), 1)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn urlset(base: &str, paths: &[&str]) -> String {
    let mut xml = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">"#,
    );
    for p in paths {
        xml.push_str(&format!(
            "<url><loc>{base}{p}</loc><lastmod>2024-01-02</lastmod></url>"
        ));
    }
    xml.push_str("</urlset>");
    xml
}

async fn site(State((log, base)): State<(Log, String)>, uri: Uri, headers: HeaderMap) -> Response {
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (inm, ims) = (text(header::IF_NONE_MATCH), text(header::IF_MODIFIED_SINCE));
    log.lock().unwrap().push(Seen {
        path: uri.path().to_owned(),
        if_none_match: inm.clone(),
        if_modified_since: ims.clone(),
    });
    let links = r#"<a href="/a">a</a><a href="/b">b</a>"#;
    match uri.path() {
        // Validators, and 304 when they match (If-None-Match first, as the
        // HTTP spec has it).
        "/etag" => {
            let fresh = match &inm {
                Some(tag) => tag == ETAG,
                None => ims.as_deref() == Some(LAST_MODIFIED),
            };
            if fresh {
                return answer(
                    StatusCode::NOT_MODIFIED,
                    &[("etag", ETAG), ("last-modified", LAST_MODIFIED)],
                    Body::empty(),
                );
            }
            answer(
                StatusCode::OK,
                &[
                    ("content-type", "text/html"),
                    ("etag", ETAG),
                    ("last-modified", LAST_MODIFIED),
                ],
                links,
            )
        }
        // A 304 that sends no validators back.
        "/bare304" if inm.is_some() => answer(StatusCode::NOT_MODIFIED, &[], Body::empty()),
        "/bare304" => answer(
            StatusCode::OK,
            &[("content-type", "text/html"), ("etag", "\"b\"")],
            links,
        ),
        "/moved" => answer(StatusCode::MOVED_PERMANENTLY, &[("location", "/etag")], ""),
        // No validators at all; the body never changes.
        "/same" => html(format!("<p>same</p>{links}")),
        "/meta/noindex" => html(profile_with(r#"<meta name="robots" content="noindex">"#)),
        "/meta/nofollow" => html(profile_with(r#"<meta name="ROBOTS" content="nofollow">"#)),
        "/meta/agent" => html(profile_with(r#"<meta name="crawler" content="none">"#)),
        "/meta/otherbot" => html(profile_with(r#"<meta name="otherbot" content="none">"#)),
        "/meta/header" => answer(
            StatusCode::OK,
            &[
                ("content-type", "text/html"),
                ("x-robots-tag", "noindex, nofollow"),
            ],
            PROFILE,
        ),
        "/meta/header-other" => answer(
            StatusCode::OK,
            &[
                ("content-type", "text/html"),
                ("x-robots-tag", "otherbot: none"),
            ],
            PROFILE,
        ),
        "/meta/links" => html(
            r#"<a href="/unreached/1" rel="nofollow">1</a>
               <a href="/unreached/2" rel="ugc nofollow">2</a>
               <a href="/followed/1">3</a><a href="/followed/2" rel="noopener">4</a>"#
                .into(),
        ),
        "/profile/7/print" => html(profile_with(r#"<link rel="canonical" href="/profile/7">"#)),
        "/profile/7" => html(profile_with(&format!(
            r#"<link rel="canonical" href="{base}/profile/7">"#
        ))),
        "/header-canonical" => answer(
            StatusCode::OK,
            &[
                ("content-type", "text/html"),
                ("link", "</profile/7>; rel=\"canonical\""),
            ],
            PROFILE,
        ),
        "/sitemap_index.xml" => answer(
            StatusCode::OK,
            &[("content-type", "text/xml")],
            format!(
                "<sitemapindex><sitemap><loc>{base}/sitemaps/a.xml.gz</loc></sitemap>\
                 <sitemap><loc>{base}/sitemap.txt</loc></sitemap></sitemapindex>"
            ),
        ),
        "/sitemaps/a.xml.gz" => answer(
            StatusCode::OK,
            &[("content-type", "application/gzip")],
            gzip(urlset(&base, &["/profile/1", "/profile/2"]).as_bytes()),
        ),
        // Gzip as a transfer encoding, which the HTTP client undoes.
        "/sitemaps/encoded.xml" => answer(
            StatusCode::OK,
            &[
                ("content-type", "application/xml"),
                ("content-encoding", "gzip"),
            ],
            gzip(urlset(&base, &["/profile/3"]).as_bytes()),
        ),
        "/sitemap.txt" => answer(
            StatusCode::OK,
            &[("content-type", "text/plain")],
            format!("{base}/profile/8\n{base}/profile/9\n"),
        ),
        // 200 entries, about 14 KB: more than the small workers' body cap.
        "/sitemaps/big.xml" => {
            let paths: Vec<String> = (0..200).map(|i| format!("/p/{i:04}")).collect();
            let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
            answer(
                StatusCode::OK,
                &[("content-type", "application/xml")],
                urlset(&base, &refs),
            )
        }
        // 64 MiB of zeros in 64 gzip members of about 1 KiB each.
        "/sitemaps/bomb.xml.gz" => {
            static BOMB: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                e.write_all(&vec![0u8; 1 << 20]).unwrap();
                e.finish().unwrap().repeat(64)
            });
            answer(
                StatusCode::OK,
                &[("content-type", "application/gzip")],
                BOMB.clone(),
            )
        }
        _ => answer(StatusCode::NOT_FOUND, &[], "not found"),
    }
}

fn sitemap(url: String) -> Request {
    Request::new(url, ParserSpec::sitemap(&ParserSpec::named("profile")), 0)
}

/// A page's validators come back on a 200; sent back, they are the
/// request's If-None-Match / If-Modified-Since, and the 304 is answered
/// as unchanged with nothing parsed, also through a redirect.
#[tokio::test]
async fn validators_and_304() {
    let s = Setup::start(WorkerConfig::default()).await;
    let first = s.call(request(s.url("/etag"), "links"), false).await;
    assert_eq!(first.page.status, 200);
    assert!(!first.page.unchanged);
    assert_eq!(first.page.etag.as_deref(), Some(ETAG));
    assert_eq!(first.page.last_modified.as_deref(), Some(LAST_MODIFIED));
    assert!(first.page.content_hash.is_some());
    assert_eq!(first.requests.len(), 2);

    let mut again = request(s.url("/etag"), "links");
    again.hints = FetchHints {
        etag: first.page.etag.clone(),
        last_modified: first.page.last_modified.clone(),
        ..FetchHints::default()
    };
    let second = s.call(again.clone(), false).await;
    assert_eq!(second.page.status, 304);
    assert!(second.page.unchanged);
    assert_eq!(second.page.etag.as_deref(), Some(ETAG));
    assert_eq!(second.page.last_modified.as_deref(), Some(LAST_MODIFIED));
    assert_eq!(second.page.content_hash, None);
    assert!(second.requests.is_empty() && second.items.is_empty());
    let seen = s.seen("/etag");
    assert_eq!(seen[0].if_none_match, None);
    assert_eq!(seen[1].if_none_match.as_deref(), Some(ETAG));
    assert_eq!(seen[1].if_modified_since.as_deref(), Some(LAST_MODIFIED));

    // Last-Modified alone works too.
    let mut by_date = request(s.url("/etag"), "links");
    by_date.hints.last_modified = Some(LAST_MODIFIED.into());
    assert!(s.call(by_date, false).await.page.unchanged);
    assert_eq!(s.seen("/etag")[2].if_none_match, None);

    // Through a redirect: the validators are the final URL's.
    let moved = Request {
        url: s.url("/moved"),
        ..again
    };
    let third = s.call(moved, false).await;
    assert_eq!((third.page.status, third.page.unchanged), (304, true));
    assert_eq!(s.seen("/etag")[3].if_none_match.as_deref(), Some(ETAG));

    // A 304 without validators keeps the hinted ones.
    let mut bare = request(s.url("/bare304"), "links");
    bare.hints.etag = Some("\"b\"".into());
    let fourth = s.call(bare, false).await;
    assert!(fourth.page.unchanged);
    assert_eq!(fourth.page.etag.as_deref(), Some("\"b\""));
}

/// A page without validators whose body hashes as last time is answered
/// unchanged (status 200, nothing parsed); another hash is parsed.
#[tokio::test]
async fn same_body_by_hash() {
    let s = Setup::start(WorkerConfig::default()).await;
    let first = s.call(request(s.url("/same"), "links"), false).await;
    let hash = first.page.content_hash.expect("a 200 has a hash");
    assert_eq!(
        hash,
        rpcsupport::content_hash(b"<p>same</p><a href=\"/a\">a</a><a href=\"/b\">b</a>")
    );
    let mut again = request(s.url("/same"), "links");
    again.hints.content_hash = Some(hash);
    let second = s.call(again.clone(), false).await;
    assert_eq!((second.page.status, second.page.unchanged), (200, true));
    assert_eq!(second.page.content_hash, Some(hash));
    assert!(second.requests.is_empty());
    again.hints.content_hash = Some(hash ^ 1);
    let third = s.call(again, false).await;
    assert!(!third.page.unchanged);
    assert_eq!(third.requests.len(), 2);
}

/// Robots meta tags and X-Robots-Tag are reported always and obeyed only
/// when the policy says so: noindex drops the item (counted), nofollow the
/// links; another crawler's directives are ignored, ours by name obeyed.
#[tokio::test]
async fn robots_meta_and_header() {
    let s = Setup::start(WorkerConfig::default()).await;
    let plain = s
        .call(request(s.url("/meta/otherbot"), "profile"), true)
        .await;
    assert!(!plain.page.noindex && !plain.page.nofollow);
    assert_eq!(plain.items.len(), 1);
    let links = plain.requests.len();
    assert!(links > 0);

    for (path, noindex, nofollow) in [
        ("/meta/noindex", true, false),
        ("/meta/nofollow", false, true),
        ("/meta/agent", true, true),
        ("/meta/header", true, true),
        ("/meta/header-other", false, false),
    ] {
        let off = s.call(request(s.url(path), "profile"), false).await;
        assert_eq!(
            (off.page.noindex, off.page.nofollow),
            (noindex, nofollow),
            "{path}"
        );
        assert_eq!((off.items.len(), off.requests.len()), (1, links), "{path}");
        assert_eq!(off.page.noindex_items, 0);

        let on = s.call(request(s.url(path), "profile"), true).await;
        assert_eq!(
            (on.page.noindex, on.page.nofollow),
            (noindex, nofollow),
            "{path}"
        );
        assert_eq!(on.items.len(), usize::from(!noindex), "{path}");
        assert_eq!(on.page.noindex_items, u64::from(noindex), "{path}");
        assert_eq!(
            on.requests.len(),
            if nofollow { 0 } else { links },
            "{path}"
        );
    }
}

/// `rel="nofollow"` links (`ugc nofollow` too) are skipped and counted
/// when the policy obeys them, by the built-in `links` parser and by a
/// rule's `follow` alike.
#[tokio::test]
async fn rel_nofollow_links() {
    let s = Setup::start(WorkerConfig::default()).await;
    let off = s.call(request(s.url("/meta/links"), "links"), false).await;
    assert_eq!(off.requests.len(), 4);
    assert_eq!(off.page.nofollow_links, 0);
    let on = s.call(request(s.url("/meta/links"), "links"), true).await;
    let urls: Vec<_> = on.requests.iter().map(|r| r.url.clone()).collect();
    assert_eq!(urls, [s.url("/followed/1"), s.url("/followed/2")]);
    assert_eq!(on.page.nofollow_links, 2);

    let rules = rpcsupport::rules::parse_file(
        r#"
        start = "page"
        [parsers.page]
        follow = [{ select = "a", parser = "links" }]
        "#,
    )
    .unwrap();
    let checked =
        rpcsupport::rules::Rules::check(rules, rpcsupport::rules::Builtins::Unchecked).unwrap();
    let id = s
        .client
        .load_rules(tarpc::context::current(), checked.to_json())
        .await
        .unwrap()
        .unwrap();
    let mut spec = ParserSpec::named("page");
    spec.args.insert(rpcsupport::rules::RULESET_ARG.into(), id);
    let ruled = s
        .call(Request::new(s.url("/meta/links"), spec.clone(), 0), true)
        .await;
    assert_eq!(ruled.requests.len(), 2);
    assert_eq!(ruled.page.nofollow_links, 2);
    let ruled = s
        .call(Request::new(s.url("/meta/links"), spec, 0), false)
        .await;
    assert_eq!((ruled.requests.len(), ruled.page.nofollow_links), (4, 0));
}

/// The canonical URL is reported, resolved, from the head or from a
/// `Link` header, and only when it is not the page itself.
#[tokio::test]
async fn canonical_urls() {
    let s = Setup::start(WorkerConfig::default()).await;
    let print = s
        .call(request(s.url("/profile/7/print"), "profile"), false)
        .await;
    assert_eq!(print.page.canonical, Some(s.url("/profile/7")));
    let own = s.call(request(s.url("/profile/7"), "profile"), false).await;
    assert_eq!(own.page.canonical, None);
    let header = s
        .call(request(s.url("/header-canonical"), "profile"), false)
        .await;
    assert_eq!(header.page.canonical, Some(s.url("/profile/7")));
    let none = s
        .call(request(s.url("/meta/noindex"), "profile"), false)
        .await;
    assert_eq!(none.page.canonical, None);
}

/// Sitemaps through the real fetch path: an index (XML), a gzipped urlset
/// served as application/gzip, one gzipped as a transfer encoding, and a
/// text sitemap.
#[tokio::test]
async fn sitemaps_over_rpc() {
    let s = Setup::start(WorkerConfig::default()).await;
    let index = s.call(sitemap(s.url("/sitemap_index.xml")), false).await;
    let urls: Vec<_> = index.requests.iter().map(|r| r.url.clone()).collect();
    assert_eq!(urls, [s.url("/sitemaps/a.xml.gz"), s.url("/sitemap.txt")]);
    assert!(index
        .requests
        .iter()
        .all(|r| r.parser.name == rpcsupport::SITEMAP_PARSER && r.depth == 1));

    let gz = s.call(index.requests[0].clone(), false).await;
    let urls: Vec<_> = gz.requests.iter().map(|r| r.url.clone()).collect();
    assert_eq!(urls, [s.url("/profile/1"), s.url("/profile/2")]);
    assert!(gz
        .requests
        .iter()
        .all(|r| r.parser == ParserSpec::named("profile")
            && r.depth == 2
            && r.hints.lastmod == Some(1_704_153_600)));

    let encoded = s.call(sitemap(s.url("/sitemaps/encoded.xml")), false).await;
    assert_eq!(encoded.requests[0].url, s.url("/profile/3"));

    let text = s.call(index.requests[1].clone(), false).await;
    let urls: Vec<_> = text.requests.iter().map(|r| r.url.clone()).collect();
    assert_eq!(urls, [s.url("/profile/8"), s.url("/profile/9")]);
    assert_eq!(text.page.sitemap_dropped, 0);
}

/// A sitemap is read up to `max_sitemap_bytes`, not `max_body_bytes`, and
/// past it is parsed up to the limit and counted, not failed.
#[tokio::test]
async fn sitemap_body_cap() {
    let small_pages = WorkerConfig {
        max_body_bytes: 4096,
        ..WorkerConfig::default()
    };
    let s = Setup::start(small_pages).await;
    let big = s.call(sitemap(s.url("/sitemaps/big.xml")), false).await;
    assert_eq!(big.requests.len(), 200);
    assert_eq!(big.limits.page_truncated, 0);

    let small_sitemaps = WorkerConfig {
        max_sitemap_bytes: 4096,
        ..WorkerConfig::default()
    };
    let s = Setup::start(small_sitemaps).await;
    let cut = s.call(sitemap(s.url("/sitemaps/big.xml")), false).await;
    assert!(
        !cut.requests.is_empty() && cut.requests.len() < 200,
        "{}",
        cut.requests.len()
    );
    assert_eq!(cut.limits.page_truncated, 1);
}

/// A gzip bomb fetched whole (64 KiB) is inflated only up to
/// `max_sitemap_bytes` and answered, cut, not failed.
#[tokio::test]
async fn gzip_bomb_over_rpc() {
    let s = Setup::start(WorkerConfig {
        max_sitemap_bytes: 1 << 20,
        ..WorkerConfig::default()
    })
    .await;
    let started = std::time::Instant::now();
    let bomb = s.call(sitemap(s.url("/sitemaps/bomb.xml.gz")), false).await;
    assert!(bomb.requests.is_empty());
    assert_eq!(bomb.limits.page_truncated, 1);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// Against the demo site's open-web routes: its sitemaps (index, gzipped
/// profiles, cities, text, and the hostile huge, bomb and junk ones cut at
/// the worker's limits, set here below the defaults so the debug build
/// does not inflate 50 MiB or send 50,000 requests: the sitemap unit
/// tests hold the defaults' figures), its `/meta/` pages obeyed, its
/// canonical print views, and its validators answered with 304s.
#[tokio::test]
async fn demosite_open_web() {
    // Above any of the site's honest sitemaps (1,000 URLs, a few hundred
    // KB), below its hostile ones (60,000 URLs in 4 MB; 60 MiB inflated).
    let limits = WorkerConfig {
        max_sitemap_urls: 5_000,
        max_sitemap_bytes: 8 << 20,
        ..WorkerConfig::default()
    };
    let (s, log) = Setup::demosite(limits.clone()).await;
    let profiles = demosite::SiteConfig::default().profiles;
    let index = s.call(sitemap(s.url("/sitemap_index.xml")), false).await;
    let names: Vec<_> = index.requests.iter().map(|r| r.url.clone()).collect();
    assert!(
        names.contains(&s.url("/sitemaps/profiles-1.xml.gz")),
        "{names:?}"
    );
    assert!(names.contains(&s.url("/sitemaps/cities.xml")), "{names:?}");
    let mut listed = 0;
    for r in &index.requests {
        let one = s.call(r.clone(), false).await;
        assert_eq!(one.page.sitemap_dropped, 0, "{}", r.url);
        assert!(one
            .requests
            .iter()
            .all(|p| p.hints.lastmod.is_some() && p.parser == ParserSpec::named("profile")));
        if r.url.contains("profiles-") {
            listed += one.requests.len() as u64;
        }
    }
    assert_eq!(listed, profiles + 3);
    let text = s.call(sitemap(s.url("/sitemap.txt")), false).await;
    assert_eq!(text.requests.len(), 3);

    let huge = s.call(sitemap(s.url("/sitemaps/huge.xml")), false).await;
    assert_eq!(huge.requests.len(), limits.max_sitemap_urls);
    assert_eq!(
        huge.page.sitemap_dropped,
        demosite::open_web::HUGE_URLS - limits.max_sitemap_urls as u64
    );
    assert_eq!(huge.limits.page_truncated, 0, "read whole");
    let bomb = s.call(sitemap(s.url("/sitemaps/bomb.xml.gz")), false).await;
    assert_eq!(bomb.limits.page_truncated, 1);
    let junk = s.call(sitemap(s.url("/sitemaps/junk.xml")), false).await;
    assert!(junk.page.sitemap_dropped > 0);
    assert!(junk
        .requests
        .iter()
        .all(|r| r.url.starts_with("http://") || r.url.starts_with("https://")));

    let noindex = s
        .call(request(s.url("/meta/noindex/1"), "profile"), true)
        .await;
    assert!(noindex.page.noindex && noindex.items.is_empty() && !noindex.requests.is_empty());
    assert_eq!(noindex.page.noindex_items, 1);
    let nofollow = s
        .call(request(s.url("/meta/nofollow/1"), "profile"), true)
        .await;
    assert!(nofollow.page.nofollow && nofollow.requests.is_empty());
    assert_eq!(nofollow.items.len(), 1);
    let header = s
        .call(request(s.url("/meta/header/1"), "profile"), true)
        .await;
    assert!(header.items.is_empty() && header.requests.is_empty());
    let links = s.call(request(s.url("/meta/links"), "links"), true).await;
    assert!(links.page.nofollow_links > 0);
    assert!(links
        .requests
        .iter()
        .all(|r| !r.url.contains("/unreached/")));
    assert!(links.requests.iter().any(|r| r.url.contains("/followed/")));

    for print in ["/profile/1/print", "/profile/1?view=print"] {
        let page = s.call(request(s.url(print), "profile"), false).await;
        assert_eq!(page.page.canonical, Some(s.url("/profile/1")), "{print}");
    }
    let offsite = s
        .call(request(s.url("/meta/canonical-offsite"), "links"), false)
        .await;
    assert_eq!(
        offsite.page.canonical.as_deref(),
        Some("http://elsewhere.test/x")
    );

    let first = s.call(request(s.url("/profile/1"), "profile"), false).await;
    assert!(first.page.etag.is_some() && first.page.last_modified.is_some());
    let mut again = request(s.url("/profile/1"), "profile");
    again.hints.etag = first.page.etag.clone();
    let second = s.call(again, false).await;
    assert_eq!((second.page.status, second.page.unchanged), (304, true));
    let seen = log.entries();
    let last = seen.iter().rev().find(|e| e.path == "/profile/1").unwrap();
    assert_eq!(
        (last.status, last.if_none_match.clone()),
        (304, first.page.etag)
    );
}
