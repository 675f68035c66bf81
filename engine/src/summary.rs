//! The end-of-crawl report.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Counts for one crawl, printed when it ends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Pages a worker fetched and parsed successfully.
    pub pages: u64,
    /// Finished worker calls for crawl requests, whatever their outcome
    /// (a page, an HTTP error, a timeout, a lost worker): each may have
    /// reached the site. What `max_pages` bounds; robots.txt fetches are
    /// not counted.
    pub fetches: u64,
    /// Items the itemsaver acknowledged.
    pub items_saved: u64,
    /// Items the itemsaver refused as malformed.
    pub items_rejected: u64,
    /// Items still unacknowledged when the engine exited (itemsaver down);
    /// kept in the state dir, or written to a file named in the log.
    pub items_unsaved: u64,
    /// Failed requests by kind (`http_404`, `timeout`, `rpc_deadline`...).
    pub errors: BTreeMap<String, u64>,
    /// Requests sent again after a failed worker call.
    pub retries: u64,
    /// Pages fetched a second time after a resume (finished after the last
    /// commit of the URL store before the engine was killed).
    pub refetched: u64,
    /// Times a worker was taken out of rotation (dead or not answering).
    pub worker_outages: u64,
    /// Time every worker was down and the engine waited.
    pub waited_for_workers: Duration,
    /// Time saves to the itemsaver were failing.
    pub waited_for_itemsaver: Duration,
    /// The crawl carried on from a state dir.
    pub resumed: bool,
    /// Save calls sent again.
    pub save_retries: u64,
    /// Links dropped because their URL was already seen.
    pub duplicates: u64,
    /// Links dropped by the depth limit.
    pub too_deep: u64,
    /// Links that were not crawlable URLs.
    pub bad_urls: u64,
    /// Links outside the allowed domains or include/exclude patterns.
    pub out_of_scope: u64,
    /// What workers left out of pages to stay within their bounds (links
    /// past `max_links_per_page`, URLs over `max_url_bytes`, ...).
    pub limits: rpcsupport::types::ParseLimits,
    /// Requests not crawled on purpose, by reason (`robots_disallowed`,
    /// `not_html`, `offsite_redirect`...): not failures.
    pub skipped: BTreeMap<String, u64>,
    /// Fetches retried after a transient failure, by kind.
    pub fetch_retries: BTreeMap<String, u64>,
    /// Why the crawl stopped early, if it did.
    pub stop_reason: Option<String>,
    /// Pages per worker address, in pool order.
    pub per_worker: Vec<(String, u64)>,
    /// Call latency per worker: address, p50, p90, p99 in milliseconds
    /// (bucket upper bounds, so up to 1.5 times the true value).
    pub per_worker_latency_ms: Vec<(String, f64, f64, f64)>,
    /// Wall time of the crawl.
    pub elapsed: Duration,
    /// Whether the crawl was stopped before the queue ran dry.
    pub interrupted: bool,
    /// Requests still queued when the crawl stopped.
    pub left_pending: u64,
    /// A recrawl (`--recrawl`) of the state dir's crawl; what it found:
    pub recrawl: RecrawlCounts,
    /// What pages said about themselves: robots meta, canonical URLs,
    /// sitemaps, rendering.
    #[serde(default)]
    pub page: PageCounts,
}

/// What a recrawl found, page by page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecrawlCounts {
    /// This run was a recrawl.
    pub active: bool,
    /// Known URLs that were due and queued again.
    pub due: u64,
    /// Pages the server answered 304 for, or whose body hashed the same:
    /// nothing stored, their interval grows.
    pub unchanged: u64,
    /// Pages with a new body: their items stored again, interval shrinks.
    pub changed: u64,
    /// Pages fetched for the first time (new links, new sitemap entries).
    pub new: u64,
    /// Known pages now answering 404 or 410.
    pub gone: u64,
    /// Items the itemsaver deleted (of gone pages, or no longer produced
    /// by a changed one).
    pub items_deleted: u64,
    /// Deletes the itemsaver has not acknowledged yet (kept in the state
    /// dir for the next run).
    pub deletes_pending: u64,
}

