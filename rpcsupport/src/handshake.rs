//! The token check at the start of every RPC connection, before any tarpc
//! frame (and inside TLS, when TLS is on, so the token is never sent in the
//! clear over it).
//!
//! ```text
//! client -> server   "CRWL"       4 bytes, magic
//!                    version      1 byte, VERSION
//!                    length       2 bytes, big-endian, at most MAX_TOKEN_BYTES
//!                    token        `length` bytes (0 when the client has none)
//! server -> client   reply        1 byte: ACCEPTED, WRONG_TOKEN, BAD_VERSION
//!                                 or BUSY
//! ```
//!
//! A server without a token accepts any token, so the handshake is always
//! the same. After `WRONG_TOKEN` or `BAD_VERSION`, and without a reply when
//! the magic is wrong or the length too big, the server closes the
//! connection. `BUSY` comes only after a right token, when the server has
//! no room for another authenticated connection (`max_connections`), so a
//! stranger cannot learn how busy it is. The server bounds the whole exchange with its handshake
//! timeout, so a peer that sends nothing ties up nothing for long.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::security::{Token, MAX_TOKEN_BYTES};

/// First four bytes of every connection.
pub const MAGIC: [u8; 4] = *b"CRWL";
/// The handshake version this build speaks.
pub const VERSION: u8 = 1;
/// Reply: go ahead, tarpc frames follow.
pub const ACCEPTED: u8 = 0;
/// Reply: the token is missing or wrong.
pub const WRONG_TOKEN: u8 = 1;
/// Reply: the server does not speak the client's handshake version.
pub const BAD_VERSION: u8 = 2;
/// Reply: the token is right, but the server is at `max_connections`.
pub const BUSY: u8 = 3;

/// The bytes a client sends.
pub fn hello(token: Option<&Token>) -> Vec<u8> {
    let token = token.map(Token::as_bytes).unwrap_or_default();
    let mut out = Vec::with_capacity(7 + token.len());
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    // Token::new bounds the length to MAX_TOKEN_BYTES, well inside u16.
    out.extend_from_slice(&(token.len() as u16).to_be_bytes());
    out.extend_from_slice(token);
    out
}

/// Client side: sends the hello and waits for the reply.
pub async fn client<S>(stream: &mut S, token: Option<&Token>) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let closed = |e: io::Error| match e.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe => io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the server closed the connection during the RPC handshake \
             (too many connections? TLS expected?)",
        ),
        _ => e,
    };
    stream.write_all(&hello(token)).await.map_err(closed)?;
    stream.flush().await.map_err(closed)?;
    let mut reply = [0u8; 1];
    stream.read_exact(&mut reply).await.map_err(closed)?;
    match reply[0] {
        ACCEPTED => Ok(()),
        WRONG_TOKEN => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            if token.is_some() {
                "the server rejected our RPC token (set the same [rpc] token everywhere, \
                 or that service's worker_token / itemsaver_token)"
            } else {
                "the server requires an RPC token (set [rpc] token_file, \
                 CRAWLER_RPC_TOKEN or --rpc_token_file, or that service's own \
                 worker_token_file / itemsaver_token_file)"
            },
        )),
        BUSY => Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "the server has too many RPC connections open ([rpc] max_connections)",
        )),
        BAD_VERSION => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the server speaks another RPC handshake version (mixed builds?)",
        )),
        // A TLS record (alert 0x15, handshake 0x16): our plain hello hit a
        // TLS server.
        0x15 | 0x16 => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the server expects TLS (set [rpc] tls_ca or --tls_ca)",
        )),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected RPC handshake reply {other:#04x} (not a crawler server?)"),
        )),
    }
}

/// Why the server closed a connection during the handshake. The text goes
/// to the log; it never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The first bytes are not [`MAGIC`]: not one of our clients.
    #[error("not a crawler RPC client (bad magic)")]
    BadMagic,
    /// A TLS client, and this server has no TLS configured.
    #[error("the client speaks TLS but this server has no tls_cert/tls_key")]
    UnexpectedTls,
    /// Another handshake version.
    #[error("unsupported handshake version {0}")]
    BadVersion(u8),
    /// A token length above [`MAX_TOKEN_BYTES`].
    #[error("token length {0} is over the limit")]
    TooLong(usize),
    /// The token is missing or wrong.
    #[error("missing or wrong token")]
    WrongToken,
    /// The token is right but there is no room (`max_connections`).
    #[error("too many connections (max_connections)")]
    Busy,
    /// Reading or writing failed (including EOF in the middle).
    #[error("handshake I/O: {0}")]
    Io(#[from] io::Error),
}

/// Server side: reads the hello, checks the token against `expected` (any
/// token is fine when `None`), then asks `admit` for room (a connection
/// permit, say) and replies: `ACCEPTED` with what `admit` gave, or `BUSY`.
pub async fn server<S, P>(
    stream: &mut S,
    expected: Option<&Token>,
    admit: impl FnOnce() -> Option<P>,
) -> Result<P, Refused>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = [0u8; 7];
    stream.read_exact(&mut head).await?;
    if head[..4] != MAGIC {
        // 0x16 opens a TLS ClientHello: a client set up for TLS.
        return Err(if head[0] == 0x16 {
            Refused::UnexpectedTls
        } else {
            Refused::BadMagic
        });
    }
    if head[4] != VERSION {
        // Best effort: the peer learns why before the close.
        let _ = stream.write_all(&[BAD_VERSION]).await;
        let _ = stream.flush().await;
        return Err(Refused::BadVersion(head[4]));
    }
    let len = u16::from_be_bytes([head[5], head[6]]) as usize;
    if len > MAX_TOKEN_BYTES {
        return Err(Refused::TooLong(len));
    }
    let mut presented = vec![0u8; len];
    stream.read_exact(&mut presented).await?;
    let outcome = if expected.is_none_or(|token| token.matches(&presented)) {
        admit().ok_or(Refused::Busy)
    } else {
        Err(Refused::WrongToken)
    };
    let reply = match &outcome {
        Ok(_) => ACCEPTED,
        Err(Refused::Busy) => BUSY,
        Err(_) => WRONG_TOKEN,
    };
    stream.write_all(&[reply]).await?;
    stream.flush().await?;
    outcome
}
