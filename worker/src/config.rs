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
    /// 250,000 nodes of about 256 bytes). Rendering: the browser found on
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
            block_private_addresses: true,
            allow_internal: Vec::new(),
            max_links_per_page: 10_000,
            max_url_bytes: 8 * 1024,
            max_result_bytes: 8 * 1024 * 1024,
            max_html_nodes: 250_000,
            max_html_depth: 512,
            max_buffered_body_bytes: 64 * 1024 * 1024,
            max_parse_bytes: 64 * 1024 * 1024,
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
    /// that is not a valid header value.
    pub fn validate(&self) -> Result<(), WorkerError> {
        let bad = |key: &'static str, reason: &str| {
            Err(WorkerError::Config {
                key,
                reason: reason.to_owned(),
            })
        };
        if self.bind.trim().is_empty() {
            return bad("bind", "must be an address such as 127.0.0.1");
        }
        if self.connect_timeout_ms == 0 {
            return bad("connect_timeout_ms", "must be at least 1");
        }
        if self.timeout_ms == 0 {
            return bad("timeout_ms", "must be at least 1");
        }
        if self.max_body_bytes == 0 {
            return bad("max_body_bytes", "must be at least 1");
        }
        if self.max_frame_bytes < 1024 {
            return bad("max_frame_bytes", "must be at least 1024");
        }
        if self.max_concurrent_requests == 0 {
            return bad("max_concurrent_requests", "must be at least 1");
        }
        if reqwest::header::HeaderValue::from_str(&self.user_agent).is_err() {
            return bad("user_agent", "must be printable ASCII without newlines");
        }
        if let Err(reason) = guard::AllowInternal::parse(&self.allow_internal) {
            return bad("allow_internal", &reason);
        }
        for (key, value) in [
            ("max_links_per_page", self.max_links_per_page),
            ("max_url_bytes", self.max_url_bytes),
            ("max_html_nodes", self.max_html_nodes),
            ("max_html_depth", self.max_html_depth),
            ("max_sitemap_urls", self.max_sitemap_urls),
        ] {
            if value == 0 {
                return bad(key, "must be at least 1");
            }
        }
        if self.max_robots_bytes == 0 {
            return bad("max_robots_bytes", "must be at least 1");
        }
        if self.max_sitemap_bytes == 0 {
            return bad("max_sitemap_bytes", "must be at least 1");
        }
        if self.max_parse_bytes == 0 {
            return bad("max_parse_bytes", "must be at least 1");
        }
        for (key, value) in [
            ("max_tabs", self.max_tabs as u64),
            ("recycle_after_pages", self.recycle_after_pages),
            ("browser_max_rss_mb", self.browser_max_rss_mb),
            ("render_timeout_ms", self.render_timeout_ms),
            ("max_render_bytes", self.max_render_bytes),
            ("max_render_requests", self.max_render_requests as u64),
        ] {
            if value == 0 {
                return bad(key, "must be at least 1");
            }
        }
        if self.render_idle_ms >= self.render_timeout_ms {
            return bad("render_idle_ms", "must be below render_timeout_ms");
        }
        if let Err(reason) = crate::render::BrowserChoice::parse(&self.browser) {
            return bad("browser", &reason);
        }
        // A body that could never fit would wait for room until it timed out.
        let largest_body = self
            .max_body_bytes
            .max(self.max_robots_bytes)
            .max(self.max_sitemap_bytes);
        if self.max_buffered_body_bytes < largest_body {
            return bad(
                "max_buffered_body_bytes",
                "must be at least max_body_bytes, max_robots_bytes and max_sitemap_bytes",
            );
        }
        // The reply also carries the response envelope (ids, the result's
        // tag, the limit counts), hence the margin below the frame.
        if self.max_result_bytes == 0
            || self.max_result_bytes + RESULT_MARGIN_BYTES > self.max_frame_bytes
        {
            return bad(
                "max_result_bytes",
                &format!(
                    "must be at least 1 and at most max_frame_bytes - {RESULT_MARGIN_BYTES} ({})",
                    self.max_frame_bytes.saturating_sub(RESULT_MARGIN_BYTES)
                ),
            );
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