/// What pages said about themselves ([`rpcsupport::PageMeta`]) and what
/// the engine did with it, summed over the crawl.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PageCounts {
    /// Pages that said `noindex` (robots meta or `X-Robots-Tag`).
    pub noindex: u64,
    /// Pages that said `nofollow`.
    pub nofollow: u64,
    /// Links left out for `rel="nofollow"`.
    pub nofollow_links: u64,
    /// Items left out because their page said `noindex`.
    pub noindex_items: u64,
    /// Sitemaps fetched and parsed.
    pub sitemaps: u64,
    /// Sitemaps named by robots.txt `Sitemap:` lines (then queued as any
    /// link: once, and only in scope).
    pub robots_sitemaps: u64,
    /// Sitemap entries left out (past the protocol's limits, not http(s)).
    pub sitemap_dropped: u64,
    /// Pages whose canonical URL was crawled (or queued) already: their
    /// items and links were dropped.
    pub canonical_duplicates: u64,
    /// Pages stored under their canonical URL instead of their own.
    pub canonical_rewritten: u64,
    /// Canonical URLs ignored: outside the crawl's scope, or not URLs.
    pub canonical_ignored: u64,
    /// Pages rendered in a browser, by reason (`always`, `learnt`,
    /// `script_shell`, `missing`).
    pub rendered: BTreeMap<String, u64>,
    /// Render requests sent again because their worker could not render
    /// (it lost its browser); no attempt used.
    pub render_requeued: u64,
    /// Pages a streaming parser read as a tree instead (markup outside
    /// what it streams exactly; `PageMeta::tree_fallback`).
    pub tree_fallbacks: u64,
}

impl PageCounts {
    /// Pages rendered, whatever the reason.
    pub fn rendered_total(&self) -> u64 {
        self.rendered.values().sum()
    }

    /// The summary's lines for these counts; nothing for a crawl where
    /// pages asked nothing.
    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.noindex + self.nofollow + self.nofollow_links > 0 {
            writeln!(
                f,
                "  {:<14} noindex {} pages ({} items left out), nofollow {} pages, rel=nofollow {} links",
                "robots meta", self.noindex, self.noindex_items, self.nofollow, self.nofollow_links
            )?;
        }
        if self.sitemaps + self.robots_sitemaps + self.sitemap_dropped > 0 {
            writeln!(
                f,
                "  {:<14} {} fetched ({} from robots.txt), {} entries dropped",
                "sitemaps", self.sitemaps, self.robots_sitemaps, self.sitemap_dropped
            )?;
        }
        if self.canonical_duplicates + self.canonical_rewritten + self.canonical_ignored > 0 {
            writeln!(
                f,
                "  {:<14} {} duplicates dropped, {} stored under it, {} out of scope ignored",
                "canonical",
                self.canonical_duplicates,
                self.canonical_rewritten,
                self.canonical_ignored
            )?;
        }
        if self.tree_fallbacks > 0 {
            writeln!(
                f,
                "  {:<14} {} pages read as a tree by a streaming parser (markup it does not stream)",
                "parse", self.tree_fallbacks
            )?;
        }
        let total = self.rendered_total();
        if total + self.render_requeued > 0 {
            let n = |k: &str| self.rendered.get(k).copied().unwrap_or(0);
            writeln!(
                f,
                "  {:<14} {total} (always {}, learnt {}, script_shell {}, missing {}); {} sent again for want of a browser",
                "rendered",
                n("always"),
                n("learnt"),
                n("script_shell"),
                n("missing"),
                self.render_requeued
            )?;
        }
        Ok(())
    }
}

impl Summary {
    /// Pages per second over the whole crawl.
    pub fn pages_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.pages as f64 / secs
        } else {
            0.0
        }
    }

    /// Total failed requests.
    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }
}

fn write_counts(
    f: &mut fmt::Formatter<'_>,
    label: &str,
    counts: &BTreeMap<String, u64>,
) -> fmt::Result {
    if counts.is_empty() {
        return writeln!(f, "  {label:<14} none");
    }
    let list: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    writeln!(f, "  {label:<14} {}", list.join(", "))
}

/// One line of the summary: `label` in a column, then `value`.
fn line(f: &mut fmt::Formatter<'_>, label: &str, value: fmt::Arguments<'_>) -> fmt::Result {
    writeln!(f, "  {label:<14} {value}")
}

