//! The transport shared by every process: TCP (or TLS over TCP), the token
//! handshake of [`crate::handshake`], then length-delimited frames with an
//! explicit maximum size and bincode inside; and the host-string syntax the
//! command lines accept.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};
use tarpc::server::limits::requests_per_channel::MaxRequests;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_util::codec::length_delimited::LengthDelimitedCodec;
use tarpc::{client, serde_transport, ClientMessage, Response};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tracing::Instrument;

use crate::codec::{Codec, DecodeLimits};
use crate::handshake;
use crate::security::{ClientSecurity, ServerSecurity, Service};
use crate::service::{
    CrawlClient, CrawlRequest, CrawlResponse, ItemSaverClient, ItemSaverRequest, ItemSaverResponse,
    Method,
};

/// Default cap on one frame: big enough for a batch of a few thousand items
/// or a page's worth of links, small enough that a bad peer cannot make us
/// allocate gigabytes.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// The transport a server reads `ClientMessage<Req>` from.
pub type ServerTransport<Req, Resp> = serde_transport::Transport<
    RpcStream,
    ClientMessage<Req>,
    Response<Resp>,
    Codec<ClientMessage<Req>, Response<Resp>>,
>;

/// The transport a client reads `Response<Resp>` from, each checked
/// against the method asked ([`Matched`]).
pub type ClientTransport<Req, Resp> = Matched<
    serde_transport::Transport<
        RpcStream,
        Response<Resp>,
        ClientMessage<Req>,
        Codec<Response<Resp>, ClientMessage<Req>>,
    >,
>;

/// A client transport that remembers the method of each request in flight
/// and turns a response of another method into a server error for that
/// call: tarpc's generated client would meet it with `unreachable!()`,
/// so a bad server could panic the caller. Entries leave with their
/// response, their cancellation, or (for calls that expired unanswered,
/// which tarpc does not cancel) a sweep past their deadline.
pub struct Matched<T> {
    inner: T,
    asked: HashMap<u64, (&'static str, std::time::Instant)>,
    /// Sweep expired entries when the map reaches this size, then double
    /// it, so sweeps stay rare however many calls are in flight.
    sweep_at: usize,
}

impl<T> Matched<T> {
    fn new(inner: T) -> Self {
        Matched {
            inner,
            asked: HashMap::new(),
            sweep_at: 1024,
        }
    }
}

impl<T, Req> futures::Sink<ClientMessage<Req>> for Matched<T>
where
    T: futures::Sink<ClientMessage<Req>> + Unpin,
    Req: Method,
{
    type Error = T::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), T::Error>> {
        Pin::new(&mut self.inner).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: ClientMessage<Req>) -> Result<(), T::Error> {
        match &item {
            ClientMessage::Request(request) => {
                if self.asked.len() >= self.sweep_at {
                    let now = std::time::Instant::now();
                    self.asked.retain(|_, (_, deadline)| *deadline > now);
                    self.sweep_at = (self.asked.len() * 2).max(1024);
                }
                let entry = (request.message.method(), request.context.deadline);
                self.asked.insert(request.id, entry);
            }
            ClientMessage::Cancel { request_id, .. } => {
                self.asked.remove(request_id);
            }
            // ClientMessage is non-exhaustive; nothing else is asked.
            _ => {}
        }
        Pin::new(&mut self.inner).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), T::Error>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), T::Error>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

impl<T, Resp, E> futures::Stream for Matched<T>
where
    T: futures::Stream<Item = Result<Response<Resp>, E>> + Unpin,
    Resp: Method,
{
    type Item = Result<Response<Resp>, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        let Poll::Ready(Some(Ok(mut response))) = polled else {
            return polled;
        };
        let asked = self.asked.remove(&response.request_id).map(|(m, _)| m);
        if let (Some(asked), Ok(answer)) = (asked, &response.message) {
            let answered = answer.method();
            if answered != asked {
                response.message = Err(tarpc::ServerError::new(
                    io::ErrorKind::InvalidData,
                    format!("the server answered a {asked} call with a {answered} response"),
                ));
            }
        }
        Poll::Ready(Some(Ok(response)))
    }
}

