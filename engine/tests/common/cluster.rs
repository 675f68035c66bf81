//! A whole local cluster for one test: the demo site, in-process workers
//! and an itemsaver, each on a loopback port of its own, stopped when the
//! [`Cluster`] is dropped (issue 12).
//!
//! ```ignore
//! let cluster = Cluster::builder().profiles(200).workers(2).start().await;
//! let summary = cluster.crawl().await;
//! assert_eq!(cluster.items().await.len(), 200, "{summary}");
//! ```

use std::collections::BTreeMap;
use std::future::pending;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use demosite::{RequestLog, Site, SiteConfig, SiteOptions};
use engine::{EngineConfig, EngineError, Summary};
use itemsaver::ItemStore;
use rpcsupport::{
    connect_itemsaver, ConnectOptions, HostAddr, Item, ItemSaverClient, ScanRequest, Value,
};
use tarpc::context;
use tokio::sync::Semaphore;

use super::{engine_config, local_worker, serve_store, start_site_with, start_worker_with, Stop};

/// Longest a crawl of [`Cluster::run`] may take before the test fails
/// rather than hangs; the largest test crawl takes seconds.
const CRAWL_LIMIT: Duration = Duration::from_secs(120);

/// Where the cluster's itemsaver keeps items.
#[derive(Debug, Clone)]
pub enum Store {
    /// The embedded tantivy index, in the cluster's temp dir.
    Embedded,
    /// A fresh index on the Elasticsearch-API server at this URL
    /// (`testsupport::elasticsearch_url`).
    Elastic(String),
}

impl Store {
    /// Elasticsearch at `testsupport::elasticsearch_url`, or `None` (with
    /// the notice that `test` is skipped) where none is set up.
    pub fn elastic(test: &str) -> Option<Store> {
        testsupport::elasticsearch_url(test).map(Store::Elastic)
    }
}

/// What [`Cluster::builder`] starts; every method has the default named
/// on it.
pub struct Builder {
    gated: bool,
    ip: String,
    site: SiteConfig,
    options: SiteOptions,
    workers: Vec<worker::WorkerConfig>,
    external: Vec<SocketAddr>,
    store: Store,
}

impl Builder {
    /// The site's size (default [`SiteConfig::default`], 1000 profiles).
    pub fn site(mut self, site: SiteConfig) -> Builder {
        self.site = site;
        self
    }

    /// A default-shaped site (20 cities, 20 a page) of `profiles` profiles.
    pub fn profiles(self, profiles: u64) -> Builder {
        self.site(SiteConfig {
            profiles,
            ..SiteConfig::default()
        })
    }

    /// The site's test knobs: robots.txt, delays, a gate, the open web...
    /// (default none).
    pub fn options(mut self, options: SiteOptions) -> Builder {
        self.options = options;
        self
    }

    /// Site pages (not robots.txt) wait for a permit each, handed out by
    /// [`Cluster::let_through`] and [`Cluster::open_gate`], so the test
    /// paces the crawl (default: no gate).
    pub fn gated(mut self) -> Builder {
        self.gated = true;
        self
    }

    /// The loopback address the site listens on (default 127.0.0.1).
    pub fn ip(mut self, ip: &str) -> Builder {
        self.ip = ip.to_owned();
        self
    }

    /// `n` in-process workers allowed to fetch loopback (default one).
    pub fn workers(self, n: usize) -> Builder {
        self.worker_configs(vec![local_worker(); n])
    }

    /// One in-process worker per config (build them on [`local_worker`],
    /// or the site is out of their reach).
    pub fn worker_configs(mut self, configs: Vec<worker::WorkerConfig>) -> Builder {
        self.workers = configs;
        self
    }

    /// Workers already running elsewhere (processes, fakes), listed in
    /// [`Cluster::workers`] after the in-process ones.
    pub fn workers_at(mut self, addrs: impl IntoIterator<Item = SocketAddr>) -> Builder {
        self.external.extend(addrs);
        self
    }

    /// The itemsaver's store (default [`Store::Embedded`]).
    pub fn store(mut self, store: Store) -> Builder {
        self.store = store;
        self
    }

    /// Starts the site, the workers and the itemsaver.
    pub async fn start(mut self) -> Cluster {
        let gate = self.gated.then(|| Arc::new(Semaphore::new(0)));
        if let Some(gate) = &gate {
            self.options.gate = Some(gate.clone());
        }
        let (site, url, log, site_stop) = start_site_with(&self.ip, self.site, self.options).await;
        let mut stops = vec![site_stop];
        let mut workers = Vec::new();
        for config in &self.workers {
            let (addr, stop) = start_worker_with(config.clone()).await;
            workers.push(addr);
            stops.push(stop);
        }
        workers.extend(self.external);
        let dir = tempfile::tempdir().expect("a temp dir");
        let store: Arc<dyn ItemStore> = match &self.store {
            Store::Embedded => Arc::new(
                itemsaver::open_embedded(&dir.path().join("store")).expect("open the store"),
            ),
            Store::Elastic(url) => Arc::new(
                itemsaver::open_elastic(&itemsaver::store::elastic::Settings {
                    urls: vec![url.parse().expect("CRAWLER_TEST_ES_URL is a URL")],
                    index: fresh_index(),
                    auth: None,
                    ca_cert: None,
                })
                .await
                .expect("connect to Elasticsearch"),
            ),
        };
        let (saver, stop) = serve_store(store.clone()).await;
        stops.push(stop);
        Cluster {
            site,
            url,
            log,
            gate,
            workers,
            saver,
            store,
            _stops: stops,
            dir,
        }
    }
}

