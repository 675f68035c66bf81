//! The `[worker]` section of `config.toml` ([`WorkerConfig`]), checked at
//! start, and [`WorkerError`], why a worker could not be set up.

use std::time::Duration;

use rpcsupport::ServeOptions;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::guard;

/// Room left in an RPC frame beside the page's result: tarpc's response
/// envelope and our `Result` tag take a few dozen bytes; the rest is slack.
const RESULT_MARGIN_BYTES: usize = 4096;

/// The `[worker]` section of `config.toml`. Every key is optional; flags
/// override the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// TCP port to serve RPC on (0 = any free port).
    pub port: u16,
    /// Address to bind.
    pub bind: String,
    /// Milliseconds to wait for a TCP connection to a site.
    pub connect_timeout_ms: u64,
    /// Milliseconds for a whole fetch: connect, redirects, headers, body.
    pub timeout_ms: u64,
    /// User-Agent header sent to sites.
    pub user_agent: String,
    /// Largest body accepted, after decompression (a sitemap's cap is
    /// `max_sitemap_bytes`, a robots.txt's `max_robots_bytes`).
    pub max_body_bytes: u64,
    /// Redirects followed before giving up with `TooManyRedirects`.
    pub max_redirects: usize,
    /// Largest RPC frame accepted or sent.
    pub max_frame_bytes: usize,
    /// Requests one RPC connection may have in progress at once.
    pub max_concurrent_requests: usize,
    /// Fetch policies one RPC connection may have given by id
    /// (`PolicyRef`); past that the oldest is forgotten, and a call that
    /// names it is answered `unknown_policy` (the engine gives it again).
    pub policies_per_connection: usize,
    /// Refuse to fetch from loopback, private, link-local and metadata
    /// addresses, except those in `allow_internal`.
    pub block_private_addresses: bool,
    /// Internal hosts this worker may fetch anyway: host names (with their
    /// subdomains), IP addresses or CIDR blocks. Only the worker's own
    /// configuration can allow an internal address; nothing in a request
    /// does.
    pub allow_internal: Vec<String>,
    /// Links one page may yield; the rest are counted as `links_truncated`.
    pub max_links_per_page: usize,
    /// Longest URL kept (bytes, as written and as resolved); longer links
    /// are dropped and counted, a longer `<base href>` is ignored.
    pub max_url_bytes: usize,
    /// Largest reply for one page (its requests and items, as encoded);
    /// what does not fit is left out and counted, so a reply never exceeds
    /// the RPC frame and costs the connection.
    pub max_result_bytes: usize,
    /// Elements and attributes parsed per HTML page; the rest of the page
    /// is ignored (counted as `page_truncated`). Bounds the parsed tree's
    /// memory whatever the markup.
    pub max_html_nodes: usize,
    /// Deepest element nesting parsed; the page is cut where it goes deeper
    /// (the HTML parser's time grows with nesting depth times tags).
    pub max_html_depth: usize,
    /// Bodies held in memory at once, across requests (bytes): as they
    /// download, and as their text while they are parsed. A fetch waits for
    /// room as its body grows (within `timeout_ms`).
    pub max_buffered_body_bytes: u64,
    /// Estimated memory (bytes) of the parsed trees being built at once;
    /// more pages wait for the parser instead of all building trees at the
    /// same time.
    pub max_parse_bytes: u64,
    /// Parse pages whose parser needs no document tree (`links`, and the
    /// demo site's `city_list`, `city`, `profile`) in one
    /// streaming pass over the text instead of building the tree: same
    /// result, no tree in memory. `false` parses every page into a tree.
    pub stream_parse: bool,
    /// Bytes of a robots.txt read; the rest is ignored (RFC 9309 asks
    /// crawlers to read at least 500 KiB).
    pub max_robots_bytes: u64,
    /// URLs one sitemap file may list (the sitemaps protocol's limit); the
    /// rest are counted as `sitemap_dropped`.
    pub max_sitemap_urls: usize,
    /// Bytes of one sitemap read, uncompressed (the protocol's 50 MiB): a
    /// gzipped sitemap is inflated, streaming, up to this many bytes and no
    /// more, and a sitemap body (compressed or not) is downloaded up to
    /// this many, not `max_body_bytes`. Past it the sitemap is parsed up
    /// to the limit and counted as `page_truncated`.
    pub max_sitemap_bytes: u64,
    /// Address to serve Prometheus metrics on; "" for none.
    pub metrics_addr: String,
    /// A PEM file of extra CA certificates to trust for https fetches (an
    /// intranet CA), besides the system's; "" for none.
    pub tls_ca_file: String,
    /// The headless browser that renders pages which need JavaScript: a
    /// path, `"auto"` (look for `chromium`, `chromium-headless-shell`,
    /// `google-chrome` on PATH) or `"none"` (this worker never renders).
    pub browser: String,
    /// Browser pages (tabs) rendering at once; more render requests wait.
    pub max_tabs: usize,
    /// Pages one browser process renders before it is replaced by a fresh
    /// one (browsers grow with use: caches, fragmentation, leaks).
    pub recycle_after_pages: u64,
    /// The browser is replaced once its process tree's resident memory
    /// passes this (MiB, summed over the browser and its children as
    /// proportional set size, so pages they share count once).
    pub browser_max_rss_mb: u64,
    /// Milliseconds for one page's whole render: load, scripts, and the
    /// network going quiet; past it the page is `RenderError::Timeout`.
    pub render_timeout_ms: u64,
    /// Milliseconds without any request outstanding, after the load event,
    /// for a rendered page to count as settled.
    pub render_idle_ms: u64,
    /// Load images, media and fonts when rendering (they rarely change
    /// what a parser extracts, and cost most of a page's bytes).
    pub render_load_images: bool,
    /// Bytes one rendered page may fetch in all (document and every
    /// subresource); requests past it are refused to the page and counted.
    pub max_render_bytes: u64,
    /// Requests one rendered page may make (document, scripts, XHR...);
    /// the rest are refused to the page and counted.
    pub max_render_requests: usize,
}