/// One accepted connection, ready for `execute(service.serve())`.
pub type ServerChannel<Req, Resp> = MaxRequests<BaseChannel<Req, Resp, ServerTransport<Req, Resp>>>;

/// The bytes under the frames of one connection, past the handshake: plain
/// TCP or TLS, and on a server the idle timer.
pub struct RpcStream {
    io: Io,
    idle: Option<Idle>,
}

enum Io {
    Plain(TcpStream),
    // Boxed: a TLS stream is a few hundred bytes, a TcpStream a few words.
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

/// Closes a connection that has moved no bytes for `timeout`. Reads are
/// always pending on a server connection (tarpc waits for the next
/// request), so checking the deadline in `poll_read` is enough to notice.
struct Idle {
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
    peer: SocketAddr,
}

impl Idle {
    fn touch(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.timeout);
    }
}

impl RpcStream {
    fn new(io: Io) -> RpcStream {
        RpcStream { io, idle: None }
    }

    fn with_idle_timeout(mut self, timeout: Option<Duration>, peer: SocketAddr) -> RpcStream {
        self.idle = timeout.map(|timeout| Idle {
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            peer,
        });
        self
    }

    fn io(&mut self) -> Pin<&mut (dyn AsyncReadWrite + Send + Unpin)> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s),
            Io::Tls(s) => Pin::new(&mut **s),
        }
    }
}

trait AsyncReadWrite: AsyncRead + AsyncWrite {}
impl<T: AsyncRead + AsyncWrite> AsyncReadWrite for T {}

impl AsyncRead for RpcStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(idle) = &mut self.idle {
            if idle.deadline.as_mut().poll(cx).is_ready() {
                tracing::info!(peer = %idle.peer, timeout = ?idle.timeout, "closing idle RPC connection");
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout")));
            }
        }
        let before = buf.filled().len();
        let mut result = self.io().poll_read(cx, buf);
        if let (Io::Tls(_), Poll::Ready(Err(e))) = (&self.io, &result) {
            // A peer that exits without TLS close_notify: rustls reports
            // UnexpectedEof to guard against truncation. The frames carry
            // their own lengths, so a cut inside one is still an error;
            // between frames it is an ordinary close, not worth a warning.
            if e.kind() == io::ErrorKind::UnexpectedEof {
                result = Poll::Ready(Ok(()));
            }
        }
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            if let Some(idle) = &mut self.idle {
                idle.touch();
            }
        }
        result
    }
}

impl AsyncWrite for RpcStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = self.io().poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            if let Some(idle) = &mut self.idle {
                idle.touch();
            }
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io().poll_shutdown(cx)
    }
}

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
    if security.token.is_none() && !local.ip().is_loopback() {
        tracing::warn!(
            %local,
            "RPC server open to any client that can reach it: no token is set \
             ([rpc] token_file, CRAWLER_RPC_TOKEN or --rpc_token_file, or the \
             service's own worker_token_file / itemsaver_token_file)"
        );
    }
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
                let Ok(Some((stream, peer, permit))) = done else { continue };
                let framed = frame_codec(opts.max_frame_bytes).new_framed(stream);
                let transport = serde_transport::new(framed, Codec::new(opts.decode_limits));
                let channel = BaseChannel::with_defaults(transport)
                    .max_concurrent_requests(opts.max_concurrent_requests);
                let served = on_connection(channel).instrument(tracing::info_span!("rpc", %peer));
                connections.spawn(async move {
                    served.await;
                    tracing::debug!(%peer, "connection closed");
                    drop(permit);
                });
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
                handshakes.spawn(async move {
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
                    refusals.lock().unwrap_or_else(|e| e.into_inner()).note(peer, &reason);
                    None
                });
            }
        }
    }
    handshakes.shutdown().await;
    connections.shutdown().await;
    Ok(())
}

