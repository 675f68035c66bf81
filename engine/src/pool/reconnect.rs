//! Putting a worker in rotation: connect, check its status, load the
//! crawl's rules; and taking it out, then back in the background.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rpcsupport::{connect_crawl, ConnectOptions, CrawlClient, HostAddr, WorkerStatus};

use super::{deadline_in, ConnectFailure, WorkerHandle, WorkerPool};

/// Connects, checks the worker answers a status call, and hands it the
/// crawl's rules if there are any (so a restarted worker gets them again
/// before it is back in rotation). Returns the client and the worker's
/// status (its built-in parser names, whether it can render).
pub(super) async fn connect_checked(
    addr: &HostAddr,
    opts: ConnectOptions,
    rules_json: Option<&str>,
) -> Result<(CrawlClient, WorkerStatus), ConnectFailure> {
    let unreachable = |e: &dyn std::fmt::Display| ConnectFailure::Unreachable(e.to_string());
    let client = connect_crawl(addr, opts)
        .await
        .map_err(|e| unreachable(&e))?;
    let status = client
        .status(deadline_in(opts.connect_timeout))
        .await
        .map_err(|e| unreachable(&e))?;
    if let Some(json) = rules_json {
        load_rules(&client, json, opts.connect_timeout).await?;
    }
    Ok((client, status))
}

pub(super) async fn load_rules(
    client: &CrawlClient,
    json: &str,
    timeout: Duration,
) -> Result<(), ConnectFailure> {
    match client
        .load_rules(deadline_in(timeout), json.to_owned())
        .await
    {
        Ok(Ok(_id)) => Ok(()),
        Ok(Err(e)) => Err(ConnectFailure::RulesRefused(e)),
        Err(e) => Err(ConnectFailure::Unreachable(e.to_string())),
    }
}

impl WorkerPool {
    pub(super) fn mark_down(&self, handle: &WorkerHandle) {
        {
            let mut state = self.shared.slots[handle.index].state.lock().unwrap();
            if state.generation != handle.generation || state.client.is_none() {
                return; // already handled for this connection
            }
            state.client = None;
            state.generation += 1;
        }
        self.shared.outages.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(worker = %handle.addr, "worker down; taken out of rotation, reconnecting in the background");
        self.spawn_reconnect(handle.index);
    }

    pub(super) fn spawn_reconnect(&self, index: usize) {
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            let addr = shared.slots[index].addr.clone();
            let mut backoff = Duration::from_millis(100);
            loop {
                tokio::time::sleep(backoff).await;
                match connect_checked(&addr, shared.opts, shared.rules_json.as_deref()).await {
                    Ok((client, status)) => {
                        {
                            let mut state = shared.slots[index].state.lock().unwrap();
                            state.client = Some(client);
                            state.generation += 1;
                            // A new connection holds no policy yet.
                            state.policy_given = Arc::default();
                            state.can_render = status.can_render;
                        }
                        shared.up_events.send_modify(|n| *n += 1);
                        tracing::info!(worker = %addr, "worker back in rotation");
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(worker = %addr, error = %e, retry_in = ?backoff, "worker still down");
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
            }
        });
        let mut tasks = self.tasks.lock().unwrap();
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }
}