impl Default for WorkerConfig {
    /// Port 9000 on 127.0.0.1; 5 s to connect, 15 s per fetch; user agent
    /// `crawler/0.1`; bodies up to 10 MiB; 5 redirects; 16 MiB RPC frames;
    /// 4096 concurrent requests per connection; internal addresses blocked,
    /// none allowed. Per page: 10,000 links, 8 KiB URLs (the HTTP spec's
    /// suggested floor), 8 MiB replies, 250,000 HTML nodes, nesting 512
    /// deep (as Chrome's parser), 512 KiB of robots.txt, sitemaps of 50,000
    /// URLs and 50 MiB (the sitemaps protocol's limits). At once: 64 MiB
    /// of bodies, 64 MiB of parsed trees (one page's tree is at most
    /// 250,000 nodes of about 256 bytes). `links` pages streamed, no tree.
    /// Rendering: the browser found on
    /// PATH, 4 tabs, a fresh browser every 500 pages or past 1024 MiB,
    /// 15 s per page, settled after 500 ms without requests, no images,
    /// 32 MiB and 200 requests per page.
    fn default() -> Self {
        WorkerConfig {
            port: 9000,
            bind: "127.0.0.1".into(),
            connect_timeout_ms: 5_000,
            timeout_ms: 15_000,
            user_agent: "crawler/0.1".into(),
            max_body_bytes: 10 * 1024 * 1024,
            max_redirects: 5,
            max_frame_bytes: rpcsupport::transport::DEFAULT_MAX_FRAME_BYTES,
            max_concurrent_requests: 4096,
            policies_per_connection: 8,
            block_private_addresses: true,
            allow_internal: Vec::new(),
            max_links_per_page: 10_000,
            max_url_bytes: 8 * 1024,
            max_result_bytes: 8 * 1024 * 1024,
            max_html_nodes: 250_000,
            max_html_depth: 512,
            max_buffered_body_bytes: 64 * 1024 * 1024,
            max_parse_bytes: 64 * 1024 * 1024,
            stream_parse: true,
            max_robots_bytes: 512 * 1024,
            max_sitemap_urls: 50_000,
            max_sitemap_bytes: 50 * 1024 * 1024,
            metrics_addr: String::new(),
            tls_ca_file: String::new(),
            browser: "auto".into(),
            max_tabs: 4,
            recycle_after_pages: 500,
            browser_max_rss_mb: 1024,
            render_timeout_ms: 15_000,
            render_idle_ms: 500,
            render_load_images: false,
            max_render_bytes: 32 * 1024 * 1024,
            max_render_requests: 200,
        }
    }
}

