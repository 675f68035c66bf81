//! `--recrawl_every`: the engine keeps running, one recrawl round after
//! another. Each round is a [`run`] on the state dir; between rounds the
//! engine waits until the next known URL is due, or `every`, whichever
//! comes first, or until shutdown.

use std::future::Future;
use std::time::Duration;

use futures::FutureExt as _;

use super::{run, EngineError};
use crate::config::Settings;
use crate::state::{unix_now, Requeue};
use crate::summary::Summary;

/// Runs recrawl rounds until `shutdown`, calling `on_round` with each
/// round's summary; returns the last one.
pub async fn run_every(
    settings: Settings,
    every: Duration,
    shutdown: impl Future<Output = ()>,
    mut on_round: impl FnMut(&Summary),
) -> Result<Summary, EngineError> {
    // Every round, and the waits between them, end on the same signal.
    let shutdown = shutdown.boxed_local().shared();
    loop {
        let summary = run(settings.clone(), shutdown.clone()).await?;
        on_round(&summary);
        if shutdown.peek().is_some() {
            return Ok(summary);
        }
        let wait = next_wait(&settings, every)?;
        tracing::info!(?wait, "recrawl round done; next round after this wait");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.clone() => return Ok(summary),
        }
    }
}

/// How long until the next round: until the earliest next-fetch time in
/// the store, at most `every` (nothing due soon), at least a second (so a
/// URL that stays due, failing each round, does not spin the engine).
fn next_wait(settings: &Settings, every: Duration) -> Result<Duration, EngineError> {
    let dir = settings
        .state_dir
        .as_ref()
        .expect("a recrawl has a state dir");
    let state_error = |source| EngineError::State {
        path: dir.clone(),
        source,
    };
    let (state, _) = super::open_state_dir(settings, dir)?;
    let now = unix_now();
    let frontier = state
        .frontier(Requeue::Recrawl { now, all: false })
        .map_err(state_error)?;
    Ok(wait_for(
        frontier.pending.len(),
        frontier.next_due,
        now,
        every,
    ))
}

/// The wait decision itself: work already due, a second; else until the
/// next due time, capped at `every`.
fn wait_for(due_now: usize, next_due: Option<i64>, now: i64, every: Duration) -> Duration {
    let floor = Duration::from_secs(1);
    if due_now > 0 {
        return floor.min(every);
    }
    match next_due {
        Some(at) => {
            Duration::from_secs(at.saturating_sub(now).max(0) as u64).clamp(floor.min(every), every)
        }
        None => every,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Between rounds: until the next URL is due, never longer than
    /// `every`, never a busy loop.
    #[test]
    fn waits_until_next_due_within_every() {
        let every = Duration::from_secs(600);
        assert_eq!(
            wait_for(0, Some(1_120), 1_000, every),
            Duration::from_secs(120)
        );
        assert_eq!(wait_for(0, Some(99_999), 1_000, every), every);
        assert_eq!(wait_for(0, None, 1_000, every), every);
        assert_eq!(
            wait_for(3, Some(1_120), 1_000, every),
            Duration::from_secs(1)
        );
        assert_eq!(wait_for(0, Some(500), 1_000, every), Duration::from_secs(1));
    }
}