/// Connections in the handshake, in total and per peer IP address.
struct HandshakeBudget {
    max_total: usize,
    max_per_ip: usize,
    /// Handshakes open in total, and per address (an address leaves the
    /// map with its last handshake, so the map is at most `max_total` long).
    open: std::sync::Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One connection's place in the [`HandshakeBudget`], given back on drop.
struct HandshakeSlot {
    budget: Arc<HandshakeBudget>,
    ip: IpAddr,
}

impl HandshakeBudget {
    fn new(max_total: usize, max_per_ip: usize) -> Self {
        HandshakeBudget {
            max_total,
            max_per_ip,
            open: std::sync::Mutex::new((0, HashMap::new())),
        }
    }

    /// A slot for a handshake from `ip`, or the name of the limit it hit.
    fn try_enter(self: &Arc<Self>, ip: IpAddr) -> Result<HandshakeSlot, &'static str> {
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

fn frame_codec(max_frame_bytes: usize) -> tarpc::tokio_util::codec::length_delimited::Builder {
    let mut builder = LengthDelimitedCodec::builder();
    builder.max_frame_length(max_frame_bytes);
    builder
}

/// How a client connects.
#[derive(Debug, Clone, Copy)]
pub struct ConnectOptions {
    /// Largest frame accepted or sent.
    pub max_frame_bytes: usize,
    /// How long to wait for the connection: TCP, TLS and the token check.
    pub connect_timeout: Duration,
    /// Token and TLS settings (`&'static` so the options stay `Copy`; see
    /// [`ClientSecurity::leak`]). The default is open: plain TCP, no token.
    pub security: &'static ClientSecurity,
    /// Nesting and decoded-size bounds on every reply read, so a bad
    /// server costs the client a failed call, never its stack.
    pub decode_limits: DecodeLimits,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            connect_timeout: Duration::from_secs(5),
            security: &ClientSecurity::OPEN,
            decode_limits: DecodeLimits::default(),
        }
    }
}

/// TCP, TLS if configured, then the token handshake with `service`'s token.
async fn connect_stream(
    addr: &HostAddr,
    security: &ClientSecurity,
    service: Service,
) -> io::Result<RpcStream> {
    let tcp = TcpStream::connect((addr.host.as_str(), addr.port)).await?;
    tcp.set_nodelay(true)?;
    let mut stream = match &security.tls {
        None => RpcStream::new(Io::Plain(tcp)),
        Some(config) => {
            let name = rustls_pki_types::ServerName::try_from(addr.host.clone()).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("{}: {e}", addr.host))
            })?;
            let tls = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("TLS with {addr}: {e}")))?;
            RpcStream::new(Io::Tls(Box::new(tls.into())))
        }
    };
    handshake::client(&mut stream, security.token(service)).await?;
    Ok(stream)
}

async fn connect_transport<Req, Resp>(
    addr: &HostAddr,
    opts: ConnectOptions,
    service: Service,
) -> io::Result<ClientTransport<Req, Resp>>
where
    Req: Serialize + Method,
    Resp: DeserializeOwned + Method,
{
    let stream = tokio::time::timeout(
        opts.connect_timeout,
        connect_stream(addr, opts.security, service),
    )
    .await
    .map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("connecting to {addr} timed out"),
        )
    })??;
    let framed = frame_codec(opts.max_frame_bytes).new_framed(stream);
    Ok(Matched::new(serde_transport::new(
        framed,
        Codec::new(opts.decode_limits),
    )))
}

fn client_config() -> client::Config {
    let mut config = client::Config::default();
    // The engine bounds its own concurrency; tarpc's queue need not.
    config.max_in_flight_requests = 1 << 16;
    config.pending_request_buffer = 1024;
    config
}

/// Connects to a worker, presenting the worker token.
pub async fn connect_crawl(addr: &HostAddr, opts: ConnectOptions) -> io::Result<CrawlClient> {
    let transport =
        connect_transport::<CrawlRequest, CrawlResponse>(addr, opts, Service::Worker).await?;
    Ok(CrawlClient::new(client_config(), transport).spawn())
}

