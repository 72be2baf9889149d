//! One HTTP/1.1 exchange on a connection: one small function per state of
//! the core's `Exchange` type-state. No decisions here, only bytes moved.
//!
//! Each function is cancel-safe in the only sense that matters here: if
//! its future is dropped, the caller drops the connection too (it is
//! never put back in the pool mid-exchange).

use std::io;
use std::time::Instant;

use mpnet_core::http1::{state, Complete, Exchange, ResponseHead};
use mpnet_core::request::PreparedRequest;
use mpnet_core::{Error, Limits};

use crate::conn::Conn;

/// A failure while exchanging: an I/O error (classified by the caller, who
/// knows the deadline) or an error the core already classified.
#[derive(Debug)]
pub(crate) enum Fail {
    Io(io::Error),
    Api(Error),
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        Fail::Io(e)
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Api(e)
    }
}

impl From<mpnet_core::http1::ProtocolError> for Fail {
    fn from(e: mpnet_core::http1::ProtocolError) -> Self {
        Fail::Api(e.into())
    }
}

/// `SendRequest`: writes the head and the body.
pub(crate) async fn send_request(
    conn: &mut Conn,
    request: &PreparedRequest,
    limits: &Limits,
    deadline: Instant,
) -> Result<Exchange<state::RecvResponse>, Fail> {
    let exchange = request.exchange(limits);
    conn.write_all(exchange.head(), deadline).await?;
    if !request.body().is_empty() {
        conn.write_all(request.body(), deadline).await?;
    }
    conn.flush(deadline).await?;
    Ok(exchange.request_sent())
}

/// `RecvResponse`: reads until the final response head.
pub(crate) async fn recv_response(
    conn: &mut Conn,
    exchange: &mut Exchange<state::RecvResponse>,
    deadline: Instant,
) -> Result<ResponseHead, Fail> {
    loop {
        let (consumed, head) = exchange.try_response(conn.filled())?;
        conn.consume(consumed);
        if let Some(head) = head {
            return Ok(head);
        }
        if consumed == 0 && conn.fill(deadline).await? == 0 {
            return Err(exchange.handle_eof().into());
        }
    }
}

/// `RecvBody`: reads the body to its end, handing each piece to `sink`
/// straight from the read buffer.
pub(crate) async fn recv_body(
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
        if need_more && !exchange.is_finished() && conn.fill(deadline).await? == 0 {
            exchange.handle_eof()?;
        }
    }
    Ok(exchange.finish())
}
