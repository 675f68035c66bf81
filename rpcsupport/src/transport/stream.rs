//! The bytes under the frames: plain TCP or TLS, with a server's idle timer.

use std::future::Future;

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// The bytes under the frames of one connection, past the handshake: plain
/// TCP or TLS, and on a server the idle timer.
pub struct RpcStream {
    io: Io,
    idle: Option<Idle>,
}

pub(super) enum Io {
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
    pub(super) fn new(io: Io) -> RpcStream {
        RpcStream { io, idle: None }
    }

    pub(super) fn with_idle_timeout(
        mut self,
        timeout: Option<Duration>,
        peer: SocketAddr,
    ) -> RpcStream {
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