/// Connects to an itemsaver, presenting the itemsaver token.
pub async fn connect_itemsaver(
    addr: &HostAddr,
    opts: ConnectOptions,
) -> io::Result<ItemSaverClient> {
    let transport =
        connect_transport::<ItemSaverRequest, ItemSaverResponse>(addr, opts, Service::Itemsaver)
            .await?;
    Ok(ItemSaverClient::new(client_config(), transport).spawn())
}

/// A host to connect to: `:9000` (127.0.0.1), `host:port` or `[::1]:9000`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostAddr {
    /// Hostname or IP address, without brackets.
    pub host: String,
    /// TCP port, never 0.
    pub port: u16,
}

/// A host string that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("bad host {input:?}: {reason} (expected :PORT, HOST:PORT or [IPv6]:PORT)")]
pub struct HostError {
    /// The string as given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for HostAddr {
    type Err = HostError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| HostError {
            input: input.to_owned(),
            reason,
        };
        let s = input.trim();
        let (host, port) = if let Some(port) = s.strip_prefix(':') {
            ("127.0.0.1", port)
        } else if let Some(rest) = s.strip_prefix('[') {
            let (host, port) = rest
                .split_once("]:")
                .ok_or_else(|| err("missing \"]:PORT\""))?;
            host.parse::<std::net::Ipv6Addr>()
                .map_err(|_| err("not an IPv6 address in brackets"))?;
            (host, port)
        } else {
            let (host, port) = s.rsplit_once(':').ok_or_else(|| err("missing \":PORT\""))?;
            if host.contains(':') {
                return Err(err("IPv6 addresses need brackets"));
            }
            (host, port)
        };
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(err("bad host name"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| err("port is not a number from 1 to 65535"))?;
        if port == 0 {
            return Err(err("port is not a number from 1 to 65535"));
        }
        Ok(HostAddr {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for HostAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl From<std::net::SocketAddr> for HostAddr {
    fn from(addr: std::net::SocketAddr) -> Self {
        HostAddr {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three accepted host syntaxes parse, and print back connectable.
    #[test]
    fn host_strings_parse() {
        let h: HostAddr = ":9000".parse().unwrap();
        assert_eq!((h.host.as_str(), h.port), ("127.0.0.1", 9000));
        let h: HostAddr = "crawl-worker-1:9001".parse().unwrap();
        assert_eq!((h.host.as_str(), h.port), ("crawl-worker-1", 9001));
        let h: HostAddr = "[::1]:9002".parse().unwrap();
        assert_eq!((h.host.as_str(), h.port), ("::1", 9002));
        assert_eq!(h.to_string(), "[::1]:9002");
    }

    /// The handshake budget holds per address and in total, and a slot
    /// comes back when dropped (the address leaving the map with its last).
    #[test]
    fn handshake_budget_per_address_and_total() {
        let budget = Arc::new(HandshakeBudget::new(3, 2));
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "127.0.0.2".parse().unwrap(),
            "127.0.0.3".parse().unwrap(),
            "127.0.0.4".parse().unwrap(),
        );
        let a1 = budget.try_enter(a).unwrap();
        let _a2 = budget.try_enter(a).unwrap();
        let e = budget.try_enter(a).err().unwrap();
        assert!(e.contains("max_handshakes_per_ip"), "{e}");
        let _b1 = budget.try_enter(b).unwrap();
        let e = budget.try_enter(c).err().unwrap();
        assert!(e.contains("(max_handshakes)"), "{e}");
        drop(a1);
        let c1 = budget.try_enter(c).unwrap();
        assert_eq!(budget.open.lock().unwrap().1.len(), 3);
        drop(c1);
        assert!(!budget.open.lock().unwrap().1.contains_key(&c));
    }

    /// Malformed host strings are errors that say what was expected.
    #[test]
    fn bad_host_strings_are_rejected() {
        for bad in [
            "",
            "9000",
            ":",
            ":0",
            ":70000",
            "host:",
            ":abc",
            "::1:9000",
            "[::1]9000",
            "[zz]:1",
            " :1 x",
        ] {
            let e = bad.parse::<HostAddr>().expect_err(bad);
            assert!(e.to_string().contains("expected :PORT"), "{e}");
        }
    }
}
