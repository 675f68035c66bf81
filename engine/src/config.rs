//! The engine's settings: `[engine]` in `config.toml`, then flags, then
//! validation into [`Settings`], the checked form the crawl uses.

use std::path::PathBuf;
use std::time::Duration;

use rpcsupport::{HostAddr, ParserSpec, Request};
use serde::Deserialize;
use thiserror::Error;

/// `[engine]` as written in `config.toml`. Every key is optional; the
/// defaults are documented on [`EngineConfig::default`] and in the shipped
/// `config.toml`. Flags of the same name override these.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Where the itemsaver listens.
    pub itemsaver_host: String,
    /// Where the workers listen; one RPC connection each.
    pub worker_hosts: Vec<String>,
    /// Start URLs.
    pub seeds: Vec<String>,
    /// Parser run on the seed pages.
    pub parser: String,
    /// Requests dispatched concurrently across all workers.
    pub worker_count: usize,
    /// Links followed from a seed before stopping; 0 means no limit.
    pub max_depth: u32,
    /// Items per save RPC to the itemsaver.
    pub item_batch_size: usize,
    /// How long a partial item batch may wait for more items.
    pub item_linger_ms: u64,
    /// Deadline of one `process` call on a worker.
    pub rpc_timeout_ms: u64,
    /// How long to wait for a TCP connection to a worker or the itemsaver.
    pub connect_timeout_ms: u64,
    /// Tries per request when the call to a worker fails (worker gone,
    /// deadline exceeded); after that the request is recorded as failed.
    pub max_attempts: u32,
    /// How long the engine waits while every worker is down before it
    /// gives up the crawl.
    pub worker_wait_ms: u64,
    /// Items buffered in memory while the itemsaver is slow or down; more
    /// spill to a file on disk.
    pub item_buffer_items: usize,
    /// At the end of a crawl, how long to keep trying an itemsaver that is
    /// down before exiting with the items kept on disk.
    pub itemsaver_wait_ms: u64,
    /// On Ctrl-C, how long to wait for calls in flight before abandoning
    /// them (they stay pending in the state dir).
    pub shutdown_grace_ms: u64,
    /// Directory for the crawl's state; empty for none. With it, a stopped
    /// or killed engine resumes where it was when started again.
    pub state_dir: String,
    /// How often the state is written.
    pub state_interval_ms: u64,
    /// Requests that finally failed are appended here as JSON lines; empty
    /// for none.
    pub failures_file: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            itemsaver_host: ":1234".into(),
            worker_hosts: vec![":9000".into(), ":9001".into()],
            seeds: Vec::new(),
            parser: "city_list".into(),
            worker_count: 100,
            max_depth: 0,
            item_batch_size: 500,
            item_linger_ms: 200,
            rpc_timeout_ms: 60_000,
            connect_timeout_ms: 5_000,
            max_attempts: 3,
            worker_wait_ms: 300_000,
            item_buffer_items: 100_000,
            itemsaver_wait_ms: 300_000,
            shutdown_grace_ms: 30_000,
            state_dir: String::new(),
            state_interval_ms: 5_000,
            failures_file: "data/failures.jsonl".into(),
        }
    }
}

/// Checked settings, built by [`EngineConfig::validate`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// Parsed itemsaver address.
    pub itemsaver: HostAddr,
    /// Parsed worker addresses, at least one, no duplicates.
    pub workers: Vec<HostAddr>,
    /// The seed requests (depth 0).
    pub seeds: Vec<Request>,
    /// At least 1.
    pub worker_count: usize,
    /// `None` = unlimited.
    pub max_depth: Option<u32>,
    /// At least 1.
    pub item_batch_size: usize,
    /// Linger of a partial batch.
    pub item_linger: Duration,
    /// Deadline of one worker call.
    pub rpc_timeout: Duration,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// At least 1.
    pub max_attempts: u32,
    /// How long all workers may be down.
    pub worker_wait: Duration,
    /// At least 1.
    pub item_buffer_items: usize,
    /// How long to wait for a down itemsaver at the end.
    pub itemsaver_wait: Duration,
    /// How long Ctrl-C waits for calls in flight.
    pub shutdown_grace: Duration,
    /// Where state is kept, if anywhere.
    pub state_dir: Option<PathBuf>,
    /// At least 1 ms.
    pub state_interval: Duration,
    /// Where final failures are recorded, if anywhere.
    pub failures_file: Option<PathBuf>,
}

/// A config value that cannot be used; names the key.
#[derive(Debug, Error, PartialEq)]
#[error("engine.{key}: {reason}")]
pub struct InvalidSetting {
    /// The key, without the `engine.` prefix.
    pub key: &'static str,
    /// What is wrong and what was expected.
    pub reason: String,
}

fn invalid(key: &'static str, reason: impl Into<String>) -> InvalidSetting {
    InvalidSetting {
        key,
        reason: reason.into(),
    }
}

