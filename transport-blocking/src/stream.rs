//! The response body as a stream (`std::io::Read`) for Rust callers who do
//! not want it in memory: the core still decides framing and decoding; this
//! only pulls bytes when the caller reads.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Instant;

use mpnet_core::http1::{state, ContentDecoder, Exchange};
use mpnet_core::request::Profile;

use crate::client::ClientInner;
use crate::conn::{self, Conn};

/// A successful response whose body is read as a stream.
#[derive(Debug)]
pub struct StreamResponse {
    /// The HTTP status (200-299 or 304).
    pub status: u16,
    /// Response headers: the server's names, repeated fields joined with `, `.
    pub headers: mpnet_core::JsHeaders,
    /// Timings up to the response head.
    pub profile: Profile,
    /// The decoded body.
    pub body: BodyReader,
}

enum Source {
    /// Reading from the connection.
    Open {
        conn: Box<Conn>,
        exchange: Exchange<state::RecvBody>,
    },
    /// The body has ended (the connection went back to the pool or was closed).
    Done,
}

/// The body of a [`StreamResponse`]: decoded bytes as they arrive. The
/// connection goes back to the pool once the body has been read to its end;
/// dropping the reader earlier closes it. Reads after the call's deadline
/// fail with `TimedOut`.
pub struct BodyReader {
    client: Arc<ClientInner>,
    source: Source,
    decoder: ContentDecoder,
    pending: Vec<u8>,
    pos: usize,
    deadline: Instant,
}

impl std::fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyReader")
            .field("done", &matches!(self.source, Source::Done))
            .finish_non_exhaustive()
    }
}

fn to_io(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl BodyReader {
    pub(crate) fn new(
        client: Arc<ClientInner>,
        conn: Conn,
        exchange: Option<Exchange<state::RecvBody>>,
        decoder: ContentDecoder,
        deadline: Instant,
    ) -> BodyReader {
        let mut reader = BodyReader {
            client,
            source: Source::Done,
            decoder,
            pending: Vec::new(),
            pos: 0,
            deadline,
        };
        match exchange {
            Some(exchange) => {
                reader.source = Source::Open {
                    conn: Box::new(conn),
                    exchange,
                }
            }
            None => client_release(&reader.client, conn, true),
        }
        reader
    }

    /// Pulls the next piece of body into `pending`; `Ok(false)` at the end.
    fn pull(&mut self) -> io::Result<bool> {
        let Source::Open { conn, exchange } = &mut self.source else {
            return Ok(false);
        };
        self.pending.clear();
        self.pos = 0;
        while self.pending.is_empty() && !exchange.is_finished() {
            let chunk = exchange.read(conn.filled()).map_err(to_io)?;
            if !chunk.data.is_empty() {
                let data = &conn.filled()[chunk.data.clone()];
                self.decoder.push(data, &mut self.pending).map_err(to_io)?;
            }
            conn.consume(chunk.consumed);
            if chunk.need_more() && !exchange.is_finished() && conn.fill(self.deadline)? == 0 {
                exchange.handle_eof().map_err(to_io)?;
            }
        }
        if exchange.is_finished() {
            self.decoder.finish(&mut self.pending).map_err(to_io)?;
            if let Source::Open { conn, exchange } =
                std::mem::replace(&mut self.source, Source::Done)
            {
                let reuse = exchange.finish().reuse.is_keep_alive();
                client_release(&self.client, *conn, reuse);
            }
        }
        Ok(!self.pending.is_empty() || matches!(self.source, Source::Open { .. }))
    }
}

fn client_release(client: &ClientInner, conn: Conn, reusable: bool) {
    if reusable {
        client.put_pooled(conn);
    } else {
        conn.close();
    }
}

impl Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.pending.len() {
                let n = out.len().min(self.pending.len() - self.pos);
                out[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if out.is_empty()
                || !self.pull().map_err(|e| {
                    if conn::is_timeout(&e) {
                        io::Error::new(io::ErrorKind::TimedOut, "response body timed out")
                    } else {
                        e
                    }
                })?
            {
                return Ok(0);
            }
        }
    }
}

impl Drop for BodyReader {
    fn drop(&mut self) {
        if let Source::Open { conn, .. } = std::mem::replace(&mut self.source, Source::Done) {
            conn.close();
        }
    }
}
