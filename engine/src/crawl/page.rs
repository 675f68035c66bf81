//! What a page said about itself ([`PageMeta`]), and what the crawl does
//! with it, before its links go to the frontier and its items to the sink:
//!
//! - robots meta, `X-Robots-Tag` and `rel="nofollow"`: the worker already
//!   left out what the policy says to; here it is counted.
//! - sitemaps: their entries get the sitemap's own depth (a sitemap lists
//!   a site's pages; they are not "one link further"), so `max_depth`
//!   bounds the links followed from the pages a sitemap lists, not the
//!   list itself; sitemap indexes and robots.txt sitemaps are depth 0.
//! - canonical URL ([`canonical`]): an in-scope canonical becomes the
//!   page's identity in the seen set (and, with a state dir, a claimed
//!   record in the URL store, so a resume knows it); a page whose
//!   canonical was crawled already is a duplicate.
//! - rendering: counted by reason; a page `auto` had to render teaches its
//!   host and parser ([`crate::render::Learnt`]).

use rpcsupport::{Item, PageMeta, ParseResult, SITEMAP_PARSER};

use super::machine::Crawl;
use crate::scheduler::{Scheduler, Task};
use crate::scope::OutOfScope;
use crate::summary::PageCounts;

/// What a page's canonical URL means for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Canonical {
    /// None given, or the page's own URL: nothing changes.
    Own,
    /// Outside the crawl's scope (or not a URL): ignored.
    Ignored(OutOfScope),
    /// The canonical URL was crawled, queued or in flight already: this
    /// page is a copy of it.
    Duplicate,
    /// First seen through this page: now marked seen (so it is not
    /// fetched too), and this page's items are stored under it.
    Claimed(String),
}

/// Decides what the canonical URL of the page at `page_url` (normalized)
/// means, claiming it in `scheduler`'s seen set when it is new.
///
/// `refetch`: the page was fetched before (its request carries validators
/// or a content hash: a recrawl). Its canonical URL is then most likely
/// seen because this very page claimed it last time, so it is claimed
/// again rather than dropped as a duplicate (which would make a recrawl
/// delete the page's items). If the canonical page was crawled itself
/// instead, the items go to the same key (its URL or id): an upsert, not
/// a copy.
pub(super) fn canonical(
    scheduler: &mut Scheduler,
    page_url: &str,
    canonical: Option<&str>,
    refetch: bool,
) -> Canonical {
    let Some(raw) = canonical else {
        return Canonical::Own;
    };
    let normalized = match scheduler.admit(raw) {
        Ok(n) => n,
        Err(why) => return Canonical::Ignored(why),
    };
    if normalized == page_url {
        return Canonical::Own;
    }
    match scheduler.claim(&normalized) {
        Ok(true) => Canonical::Claimed(normalized),
        Ok(false) if refetch => Canonical::Claimed(normalized),
        Ok(false) => Canonical::Duplicate,
        Err(why) => Canonical::Ignored(why),
    }
}

/// Adds what `page` said to `counts`.
fn count(counts: &mut PageCounts, page: &PageMeta) {
    counts.noindex += u64::from(page.noindex);
    counts.nofollow += u64::from(page.nofollow);
    counts.nofollow_links += page.nofollow_links;
    counts.noindex_items += page.noindex_items;
    counts.sitemap_dropped += page.sitemap_dropped;
    counts.tree_fallbacks += u64::from(page.tree_fallback);
    if let Some(reason) = page.rendered {
        *counts.rendered.entry(reason.kind().to_owned()).or_default() += 1;
    }
}

/// Items of the page at `from` are filed under `to` (so an id-less item
/// gets the canonical URL's key); items naming another URL keep it.
fn rewrite_items(items: &mut [Item], from: &str, to: &str) {
    for item in items.iter_mut().filter(|i| i.url == from) {
        item.url = to.to_owned();
    }
}

impl Crawl<'_> {
    /// The hook of `page_done`, first thing: counts what `parsed.page`
    /// says and applies it (see the module doc); returns what is left to
    /// record, enqueue and store (`page` itself untouched).
    pub(super) fn page_meta(&mut self, task: &Task, mut parsed: ParseResult) -> ParseResult {
        let page = &parsed.page;
        count(&mut self.summary.page, page);
        self.page_metrics(page);
        if let Some(reason) = page.rendered {
            self.learnt.page_rendered(&task.request, reason);
        }
        if task.request.parser.name == SITEMAP_PARSER {
            self.summary.page.sitemaps += 1;
            for r in &mut parsed.requests {
                r.depth = task.request.depth;
            }
        }
        let url = &task.request.url;
        let hints = &task.request.hints;
        let refetch =
            hints.etag.is_some() || hints.last_modified.is_some() || hints.content_hash.is_some();
        let found = page.canonical.clone();
        let decision = canonical(&mut self.scheduler, url, found.as_deref(), refetch);
        let outcome = match &decision {
            Canonical::Own => None,
            Canonical::Ignored(_) => Some("ignored"),
            Canonical::Duplicate => Some("duplicate"),
            Canonical::Claimed(_) => Some("rewritten"),
        };
        if let Some(outcome) = outcome {
            self.registry
                .counter(
                    "crawler_canonical_total",
                    "Pages naming another canonical URL, by what was done: rewritten (stored under it), duplicate (dropped), ignored (out of scope).",
                    &[("outcome", outcome)],
                )
                .inc();
        }
        match decision {
            Canonical::Own => {}
            Canonical::Ignored(why) => {
                tracing::debug!(%url, canonical = ?found, ?why, "canonical URL out of scope; ignored");
                self.summary.page.canonical_ignored += 1;
            }
            Canonical::Duplicate => {
                tracing::debug!(%url, canonical = ?found, "canonical URL crawled already; page dropped as a duplicate");
                self.summary.page.canonical_duplicates += 1;
                parsed.items.clear();
                parsed.requests.clear();
            }
            Canonical::Claimed(to) => {
                self.summary.page.canonical_rewritten += 1;
                rewrite_items(&mut parsed.items, url, &to);
                if !refetch {
                    // A recrawl's claim was recorded by the first crawl.
                    self.record_claimed(task, &to);
                }
            }
        }
        parsed
    }
}

