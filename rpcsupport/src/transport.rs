//! TCP transport shared by every process: length-delimited frames with an
//! explicit maximum size, bincode inside, and the host-string syntax the
//! command lines accept.

use std::fmt;
use std::future::Future;
use std::io;
use std::str::FromStr;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};
use tarpc::server::limits::requests_per_channel::MaxRequests;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::tokio_util::codec::length_delimited::LengthDelimitedCodec;
use tarpc::{client, serde_transport, ClientMessage, Response};
use thiserror::Error;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::service::{
    CrawlClient, CrawlRequest, CrawlResponse, ItemSaverClient, ItemSaverRequest, ItemSaverResponse,
};

/// Default cap on one frame: big enough for a batch of a few thousand items
/// or a page's worth of links, small enough that a bad peer cannot make us
/// allocate gigabytes.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// The transport a server reads `ClientMessage<Req>` from.
pub type ServerTransport<Req, Resp> = serde_transport::Transport<
    TcpStream,
    ClientMessage<Req>,
    Response<Resp>,
    Bincode<ClientMessage<Req>, Response<Resp>>,
>;

/// The transport a client reads `Response<Resp>` from.
pub type ClientTransport<Req, Resp> = serde_transport::Transport<
    TcpStream,
    Response<Resp>,
    ClientMessage<Req>,
    Bincode<Response<Resp>, ClientMessage<Req>>,
>;

/// One accepted connection, ready for `execute(service.serve())`.
pub type ServerChannel<Req, Resp> = MaxRequests<BaseChannel<Req, Resp, ServerTransport<Req, Resp>>>;

/// Limits a server puts on each connection.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Largest frame accepted or sent; a larger one closes the connection.
    pub max_frame_bytes: usize,
    /// Requests one connection may have in progress at once; more are
    /// answered with an error instead of queued without bound.
    pub max_concurrent_requests: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_concurrent_requests: 4096,
        }
    }
}

/// Accepts connections on `listener` until `shutdown` completes, handing
/// each to `on_connection` as a tarpc channel. The callback is where the
/// concrete service is attached:
///
/// ```ignore
/// serve(listener, opts, shutdown, move |channel| {
///     let service = service.clone();
///     async move { channel.execute(service.serve()).for_each(spawn).await }
/// })
/// ```
///
/// On shutdown the listener closes and open connections are dropped; their
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
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            // Reap finished connections so the set does not grow forever.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
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
                let _ = stream.set_nodelay(true);
                tracing::debug!(%peer, "connection accepted");
                let framed = frame_codec(opts.max_frame_bytes).new_framed(stream);
                let transport = serde_transport::new(framed, Bincode::default());
                let channel = BaseChannel::with_defaults(transport)
                    .max_concurrent_requests(opts.max_concurrent_requests);
                connections.spawn(on_connection(channel));
            }
        }
    }
    connections.shutdown().await;
    Ok(())
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
    /// How long to wait for the TCP connection.
    pub connect_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

async fn connect_transport<Req, Resp>(
    addr: &HostAddr,
    opts: ConnectOptions,
) -> io::Result<ClientTransport<Req, Resp>>
where
    Req: Serialize,
    Resp: DeserializeOwned,
{
    let connecting = TcpStream::connect((addr.host.as_str(), addr.port));
    let stream = tokio::time::timeout(opts.connect_timeout, connecting)
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connecting to {addr} timed out"),
            )
        })??;
    stream.set_nodelay(true)?;
    let framed = frame_codec(opts.max_frame_bytes).new_framed(stream);
    Ok(serde_transport::new(framed, Bincode::default()))
}

fn client_config() -> client::Config {
    let mut config = client::Config::default();
    // The engine bounds its own concurrency; tarpc's queue need not.
    config.max_in_flight_requests = 1 << 16;
    config.pending_request_buffer = 1024;
    config
}

/// Connects to a worker.
pub async fn connect_crawl(addr: &HostAddr, opts: ConnectOptions) -> io::Result<CrawlClient> {
    let transport = connect_transport::<CrawlRequest, CrawlResponse>(addr, opts).await?;
    Ok(CrawlClient::new(client_config(), transport).spawn())
}

/// Connects to an itemsaver.
pub async fn connect_itemsaver(
    addr: &HostAddr,
    opts: ConnectOptions,
) -> io::Result<ItemSaverClient> {
    let transport = connect_transport::<ItemSaverRequest, ItemSaverResponse>(addr, opts).await?;
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
