//! The stop signal every binary waits for: Ctrl-C or, on Unix, SIGTERM
//! (what `kill` and service managers send).

use std::future::Future;
use std::io;

/// Registers for Ctrl-C and SIGTERM and returns a future that completes on
/// either. The handlers are installed here, not when the future is first
/// polled, so a signal sent right after a server prints its ready line can
/// never hit the default "terminate at once" action.
pub fn signal() -> io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
                _ = int.recv() => tracing::info!("Ctrl-C received, shutting down"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            tracing::info!("Ctrl-C received, shutting down");
        })
    }
}