impl WorkerConfig {
    /// Checks values serde cannot: zero timeouts and limits, a user agent
    /// that is not a valid header value. The first bad key is reported,
    /// in the order of the steps below.
    pub fn validate(&self) -> Result<(), WorkerError> {
        if self.bind.trim().is_empty() {
            return Err(config_error("bind", "must be an address such as 127.0.0.1"));
        }
        at_least(&[
            ("connect_timeout_ms", self.connect_timeout_ms, 1),
            ("timeout_ms", self.timeout_ms, 1),
            ("max_body_bytes", self.max_body_bytes, 1),
            ("max_frame_bytes", self.max_frame_bytes as u64, 1024),
            (
                "max_concurrent_requests",
                self.max_concurrent_requests as u64,
                1,
            ),
            (
                "policies_per_connection",
                self.policies_per_connection as u64,
                1,
            ),
        ])?;
        if reqwest::header::HeaderValue::from_str(&self.user_agent).is_err() {
            return Err(config_error(
                "user_agent",
                "must be printable ASCII without newlines",
            ));
        }
        guard::AllowInternal::parse(&self.allow_internal)
            .map_err(|reason| config_error("allow_internal", reason))?;
        at_least(&[
            ("max_links_per_page", self.max_links_per_page as u64, 1),
            ("max_url_bytes", self.max_url_bytes as u64, 1),
            ("max_html_nodes", self.max_html_nodes as u64, 1),
            ("max_html_depth", self.max_html_depth as u64, 1),
            ("max_sitemap_urls", self.max_sitemap_urls as u64, 1),
            ("max_robots_bytes", self.max_robots_bytes, 1),
            ("max_sitemap_bytes", self.max_sitemap_bytes, 1),
            ("max_parse_bytes", self.max_parse_bytes, 1),
            ("max_tabs", self.max_tabs as u64, 1),
            ("recycle_after_pages", self.recycle_after_pages, 1),
            ("browser_max_rss_mb", self.browser_max_rss_mb, 1),
            ("render_timeout_ms", self.render_timeout_ms, 1),
            ("max_render_bytes", self.max_render_bytes, 1),
            ("max_render_requests", self.max_render_requests as u64, 1),
        ])?;
        if self.render_idle_ms >= self.render_timeout_ms {
            return Err(config_error(
                "render_idle_ms",
                "must be below render_timeout_ms",
            ));
        }
        crate::render::BrowserChoice::parse(&self.browser)
            .map_err(|reason| config_error("browser", reason))?;
        self.check_budgets()
    }

    /// The limits that must fit in one another: every body in the
    /// buffered-body budget, every reply in a frame.
    fn check_budgets(&self) -> Result<(), WorkerError> {
        // A body that could never fit would wait for room until it timed out.
        let largest_body = self
            .max_body_bytes
            .max(self.max_robots_bytes)
            .max(self.max_sitemap_bytes);
        if self.max_buffered_body_bytes < largest_body {
            return Err(config_error(
                "max_buffered_body_bytes",
                "must be at least max_body_bytes, max_robots_bytes and max_sitemap_bytes",
            ));
        }
        // The reply also carries the response envelope (ids, the result's
        // tag, the limit counts), hence the margin below the frame.
        if self.max_result_bytes == 0
            || self.max_result_bytes + RESULT_MARGIN_BYTES > self.max_frame_bytes
        {
            return Err(config_error(
                "max_result_bytes",
                format!(
                    "must be at least 1 and at most max_frame_bytes - {RESULT_MARGIN_BYTES} ({})",
                    self.max_frame_bytes.saturating_sub(RESULT_MARGIN_BYTES)
                ),
            ));
        }
        Ok(())
    }

