//! Responses checked against the method each request asked for.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tarpc::{ClientMessage, Response};

use crate::service::Method;

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
    pub(super) fn new(inner: T) -> Self {
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