impl EngineConfig {
    /// Checks every value and builds [`Settings`].
    pub fn validate(&self) -> Result<Settings, InvalidSetting> {
        let itemsaver = self
            .itemsaver_host
            .parse()
            .map_err(|e: rpcsupport::HostError| invalid("itemsaver_host", e.to_string()))?;
        if self.worker_hosts.is_empty() {
            return Err(invalid(
                "worker_hosts",
                "at least one worker host is needed",
            ));
        }
        let mut workers: Vec<HostAddr> = Vec::new();
        for host in &self.worker_hosts {
            let addr: HostAddr = host
                .parse()
                .map_err(|e: rpcsupport::HostError| invalid("worker_hosts", e.to_string()))?;
            if workers.contains(&addr) {
                return Err(invalid("worker_hosts", format!("{addr} is listed twice")));
            }
            workers.push(addr);
        }
        if self.seeds.is_empty() {
            return Err(invalid(
                "seeds",
                "no seed URL: pass --seed URL or set engine.seeds",
            ));
        }
        if self.parser.trim().is_empty() {
            return Err(invalid("parser", "empty parser name"));
        }
        let mut seeds = Vec::new();
        for seed in &self.seeds {
            let url = url::Url::parse(seed)
                .map_err(|e| invalid("seeds", format!("{seed:?} is not a URL: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(invalid("seeds", format!("{seed:?} is not an http(s) URL")));
            }
            seeds.push(Request {
                url: url.to_string(),
                parser: ParserSpec::named(self.parser.trim()),
                depth: 0,
            });
        }
        let at_least_one = |key, v: u64| {
            if v == 0 {
                Err(invalid(key, "must be at least 1"))
            } else {
                Ok(())
            }
        };
        at_least_one("worker_count", self.worker_count as u64)?;
        at_least_one("item_batch_size", self.item_batch_size as u64)?;
        at_least_one("rpc_timeout_ms", self.rpc_timeout_ms)?;
        at_least_one("connect_timeout_ms", self.connect_timeout_ms)?;
        at_least_one("max_attempts", self.max_attempts as u64)?;
        at_least_one("item_buffer_items", self.item_buffer_items as u64)?;
        at_least_one("state_interval_ms", self.state_interval_ms)?;
        let path = |s: &str| (!s.trim().is_empty()).then(|| PathBuf::from(s.trim()));
        Ok(Settings {
            itemsaver,
            workers,
            seeds,
            worker_count: self.worker_count,
            max_depth: (self.max_depth > 0).then_some(self.max_depth),
            item_batch_size: self.item_batch_size,
            item_linger: Duration::from_millis(self.item_linger_ms),
            rpc_timeout: Duration::from_millis(self.rpc_timeout_ms),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            max_attempts: self.max_attempts,
            worker_wait: Duration::from_millis(self.worker_wait_ms),
            item_buffer_items: self.item_buffer_items,
            itemsaver_wait: Duration::from_millis(self.itemsaver_wait_ms),
            shutdown_grace: Duration::from_millis(self.shutdown_grace_ms),
            state_dir: path(&self.state_dir),
            state_interval: Duration::from_millis(self.state_interval_ms),
            failures_file: path(&self.failures_file),
        })
    }
}

/// Default location of the shared config file.
pub fn default_config_path() -> PathBuf {
    PathBuf::from("config.toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_seed() -> EngineConfig {
        EngineConfig {
            seeds: vec!["http://127.0.0.1:8080/".into()],
            ..EngineConfig::default()
        }
    }

    /// The defaults plus one seed validate.
    #[test]
    fn defaults_with_a_seed_are_valid() {
        let s = with_seed().validate().unwrap();
        assert_eq!(s.workers.len(), 2);
        assert_eq!(s.itemsaver.to_string(), "127.0.0.1:1234");
        assert_eq!(s.max_depth, None);
        assert_eq!(s.seeds[0].parser.name, "city_list");
    }

    /// Each bad value is reported under its own key.
    #[test]
    fn bad_values_name_their_key() {
        let cases: Vec<(EngineConfig, &str)> = vec![
            (
                EngineConfig {
                    worker_hosts: vec!["nonsense".into()],
                    ..with_seed()
                },
                "worker_hosts",
            ),
            (
                EngineConfig {
                    worker_hosts: vec![],
                    ..with_seed()
                },
                "worker_hosts",
            ),
            (
                EngineConfig {
                    worker_hosts: vec![":1".into(), "127.0.0.1:1".into()],
                    ..with_seed()
                },
                "worker_hosts",
            ),
            (
                EngineConfig {
                    itemsaver_host: "x:y".into(),
                    ..with_seed()
                },
                "itemsaver_host",
            ),
            (EngineConfig::default(), "seeds"),
            (
                EngineConfig {
                    seeds: vec!["ftp://x/".into()],
                    ..with_seed()
                },
                "seeds",
            ),
            (
                EngineConfig {
                    seeds: vec!["not a url".into()],
                    ..with_seed()
                },
                "seeds",
            ),
            (
                EngineConfig {
                    worker_count: 0,
                    ..with_seed()
                },
                "worker_count",
            ),
            (
                EngineConfig {
                    parser: " ".into(),
                    ..with_seed()
                },
                "parser",
            ),
        ];
        for (config, key) in cases {
            let err = config.validate().unwrap_err();
            assert_eq!(err.key, key, "{err}");
            assert!(err.to_string().starts_with(&format!("engine.{key}: ")));
        }
    }
}
