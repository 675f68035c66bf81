//! What the crawl writes to the URL store ([`crate::state`]), and the
//! recrawl's decisions: a record per URL as it is queued, fetched, failed
//! or gone; the items of a page with its done status; acknowledgements
//! from the itemsaver; the group commits.
//!
//! On a recrawl (`--recrawl`) a page's previous record decides what its
//! fetch means: no earlier fetch, new; the worker found it unchanged (a
//! 304, or the same body hash), unchanged, its items kept and its interval
//! grown; otherwise changed, its items stored again (same ids: the
//! itemsaver upserts) and any item it no longer produces deleted; a 404
//! or 410, gone, its items deleted. Deletes wait in the store until the
//! itemsaver acknowledges them.

use std::collections::HashSet;

use rpcsupport::{PageMeta, ParseResult};
use tokio::time::Instant;

use super::machine::Crawl;
use super::EngineError;
use crate::items::Ack;
use crate::scheduler::{fingerprint, Task};
use crate::state::{unix_now, Change, CommitJob, Fetched, Meta, StateDir, UrlRecord, UrlStatus};

/// A task was queued for the first time: it gets its key in the store, and
/// its record says it is queued (at the next commit).
pub(super) fn record_queued(state: &mut Option<StateDir>, task: &mut Task) {
    if let Some(state) = state {
        task.key = state.store.new_key();
        state.store.put(task.key, UrlRecord::queued(task));
    }
}

/// The store key of `task`: every task a crawl with a state dir queues
/// got one ([`record_queued`], or the store's, on a resume or recrawl),
/// so a task without one is a bug, logged, and its record not written
/// rather than written under a key that is another URL's.
fn key_of(task: &Task) -> Option<u64> {
    if task.key == 0 {
        debug_assert!(false, "a task with no store key: {}", task.request.url);
        tracing::error!(url = %task.request.url, "a task with no URL-store key; its record is not written");
        return None;
    }
    Some(task.key)
}

