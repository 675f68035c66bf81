//! The generated site: determinism, link structure, encodings, 404s.

use demosite::{PageEncoding, Site, SiteConfig};
use std::collections::{BTreeSet, VecDeque};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use url::Url;

/// A running demosite on 127.0.0.1; dropping it stops the server.
struct Server {
    base: Url,
    _stop: oneshot::Sender<()>,
}

async fn start(config: SiteConfig) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(demosite::serve(listener, config, async {
        let _ = stopped.await;
    }));
    Server {
        base: Url::parse(&format!("http://{addr}/")).unwrap(),
        _stop: stop,
    }
}

/// Every `href` value in `html`, and the `<base href>` if any. Plain string
/// scanning on purpose: independent of the worker's parser it checks.
fn hrefs(html: &str) -> (Vec<String>, Option<String>) {
    let mut base = None;
    let mut out = Vec::new();
    for (i, _) in html.match_indices("href=\"") {
        let rest = &html[i + 6..];
        let value = &rest[..rest.find('"').unwrap()];
        if html[..i].ends_with("<base ") {
            base = Some(value.to_owned());
        } else {
            out.push(value.to_owned());
        }
    }
    (out, base)
}

/// The pages a crawler following the site's list links would fetch
/// (city list, city pages, profiles and recommendations; not nav links,
/// which only lead back to pages already counted). Fails on a broken link.
fn walk(site: &Site, origin: &Url) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([origin.clone()]);
    while let Some(url) = queue.pop_front() {
        if !seen.insert(url.to_string()) {
            continue;
        }
        let page = site
            .render(url.path(), url.query())
            .unwrap_or_else(|| panic!("broken link to {url}"));
        // hrefs are ASCII, and GBK never uses ASCII bytes inside a
        // multi-byte character, so a lossy view is enough to find them.
        let html = String::from_utf8_lossy(&page.body);
        let (links, base) = hrefs(&html);
        let base = base.map_or(url.clone(), |b| url.join(&b).unwrap());
        for href in links {
            // A fragment-only link means "this page", but against a
            // <base href> it resolves to the base URL: a crawler must skip it.
            if href.starts_with('#') {
                continue;
            }
            let Ok(mut next) = base.join(&href) else {
                continue;
            };
            if next.scheme() != "http" {
                continue;
            }
            next.set_fragment(None);
            if next == url || next.path() == "/" {
                continue;
            }
            // Nav links ("首页 > 北京") point at page 1 of a city, which the
            // city list already links; skipping them keeps the walk honest
            // about what the list links alone reach.
            queue.push_back(next);
        }
    }
    seen
}

/// The same id always yields the same profile, across `Site` instances.
#[test]
fn profiles_are_deterministic() {
    let a = Site::new(SiteConfig::default());
    let b = Site::new(SiteConfig::default());
    for id in [1, 2, 3, 13, 500, 1000] {
        assert_eq!(a.profile(id), b.profile(id));
    }
    let p = a.profile(42).unwrap();
    assert_eq!(p.id, 42);
    assert_eq!(p.city, a.city_name(a.city_of(42)).unwrap());
    assert_eq!(a.city_of(42), 41 % 20);
    let chars = p.name.chars().count();
    assert!((2..=3).contains(&chars), "{}", p.name);
    assert!(p.name.chars().all(|c| c as u32 > 0x4E00), "{}", p.name);
    assert!((20..60).contains(&p.age) && (150..200).contains(&p.height));
    assert!(p.income.ends_with('元') || p.income.ends_with("以上") || p.income.ends_with("以下"));
    // Neighbouring ids differ (the hash mixes well).
    let names: BTreeSet<_> = (1..=50).map(|id| a.profile(id).unwrap().name).collect();
    assert!(names.len() > 40, "{names:?}");
}

/// Ids outside 1..=profiles have no profile.
#[test]
fn profiles_out_of_range_are_none() {
    let site = Site::new(SiteConfig::default());
    assert!(site.profile(0).is_none());
    assert!(site.profile(1001).is_none());
    assert!(site.profile(1000).is_some());
}

/// Recommendations are four other existing profiles.
#[test]
fn recommendations_point_at_other_profiles() {
    let site = Site::new(SiteConfig {
        profiles: 5,
        ..SiteConfig::default()
    });
    for id in 1..=5 {
        let recs = site.recommendations(id);
        assert_eq!(recs.len(), 4);
        assert!(recs.iter().all(|&t| t != id && (1..=5).contains(&t)));
    }
    let lonely = Site::new(SiteConfig {
        profiles: 1,
        ..SiteConfig::default()
    });
    assert!(lonely.recommendations(1).is_empty());
}

