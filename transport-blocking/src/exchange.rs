//! One HTTP/1.1 exchange on a connection: one small function per state of
//! the core's `Exchange` type-state. No decisions here, only bytes moved.

use std::time::Instant;

use mpnet_core::http1::{state, Complete, Exchange, HeadBuffers, ResponseHead};
use mpnet_core::request::PreparedRequest;
use mpnet_core::{Error, Limits};

use crate::conn::Conn;

pub(crate) use mpnet_core::failure::Fail;

/// `SendRequest`: writes the head and the body.
pub(crate) fn send_request(
    conn: &mut Conn,
    request: &PreparedRequest,
    limits: &Limits,
    deadline: Instant,
) -> Result<Exchange<state::RecvResponse>, Fail> {
    let (exchange, body) = request.exchange_in(limits, conn.take_head_buf());
    conn.write_all(exchange.head(), deadline)?;
    if !body.is_empty() {
        conn.write_all(body, deadline)?;
    }
    conn.flush(deadline)?;
    let (exchange, buf) = exchange.request_sent_keeping_buffer();
    conn.keep_head_buf(buf);
    Ok(exchange)
}

/// `RecvResponse`: reads until the final response head, parsed into
/// `head_bufs`.
pub(crate) fn recv_response(
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
        if consumed == 0 && conn.fill(deadline)? == 0 {
            return Err(exchange.handle_eof().into());
        }
    }
}

/// `RecvBody`: reads the body to its end, handing each piece to `sink`
/// straight from the read buffer.
pub(crate) fn recv_body(
    conn: &mut Conn,
    mut exchange: Exchange<state::RecvBody>,
    deadline: Instant,
    mut sink: impl FnMut(&[u8]) -> Result<(), Error>,
) -> Result<Complete, Fail> {
    while !exchange.is_finished() {
        let chunk = exchange.read(conn.filled())?;
        if !chunk.data.is_empty() {
            sink(&conn.filled()[chunk.data.clone()])?;
        }
        conn.consume(chunk.consumed);
        let need_more = chunk.consumed == 0 && chunk.data.is_empty();
        if need_more && !exchange.is_finished() && conn.fill(deadline)? == 0 {
            exchange.handle_eof()?;
        }
    }
    Ok(exchange.finish())
}