impl Crawl<'_> {
    /// The record a recrawl compares against (`None` outside a recrawl:
    /// a plain crawl fetches each URL once and needs no read).
    fn previous(&self, key: u64) -> Option<UrlRecord> {
        self.settings.recrawl.as_ref()?;
        let state = self.state.as_ref()?;
        match state.store.get(key) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a URL record; treating the page as new");
                None
            }
        }
    }

    /// A page arrived: its record (validators, schedule, item keys) and its
    /// items, unacknowledged, go into the store together.
    pub(super) fn record_page(&mut self, task: &Task, parsed: &ParseResult) {
        if self.state.is_none() {
            return;
        }
        let Some(key) = key_of(task) else {
            return;
        };
        let fp = fingerprint(&task.request.url);
        let now = unix_now();
        let prev = self.previous(key);
        let prev_fetch = prev.as_ref().and_then(|r| r.fetched.as_ref());
        let change = change_of(&parsed.page, prev_fetch);
        let lastmod = task
            .request
            .hints
            .lastmod
            .or(prev.as_ref().and_then(|r| r.lastmod));
        let interval = self.settings.recrawl_policy.interval(
            prev_fetch.map(|f| f.interval_s),
            change,
            lastmod,
            now,
        );
        let fetched = fetched(&parsed.page, prev_fetch, change, interval, now);
        let (item_keys, dropped) = item_keys(change, prev.as_ref(), parsed);
        if self.summary.recrawl.active {
            let r = &mut self.summary.recrawl;
            match change {
                Change::New => r.new += 1,
                Change::Unchanged => r.unchanged += 1,
                Change::Changed => r.changed += 1,
            }
        }
        let record = UrlRecord {
            status: UrlStatus::Done,
            url: task.request.url.clone(),
            parser: task.request.parser.clone(),
            depth: task.request.depth,
            attempts: task.attempts,
            lastmod,
            fetched: Some(fetched),
            item_keys,
        };
        let state = self.state.as_mut().expect("checked");
        state.record_done(fp);
        state.store.put(key, record);
        state.store.items_sent(&parsed.items);
        if !dropped.is_empty() {
            state.store.deletes_queued(&dropped);
            self.deletes_out.extend(dropped);
        }
    }

    /// A request failed for good (`kind`, as counted): its record says
    /// failed, or gone for a 404 / 410, whose items are then deleted.
    pub(super) fn record_failed(&mut self, task: &Task, kind: &str) {
        if self.state.is_none() {
            return;
        }
        let Some(key) = key_of(task) else {
            return;
        };
        let gone = matches!(kind, "http_404" | "http_410");
        let mut record = self
            .previous(key)
            .unwrap_or_else(|| UrlRecord::queued(task));
        let known = record.fetched.is_some();
        record.status = if gone {
            UrlStatus::Gone
        } else {
            UrlStatus::Failed
        };
        record.attempts = task.attempts;
        let deletes = if gone {
            std::mem::take(&mut record.item_keys)
        } else {
            Vec::new()
        };
        if gone && known && self.summary.recrawl.active {
            self.summary.recrawl.gone += 1;
        }
        let state = self.state.as_mut().expect("checked");
        state.store.put(key, record);
        if !deletes.is_empty() {
            state.store.deletes_queued(&deletes);
            self.deletes_out.extend(deletes);
        }
    }

    /// The page of `task` claimed `canonical` (normalized) as its URL: the
    /// store keeps it as seen, so a resume does not fetch it
    /// ([`UrlStatus::Claimed`]).
    pub(super) fn record_claimed(&mut self, task: &Task, canonical: &str) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
        let claimed = Task::new(rpcsupport::Request {
            url: canonical.to_owned(),
            hints: Default::default(),
            ..task.request.clone()
        });
        let mut record = UrlRecord::queued(&claimed);
        record.status = UrlStatus::Claimed;
        let key = state.store.new_key();
        state.store.put(key, record);
    }

    /// A request not crawled on purpose (not HTML, redirected off-site):
    /// done, with nothing to keep.
    pub(super) fn record_skipped(&mut self, task: &Task) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
        let Some(key) = key_of(task) else {
            return;
        };
        let mut record = UrlRecord::queued(task);
        record.status = UrlStatus::Done;
        state.store.put(key, record);
    }

    /// The itemsaver acknowledged items or deletes.
    pub(super) fn on_ack(&mut self, ack: Ack) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
        match ack {
            Ack::Items(keys) => state.store.items_acked(&keys),
            Ack::Deletes(keys, deleted) => {
                state.store.deletes_acked(&keys);
                self.summary.recrawl.items_deleted += deleted;
            }
        }
    }

    /// Deletes queued since the last call, for the deleter.
    pub(super) fn take_deletes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.deletes_out)
    }

    /// Half of `state_commit_changes`, the bound on changes not on disk:
    /// a commit takes at most this many (plus the last page's), and while
    /// it is written at most this many more gather behind it.
    fn half_batch(&self) -> usize {
        self.settings.state_commit_changes.div_ceil(2)
    }

    /// Whether enough changes wait to commit before the interval is up.
    pub(super) fn commit_due(&self) -> bool {
        self.state
            .as_ref()
            .is_some_and(|s| s.store.changes() >= self.half_batch())
    }

    /// Whether dispatch must wait for the commit under way: the changes
    /// behind it and the calls in flight (each makes at least one change
    /// when it ends) have reached half a batch. So a kill, which loses the
    /// commit being written and what gathers behind it, loses at most
    /// `state_commit_changes` changes' worth of pages plus those in flight
    /// when it struck, however slow the disk; and workers stay busy while
    /// the disk keeps up (issue 13).
    pub(super) fn commit_backlogged(&self) -> bool {
        self.state.as_ref().is_some_and(|s| {
            s.store.committing() && s.store.changes() + self.in_flight.len() >= self.half_batch()
        })
    }

    /// Hands the store's changes, with the counters, to a commit that runs
    /// off the loop (`None`: no state dir, or a commit is under way).
    pub(super) fn begin_commit(&mut self, now: Instant) -> Option<CommitJob> {
        self.last_state_write = now;
        let meta = self.meta(false, now);
        let state = self.state.as_mut()?;
        match state.begin_commit(&meta) {
            Ok(job) => job,
            Err(e) => {
                tracing::error!(error = %e, "cannot write crawl state");
                None
            }
        }
    }

    /// The commit begun last is over (`Err`: its thread panicked).
    pub(super) fn end_commit(
        &mut self,
        result: Result<std::io::Result<()>, tokio::task::JoinError>,
    ) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
        let result = result.unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        if let Err(e) = &result {
            tracing::error!(error = %e, dir = %state.path().display(), "cannot write crawl state; its changes go with the next commit");
        }
        if let Err(e) = state.end_commit(result.is_ok()) {
            // Only the refetch count suffers.
            tracing::warn!(error = %e, "cannot trim done.log");
        }
    }

    fn meta(&mut self, finished: bool, now: Instant) -> Meta {
        self.absorb_scheduler_counts();
        let mut summary = self.summary.clone();
        summary.elapsed = self.elapsed(now);
        Meta {
            summary,
            finished,
            ..Meta::default()
        }
    }

    /// Commits the store's changes with the counters here and now (logged
    /// on failure: the changes stay in memory for the next try); the loop
    /// commits off its thread instead.
    #[cfg(test)]
    pub(super) fn commit(&mut self, now: Instant) {
        if let Err(e) = self.commit_with(false, now) {
            tracing::error!(error = %e, "cannot write crawl state");
        }
        self.last_state_write = now;
    }

    /// The final commit: `finished` when the crawl ran to its end.
    pub(super) fn commit_final(&mut self, finished: bool, now: Instant) -> Result<(), EngineError> {
        self.commit_with(finished, now)
    }

    fn commit_with(&mut self, finished: bool, now: Instant) -> Result<(), EngineError> {
        let meta = self.meta(finished, now);
        let Some(state) = self.state.as_mut() else {
            return Ok(());
        };
        state.commit(&meta).map_err(|source| EngineError::State {
            path: state.path().to_owned(),
            source,
        })
    }
}

