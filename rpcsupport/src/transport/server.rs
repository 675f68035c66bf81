//! The server side: accept, run each handshake in its own task under its
//! own budget, then hand the authenticated connection to the service.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};
use tarpc::serde_transport;
use tarpc::server::{BaseChannel, Channel};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use super::stream::{Io, RpcStream};
use super::{frame_codec, ServerChannel, DEFAULT_MAX_FRAME_BYTES};
use crate::codec::{Codec, DecodeLimits};
use crate::handshake;
use crate::security::ServerSecurity;

/// Limits a server puts on each connection, and who may connect.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Largest frame accepted or sent; a larger one closes the connection.
    pub max_frame_bytes: usize,
    /// Requests one connection may have in progress at once; more are
    /// answered with an error instead of queued without bound.
    pub max_concurrent_requests: usize,
    /// Token, TLS, connection count and timeouts (the `[rpc]` section).
    /// The default is open: plain TCP, no token.
    pub security: ServerSecurity,
    /// Nesting and decoded-size bounds on every frame read.
    pub decode_limits: DecodeLimits,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_concurrent_requests: 4096,
            security: ServerSecurity::default(),
            decode_limits: DecodeLimits::default(),
        }
    }
}

/// Accepts connections on `listener` until `shutdown` completes, handing
/// each to `on_connection` as a tarpc channel once it has passed TLS and
/// the token check. The callback is where the concrete service is attached:
///
/// ```ignore
/// serve(listener, opts, shutdown, move |channel| {
///     let service = service.clone();
///     async move { channel.execute(service.serve()).for_each(spawn).await }
/// })
/// ```
///
/// A connection that fails the handshake, sends a bad frame or stays idle
/// is closed and logged with its peer address (handshake refusals at most
/// a line a second); the others go on. Connections in the handshake have
/// their own budget (`max_handshakes`, `max_handshakes_per_ip`); past it a
/// new socket is closed before a byte is read. Only an authenticated
/// connection takes one of the `max_connections` places. On
/// shutdown the listener closes and open connections are dropped; their
/// clients see a disconnect, which the engine treats as retryable.
pub async fn serve<Req, Resp, F, Fut>(
    listener: TcpListener,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()>,
    mut on_connection: F,
) -> io::Result<()>
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    F: FnMut(ServerChannel<Req, Resp>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let local = listener.local_addr()?;
    let security = Arc::new(opts.security.clone());
    warn_if_open(&security, local);
    // An authenticated connection holds a permit from the end of its
    // handshake to its close. Connections still in the handshake have a
    // budget of their own (below), so peers that connect and say nothing
    // can delay new clients by at most the handshake timeout, never lock
    // out the ones already in.
    let slots = Arc::new(Semaphore::new(
        security.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    let handshaking = Arc::new(HandshakeBudget::new(
        security.max_handshakes,
        security.max_handshakes_per_ip,
    ));
    let refusals = Arc::new(std::sync::Mutex::new(Throttle::default()));
    // Handshakes run in their own tasks, so one slow peer cannot hold up
    // the accept loop; a finished one comes back here to be served.
    let mut handshakes: JoinSet<Option<(RpcStream, SocketAddr, OwnedSemaphorePermit)>> =
        JoinSet::new();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            // Reap finished connections so the set does not grow forever.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            Some(done) = handshakes.join_next(), if !handshakes.is_empty() => {
                let Ok(Some(passed)) = done else { continue };
                connections.spawn(serve_connection(passed, &opts, &mut on_connection));
            }
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Running out of file descriptors and similar are
                        // per-connection troubles: log, pause, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let slot = match handshaking.try_enter(peer.ip()) {
                    Ok(slot) => slot,
                    Err(limit) => {
                        // Closed at once (dropping the stream), before a
                        // byte is read: the cheapest answer to a flood.
                        refusals.lock().unwrap_or_else(|e| e.into_inner()).note(peer, limit);
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                tracing::debug!(%peer, "connection accepted");
                let security = security.clone();
                let slots = slots.clone();
                let refusals = refusals.clone();
                handshakes.spawn(handshake_task(stream, peer, security, slots, slot, refusals));
            }
        }
    }
    handshakes.shutdown().await;
    connections.shutdown().await;
    Ok(())
}

/// A connection past its handshake, served by `on_connection` until it
/// closes; its `max_connections` place is given back then.
fn serve_connection<Req, Resp, F, Fut>(
    (stream, peer, permit): (RpcStream, SocketAddr, OwnedSemaphorePermit),
    opts: &ServeOptions,
    on_connection: &mut F,
) -> impl Future<Output = ()> + Send + 'static
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: FnMut(ServerChannel<Req, Resp>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let served =
        on_connection(server_channel(stream, opts)).instrument(tracing::info_span!("rpc", %peer));
    async move {
        served.await;
        tracing::debug!(%peer, "connection closed");
        drop(permit);
    }
}

/// A server without a token on a non-loopback address is open to anyone
/// who can reach it: allowed (a private network may be enough), but said.
fn warn_if_open(security: &ServerSecurity, local: SocketAddr) {
    if security.token.is_none() && !local.ip().is_loopback() {
        tracing::warn!(
            %local,
            "RPC server open to any client that can reach it: no token is set \
             ([rpc] token_file, CRAWLER_RPC_TOKEN or --rpc_token_file, or the \
             service's own worker_token_file / itemsaver_token_file)"
        );
    }
}