/// An index name no other test (or earlier run) uses.
fn fresh_index() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("test-{}-{millis}-{n}", std::process::id())
}

/// A running site, its workers and an itemsaver; everything stops (and the
/// temp dir goes) when it is dropped.
pub struct Cluster {
    /// The site's model, for expected pages, profiles and fields.
    pub site: Arc<Site>,
    /// The site's base URL, `http://IP:PORT/`.
    pub url: String,
    /// Every request the site served.
    pub log: Arc<RequestLog>,
    gate: Option<Arc<Semaphore>>,
    /// Every worker's address: the in-process ones, then [`Builder::workers_at`]'s.
    pub workers: Vec<SocketAddr>,
    /// The itemsaver's address.
    pub saver: SocketAddr,
    /// The store behind the itemsaver, for what only the store can say
    /// (Elasticsearch's own count).
    pub store: Arc<dyn ItemStore>,
    // Fields drop in declaration order: the servers are told to stop
    // before their temp dir goes.
    _stops: Vec<Stop>,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// A builder for one site of 1000 profiles on 127.0.0.1, one worker and
    /// the embedded store.
    pub fn builder() -> Builder {
        Builder {
            gated: false,
            ip: "127.0.0.1".into(),
            site: SiteConfig::default(),
            options: SiteOptions::default(),
            workers: vec![local_worker()],
            external: Vec::new(),
            store: Store::Embedded,
        }
    }

    /// The engine config for a crawl of the site from its front page over
    /// every worker into the itemsaver (see [`engine_config`]).
    pub fn config(&self) -> EngineConfig {
        engine_config(&self.url, &self.workers, self.saver)
    }

    /// A file name in the cluster's temp dir, for a test's rules or
    /// failures file.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `contents` to `name` in the cluster's temp dir (a rules
    /// file, say) and returns its path, as a config key takes it.
    pub fn write(&self, name: &str, contents: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write into the temp dir");
        path.display().to_string()
    }

    /// Lets `pages` more site pages through the gate of a
    /// [`Builder::gated`] cluster.
    pub fn let_through(&self, pages: usize) {
        self.gate
            .as_ref()
            .expect("a gated cluster")
            .add_permits(pages);
    }

    /// Lets every site page through from now on.
    pub fn open_gate(&self) {
        self.let_through(Semaphore::MAX_PERMITS / 2);
    }

    /// Crawls with `config` to the end and returns the summary; panics if
    /// the config is invalid, the crawl fails, or it outlasts two minutes.
    pub async fn run(&self, config: EngineConfig) -> Summary {
        self.try_run(config).await.expect("the crawl runs")
    }

    /// [`Cluster::run`] for a crawl that may fail: its error.
    pub async fn try_run(&self, config: EngineConfig) -> Result<Summary, EngineError> {
        let settings = config.validate().expect("a valid engine config");
        tokio::time::timeout(CRAWL_LIMIT, engine::run(settings, pending()))
            .await
            .expect("the crawl ends within two minutes")
    }

    /// [`Cluster::run`] with [`Cluster::config`] as it is.
    pub async fn crawl(&self) -> Summary {
        self.run(self.config()).await
    }

    /// A client of the itemsaver.
    pub async fn itemsaver(&self) -> ItemSaverClient {
        connect_itemsaver(&HostAddr::from(self.saver), ConnectOptions::default())
            .await
            .expect("connect to the itemsaver")
    }

    /// Every stored item, read through the itemsaver's `scan` RPC, in key
    /// order; panics if a key comes twice.
    pub async fn items(&self) -> Vec<Item> {
        let client = self.itemsaver().await;
        let mut items = BTreeMap::new();
        let mut after = None;
        loop {
            let request = ScanRequest {
                query: String::new(),
                after,
                size: 500,
            };
            let page = client
                .scan(context::current(), request)
                .await
                .expect("the scan RPC")
                .expect("scan the store");
            for item in page.items {
                let key = item.key();
                assert!(items.insert(key.clone(), item).is_none(), "{key} twice");
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return items.into_values().collect(),
            }
        }
    }

    /// Checks that profile `id` is stored (read through the itemsaver's
    /// `get`) with the kind and the fields the site gave it.
    pub async fn assert_profile_stored(&self, id: u64) {
        let expected = self.site.profile(id).expect("a profile of the site");
        let item = self
            .itemsaver()
            .await
            .get(context::current(), id.to_string())
            .await
            .expect("the get RPC")
            .expect("read the store")
            .unwrap_or_else(|| panic!("profile {id} missing"));
        assert_eq!(item.kind, "profile", "profile {id}");
        let fields = [
            ("name", Value::Str(expected.name)),
            ("age", Value::Int(expected.age.into())),
            ("height", Value::Int(expected.height.into())),
            ("city", Value::Str(expected.city)),
            ("education", Value::Str(expected.education)),
        ];
        for (field, value) in fields {
            assert_eq!(item.payload.get(field), Some(&value), "profile {id}");
        }
    }

    /// The paths the site served, each with how often.
    pub fn served(&self) -> BTreeMap<String, usize> {
        super::served(&self.log)
    }
}
