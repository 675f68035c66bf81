//! What the crawl shows while it runs: its metric handles, the progress
//! line and the dashboard's tick.

use std::sync::Arc;

use rpcsupport::metrics::{Counter, Gauge, Histogram, Registry};
use rpcsupport::HostAddr;
use tokio::time::Instant;

use super::machine::Crawl;
use crate::dashboard::{Tick, WorkerView, HOSTS_SHOWN};
use crate::pool::WorkerPool;
use crate::progress::Status;

/// The crawl's metric handles, taken once.
pub(super) struct EngineMetrics {
    pub(super) pages: Counter,
    pub(super) items_saved: Counter,
    pub(super) queue: Gauge,
    pub(super) in_flight: Gauge,
    workers_up: Gauge,
    /// Call latency, by worker index.
    pub(super) latency: Vec<Histogram>,
}

impl EngineMetrics {
    pub(super) fn new(registry: &Arc<Registry>, workers: &[HostAddr]) -> EngineMetrics {
        EngineMetrics {
            pages: registry.counter("crawler_pages_total", "Pages fetched and parsed.", &[]),
            items_saved: registry.counter(
                "crawler_items_saved_total",
                "Items the itemsaver acknowledged.",
                &[],
            ),
            queue: registry.gauge(
                "crawler_queue_length",
                "Requests queued or waiting out a backoff.",
                &[],
            ),
            in_flight: registry.gauge("crawler_in_flight", "Calls to workers in progress.", &[]),
            workers_up: registry.gauge("crawler_workers_up", "Workers in rotation.", &[]),
            latency: workers
                .iter()
                .map(|w| {
                    registry.histogram(
                        "crawler_rpc_latency_seconds",
                        "Time from sending a request to a worker to its answer.",
                        &[("worker", &w.to_string())],
                    )
                })
                .collect(),
        }
    }
}

/// A latency quantile in milliseconds (0 before any call).
pub(super) fn ms(h: &Histogram, q: f64) -> f64 {
    h.quantile(q).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

impl Crawl<'_> {
    /// The numbers of the moment, to the metrics, the progress line and
    /// the dashboard.
    pub(super) fn report(&mut self, pool: &WorkerPool, now: Instant) {
        let status = Status {
            pages: self.summary.pages,
            queued: self.scheduler.len(),
            in_flight: self.in_flight.len(),
            items: self.summary.items_saved + self.metrics.items_saved.get(),
            errors: self.summary.failed(),
            workers_up: pool.up_count(),
            workers: pool.len(),
            elapsed: self.elapsed(now),
        };
        self.metrics.queue.set(status.queued as i64);
        self.metrics.in_flight.set(status.in_flight as i64);
        self.metrics.workers_up.set(status.workers_up as i64);
        self.progress.update(&status);
        if let Some(d) = &self.settings.dashboard {
            d.tick(self.dashboard_tick(status, pool, now));
        }
    }

    /// What the dashboard shows at a tick.
    fn dashboard_tick(&self, status: Status, pool: &WorkerPool, now: Instant) -> Tick {
        let (hosts_total, mut hosts) = self.scheduler.busiest_hosts(HOSTS_SHOWN, now);
        for h in &mut hosts {
            h.errors = self.failures.host_failures(&h.host);
        }
        let workers = self
            .summary
            .per_worker
            .iter()
            .zip(&self.metrics.latency)
            .enumerate()
            .map(|(i, ((addr, pages), h))| WorkerView {
                addr: addr.clone(),
                up: pool.is_up(i),
                pages: *pages,
                p50_ms: ms(h, 0.5),
                p99_ms: ms(h, 0.99),
            })
            .collect();
        Tick {
            status,
            errors: self.summary.errors.clone(),
            hosts_total,
            hosts,
            workers,
            recent_failures: self.failures.recent(),
            page: self.summary.page.clone(),
        }
    }
}
