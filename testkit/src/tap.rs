//! An I/O wrapper that records each request head as it arrives, so the echo
//! endpoints can report header names as the client spelled them (hyper
//! lower-cases them) and in the order they were sent.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most request-head bytes the scanner buffers before it gives up.
const MAX_HEAD: usize = 1 << 20;

/// One request head as received.
#[derive(Clone, Debug)]
pub(crate) struct RawHead {
    pub method: String,
    pub target: String,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// The queue of heads seen on one connection, oldest first.
pub(crate) type Heads = Arc<Mutex<VecDeque<RawHead>>>;

#[derive(Clone, Copy, Debug)]
enum State {
    Head,
    Body(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkCrlf(u64),
    Trailers,
    /// Lost track (malformed input, upgrade): record nothing more.
    Off,
}

/// Follows HTTP/1.1 request framing over the bytes read and pushes each head
/// onto `heads`. It never fails: on anything it does not understand it stops
/// recording, and the echo endpoints fall back to hyper's header map.
pub(crate) struct Scanner {
    state: State,
    buf: Vec<u8>,
    heads: Heads,
}

impl Scanner {
    pub(crate) fn new(heads: Heads) -> Self {
        Scanner {
            state: State::Head,
            buf: Vec::new(),
            heads,
        }
    }

    pub(crate) fn feed(&mut self, data: &[u8]) {
        if matches!(self.state, State::Off) {
            return;
        }
        self.buf.extend_from_slice(data);
        let mut pos = 0;
        loop {
            let rest = &self.buf[pos..];
            if rest.is_empty() {
                break;
            }
            match self.state {
                State::Off => break,
                State::Head => {
                    let mut headers = [httparse::EMPTY_HEADER; 128];
                    let mut req = httparse::Request::new(&mut headers);
                    match req.parse(rest) {
                        Ok(httparse::Status::Complete(n)) => {
                            let head = RawHead {
                                method: req.method.unwrap_or("").to_owned(),
                                target: req.path.unwrap_or("").to_owned(),
                                headers: req
                                    .headers
                                    .iter()
                                    .map(|h| (h.name.to_owned(), h.value.to_vec()))
                                    .collect(),
                            };
                            self.state = framing(&head);
                            if let Ok(mut q) = self.heads.lock() {
                                q.push_back(head);
                            }
                            pos += n;
                        }
                        Ok(httparse::Status::Partial) => {
                            if rest.len() > MAX_HEAD {
                                self.state = State::Off;
                            }
                            break;
                        }
                        Err(_) => {
                            self.state = State::Off;
                            break;
                        }
                    }
                }
                State::Body(n) | State::ChunkData(n) | State::ChunkCrlf(n) => {
                    let k = n.min(rest.len() as u64);
                    pos += k as usize;
                    let left = n - k;
                    self.state = match (self.state, left) {
                        (State::Body(_), 0) => State::Head,
                        (State::Body(_), l) => State::Body(l),
                        (State::ChunkData(_), 0) => State::ChunkCrlf(2),
                        (State::ChunkData(_), l) => State::ChunkData(l),
                        (_, 0) => State::ChunkSize,
                        (_, l) => State::ChunkCrlf(l),
                    };
                }
                State::ChunkSize => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((n, size))) => {
                        pos += n;
                        self.state = if size == 0 {
                            State::Trailers
                        } else {
                            State::ChunkData(size)
                        };
                    }
                    Ok(httparse::Status::Partial) => {
                        if rest.len() > 4096 {
                            self.state = State::Off;
                        }
                        break;
                    }
                    Err(_) => {
                        self.state = State::Off;
                        break;
                    }
                },
                State::Trailers => match rest.windows(2).position(|w| w == b"\r\n") {
                    Some(0) => {
                        pos += 2;
                        self.state = State::Head;
                    }
                    Some(i) => pos += i + 2,
                    None => {
                        if rest.len() > MAX_HEAD {
                            self.state = State::Off;
                        }
                        break;
                    }
                },
            }
        }
        self.buf.drain(..pos);
        if matches!(self.state, State::Off) {
            self.buf = Vec::new();
        }
    }
}

/// The body framing of a request head (RFC 9112 §6.3, requests only).
fn framing(head: &RawHead) -> State {
    let mut chunked = false;
    let mut length: Option<u64> = None;
    let mut upgrade = head.method.eq_ignore_ascii_case("CONNECT");
    for (name, value) in &head.headers {
        let value = String::from_utf8_lossy(value);
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("content-length") {
            match value.trim().parse::<u64>() {
                Ok(n) => length = Some(n),
                Err(_) => return State::Off,
            }
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        }
    }
    if upgrade {
        State::Off
    } else if chunked {
        State::ChunkSize
    } else {
        match length {
            Some(n) if n > 0 => State::Body(n),
            _ => State::Head,
        }
    }
}

/// Wraps a connection; every byte read also goes through a [`Scanner`].
pub(crate) struct Tap<IO> {
    io: IO,
    scanner: Scanner,
}

impl<IO> Tap<IO> {
    pub(crate) fn new(io: IO, heads: Heads) -> Self {
        Tap {
            io,
            scanner: Scanner::new(heads),
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tap<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = res {
            let filled = buf.filled();
            if filled.len() > before {
                this.scanner.feed(&filled[before..]);
            }
        }
        res
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tap<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(chunks: &[&[u8]]) -> Vec<RawHead> {
        let heads: Heads = Arc::default();
        let mut s = Scanner::new(heads.clone());
        for c in chunks {
            s.feed(c);
        }
        let q = heads.lock().unwrap();
        q.iter().cloned().collect()
    }

    #[test]
    fn pipelined_with_bodies() {
        let wire: &[u8] = b"POST /a HTTP/1.1\r\nX-One: 1\r\nContent-Length: 5\r\n\r\nGET /\r\n\
            POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: x\r\n\r\n\
            GET /c HTTP/1.1\r\nUser-Agent: Z\r\n\r\n";
        let whole = scan(&[wire]);
        let names: Vec<_> = whole.iter().map(|h| h.target.clone()).collect();
        assert_eq!(names, ["/a", "/b", "/c"]);
        assert_eq!(whole[0].headers[0].0, "X-One");
        // Byte by byte gives the same.
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        let split = scan(&bytes);
        assert_eq!(split.len(), 3);
        assert_eq!(split[2].headers[0].0, "User-Agent");
    }
}