/// An authenticated stream framed as a tarpc channel, with the frame,
/// decode and in-flight limits of `opts`.
fn server_channel<Req, Resp>(stream: RpcStream, opts: &ServeOptions) -> ServerChannel<Req, Resp>
where
    Req: DeserializeOwned,
    Resp: Serialize,
{
    let framed = frame_codec(opts.max_frame_bytes).new_framed(stream);
    let transport = serde_transport::new(framed, Codec::new(opts.decode_limits));
    BaseChannel::with_defaults(transport).max_concurrent_requests(opts.max_concurrent_requests)
}

/// One connection's handshake, in its own task: TLS and the token within
/// `handshake_timeout`, then a `max_connections` permit. The stream comes
/// back with its idle timer set; a refusal is logged (throttled) and the
/// connection dropped.
async fn handshake_task(
    stream: TcpStream,
    peer: SocketAddr,
    security: Arc<ServerSecurity>,
    slots: Arc<Semaphore>,
    slot: HandshakeSlot,
    refusals: Arc<std::sync::Mutex<Throttle>>,
) -> Option<(RpcStream, SocketAddr, OwnedSemaphorePermit)> {
    let admit = move || slots.try_acquire_owned().ok();
    let accepting = accept_stream(stream, &security, admit);
    let outcome = tokio::time::timeout(security.handshake_timeout, accepting).await;
    // The handshake is over, whatever its outcome.
    drop(slot);
    let reason = match outcome {
        Ok(Ok((stream, permit))) => {
            let stream = stream.with_idle_timeout(security.idle_timeout, peer);
            return Some((stream, peer, permit));
        }
        Ok(Err(handshake::Refused::Busy)) => "too many connections (max_connections)".to_owned(),
        Ok(Err(reason)) => reason.to_string(),
        Err(_) => "handshake timed out (handshake_timeout_ms)".to_owned(),
    };
    refusals
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .note(peer, &reason);
    None
}

/// Connections in the handshake, in total and per peer IP address.
pub(super) struct HandshakeBudget {
    max_total: usize,
    max_per_ip: usize,
    /// Handshakes open in total, and per address (an address leaves the
    /// map with its last handshake, so the map is at most `max_total` long).
    /// (Seen by the transport's tests, which check the map empties.)
    pub(super) open: std::sync::Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One connection's place in the [`HandshakeBudget`], given back on drop.
pub(super) struct HandshakeSlot {
    budget: Arc<HandshakeBudget>,
    ip: IpAddr,
}

impl HandshakeBudget {
    pub(super) fn new(max_total: usize, max_per_ip: usize) -> Self {
        HandshakeBudget {
            max_total,
            max_per_ip,
            open: std::sync::Mutex::new((0, HashMap::new())),
        }
    }

    /// A slot for a handshake from `ip`, or the name of the limit it hit.
    pub(super) fn try_enter(self: &Arc<Self>, ip: IpAddr) -> Result<HandshakeSlot, &'static str> {
        // A poisoned lock only means a panic elsewhere; the counts are
        // still whole (each update is a single step).
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_ip) = &mut *open;
        if *total >= self.max_total {
            return Err("too many connections in the handshake (max_handshakes)");
        }
        let from_ip = per_ip.entry(ip).or_insert(0);
        if *from_ip >= self.max_per_ip {
            return Err(
                "too many connections in the handshake from this address (max_handshakes_per_ip)",
            );
        }
        *from_ip += 1;
        *total += 1;
        Ok(HandshakeSlot {
            budget: self.clone(),
            ip,
        })
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let mut open = self.budget.open.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_ip) = &mut *open;
        *total -= 1;
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// Refused connections are logged one line a second at most, with how
/// many were refused since the last line, so a flood of bad peers cannot
/// fill the log.
#[derive(Default)]
struct Throttle {
    last: Option<Instant>,
    refused: u64,
}

impl Throttle {
    const EVERY: Duration = Duration::from_secs(1);

    fn note(&mut self, peer: SocketAddr, reason: &str) {
        self.refused += 1;
        let now = Instant::now();
        if self
            .last
            .is_none_or(|last| now.duration_since(last) >= Self::EVERY)
        {
            tracing::warn!(%peer, %reason, refused = self.refused, "RPC connection refused (count since the last such line)");
            self.last = Some(now);
            self.refused = 0;
        }
    }
}

/// TLS if configured, then the token check; `admit` gives the connection
/// its permit once the token is right.
async fn accept_stream<P>(
    stream: TcpStream,
    security: &ServerSecurity,
    admit: impl FnOnce() -> Option<P>,
) -> Result<(RpcStream, P), handshake::Refused> {
    let mut stream = match &security.tls {
        None => RpcStream::new(Io::Plain(stream)),
        Some(config) => {
            let tls = tokio_rustls::TlsAcceptor::from(config.clone())
                .accept(stream)
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("TLS: {e}")))?;
            RpcStream::new(Io::Tls(Box::new(tls.into())))
        }
    };
    let permit = handshake::server(&mut stream, security.token.as_ref(), admit).await?;
    Ok((stream, permit))
}