    /// The RPC limits for [`rpcsupport::serve`], open (no token, plain TCP).
    pub fn serve_options(&self) -> ServeOptions {
        ServeOptions {
            max_frame_bytes: self.max_frame_bytes,
            max_concurrent_requests: self.max_concurrent_requests,
            ..ServeOptions::default()
        }
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// A [`WorkerError::Config`] for `key`.
fn config_error(key: &'static str, reason: impl Into<String>) -> WorkerError {
    WorkerError::Config {
        key,
        reason: reason.into(),
    }
}

/// The first of `checks` (key, value, least allowed) whose value is too
/// small, as an error naming its key.
fn at_least(checks: &[(&'static str, u64, u64)]) -> Result<(), WorkerError> {
    match checks.iter().find(|(_, value, min)| value < min) {
        Some(&(key, _, min)) => Err(config_error(key, format!("must be at least {min}"))),
        None => Ok(()),
    }
}

/// Why a worker could not be set up. (Per-request failures are
/// [`CrawlError`](rpcsupport::CrawlError)s, answered to the engine, not this.)
#[derive(Debug, Error)]
pub enum WorkerError {
    /// A configuration value is out of range.
    #[error("worker config: `{key}` {reason}")]
    Config {
        /// The offending key, as spelt in `config.toml` and on the command line.
        key: &'static str,
        /// What was expected.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build HTTP client: {0}")]
    Client(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Makes one value of a config bad.
    type Spoil = fn(&mut WorkerConfig);

    /// The key `config` gets wrong, and the error's text.
    fn refused(config: WorkerConfig) -> (&'static str, String) {
        match config.validate() {
            Err(e @ WorkerError::Config { key, .. }) => (key, e.to_string()),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    /// The defaults pass; each bad value is refused naming its key and
    /// what was expected.
    #[test]
    fn each_bad_value_names_its_key() {
        WorkerConfig::default().validate().unwrap();
        let zero: [(&str, Spoil); 20] = [
            ("connect_timeout_ms", |c| c.connect_timeout_ms = 0),
            ("timeout_ms", |c| c.timeout_ms = 0),
            ("max_body_bytes", |c| c.max_body_bytes = 0),
            ("max_concurrent_requests", |c| c.max_concurrent_requests = 0),
            ("policies_per_connection", |c| c.policies_per_connection = 0),
            ("max_links_per_page", |c| c.max_links_per_page = 0),
            ("max_url_bytes", |c| c.max_url_bytes = 0),
            ("max_html_nodes", |c| c.max_html_nodes = 0),
            ("max_html_depth", |c| c.max_html_depth = 0),
            ("max_sitemap_urls", |c| c.max_sitemap_urls = 0),
            ("max_robots_bytes", |c| c.max_robots_bytes = 0),
            ("max_sitemap_bytes", |c| c.max_sitemap_bytes = 0),
            ("max_parse_bytes", |c| c.max_parse_bytes = 0),
            ("max_tabs", |c| c.max_tabs = 0),
            ("recycle_after_pages", |c| c.recycle_after_pages = 0),
            ("browser_max_rss_mb", |c| c.browser_max_rss_mb = 0),
            ("render_timeout_ms", |c| c.render_timeout_ms = 0),
            ("max_render_bytes", |c| c.max_render_bytes = 0),
            ("max_render_requests", |c| c.max_render_requests = 0),
            ("max_result_bytes", |c| c.max_result_bytes = 0),
        ];
        for (key, spoil) in zero {
            let mut config = WorkerConfig::default();
            spoil(&mut config);
            let (got, text) = refused(config);
            assert_eq!(got, key, "{text}");
            assert!(text.contains("must be at least 1"), "{text}");
        }
        let other: [(&str, &str, Spoil); 7] = [
            ("bind", "an address", |c| c.bind = " ".into()),
            ("max_frame_bytes", "at least 1024", |c| {
                c.max_frame_bytes = 1023
            }),
            ("user_agent", "printable ASCII", |c| {
                c.user_agent = "a\nb".into()
            }),
            ("allow_internal", "\"a b\"", |c| {
                c.allow_internal = vec!["a b".into()]
            }),
            ("render_idle_ms", "below render_timeout_ms", |c| {
                c.render_idle_ms = c.render_timeout_ms
            }),
            ("browser", "\"auto\"", |c| c.browser = String::new()),
            ("max_buffered_body_bytes", "max_sitemap_bytes", |c| {
                c.max_buffered_body_bytes = c.max_sitemap_bytes - 1
            }),
        ];
        for (key, expected, spoil) in other {
            let mut config = WorkerConfig::default();
            spoil(&mut config);
            let (got, text) = refused(config);
            assert_eq!(got, key, "{text}");
            assert!(text.contains(expected), "{key}: {text}");
        }
        // A reply that cannot fit in a frame beside its envelope.
        let (key, text) = refused(WorkerConfig {
            max_result_bytes: WorkerConfig::default().max_frame_bytes,
            ..WorkerConfig::default()
        });
        assert_eq!(key, "max_result_bytes");
        assert!(text.contains("at most max_frame_bytes - 4096"), "{text}");
    }
}