/// page_count() is exactly the number of distinct pages a link walk reaches,
/// for the default site and for awkward shapes (empty cities, one per page).
#[test]
fn page_count_matches_a_walk() {
    let origin = Url::parse("http://127.0.0.1:1/").unwrap();
    for config in [
        SiteConfig::default(),
        SiteConfig {
            profiles: 7,
            cities: 3,
            page_size: 2,
        },
        SiteConfig {
            profiles: 3,
            cities: 5,
            page_size: 1,
        },
        SiteConfig {
            profiles: 100,
            cities: 40,
            page_size: 1,
        },
    ] {
        let site = Site::new(config);
        let pages = walk(&site, &origin);
        assert_eq!(pages.len() as u64, site.page_count(), "{config:?}");
        let profiles = pages.iter().filter(|u| u.contains("/profile/")).count();
        assert_eq!(profiles as u64, config.profiles, "{config:?}");
    }
    assert_eq!(Site::new(SiteConfig::default()).page_count(), 1061);
}

/// Over real HTTP every linked page answers 200 and the count still matches.
#[tokio::test]
async fn page_count_matches_a_walk_over_http() {
    let config = SiteConfig {
        profiles: 30,
        cities: 4,
        page_size: 3,
    };
    let server = start(config).await;
    let site = Site::new(config);
    let client = client();
    let pages = walk(&site, &server.base);
    assert_eq!(pages.len() as u64, site.page_count());
    for url in pages {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
    }
}

/// GBK pages are really GBK bytes, declared in the header or only in <meta>.
#[tokio::test]
async fn gbk_pages_are_gbk() {
    let server = start(SiteConfig::default()).await;
    let site = Site::new(SiteConfig::default());
    let client = client();
    for (path, expected) in [
        ("profile/3", PageEncoding::GbkHeader),
        ("profile/13", PageEncoding::GbkMeta),
        ("profile/5", PageEncoding::Utf8),
        ("city/shanghai", PageEncoding::GbkHeader),
    ] {
        let response = client
            .get(server.base.join(path).unwrap())
            .send()
            .await
            .unwrap();
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(content_type, expected.content_type(), "{path}");
        let body = response.bytes().await.unwrap();
        let head = String::from_utf8_lossy(&body[..200]).to_string();
        match expected {
            PageEncoding::Utf8 => {
                assert!(std::str::from_utf8(&body).is_ok());
                assert!(head.contains("<meta charset=\"utf-8\">"));
            }
            PageEncoding::GbkHeader | PageEncoding::GbkMeta => {
                assert!(std::str::from_utf8(&body).is_err(), "{path} is valid UTF-8");
                let (text, had_errors) = encoding_rs::GBK.decode_without_bom_handling(&body);
                assert!(!had_errors);
                assert_eq!(
                    head.contains("<meta charset=\"gbk\">"),
                    expected == PageEncoding::GbkMeta
                );
                if let Some(id) = path.strip_prefix("profile/") {
                    let name = site.profile(id.parse().unwrap()).unwrap().name;
                    assert!(text.contains(&format!("data-field=\"name\">{name}<")));
                } else {
                    assert!(text.contains("上海征婚交友"));
                }
            }
        }
    }
    // About one profile in ten is GBK.
    let gbk = (1..=1000)
        .filter(|&id| Site::profile_encoding(id) != PageEncoding::Utf8)
        .count();
    assert_eq!(gbk, 100);
}

/// Unknown ids, slugs, pages and paths are 404s, as are non-canonical ids.
#[tokio::test]
async fn unknown_pages_are_404() {
    let server = start(SiteConfig::default()).await;
    let client = client();
    for path in [
        "profile/0",
        "profile/1001",
        "profile/abc",
        "profile/007",
        "profile/",
        "city/nowhere",
        "city/beijing?page=4",
        "city/beijing?page=0",
        "city/beijing?page=x",
        "city/",
        "nothing",
        "fault/status/abc",
    ] {
        let response = client
            .get(server.base.join(path).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let ok = client
        .get(server.base.join("city/beijing?page=3").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

/// The /fault routes produce the failures they promise.
#[tokio::test]
async fn fault_routes_misbehave_as_documented() {
    let server = start(SiteConfig::default()).await;
    let client = client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str| client.get(server.base.join(path).unwrap()).send();

    let r = get("fault/status/503?retry_after=7").await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "7");
    let r = get("fault/redirect-loop").await.unwrap();
    assert_eq!(r.headers()["location"], "/fault/redirect-loop");
    let r = get("fault/redirect/2").await.unwrap();
    assert_eq!(r.headers()["location"], "/fault/redirect/1");
    let r = get("fault/big/5000").await.unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 5000);
    let r = get("fault/big/50000?chunked=1").await.unwrap();
    assert!(r.headers().get("content-length").is_none());
    assert_eq!(r.bytes().await.unwrap().len(), 50000);
    let r = get("fault/not-html").await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/json");
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(get("fault/flaky/k/2").await.unwrap().status().as_u16());
        }
        v
    };
    assert_eq!(statuses, [503, 503, 200]);
}

/// reqwest is built with rustls but no crypto provider (the worker picks
/// ring); a client needs one installed first.
fn client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

fn client() -> reqwest::Client {
    client_builder().build().expect("a client")
}
