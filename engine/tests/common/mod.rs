//! Starts the real servers a crawl needs, each on 127.0.0.1:0, in this test
//! process (mini-redis's `start_server()` pattern).
//!
//! # Layout
//! - [`cluster`]: [`Cluster`], the site, workers and itemsaver of one test
//!   started together, with the crawl's config, its run, the stored items
//!   and the site's log; what most tests use.
//! - [`fake`]: workers that answer scripted replies from memory.
//! - [`procs`]: real worker and itemsaver processes, for tests that kill them.
//! - this file: the single servers the cluster is made of, for tests that
//!   need one more (a second site) or one alone.
#![allow(dead_code, unused_imports)] // each test file uses a different subset

pub mod cluster;
pub mod fake;
pub mod procs;

pub use cluster::{Cluster, Store};

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use demosite::{RequestLog, Site, SiteConfig};
use engine::EngineConfig;
use itemsaver::ItemStore;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Stops a server when dropped or when `stop` is called.
pub struct Stop(Option<oneshot::Sender<()>>);

impl Stop {
    pub fn stop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Stop {
    fn drop(&mut self) {
        self.stop();
    }
}

fn stopper() -> (Stop, impl Future<Output = ()> + Send + 'static) {
    let (tx, rx) = oneshot::channel();
    (Stop(Some(tx)), async move {
        let _ = rx.await;
    })
}

async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// The demo site; returns the site model (for expected counts and fields)
/// and its base URL.
pub async fn start_site(config: SiteConfig) -> (Arc<Site>, String, Stop) {
    let (listener, addr) = listen().await;
    let site = Arc::new(Site::new(config));
    let (stop, shutdown) = stopper();
    tokio::spawn(demosite::serve_site(listener, site.clone(), shutdown));
    (site, format!("http://{addr}/"), stop)
}

/// The demo site with test knobs, on a chosen loopback address (tests of
/// several hosts use 127.0.0.1 and 127.0.0.2); returns its request log.
pub async fn start_site_with(
    ip: &str,
    config: SiteConfig,
    options: demosite::SiteOptions,
) -> (Arc<Site>, String, Arc<demosite::RequestLog>, Stop) {
    let listener = TcpListener::bind((ip, 0)).await.expect("bind loopback");
    let addr = listener.local_addr().unwrap();
    let site = Arc::new(Site::new(config));
    let (router, log) = demosite::router_with(site.clone(), options);
    let (stop, shutdown) = stopper();
    tokio::spawn(demosite::serve_router(listener, router, shutdown));
    (site, format!("http://{addr}/"), log, stop)
}

pub async fn start_worker() -> (SocketAddr, Stop) {
    start_worker_with(local_worker()).await
}

/// A worker config allowed to fetch the test sites, which listen on
/// loopback addresses (127.0.0.1, and 127.0.0.2 for a second host): only
/// the worker's own config can allow internal addresses.
pub fn local_worker() -> worker::WorkerConfig {
    worker::WorkerConfig {
        allow_internal: vec!["127.0.0.0/8".into()],
        ..worker::WorkerConfig::default()
    }
}

pub async fn start_worker_with(config: worker::WorkerConfig) -> (SocketAddr, Stop) {
    let (listener, addr) = listen().await;
    let (stop, shutdown) = stopper();
    let worker = worker::Worker::new(&config).expect("worker config is valid");
    tokio::spawn(async move {
        worker::serve(listener, worker, worker::ServerOptions::default(), shutdown)
            .await
            .expect("worker serves")
    });
    (addr, stop)
}

/// An itemsaver over the embedded store in `dir`.
pub async fn start_itemsaver(dir: &Path) -> (SocketAddr, Stop) {
    serve_store(Arc::new(itemsaver::open_embedded(dir).expect("open store"))).await
}

/// An itemsaver over `store`.
pub async fn serve_store(store: Arc<dyn ItemStore>) -> (SocketAddr, Stop) {
    let (listener, addr) = listen().await;
    let (stop, shutdown) = stopper();
    tokio::spawn(async move {
        itemsaver::serve(
            listener,
            store,
            itemsaver::ServerOptions::default(),
            shutdown,
        )
        .await
        .expect("itemsaver serves")
    });
    (addr, stop)
}

/// Engine config for a crawl of `site_url` over these servers.
pub fn engine_config(site_url: &str, workers: &[SocketAddr], saver: SocketAddr) -> EngineConfig {
    EngineConfig {
        itemsaver_host: saver.to_string(),
        worker_hosts: workers.iter().map(|w| w.to_string()).collect(),
        seeds: vec![site_url.to_owned()],
        parser: "city_list".into(),
        item_linger_ms: 50,
        // Our own local site: no need to be gentle.
        per_host_concurrency: 32,
        // Tests that look at failures name their own file; the others must
        // not write into the source tree.
        failures_file: String::new(),
        ..EngineConfig::default()
    }
}

/// The paths `log` shows served, each with how often.
pub fn served(log: &RequestLog) -> BTreeMap<String, usize> {
    let mut paths = BTreeMap::new();
    for entry in log.entries() {
        *paths.entry(entry.path).or_default() += 1;
    }
    paths
}
