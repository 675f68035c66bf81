//! The client side: connect over TCP or TLS, present the service's token,
//! and frame the connection as tarpc expects.

use std::io;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};
use tarpc::{client, serde_transport};
use tokio::net::TcpStream;

use super::stream::{Io, RpcStream};
use super::{frame_codec, ClientTransport, HostAddr, Matched, DEFAULT_MAX_FRAME_BYTES};
use crate::codec::{Codec, DecodeLimits};
use crate::handshake;
use crate::security::{ClientSecurity, Service};
use crate::service::{
    CrawlClient, CrawlRequest, CrawlResponse, ItemSaverClient, ItemSaverRequest, ItemSaverResponse,
    Method,
};

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