impl Crawl<'_> {
    /// What `page` said, to Prometheus (only what it did say: most pages
    /// say nothing and cost nothing here).
    fn page_metrics(&self, page: &PageMeta) {
        let rendered = page.rendered.map(|r| r.kind());
        let signals = [
            ("noindex", u64::from(page.noindex)),
            ("nofollow", u64::from(page.nofollow)),
            ("nofollow_links", page.nofollow_links),
            ("noindex_items", page.noindex_items),
            ("sitemap_dropped", page.sitemap_dropped),
            ("tree_fallback", u64::from(page.tree_fallback)),
        ];
        for (kind, n) in signals.into_iter().filter(|(_, n)| *n > 0) {
            self.registry
                .counter(
                    "crawler_page_signals_total",
                    "What pages asked of crawlers (robots meta, rel=nofollow) and sitemap entries dropped, by kind.",
                    &[("kind", kind)],
                )
                .add(n);
        }
        if let Some(reason) = rendered {
            self.registry
                .counter(
                    "crawler_rendered_total",
                    "Pages rendered in a browser, by reason.",
                    &[("reason", reason)],
                )
                .inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::Politeness;
    use crate::scope::Scope;
    use rpcsupport::{ParserSpec, RenderReason, Request};

    fn scheduler() -> Scheduler {
        let scope = Scope::new(vec!["a.test".into()], vec![], vec![], vec!["utm_*".into()]);
        Scheduler::new(None, scope, Politeness::default())
    }

    /// An in-scope canonical is claimed once (then it is a duplicate, and
    /// so is a canonical already queued), except by a page being fetched
    /// again; the page's own URL, in any spelling, changes nothing; an
    /// off-site one is ignored.
    #[test]
    fn canonical_decisions() {
        let mut s = scheduler();
        let page = "http://a.test/profile/1/print";
        assert_eq!(canonical(&mut s, page, None, false), Canonical::Own);
        assert_eq!(
            canonical(
                &mut s,
                page,
                Some("HTTP://A.test/profile/1/print#top"),
                false
            ),
            Canonical::Own
        );
        assert_eq!(
            canonical(
                &mut s,
                page,
                Some("http://a.test/profile/1?utm_source=x"),
                false
            ),
            Canonical::Claimed("http://a.test/profile/1".into())
        );
        assert_eq!(
            canonical(
                &mut s,
                "http://a.test/profile/1?view=print",
                Some("http://a.test/profile/1"),
                false
            ),
            Canonical::Duplicate
        );
        s.enqueue(Request::new(
            "http://a.test/profile/2",
            ParserSpec::named("p"),
            1,
        ))
        .unwrap();
        assert_eq!(
            canonical(
                &mut s,
                "http://a.test/profile/2/print",
                Some("http://a.test/profile/2"),
                false
            ),
            Canonical::Duplicate,
            "queued counts as crawled"
        );
        assert_eq!(
            canonical(&mut s, page, Some("http://elsewhere.test/x"), false),
            Canonical::Ignored(OutOfScope::Domain)
        );
        assert_eq!(
            canonical(&mut s, page, Some("javascript:void(0)"), false),
            Canonical::Ignored(OutOfScope::BadUrl)
        );
        // A recrawled page claims its canonical again: last time it was
        // most likely this page that claimed it.
        assert_eq!(
            canonical(&mut s, page, Some("http://a.test/profile/1"), true),
            Canonical::Claimed("http://a.test/profile/1".into())
        );
        // A claimed canonical is not fetched when a link to it comes.
        assert!(s
            .enqueue(Request::new(
                "http://a.test/profile/1",
                ParserSpec::named("p"),
                1
            ))
            .is_err());
    }

    /// Counts add up what the page said; items of the page move to the
    /// canonical URL, others keep theirs.
    #[test]
    fn counts_and_rewrites() {
        let mut c = PageCounts::default();
        let page = PageMeta {
            noindex: true,
            nofollow: true,
            nofollow_links: 3,
            noindex_items: 1,
            sitemap_dropped: 2,
            rendered: Some(RenderReason::ScriptShell),
            tree_fallback: true,
            ..PageMeta::default()
        };
        count(&mut c, &page);
        count(&mut c, &page);
        assert_eq!(
            (c.noindex, c.nofollow, c.nofollow_links, c.noindex_items),
            (2, 2, 6, 2)
        );
        assert_eq!(c.sitemap_dropped, 4);
        assert_eq!(c.tree_fallbacks, 2);
        assert_eq!(c.rendered.get("script_shell"), Some(&2));
        let item = |url: &str| Item {
            url: url.into(),
            kind: "profile".into(),
            id: None,
            payload: Default::default(),
        };
        let mut items = vec![item("http://a/p/1/print"), item("http://a/other")];
        rewrite_items(&mut items, "http://a/p/1/print", "http://a/p/1");
        assert_eq!(items[0].url, "http://a/p/1");
        assert_eq!(items[1].url, "http://a/other");
    }
}