/// The summary in sections: what the crawl did, what it recovered from,
/// per worker, what pages said, and what it left.
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = if self.interrupted {
            "stopped"
        } else {
            "finished"
        };
        writeln!(f, "crawl {how} in {:.1}s", self.elapsed.as_secs_f64())?;
        self.write_results(f)?;
        self.write_recovery(f)?;
        self.write_workers(f)?;
        self.page.write(f)?;
        self.write_leftovers(f)
    }
}

impl Summary {
    /// Pages, fetches, items, failures, and what was dropped or skipped.
    fn write_results(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        line(
            f,
            "pages",
            format_args!("{} ({:.1} pages/s)", self.pages, self.pages_per_sec()),
        )?;
        line(
            f,
            "fetches",
            format_args!(
                "{} (every finished call; max_pages counts these)",
                self.fetches
            ),
        )?;
        line(f, "items saved", format_args!("{}", self.items_saved))?;
        if self.items_rejected + self.items_unsaved > 0 {
            line(
                f,
                "items problems",
                format_args!(
                    "{} refused by the itemsaver (see the failures file), {} not saved yet",
                    self.items_rejected, self.items_unsaved
                ),
            )?;
        }
        line(f, "failed", format_args!("{}", self.failed()))?;
        write_counts(f, "by kind", &self.errors)?;
        line(
            f,
            "links dropped",
            format_args!(
                "{} duplicate, {} too deep, {} out of scope, {} bad URL",
                self.duplicates, self.too_deep, self.out_of_scope, self.bad_urls
            ),
        )?;
        if !self.limits.is_empty() {
            let l = &self.limits;
            line(
                f,
                "page limits",
                format_args!(
                    "{} links past max_links_per_page, {} URLs over max_url_bytes, {} <base href> ignored, {} results over max_result_bytes, {} pages cut short",
                    l.links_truncated, l.urls_too_long, l.base_href_ignored, l.results_dropped, l.page_truncated
                ),
            )?;
        }
        write_counts(f, "skipped", &self.skipped)?;
        write_counts(f, "fetch retries", &self.fetch_retries)
    }

    /// Retries, outages, waits and a resume.
    fn write_recovery(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        line(
            f,
            "retries",
            format_args!(
                "{} worker calls, {} item saves",
                self.retries, self.save_retries
            ),
        )?;
        line(f, "worker outages", format_args!("{}", self.worker_outages))?;
        line(
            f,
            "waited",
            format_args!(
                "{:.1}s for workers, {:.1}s for the itemsaver",
                self.waited_for_workers.as_secs_f64(),
                self.waited_for_itemsaver.as_secs_f64()
            ),
        )?;
        if self.resumed {
            line(
                f,
                "resumed",
                format_args!("yes; {} pages fetched twice", self.refetched),
            )?;
        }
        Ok(())
    }

    /// Pages and latency per worker.
    fn write_workers(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per: Vec<String> = self
            .per_worker
            .iter()
            .map(|(w, n)| format!("{w} {n}"))
            .collect();
        line(f, "per worker", format_args!("{}", per.join(", ")))?;
        if !self.per_worker_latency_ms.is_empty() {
            let lat: Vec<String> = self
                .per_worker_latency_ms
                .iter()
                .map(|(w, p50, p90, p99)| format!("{w} {p50:.1}/{p90:.1}/{p99:.1}"))
                .collect();
            line(
                f,
                "latency",
                format_args!("p50/p90/p99 ms: {}", lat.join(", ")),
            )?;
        }
        Ok(())
    }

    /// What a stop left pending, and a recrawl's counts.
    fn write_leftovers(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.interrupted {
            line(f, "left pending", format_args!("{}", self.left_pending))?;
        }
        let r = &self.recrawl;
        if r.active {
            line(
                f,
                "recrawl",
                format_args!(
                    "{} due; {} unchanged, {} changed, {} new, {} gone; {} items deleted, {} deletes pending",
                    r.due, r.unchanged, r.changed, r.new, r.gone, r.items_deleted, r.deletes_pending
                ),
            )?;
        }
        Ok(())
    }
}
