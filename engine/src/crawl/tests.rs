//! The loop's decisions, driven as a state machine under paused time: no
//! worker, no site; outcomes are fed in as values. The helpers that build
//! a crawl and its outcomes are here, the tests in `tests/`, one file per
//! decision:
//!
//! - `retry.rs`: retry, skip or fail, and the backoff.
//! - `robots.rs`: robots.txt waits and answers.
//! - `budget.rs`: the page budget and the time limit.
//! - `stop.rs`: the worker wait and the shutdown grace.
//! - `state.rs`: commits of the URL store, resuming from one.
//! - `recrawl.rs`: unchanged, changed and gone pages.
//! - `page.rs`: canonical URLs, sitemap depth, render learning.

use std::path::Path;
use std::time::Duration;

use rpcsupport::{CrawlError, FetchError, Item, ParseResult, ParserSpec, Request};
use tokio::time::Instant;

use super::machine::{Crawl, Step, Tick};
use super::{CallId, CallResult, EngineError, Outcome};
use crate::config::{EngineConfig, Settings};
use crate::state::{Requeue, StateDir};

mod budget;
mod page;
mod recrawl;
mod retry;
mod robots;
mod state;
mod stop;

fn settings(edit: impl FnOnce(&mut EngineConfig)) -> Settings {
    let mut cfg = EngineConfig {
        seeds: vec!["http://a.test/".into()],
        worker_hosts: vec!["127.0.0.1:1".into()],
        itemsaver_host: "127.0.0.1:2".into(),
        // Tests that want robots.txt turn it on.
        obey_robots: false,
        ..EngineConfig::default()
    };
    edit(&mut cfg);
    cfg.validate().expect("valid test settings")
}

fn crawl(settings: &Settings) -> Crawl<'_> {
    let workers = settings.workers.clone();
    // No state dir and no frontier bound reaching the disk in these tests.
    let mut c = Crawl::new(settings, &workers, std::env::temp_dir(), None);
    assert!(c.resume_or_seed(None).is_empty());
    c
}

/// Dispatches at `now`; returns the calls sent and the step.
fn dispatch(c: &mut Crawl<'_>, now: Instant) -> (Vec<(CallId, String)>, Step) {
    let mut sent = Vec::new();
    let step = c.dispatch(now, |id, r: &Request| sent.push((id, r.url.clone())));
    (sent, step)
}

fn answered(result: Result<ParseResult, CrawlError>) -> Option<Outcome> {
    Some(Outcome {
        worker: 0,
        result: CallResult::Answered(result),
    })
}

fn page(links: &[&str]) -> Option<Outcome> {
    answered(Ok(ParseResult {
        requests: links
            .iter()
            .map(|u| Request {
                url: (*u).into(),
                parser: ParserSpec::named("p"),
                depth: 1,
                hints: Default::default(),
            })
            .collect(),
        ..ParseResult::default()
    }))
}

fn status(code: u16) -> CrawlError {
    CrawlError::Fetch(FetchError::Status {
        url: "http://a.test/".into(),
        status: code,
        retry_after_secs: None,
    })
}

fn deadline() -> Option<Outcome> {
    Some(Outcome {
        worker: 0,
        result: CallResult::Failed {
            kind: "rpc_deadline",
            reason: "deadline".into(),
            lost: None,
        },
    })
}

/// The one call sent, its id.
fn one(sent: Vec<(CallId, String)>) -> CallId {
    assert_eq!(sent.len(), 1, "{sent:?}");
    sent[0].0
}

/// [`settings`] with the state dir `dir`.
fn state_settings(dir: &Path, edit: impl FnOnce(&mut EngineConfig)) -> Settings {
    settings(|c| {
        c.state_dir = dir.display().to_string();
        edit(c);
    })
}

/// A crawl writing its state to `dir`: seeded when `requeue` is `None`,
/// else resumed from what `dir` holds, its URLs requeued so.
fn stateful<'a>(settings: &'a Settings, dir: &Path, requeue: Option<Requeue>) -> Crawl<'a> {
    let (state, mut loaded) = StateDir::open(dir).unwrap();
    let loaded = requeue.map(|requeue| {
        loaded.frontier = state.frontier(requeue).unwrap();
        loaded
    });
    let mut c = Crawl::new(settings, &settings.workers, dir.to_owned(), Some(state));
    c.resume_or_seed(loaded);
    c
}
