//! The response body as a stream (`futures_lite::AsyncRead`) for Rust
//! callers who do not want it in memory: the core still decides framing and
//! decoding; this only pulls bytes when the caller reads.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use futures_lite::AsyncRead;
use mpnet_core::http1::{state, ContentDecoder, Exchange};
use mpnet_core::request::Profile;

use crate::client::ClientInner;
use crate::conn::Conn;
use crate::hop::release;

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

/// The body of a [`StreamResponse`]: decoded bytes as they arrive, through
/// [`AsyncRead`] (`futures_lite::AsyncReadExt` adds `read`,
/// `read_to_end`, ...). The connection goes back to the pool once the body
/// has been read to its end; dropping the reader earlier closes it. Reads
/// after the call's deadline fail with `TimedOut`.
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
            None => release(&reader.client, conn, true),
        }
        reader
    }

    /// Pulls the next piece of body into `pending`; `Ready(Ok(false))` at
    /// the end. `Pending` leaves `pending` empty and the exchange where it
    /// was, so the next poll goes on from there.
    fn poll_pull(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let Source::Open { conn, exchange } = &mut self.source else {
            return Poll::Ready(Ok(false));
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
            if chunk.need_more() && !exchange.is_finished() {
                let timed_out =
                    || io::Error::new(io::ErrorKind::TimedOut, "response body timed out");
                if Instant::now() >= self.deadline {
                    return Poll::Ready(Err(timed_out()));
                }
                match conn.poll_fill(cx) {
                    Poll::Ready(n) => {
                        if n? == 0 {
                            exchange.handle_eof().map_err(to_io)?;
                        }
                    }
                    Poll::Pending => {
                        return match conn.poll_deadline(cx, self.deadline) {
                            Poll::Ready(_) => Poll::Ready(Err(timed_out())),
                            Poll::Pending => Poll::Pending,
                        };
                    }
                }
            }
        }
        if exchange.is_finished() {
            self.decoder.finish(&mut self.pending).map_err(to_io)?;
            if let Source::Open { conn, exchange } =
                std::mem::replace(&mut self.source, Source::Done)
            {
                let reuse = exchange.finish().reuse.is_keep_alive();
                release(&self.client, *conn, reuse);
            }
        }
        Poll::Ready(Ok(
            !self.pending.is_empty() || matches!(self.source, Source::Open { .. })
        ))
    }
}

impl AsyncRead for BodyReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            if this.pos < this.pending.len() {
                let n = out.len().min(this.pending.len() - this.pos);
                out[..n].copy_from_slice(&this.pending[this.pos..this.pos + n]);
                this.pos += n;
                return Poll::Ready(Ok(n));
            }
            if out.is_empty() || !ready!(this.poll_pull(cx))? {
                return Poll::Ready(Ok(0));
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
