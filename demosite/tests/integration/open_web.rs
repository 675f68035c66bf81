//! The open web (issue 13) and script-built pages (issue 16): generations,
//! validators and 304s, sitemaps, `/meta/` pages and `/js/` pages, and that
//! none of it shows while the options are off.

use std::collections::{BTreeSet, VecDeque};
use std::io::Read;
use std::sync::Arc;

use demosite::generation::{changed, removed};
use demosite::validators::{body_hash, date_of, http_date, w3c_date};
use demosite::{Generation, RequestLog, Site, SiteConfig, SiteOptions, View};
use tokio::net::TcpListener;
use url::Url;

/// A running demosite on 127.0.0.1; dropping it stops the server.
struct Server {
    base: String,
    log: Arc<RequestLog>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(config: SiteConfig, options: SiteOptions) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (router, log) = demosite::router_with(Arc::new(Site::new(config)), options);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(demosite::serve_router(listener, router, async {
        let _ = stopped.await;
    }));
    Server {
        base: format!("http://{addr}"),
        log,
        _stop: stop,
    }
}

thread_local! {
    /// One client per test (each test has its own thread and runtime, and
    /// a client's pooled connections belong to the runtime that made them).
    static CLIENT: reqwest::Client = {
        // reqwest is built with rustls but no crypto provider; plain http
        // still needs one installed to build a client.
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    };
}

fn client() -> reqwest::Client {
    CLIENT.with(Clone::clone)
}

/// Status, headers and body of a GET with optional extra headers.
async fn get(url: &str, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = client().get(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.bytes().await.unwrap().to_vec())
}

fn open_web() -> SiteOptions {
    SiteOptions {
        open_web: true,
        ..SiteOptions::default()
    }
}

fn small() -> SiteConfig {
    SiteConfig {
        profiles: 250,
        cities: 5,
        page_size: 20,
    }
}

/// Every `<loc>` of a sitemap (a plain scan: the sitemaps are ours).
fn locs(xml: &str) -> Vec<String> {
    xml.split("<loc>")
        .skip(1)
        .filter_map(|s| s.split_once("</loc>").map(|(l, _)| l.to_owned()))
        .collect()
}

/// `(loc, lastmod)` of every `<url>` of a urlset.
fn urls(xml: &str) -> Vec<(String, String)> {
    xml.split("<url>")
        .skip(1)
        .map(|u| {
            let loc = u
                .split_once("<loc>")
                .unwrap()
                .1
                .split_once("</loc>")
                .unwrap()
                .0;
            let lastmod = u
                .split_once("<lastmod>")
                .unwrap()
                .1
                .split_once("</lastmod>")
                .unwrap()
                .0;
            (loc.to_owned(), lastmod.to_owned())
        })
        .collect()
}

fn gunzip(bytes: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut out)
        .unwrap();
    out
}

