//! The live dashboard: what the crawl loop counts, as a web page beside
//! `/metrics` on `metrics_addr` (`/` the page, `/api/status` its JSON).
//!
//! The loop hands the dashboard a [`Tick`] every progress tick; the page
//! polls `/api/status` once a second and draws pages/s and items/s from the
//! sampled counts. Everything it keeps is bounded: [`SERIES_POINTS`]
//! samples (halved, at half the resolution, when full, so the whole crawl
//! stays on the chart), the hosts the loop picked (the busiest
//! [`HOSTS_SHOWN`]), and the failure log's latest records.
//!
//! The page is one HTML file with its own small script and inline SVG
//! charts (`dashboard.html`): no chart library, since two line charts are
//! fewer bytes of code than any library's loader, and no build step.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::progress::Status;
use crate::scheduler::HostView;
use crate::summary::{PageCounts, Summary};
use rpcsupport::metrics::{Page, Routes};

/// Most samples of the pages/items chart.
pub const SERIES_POINTS: usize = 600;
/// Hosts the hosts table shows (the busiest by queue).
pub const HOSTS_SHOWN: usize = 50;
/// Time between two chart samples at the start (doubles each time the
/// series is halved).
const FIRST_SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// The page itself.
const PAGE: &str = include_str!("dashboard.html");

/// Where the crawl is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Connecting to workers and the itemsaver.
    Starting,
    /// Dispatching.
    Running,
    /// No new dispatches; waiting for calls in flight, flushing items.
    Stopping,
    /// Done; the summary is final.
    Finished,
    /// Stopped on an error.
    Failed,
}

/// One worker's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerView {
    /// Its address.
    pub addr: String,
    /// Whether it is in rotation.
    pub up: bool,
    /// Pages it fetched.
    pub pages: u64,
    /// Call latency quantiles, milliseconds (bucket bounds).
    pub p50_ms: f64,
    /// The 99th percentile.
    pub p99_ms: f64,
}

/// What the loop reports at a tick.
#[derive(Debug, Clone)]
pub struct Tick {
    /// The status line's numbers.
    pub status: Status,
    /// Failed requests by kind.
    pub errors: BTreeMap<String, u64>,
    /// Hosts the frontier knows, and the busiest of them.
    pub hosts_total: usize,
    /// The busiest hosts, busiest first.
    pub hosts: Vec<HostView>,
    /// Every worker, in pool order.
    pub workers: Vec<WorkerView>,
    /// The failure log's latest records.
    pub recent_failures: Vec<serde_json::Value>,
    /// What pages said about themselves (robots meta, canonical URLs,
    /// sitemaps, rendering), so far.
    pub page: PageCounts,
}

#[derive(Debug, Serialize)]
struct View {
    phase: Phase,
    stop_reason: Option<String>,
    pages: u64,
    queued: usize,
    in_flight: usize,
    items: u64,
    errors_total: u64,
    workers_up: usize,
    workers_total: usize,
    elapsed_s: f64,
    /// `[elapsed_s, pages, items]`, oldest first.
    series: Vec<[f64; 3]>,
    errors: BTreeMap<String, u64>,
    recent_failures: Vec<serde_json::Value>,
    hosts_total: usize,
    hosts: Vec<HostView>,
    workers: Vec<WorkerView>,
    /// Robots meta, canonical, sitemap and rendering counts.
    page: PageCounts,
    /// The final summary as the engine prints it, once finished.
    summary_text: Option<String>,
    /// The final summary's numbers.
    summary: Option<Summary>,
    #[serde(skip)]
    sample_every: Duration,
    #[serde(skip)]
    last_sample: Option<Duration>,
}

/// The dashboard's state, shared by the crawl loop (writer) and the HTTP
/// endpoint (reader). A short lock per tick and per poll.
#[derive(Debug)]
pub struct Dashboard {
    view: Mutex<View>,
}

