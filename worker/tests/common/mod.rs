//! What the worker's integration tests share: a name table in place of a
//! resolver, the "connector that fails the test" on any address but
//! loopback, a worker config that may fetch the local test sites, and
//! requests and fetch policies.

// Each test binary compiles this module and uses its own part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use rpcsupport::{FetchPolicy, ParserSpec, Request};
use tokio::sync::oneshot;
use worker::guard::{Handoff, Lookup};
use worker::WorkerConfig;

/// A resolver from a fixed table, so no test ever resolves a real name;
/// it records every name asked for.
pub struct Table {
    names: HashMap<String, IpAddr>,
    asked: Mutex<Vec<String>>,
}

impl Table {
    /// A table of `(name, address)`.
    pub fn new(names: &[(&str, &str)]) -> Arc<Table> {
        Arc::new(Table {
            names: names
                .iter()
                .map(|(name, addr)| (name.to_string(), addr.parse().unwrap()))
                .collect(),
            asked: Mutex::new(Vec::new()),
        })
    }

    /// The names looked up so far, in order.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl Lookup for Table {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> {
        self.asked.lock().unwrap().push(host.clone());
        let found = self.names.get(&host).copied();
        Box::pin(async move {
            found
                .map(|a| vec![a])
                .ok_or_else(|| io::Error::other("no such test host"))
        })
    }
}

/// Addresses that reached the HTTP client although they were not
/// loopback, as `host -> address`.
pub type Violations = Arc<Mutex<Vec<String>>>;

/// The "connector that fails the test": any address but loopback handed
/// to the HTTP client is refused and recorded in `violations`.
pub fn loopback_only(violations: Violations) -> Option<Handoff> {
    Some(Box::new(move |host: &str, addrs: &[IpAddr]| {
        if let Some(bad) = addrs.iter().find(|a| !a.is_loopback()) {
            violations.lock().unwrap().push(format!("{host} -> {bad}"));
            return Err(format!("test refuses to connect to {bad}"));
        }
        Ok(())
    }))
}

/// A worker config that may fetch the local test sites (127.0.0.1), as
/// only the worker's own config can allow.
pub fn local() -> WorkerConfig {
    WorkerConfig {
        allow_internal: vec!["127.0.0.1".into()],
        ..WorkerConfig::default()
    }
}

/// A request for `url` with the built-in `parser`, at depth 0.
pub fn request(url: impl Into<String>, parser: &str) -> Request {
    Request::new(url, ParserSpec::named(parser), 0)
}

/// A crawl's fetch policy allowing `domains`, obeying no robots meta and
/// no `rel="nofollow"`.
pub fn policy(domains: &[&str]) -> FetchPolicy {
    FetchPolicy {
        allowed_domains: domains.iter().map(|d| d.to_string()).collect(),
        obey_robots_meta: false,
        obey_nofollow: false,
    }
}

/// A worker with `config` served over tarpc on 127.0.0.1:0, and a client
/// connected to it; the server stops when the sender is dropped.
pub async fn serve_worker(
    config: &WorkerConfig,
) -> (rpcsupport::CrawlClient, worker::Worker, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = rpcsupport::HostAddr::from(listener.local_addr().unwrap());
    let worker = worker::Worker::new(config).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(worker::serve(
        listener,
        worker.clone(),
        worker::ServerOptions::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let client = rpcsupport::connect_crawl(&addr, rpcsupport::ConnectOptions::default())
        .await
        .unwrap();
    (client, worker, stop)
}

/// Every page a demo site of `profiles` profiles in 5 cities serves with
/// the open web on, as the stream differential tests read them: the city
/// list, every city page, every profile (UTF-8 and GBK, with and without
/// `<base href>`) with its two print views (canonical links), and the
/// `/meta/` pages. Each with its URL and the demo parser a crawl reads it
/// with (`""` for the `/meta/` pages, which `links` reads).
pub fn demo_pages(profiles: u64) -> Vec<(String, demosite::Page, &'static str)> {
    let site = &demosite::Site::new(demosite::SiteConfig {
        profiles,
        cities: 5,
        page_size: 20,
    });
    let view = &demosite::View {
        open_web: true,
        ..demosite::View::default()
    };
    let origin = "http://127.0.0.1:8";
    let mut paths: Vec<(String, Option<String>, &str)> = vec![("/".into(), None, "city_list")];
    for city in 0..site.city_count() {
        for page in 1..=site.city_pages(city) {
            let path = site.city_path(city, page).unwrap();
            match path.split_once('?') {
                Some((p, q)) => paths.push((p.into(), Some(q.into()), "city")),
                None => paths.push((path, None, "city")),
            }
        }
    }
    for id in 1..=site.profile_count() {
        paths.push((demosite::Site::profile_path(id), None, "profile"));
        paths.push((format!("/profile/{id}/print"), None, "profile"));
        paths.push((
            format!("/profile/{id}"),
            Some("view=print".into()),
            "profile",
        ));
    }
    for meta in ["", "links", "canonical-offsite"] {
        paths.push((format!("/meta/{meta}"), None, ""));
    }
    for id in 1..=5 {
        for kind in ["noindex", "nofollow", "header", "unreached", "followed"] {
            paths.push((format!("/meta/{kind}/{id}"), None, ""));
        }
    }
    paths
        .into_iter()
        .filter_map(|(path, query, parser)| {
            let page = site.render_at(&path, query.as_deref(), view, origin)?;
            let url = match query {
                Some(q) => format!("{origin}{path}?{q}"),
                None => format!("{origin}{path}"),
            };
            Some((url, page, parser))
        })
        .collect()
}