/// Every `href` of a page (hrefs are ASCII; a lossy view of GBK is enough).
fn hrefs(body: &[u8]) -> Vec<String> {
    let html = String::from_utf8_lossy(body);
    html.match_indices("href=\"")
        .map(|(i, _)| {
            let rest = &html[i + 6..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

/// With default options the pages are byte for byte what they were before
/// issue 13 (FNV-1a of the bodies at 009418d), with no validators.
#[tokio::test]
async fn default_site_is_unchanged() {
    const GOLDEN: &[(&str, u64)] = &[
        ("/", 0xcf8015f2d78a5232),
        ("/city/beijing", 0x5be779650b10b40f),
        ("/city/shanghai?page=2", 0xbfca046c61c10a31),
        ("/city/haerbin", 0x50b0de359586313b),
        ("/city/suzhou?page=3", 0xb025daeb84e7784e),
        ("/profile/1", 0xe9e6234dd35cf51f),
        ("/profile/3", 0x55ebdfccf0db9a7f),
        ("/profile/13", 0x2444f9dcac5ebba4),
        ("/profile/17", 0x31721c0f0701dffe),
        ("/profile/500", 0xe75a29cc799a9772),
        ("/profile/999", 0x7a659e9fafc52269),
        ("/profile/1000", 0xdb76fe95d9463c1a),
    ];
    let site = Site::new(SiteConfig::default());
    let server = start(SiteConfig::default(), SiteOptions::default()).await;
    for &(path, hash) in GOLDEN {
        let (p, q) = path
            .split_once('?')
            .map_or((path, None), |(p, q)| (p, Some(q)));
        assert_eq!(body_hash(&site.render(p, q).unwrap().body), hash, "{path}");
        let (status, headers, body) = get(&format!("{}{path}", server.base), &[]).await;
        assert_eq!((status, body_hash(&body)), (200, hash), "{path}");
        assert!(headers.get("etag").is_none() && headers.get("last-modified").is_none());
    }
    assert_eq!(site.page_count(), 1061);
    // Nothing new answers while its option is off.
    for path in [
        "/sitemap_index.xml",
        "/sitemap.txt",
        "/sitemaps/cities.xml",
        "/meta/",
        "/profile/1/print",
        "/profile/1001",
        "/js/",
        "/api/js/list.json",
    ] {
        let (status, _, _) = get(&format!("{}{path}", server.base), &[]).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _, _) = get(&format!("{}/robots.txt", server.base), &[]).await;
    assert_eq!(status, 404);
}

/// Generation 0 is the old site; a changed profile differs from the
/// generation before in an extracted field; the functions are pure.
#[test]
fn generations_change_profiles_deterministically() {
    let site = Site::new(SiteConfig::default());
    for id in 1..=1000 {
        assert_eq!(site.profile_at(id, 0), site.profile(id));
    }
    let mut changes = 0;
    for g in 1..=4 {
        for id in 1..=1000 {
            assert_eq!(changed(id, g), changed(id, g), "pure");
            let (now, before) = (site.profile_at(id, g), site.profile_at(id, g - 1));
            assert_eq!(now.is_none(), removed(id, g));
            if changed(id, g) {
                changes += 1;
                let (now, before) = (now.unwrap(), before.unwrap());
                assert!(
                    now.age != before.age && now.occupation != before.occupation,
                    "{id} in {g}: {before:?} -> {now:?}"
                );
                assert_eq!(now.name, before.name);
            } else if let (Some(now), Some(before)) = (now, before) {
                assert_eq!(now, before, "{id} in {g} changed unannounced");
            }
        }
    }
    assert!((300..500).contains(&changes), "{changes}");
}

/// expected_profiles is the linked and sitemap-only profiles minus the
/// removed ones.
#[test]
fn expected_profiles_of_a_generation() {
    let site = Site::new(small());
    let all = site.expected_profiles(0, 30);
    assert_eq!(all.len(), 280);
    assert_eq!(all.last().unwrap().id, 280);
    let g5 = site.expected_profiles(5, 30);
    let ids: BTreeSet<u64> = g5.iter().map(|p| p.id).collect();
    let gone: Vec<u64> = (1..=280).filter(|&id| removed(id, 5)).collect();
    assert!(!gone.is_empty(), "no profile removed by generation 5");
    assert_eq!(ids.len() + gone.len(), 280);
    assert!(gone.iter().all(|id| !ids.contains(id)));
    assert!(g5
        .iter()
        .all(|p| Some(p) == site.profile_at(p.id, 5).as_ref()));
}

/// Removed profiles answer 410 and vanish from city lists and
/// recommendations; the generation moves by handle and by POST.
#[tokio::test]
async fn removed_profiles_are_gone() {
    let generation = Generation::new(0);
    let server = start(
        small(),
        SiteOptions {
            generation: generation.clone(),
            ..SiteOptions::default()
        },
    )
    .await;
    let site = Site::new(small());
    let g = 6;
    let id = (1..=250)
        .find(|&id| removed(id, g))
        .expect("a removed profile");
    let url = format!("{}/profile/{id}", server.base);
    assert_eq!(get(&url, &[]).await.0, 200);
    generation.set(g);
    assert_eq!(get(&url, &[]).await.0, 410);
    assert_eq!(server.log.entries().last().unwrap().status, 410);
    let view = View {
        generation: g,
        ..View::default()
    };
    let city = site.city_of(id);
    for page in 1..=site.city_pages(city) {
        let path = site.city_path(city, page).unwrap();
        let (p, q) = path
            .split_once('?')
            .map_or((path.as_str(), None), |(p, q)| (p, Some(q)));
        let links = hrefs(&site.render_at(p, q, &view, "").unwrap().body);
        assert!(!links.iter().any(|h| h.ends_with(&format!("/profile/{id}"))));
    }
    for other in 1..=250 {
        if let Some(page) = site.render_at(&Site::profile_path(other), None, &view, "") {
            let t = id.to_string();
            assert!(
                !hrefs(&page.body).iter().any(|h| {
                    h.rsplit('/').next().unwrap().split('#').next() == Some(t.as_str())
                }),
                "{other} still recommends {id}"
            );
        }
    }
    let r = client()
        .post(format!("{}/_site/generation/0", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(generation.get(), 0);
    let too_far = demosite::generation::MAX_GENERATION + 1;
    let r = client()
        .post(format!("{}/_site/generation/{too_far}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(generation.get(), 0);
    assert_eq!(get(&url, &[]).await.0, 200);
}

/// With the open web on, pages carry validators; matching ones get a 304
/// with no body, others a 200; the log records both sides.
#[tokio::test]
async fn validators_and_304() {
    let generation = Generation::new(0);
    let server = start(
        small(),
        SiteOptions {
            generation: generation.clone(),
            ..open_web()
        },
    )
    .await;
    let url = format!("{}/profile/5", server.base);
    let (status, headers, body) = get(&url, &[]).await;
    assert_eq!(status, 200);
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let lm = headers["last-modified"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{:016x}\"", body_hash(&body)));
    assert_eq!(lm, http_date(date_of(0)));

    let (status, headers, body) = get(&url, &[("if-none-match", &etag)]).await;
    assert_eq!((status, body.len()), (304, 0));
    assert_eq!(headers["etag"].to_str().unwrap(), etag);
    assert_eq!(get(&url, &[("if-none-match", "\"nope\"")]).await.0, 200);
    assert_eq!(get(&url, &[("if-modified-since", &lm)]).await.0, 304);
    let older = http_date(date_of(0) - 1);
    assert_eq!(get(&url, &[("if-modified-since", &older)]).await.0, 200);
    // If-None-Match decides when both are sent.
    let both = [
        ("if-none-match", "\"nope\""),
        ("if-modified-since", lm.as_str()),
    ];
    assert_eq!(get(&url, &both).await.0, 200);

    let log = server.log.entries();
    let hit = &log[1];
    assert_eq!(hit.status, 304);
    assert_eq!(hit.if_none_match.as_deref(), Some(etag.as_str()));
    assert_eq!(log[3].if_modified_since.as_deref(), Some(lm.as_str()));
    assert_eq!(log[0].if_none_match, None);

    // A profile page changed in generation 1 gets a new ETag and a
    // Last-Modified one day later; one whose page did not change stays 304.
    let site = Site::new(small());
    let view = |g| View {
        generation: g,
        open_web: true,
        ..View::default()
    };
    let body_at = |id, g| {
        site.render_at(&Site::profile_path(id), None, &view(g), "")
            .map(|p| p.body)
    };
    let edited = (1..=250).find(|&id| changed(id, 1)).unwrap();
    let same = (1..=250)
        .find(|&id| body_at(id, 0) == body_at(id, 1))
        .unwrap();
    let mut old = Vec::new();
    for id in [edited, same] {
        let (_, h, _) = get(&format!("{}/profile/{id}", server.base), &[]).await;
        old.push(h["etag"].to_str().unwrap().to_owned());
    }
    generation.set(1);
    let u = format!("{}/profile/{edited}", server.base);
    let (status, h, _) = get(&u, &[("if-none-match", &old[0])]).await;
    assert_eq!(status, 200);
    assert_ne!(h["etag"].to_str().unwrap(), old[0]);
    assert_eq!(h["last-modified"].to_str().unwrap(), http_date(date_of(1)));
    let u = format!("{}/profile/{same}", server.base);
    assert_eq!(get(&u, &[("if-none-match", &old[1])]).await.0, 304);
    let (_, h, _) = get(&u, &[]).await;
    assert_eq!(h["last-modified"].to_str().unwrap(), http_date(date_of(0)));
    // JSON and sitemaps have validators too.
    let (_, h, _) = get(&format!("{}/sitemap_index.xml", server.base), &[]).await;
    assert!(h.get("etag").is_some() && h.get("last-modified").is_some());
}

/// robots.txt names both sitemaps, and together the sitemaps list exactly
/// the pages of the generation (profiles linked and sitemap-only, cities),
/// each with the lastmod of its page's Last-Modified.
#[tokio::test]
async fn sitemaps_list_exactly_the_generation() {
    let g = 4;
    let server = start(
        small(),
        SiteOptions {
            sitemap_only: 30,
            sitemap_page: 100,
            generation: Generation::new(g),
            ..open_web()
        },
    )
    .await;
    let base = &server.base;
    let (_, _, robots) = get(&format!("{base}/robots.txt"), &[]).await;
    let robots = String::from_utf8(robots).unwrap();
    let named: Vec<&str> = robots
        .lines()
        .filter_map(|l| l.strip_prefix("Sitemap: "))
        .collect();
    assert_eq!(
        named,
        [
            format!("{base}/sitemap_index.xml"),
            format!("{base}/sitemap.txt")
        ]
    );
    assert!(robots.starts_with("User-agent: *\nAllow: /\n"));

    let (_, _, index) = get(named[0], &[]).await;
    let children = locs(&String::from_utf8(index).unwrap());
    assert_eq!(children.len(), 4, "{children:?}"); // 280 profiles / 100, cities
    let mut listed = BTreeSet::new();
    let mut lastmods = Vec::new();
    for child in &children {
        let (status, headers, body) = get(child, &[]).await;
        assert_eq!(status, 200, "{child}");
        let xml = if child.ends_with(".gz") {
            assert_eq!(headers["content-type"], "application/gzip");
            gunzip(&body)
        } else {
            String::from_utf8(body).unwrap()
        };
        let entries = urls(&xml);
        assert!(entries.len() <= 100, "{child}: {}", entries.len());
        for (loc, lastmod) in entries {
            assert!(listed.insert(loc.clone()), "{loc} twice");
            lastmods.push((loc, lastmod));
        }
    }
    let (_, _, txt) = get(named[1], &[]).await;
    let txt = String::from_utf8(txt).unwrap();
    let sitemap_only: BTreeSet<String> = txt.lines().map(str::to_owned).collect();

    let site = Site::new(small());
    let expected = site.expected_profiles(g, 30);
    let mut want: BTreeSet<String> = expected
        .iter()
        .map(|p| format!("{base}/profile/{}", p.id))
        .collect();
    let want_txt: BTreeSet<String> = want
        .iter()
        .filter(|u| u.rsplit('/').next().unwrap().parse::<u64>().unwrap() > 250)
        .cloned()
        .collect();
    assert_eq!(sitemap_only, want_txt);
    assert!(want_txt.len() >= 25);
    want.insert(format!("{base}/"));
    for i in 0..site.city_count() {
        for page in 1..=site.city_pages(i) {
            want.insert(format!("{base}{}", site.city_path(i, page).unwrap()));
        }
    }
    assert_eq!(listed, want);

    // A sample of lastmods matches the pages' own Last-Modified.
    let mut moved = 0;
    for (loc, lastmod) in lastmods.iter().step_by(7) {
        let (_, headers, _) = get(loc, &[]).await;
        let lm = headers["last-modified"].to_str().unwrap();
        let g_of = (0..=g).find(|&k| http_date(date_of(k)) == lm).unwrap();
        assert_eq!(*lastmod, w3c_date(date_of(g_of)), "{loc}");
        moved += usize::from(g_of > 0);
    }
    assert!(moved > 0, "no page changed in {g} generations");
}

/// The pages a crawler following every link reaches, from `starts`.
fn walk(site: &Site, view: &View, starts: &[&str]) -> BTreeSet<String> {
    let origin = Url::parse("http://127.0.0.1:1/").unwrap();
    let mut seen = BTreeSet::new();
    let mut queue: VecDeque<Url> = starts.iter().map(|s| origin.join(s).unwrap()).collect();
    while let Some(url) = queue.pop_front() {
        if url.host_str() != Some("127.0.0.1") || !seen.insert(url.to_string()) {
            continue;
        }
        let Some(page) = site.render_at(url.path(), url.query(), view, "http://127.0.0.1:1") else {
            continue;
        };
        let html = String::from_utf8_lossy(&page.body).into_owned();
        let base = html
            .split_once("<base href=\"")
            .map(|(_, r)| url.join(r.split('"').next().unwrap()).unwrap())
            .unwrap_or_else(|| url.clone());
        for href in hrefs(&page.body) {
            if href.starts_with('#')
                || href.starts_with("javascript:")
                || href.starts_with("mailto:")
            {
                continue;
            }
            if let Ok(mut next) = base.join(&href) {
                next.set_fragment(None);
                queue.push_back(next);
            }
        }
    }
    seen
}

/// No page links a sitemap-only profile, though each of them is served.
#[test]
fn sitemap_only_profiles_are_unlinked() {
    let site = Site::new(small());
    let view = View {
        sitemap_only: 30,
        open_web: true,
        js: true,
        ..View::default()
    };
    let reached = walk(&site, &view, &["/", "/meta/", "/js/"]);
    let profiles: BTreeSet<u64> = reached
        .iter()
        .filter_map(|u| u.strip_prefix("http://127.0.0.1:1/profile/"))
        .filter_map(|id| id.parse().ok())
        .collect();
    assert_eq!(profiles.len(), 250, "the walk reaches every linked profile");
    assert!(profiles.iter().all(|&id| id <= 250));
    assert!(reached.iter().any(|u| u.contains("/meta/followed/")));
    for id in 251..=280 {
        let page = site
            .render_at(&Site::profile_path(id), None, &view, "")
            .unwrap();
        assert!(String::from_utf8_lossy(&page.body).contains(&format!("data-id=\"{id}\"")));
    }
    assert!(site.render_at("/profile/281", None, &view, "").is_none());
}

/// The hostile sitemaps have the promised shape: too many entries, a
/// gzip bomb, junk locs and a broken tail.
#[tokio::test]
async fn hostile_sitemaps() {
    let server = start(small(), open_web()).await;
    let (_, _, huge) = get(&format!("{}/sitemaps/huge.xml", server.base), &[]).await;
    let huge = String::from_utf8(huge).unwrap();
    assert_eq!(huge.matches("<url>").count(), 60_000);

    let (_, headers, bomb) = get(&format!("{}/sitemaps/bomb.xml.gz", server.base), &[]).await;
    assert_eq!(headers["content-type"], "application/gzip");
    assert!(bomb.len() < 100_000, "{} bytes", bomb.len());
    // Inflating all 60 MB takes seconds in a debug build: the gzip trailer
    // says the size, and the first MiB shows it is a urlset of spaces.
    let size = u32::from_le_bytes(bomb[bomb.len() - 4..].try_into().unwrap());
    assert!(size > 50_000_000, "{size}");
    let mut head = vec![0; 1 << 20];
    flate2::read::GzDecoder::new(&bomb[..])
        .read_exact(&mut head)
        .unwrap();
    assert!(head.starts_with(b"<?xml") && head.ends_with(b"    "));

    let (_, _, junk) = get(&format!("{}/sitemaps/junk.xml", server.base), &[]).await;
    let junk = String::from_utf8(junk).unwrap();
    let all = locs(&junk);
    for bad in [
        "javascript:",
        "ftp:",
        "/profile/3",
        "profile/4",
        "http://elsewhere.test/",
    ] {
        assert!(all.iter().any(|l| l.starts_with(bad)), "{bad}");
    }
    assert!(all.contains(&format!("{}/profile/1", server.base)));
    assert!(!junk.trim_end().ends_with("</urlset>"));
}

/// The /meta/ pages ask what they promise: robots meta, X-Robots-Tag,
/// rel=nofollow, canonical links (relative, absolute, off-site).
#[tokio::test]
async fn meta_pages_ask_what_they_promise() {
    let server = start(small(), open_web()).await;
    let page = |path: &str| {
        let url = format!("{}{path}", server.base);
        async move {
            let (status, headers, body) = get(&url, &[]).await;
            assert_eq!(status, 200, "{url}");
            (headers, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let (_, index) = page("/meta/").await;
    let links = hrefs(index.as_bytes());
    for want in [
        "/meta/noindex/1",
        "/meta/nofollow/5",
        "/meta/header/3",
        "/meta/links",
        "/profile/2/print",
        "/profile/2?view=print",
        "/meta/canonical-offsite",
    ] {
        assert!(links.iter().any(|l| l == want), "{want}");
    }
    let (_, html) = page("/meta/noindex/2").await;
    assert!(html.contains("<meta name=\"robots\" content=\"noindex\">"));
    assert!(html.contains("data-id=\"2\""));
    let (_, html) = page("/meta/nofollow/4").await;
    assert!(html.contains("content=\"nofollow\"") && html.contains("/meta/unreached/9"));
    let (headers, html) = page("/meta/header/1").await;
    assert_eq!(headers["x-robots-tag"], "noindex, nofollow");
    assert!(html.contains("/meta/unreached/11") && !html.contains("name=\"robots\""));
    assert_eq!(page("/meta/header/2").await.0["x-robots-tag"], "none");
    let (_, html) = page("/meta/links").await;
    assert!(html.contains("rel=\"nofollow\" href=\"/meta/unreached/1\""));
    assert!(html.contains("rel=\"ugc nofollow\" href=\"/meta/unreached/2\""));
    assert!(html.contains("<a href=\"/meta/followed/3\""));
    page("/meta/unreached/15").await;
    page("/meta/followed/5").await;
    let (_, html) = page("/profile/3/print").await;
    assert!(html.contains("<link rel=\"canonical\" href=\"/profile/3\">"));
    let (_, html) = page("/profile/3?view=print").await;
    let absolute = format!(
        "<link rel=\"canonical\" href=\"{}/profile/3\">",
        server.base
    );
    assert!(html.contains(&absolute));
    let (_, html) = page("/meta/canonical-offsite").await;
    assert!(html.contains("href=\"http://elsewhere.test/x\""));
    for missing in [
        "/meta/noindex/6",
        "/meta/unreached/16",
        "/meta/nothing",
        "/profile/0/print",
    ] {
        let (status, _, _) = get(&format!("{}{missing}", server.base), &[]).await;
        assert_eq!(status, 404, "{missing}");
    }
}

/// Absolute links take the request's Host, unless it is overlong or odd:
/// then `http://localhost`, so a request cannot blow up or inject markup.
#[tokio::test]
async fn origin_comes_from_a_sane_host() {
    let server = start(small(), open_web()).await;
    let url = format!("{}/robots.txt", server.base);
    let long = "h".repeat(300);
    for (host, origin) in [
        ("example.test:8080", "http://example.test:8080"),
        (long.as_str(), "http://localhost"),
        ("a\"b", "http://localhost"),
    ] {
        let (_, _, body) = get(&url, &[("host", host)]).await;
        let body = String::from_utf8(body).unwrap();
        assert!(
            body.contains(&format!("Sitemap: {origin}/sitemap.txt\n")),
            "{host}: {body}"
        );
    }
}

/// Pages marked generation-free really are: their bodies are the same in
/// every generation, so skipping the walk back cannot hide a change.
#[test]
fn generation_free_pages_do_not_change() {
    let site = Site::new(small());
    let view = |generation| View {
        generation,
        open_web: true,
        js: true,
        ..View::default()
    };
    let mut checked = 0;
    for path in [
        "/",
        "/meta/",
        "/meta/links",
        "/meta/canonical-offsite",
        "/meta/unreached/3",
        "/meta/followed/2",
        "/js/",
        "/js/hang",
        "/js/loop",
        "/js/dialog",
        "/js/blocked",
    ] {
        assert!(demosite::open_web::generation_free(path), "{path}");
        let first = site
            .render_at(path, None, &view(0), "http://h:1")
            .unwrap()
            .body;
        for g in 1..=8 {
            let now = site
                .render_at(path, None, &view(g), "http://h:1")
                .unwrap()
                .body;
            assert_eq!(now, first, "{path} in {g}");
        }
        checked += 1;
    }
    assert_eq!(checked, 11);
    assert!(!demosite::open_web::generation_free("/meta/noindex/1"));
}

/// profile_page_changed predicts exactly which profile pages differ from
/// the generation before (what a revalidating crawl sees as 200s).
#[test]
fn profile_page_changed_matches_the_bodies() {
    let site = Site::new(small());
    let body = |id, generation| {
        let view = View {
            generation,
            ..View::default()
        };
        site.render_at(&Site::profile_path(id), None, &view, "")
            .map(|p| p.body)
    };
    let mut changes = 0;
    for g in 1..=6 {
        for id in 1..=250 {
            let (now, before) = (body(id, g), body(id, g - 1));
            let differs = now.is_some() && now != before;
            assert_eq!(site.profile_page_changed(id, g), differs, "{id} in {g}");
            changes += usize::from(differs);
        }
    }
    assert!(changes > 100, "{changes}");
}