impl Default for Dashboard {
    fn default() -> Self {
        Dashboard {
            view: Mutex::new(View {
                phase: Phase::Starting,
                stop_reason: None,
                pages: 0,
                queued: 0,
                in_flight: 0,
                items: 0,
                errors_total: 0,
                workers_up: 0,
                workers_total: 0,
                elapsed_s: 0.0,
                series: Vec::new(),
                errors: BTreeMap::new(),
                recent_failures: Vec::new(),
                hosts_total: 0,
                hosts: Vec::new(),
                workers: Vec::new(),
                page: PageCounts::default(),
                summary_text: None,
                summary: None,
                sample_every: FIRST_SAMPLE_EVERY,
                last_sample: None,
            }),
        }
    }
}

impl Dashboard {
    /// A dashboard in the "starting" phase.
    pub fn new() -> Arc<Dashboard> {
        Arc::new(Dashboard::default())
    }

    fn view(&self) -> std::sync::MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The loop's numbers at a tick.
    pub fn tick(&self, tick: Tick) {
        let mut v = self.view();
        if v.phase == Phase::Starting {
            v.phase = Phase::Running;
        }
        let s = &tick.status;
        v.pages = s.pages;
        v.queued = s.queued;
        v.in_flight = s.in_flight;
        v.items = s.items;
        v.errors_total = s.errors;
        v.workers_up = s.workers_up;
        v.workers_total = s.workers;
        v.elapsed_s = s.elapsed.as_secs_f64();
        v.errors = tick.errors;
        v.hosts_total = tick.hosts_total;
        v.hosts = tick.hosts;
        v.workers = tick.workers;
        v.recent_failures = tick.recent_failures;
        v.page = tick.page;
        v.sample(s.elapsed, s.pages, s.items);
    }

    /// No new dispatches, for `reason`.
    pub fn stopping(&self, reason: &str) {
        let mut v = self.view();
        if matches!(v.phase, Phase::Starting | Phase::Running) {
            v.phase = Phase::Stopping;
            v.stop_reason = Some(reason.to_owned());
        }
    }

    /// The crawl is over: `summary` is final (`ok` false: it stopped on an
    /// error), and so are the frontier's `hosts` (of `hosts_total`).
    pub fn finish(&self, summary: &Summary, ok: bool, hosts_total: usize, hosts: Vec<HostView>) {
        let mut v = self.view();
        v.hosts_total = hosts_total;
        v.hosts = hosts;
        for (w, (_, pages)) in v.workers.iter_mut().zip(&summary.per_worker) {
            w.pages = *pages;
        }
        v.phase = if ok { Phase::Finished } else { Phase::Failed };
        v.pages = summary.pages;
        v.items = summary.items_saved;
        v.errors_total = summary.failed();
        v.errors = summary.errors.clone();
        v.page = summary.page.clone();
        v.elapsed_s = summary.elapsed.as_secs_f64();
        v.in_flight = 0;
        v.queued = summary.left_pending as usize;
        if v.stop_reason.is_none() {
            v.stop_reason = summary.stop_reason.clone();
        }
        let (elapsed, pages, items) = (summary.elapsed, summary.pages, summary.items_saved);
        v.last_sample = None;
        v.sample(elapsed, pages, items);
        v.summary_text = Some(summary.to_string());
        v.summary = Some(summary.clone());
    }

