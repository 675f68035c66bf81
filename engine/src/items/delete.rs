//! Deletes out: the item keys of pages that are gone on a recrawl, sent to
//! the itemsaver's `delete` in batches, retried with backoff while it fails
//! (down, or a store that cannot delete yet), and acknowledged back to the
//! crawl ([`Ack::Deletes`]), which keeps them in the URL store until then.
//! A separate task from the item sink: deletes are rare and must not wait
//! behind a backlog of saves (a gone page has no items being saved).

use std::collections::VecDeque;
use std::time::Duration;

use rpcsupport::{connect_itemsaver, ConnectOptions, HostAddr, ItemSaverClient};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Ack;
use crate::pool::deadline_in;

/// Keys per delete call: a call stays far below the RPC frame limit even
/// with long keys.
const DELETE_BATCH: usize = 1000;

/// How the deleter reaches the itemsaver.
#[derive(Debug, Clone)]
pub struct DeleteOptions {
    /// Where the itemsaver listens.
    pub addr: HostAddr,
    /// How to connect to it.
    pub connect: ConnectOptions,
    /// Deadline of one call.
    pub rpc_timeout: Duration,
    /// When finishing, how long to keep trying before leaving the rest
    /// (they stay in the URL store for the next run).
    pub finish_timeout: Duration,
    /// Where acknowledgements go.
    pub acked: mpsc::UnboundedSender<Ack>,
}

/// What the deleter did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeleteStats {
    /// Items the itemsaver deleted (keys it held).
    pub deleted: u64,
    /// Keys still to delete at the end.
    pub pending: u64,
    /// Delete calls that failed and were tried again.
    pub retries: u64,
}

/// Handle to the deleter task.
pub struct Deleter {
    tx: mpsc::UnboundedSender<Vec<String>>,
    task: JoinHandle<DeleteStats>,
}

impl Deleter {
    /// Starts the deleter with the deletes an earlier run left pending.
    pub fn spawn(opts: DeleteOptions, pending: Vec<String>) -> Deleter {
        // Unbounded like the item sink's: the task only moves keys into
        // its queue, which holds what the URL store holds anyway.
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(opts, pending.into(), rx));
        Deleter { tx, task }
    }

    /// Queues keys to delete.
    pub fn send(&self, keys: Vec<String>) {
        if !keys.is_empty() && self.tx.send(keys).is_err() {
            tracing::error!("deleter stopped early");
        }
    }

    /// Sends what is queued (trying up to `finish_timeout`) and returns
    /// the counts.
    pub async fn finish(self) -> DeleteStats {
        drop(self.tx);
        self.task.await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "deleter task failed");
            DeleteStats::default()
        })
    }
}

async fn run(
    opts: DeleteOptions,
    mut queue: VecDeque<String>,
    mut rx: mpsc::UnboundedReceiver<Vec<String>>,
) -> DeleteStats {
    let mut stats = DeleteStats::default();
    let mut client: Option<ItemSaverClient> = None;
    let mut backoff = Duration::from_millis(100);
    let mut not_before = Instant::now();
    let mut closing_since: Option<Instant> = None;
    loop {
        if let Some(since) = closing_since {
            if queue.is_empty() || since.elapsed() >= opts.finish_timeout {
                break;
            }
        }
        if !queue.is_empty() && Instant::now() >= not_before {
            let n = queue.len().min(DELETE_BATCH);
            let batch: Vec<String> = queue.iter().take(n).cloned().collect();
            match delete(&mut client, &opts, &batch).await {
                Ok(deleted) => {
                    queue.drain(..n);
                    stats.deleted += deleted;
                    backoff = Duration::from_millis(100);
                    let _ = opts.acked.send(Ack::Deletes(batch, deleted));
                }
                Err(reason) => {
                    // Warn once per doubling, not per try.
                    tracing::warn!(keys = queue.len(), %reason, retry_in = ?backoff, "items of gone pages not deleted yet; retrying");
                    stats.retries += 1;
                    not_before = Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
            continue;
        }
        let wake = if queue.is_empty() {
            Instant::now() + Duration::from_secs(3600)
        } else {
            not_before
        };
        let wake = match closing_since {
            Some(since) => wake.min(since + opts.finish_timeout),
            None => wake,
        };
        tokio::select! {
            keys = rx.recv(), if closing_since.is_none() => match keys {
                Some(keys) => queue.extend(keys),
                None => closing_since = Some(Instant::now()),
            },
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
    stats.pending = queue.len() as u64;
    if stats.pending > 0 {
        tracing::error!(keys = stats.pending, "itemsaver did not take the deletes of gone pages; they are kept in the state dir for the next run");
    }
    stats
}

/// One delete call, connecting first if needed.
async fn delete(
    client: &mut Option<ItemSaverClient>,
    opts: &DeleteOptions,
    keys: &[String],
) -> Result<u64, String> {
    if client.is_none() {
        *client = Some(
            connect_itemsaver(&opts.addr, opts.connect)
                .await
                .map_err(|e| format!("connect {}: {e}", opts.addr))?,
        );
    }
    let c = client.as_ref().expect("just set");
    match c.delete(deadline_in(opts.rpc_timeout), keys.to_vec()).await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => {
            *client = None;
            Err(format!("rpc: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With no itemsaver the deletes are neither lost nor acknowledged:
    /// finish reports them pending after its timeout.
    #[tokio::test]
    async fn unreachable_itemsaver_keeps_deletes_pending() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (acked, mut rx) = mpsc::unbounded_channel();
        let d = Deleter::spawn(
            DeleteOptions {
                addr: format!("127.0.0.1:{port}").parse().unwrap(),
                connect: ConnectOptions::default(),
                rpc_timeout: Duration::from_millis(200),
                finish_timeout: Duration::from_millis(300),
                acked,
            },
            vec!["a".into()],
        );
        d.send(vec!["b".into(), "c".into()]);
        let stats = d.finish().await;
        assert_eq!(stats.pending, 3);
        assert!(stats.retries >= 1);
        assert!(rx.try_recv().is_err(), "nothing was acknowledged");
    }
}
