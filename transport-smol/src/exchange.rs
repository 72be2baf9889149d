//! One HTTP/1.1 exchange on a connection: one small function per state of
//! the core's `Exchange` type-state. No decisions here, only bytes moved.
//!
//! Each function is cancel-safe in the only sense that matters here: if
//! its future is dropped, the caller drops the connection too (it is
//! never put back in the pool mid-exchange).

use std::future::Future;
use std::time::Instant;

use mpnet_core::http1::{state, Complete, Exchange, HeadBuffers, ResponseHead};
use mpnet_core::request::PreparedRequest;
use mpnet_core::{Error, Limits};

use crate::conn::Conn;

pub(crate) use mpnet_core::failure::Fail;

/// `SendRequest`: writes the head and the body.
pub(crate) async fn send_request(
    conn: &mut Conn,
    request: &PreparedRequest,
    limits: &Limits,
    deadline: Instant,
) -> Result<Exchange<state::RecvResponse>, Fail> {
    let (exchange, body) = request.exchange_in(limits, conn.take_head_buf());
    conn.write_all(exchange.head(), deadline).await?;
    if !body.is_empty() {
        conn.write_all(body, deadline).await?;
    }
    conn.flush(deadline).await?;
    let (exchange, buf) = exchange.request_sent_keeping_buffer();
    conn.keep_head_buf(buf);
    Ok(exchange)
}

/// `RecvResponse`: reads until the final response head, parsed into
/// `head_bufs`.
pub(crate) async fn recv_response(
    conn: &mut Conn,
    exchange: &mut Exchange<state::RecvResponse>,
    deadline: Instant,
    head_bufs: &mut HeadBuffers,
) -> Result<ResponseHead, Fail> {
    loop {
        let (consumed, head) = exchange.try_response_in(conn.filled(), head_bufs)?;
        conn.consume(consumed);
        if let Some(head) = head {
            return Ok(head);
        }
        if consumed == 0 && conn.fill(deadline).await? == 0 {
            return Err(exchange.handle_eof().into());
        }
    }
}

/// Where a body's bytes go when taking them may wait (a file written on the
/// blocking pool). The async form of `recv_body`'s closure, spelled out as a
/// trait for the same reason as `hop::Outgoing`.
pub(crate) trait Sink {
    /// Takes the next piece of the body.
    fn push<'a>(
        &'a mut self,
        data: &'a [u8],
    ) -> impl Future<Output = Result<(), Error>> + Send + 'a;
}

/// A closure that takes each piece at once, as a [`Sink`].
struct Now<F>(F);

impl<F: FnMut(&[u8]) -> Result<(), Error> + Send> Sink for Now<F> {
    fn push<'a>(
        &'a mut self,
        data: &'a [u8],
    ) -> impl Future<Output = Result<(), Error>> + Send + 'a {
        std::future::ready((self.0)(data))
    }
}

/// `RecvBody`: reads the body to its end, handing each piece to `sink`
/// straight from the read buffer.
pub(crate) async fn recv_body(
    conn: &mut Conn,
    exchange: Exchange<state::RecvBody>,
    deadline: Instant,
    sink: impl FnMut(&[u8]) -> Result<(), Error> + Send,
) -> Result<Complete, Fail> {
    recv_body_to(conn, exchange, deadline, &mut Now(sink)).await
}

/// [`recv_body`] into a sink that may wait; the socket is not read while
/// it does.
pub(crate) async fn recv_body_to(
    conn: &mut Conn,
    mut exchange: Exchange<state::RecvBody>,
    deadline: Instant,
    sink: &mut impl Sink,
) -> Result<Complete, Fail> {
    while !exchange.is_finished() {
        let chunk = exchange.read(conn.filled())?;
        if !chunk.data.is_empty() {
            sink.push(&conn.filled()[chunk.data.clone()]).await?;
        }
        conn.consume(chunk.consumed);
        let need_more = chunk.consumed == 0 && chunk.data.is_empty();
        if need_more && !exchange.is_finished() && conn.fill(deadline).await? == 0 {
            exchange.handle_eof()?;
        }
    }
    Ok(exchange.finish())
}