    /// The JSON `/api/status` answers.
    pub fn json(&self) -> String {
        serde_json::to_string(&*self.view()).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The routes to serve beside `/metrics`: `/` (and `/dashboard`) the
    /// page, `/api/status` its data.
    pub fn routes(self: &Arc<Self>) -> Routes {
        let dashboard = self.clone();
        Arc::new(move |path: &str| {
            let path = path.split('?').next().unwrap_or_default();
            match path {
                "/" | "/dashboard" => Some(Page {
                    content_type: "text/html; charset=utf-8",
                    body: PAGE.to_owned(),
                }),
                "/api/status" => Some(Page {
                    content_type: "application/json",
                    body: dashboard.json(),
                }),
                _ => None,
            }
        })
    }
}

impl View {
    /// Adds a chart sample if one is due; a full series is halved (every
    /// other point kept) and sampled half as often from then on.
    fn sample(&mut self, elapsed: Duration, pages: u64, items: u64) {
        if self
            .last_sample
            .is_some_and(|last| elapsed < last + self.sample_every)
        {
            return;
        }
        if self.series.len() >= SERIES_POINTS {
            let mut i = 0;
            self.series.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.sample_every *= 2;
        }
        self.last_sample = Some(elapsed);
        self.series
            .push([elapsed.as_secs_f64(), pages as f64, items as f64]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(secs: u64, pages: u64) -> Tick {
        Tick {
            status: Status {
                pages,
                items: pages / 2,
                elapsed: Duration::from_secs(secs),
                ..Status::default()
            },
            errors: BTreeMap::new(),
            hosts_total: 0,
            hosts: Vec::new(),
            workers: Vec::new(),
            recent_failures: Vec::new(),
            page: PageCounts::default(),
        }
    }

    /// The chart keeps the whole crawl in at most SERIES_POINTS samples.
    #[test]
    fn series_is_bounded_and_spans_the_crawl() {
        let d = Dashboard::new();
        for s in 0..10_000 {
            d.tick(tick(s, s * 10));
        }
        let v: serde_json::Value = serde_json::from_str(&d.json()).unwrap();
        let series = v["series"].as_array().unwrap();
        assert!(series.len() <= SERIES_POINTS, "{}", series.len());
        assert!(series.len() >= SERIES_POINTS / 2);
        assert_eq!(series[0][0], 0.0);
        assert!(series.last().unwrap()[0].as_f64().unwrap() >= 9_000.0);
        assert_eq!(v["phase"], "running");
    }

    /// Samples come at most once a second, however often the loop ticks.
    #[test]
    fn samples_once_a_second() {
        let d = Dashboard::new();
        for ms in (0..3_000).step_by(200) {
            let mut t = tick(0, ms);
            t.status.elapsed = Duration::from_millis(ms);
            d.tick(t);
        }
        let v: serde_json::Value = serde_json::from_str(&d.json()).unwrap();
        assert_eq!(v["series"].as_array().unwrap().len(), 3);
    }

    /// Stopping, then finished with the summary's numbers.
    #[test]
    fn phases_end_with_the_summary() {
        let d = Dashboard::new();
        d.tick(tick(1, 5));
        d.stopping("page limit reached");
        let summary = Summary {
            pages: 7,
            items_saved: 3,
            elapsed: Duration::from_secs(2),
            ..Summary::default()
        };
        d.finish(&summary, true, 0, Vec::new());
        let v: serde_json::Value = serde_json::from_str(&d.json()).unwrap();
        assert_eq!(v["phase"], "finished");
        assert_eq!(v["stop_reason"], "page limit reached");
        assert_eq!(v["pages"], 7);
        assert_eq!(v["summary"]["items_saved"], 3);
        assert!(v["summary_text"].as_str().unwrap().contains('7'));
    }

    /// What pages asked (robots meta, canonical, sitemaps, rendering) is
    /// in `/api/status` at each tick, and the summary's counts at the end.
    #[test]
    fn page_counts_are_in_the_status() {
        let d = Dashboard::new();
        let mut t = tick(1, 5);
        t.page.noindex = 2;
        t.page.rendered.insert("learnt".into(), 4);
        d.tick(t);
        let v: serde_json::Value = serde_json::from_str(&d.json()).unwrap();
        assert_eq!(v["page"]["noindex"], 2);
        assert_eq!(v["page"]["rendered"]["learnt"], 4);
        let mut summary = Summary::default();
        summary.page.canonical_duplicates = 3;
        d.finish(&summary, true, 0, Vec::new());
        let v: serde_json::Value = serde_json::from_str(&d.json()).unwrap();
        assert_eq!(v["page"]["canonical_duplicates"], 3);
        assert_eq!(v["page"]["noindex"], 0);
    }

    /// The routes serve the page and the JSON, and nothing else.
    #[test]
    fn routes() {
        let d = Dashboard::new();
        let r = d.routes();
        assert!(r("/").unwrap().body.contains("<html"));
        assert!(r("/api/status?t=1").unwrap().body.starts_with('{'));
        assert!(r("/other").is_none());
    }
}