/// What a page's fetch found, against its last fetch (`None`: never
/// fetched): a 304, or the same body hash, is unchanged.
fn change_of(page: &PageMeta, prev: Option<&Fetched>) -> Change {
    match prev {
        None => Change::New,
        Some(_) if page.unchanged => Change::Unchanged,
        Some(f) if page.content_hash.is_some() && page.content_hash == f.content_hash => {
            Change::Unchanged
        }
        Some(_) => Change::Changed,
    }
}

/// What is kept of a fetch: its status and validators (an unchanged
/// page's old ones where a 304 omits them), and when it is due again.
fn fetched(
    page: &PageMeta,
    prev: Option<&Fetched>,
    change: Change,
    interval: u64,
    now: i64,
) -> Fetched {
    let kept = |new: &Option<String>, old: Option<&Option<String>>| match change {
        Change::Unchanged => new.clone().or_else(|| old.cloned().flatten()),
        _ => new.clone(),
    };
    Fetched {
        http_status: match page.status {
            0 | 304 => 200,
            s => s,
        },
        etag: kept(&page.etag, prev.map(|f| &f.etag)),
        last_modified: kept(&page.last_modified, prev.map(|f| &f.last_modified)),
        content_hash: page
            .content_hash
            .or_else(|| prev.and_then(|f| f.content_hash)),
        fetched_at: now,
        next_fetch: now.saturating_add(interval as i64),
        interval_s: interval,
    }
}

/// The item keys a page now stands for (an unchanged page keeps its old
/// ones), and those a changed page no longer produces, to delete.
fn item_keys(
    change: Change,
    prev: Option<&UrlRecord>,
    parsed: &ParseResult,
) -> (Vec<String>, Vec<String>) {
    let keys: Vec<String> = match (change, prev) {
        (Change::Unchanged, Some(p)) => p.item_keys.clone(),
        _ => parsed.items.iter().map(|i| i.key()).collect(),
    };
    let dropped = match (change, prev) {
        (Change::Changed, Some(p)) => {
            let now_produced: HashSet<&String> = keys.iter().collect();
            p.item_keys
                .iter()
                .filter(|k| !now_produced.contains(k))
                .cloned()
                .collect()
        }
        _ => Vec::new(),
    };
    (keys, dropped)
}
