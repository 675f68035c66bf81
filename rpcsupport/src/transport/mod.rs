//! The transport shared by every process: TCP (or TLS over TCP), the token
//! handshake of [`crate::handshake`], then length-delimited frames with an
//! explicit maximum size and bincode inside; and the host-string syntax the
//! command lines accept.
//!
//! Files: `server.rs` ([`serve`]: accept, handshake budget, refusal log),
//! `connect.rs` (the `connect_*` helpers), `stream.rs` ([`RpcStream`]: TCP
//! or TLS, idle timer), `matched.rs` ([`Matched`]: responses checked
//! against their method), `host.rs` ([`HostAddr`]); this file the frame
//! types both sides share.

use tarpc::server::limits::requests_per_channel::MaxRequests;
use tarpc::server::BaseChannel;
use tarpc::tokio_util::codec::length_delimited::LengthDelimitedCodec;
use tarpc::{serde_transport, ClientMessage, Response};

use crate::codec::Codec;

mod connect;
mod host;
mod matched;
mod server;
mod stream;

pub use connect::{connect_crawl, connect_itemsaver, ConnectOptions};
pub use host::{HostAddr, HostError};
pub use matched::Matched;
pub use server::{serve, ServeOptions};
pub use stream::RpcStream;

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

/// One accepted connection, ready for `execute(service.serve())`.
pub type ServerChannel<Req, Resp> = MaxRequests<BaseChannel<Req, Resp, ServerTransport<Req, Resp>>>;

fn frame_codec(max_frame_bytes: usize) -> tarpc::tokio_util::codec::length_delimited::Builder {
    let mut builder = LengthDelimitedCodec::builder();
    builder.max_frame_length(max_frame_bytes);
    builder
}

#[cfg(test)]
mod tests;
