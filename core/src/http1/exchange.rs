//! The exchange type-states: one request, one response, no I/O.
//!
//! Each state is a type; each transition consumes the exchange and returns
//! the next state (or an enum of the legal next states), so a state cannot
//! be used out of order. Errors are [`ProtocolError`]s: the peer broke
//! HTTP/1.1, broke a client limit, or closed too early.
//!
//! A whole exchange, every state visited (the scenario a transport drives,
//! one small function per state):
//!
//! ```
//! use mpnet_core::http1::{AfterHead, CloseReason, ConnectionReuse, Exchange, RequestHead};
//! use mpnet_core::Limits;
//!
//! let headers = http::HeaderMap::new();
//! let head = RequestHead {
//!     method: &http::Method::GET,
//!     target: "/data?x=1",
//!     host: "api.example.com",
//!     headers: &headers,
//!     body_len: None,
//! };
//!
//! // SendRequest: the head bytes to write.
//! let send = Exchange::new(&head, &Limits::default());
//! assert!(send.head().starts_with(b"GET /data?x=1 HTTP/1.1\r\nhost: api.example.com\r\n"));
//! let mut recv = send.request_sent();
//!
//! // RecvResponse: the server's bytes arrive in pieces; the caller keeps
//! // what was not consumed and appends the next piece.
//! let wire: &[&[u8]] = &[
//!     b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Enc",
//!     b"oding: chunked\r\nContent-Type: text/plain\r\n\r\n5\r\nhel",
//!     b"lo\r\n6\r\n world\r\n0\r\n\r\n",
//! ];
//! let mut pieces = wire.iter();
//! let mut buf: Vec<u8> = Vec::new();
//! let response = loop {
//!     match recv.try_response(&buf).unwrap() {
//!         (n, Some(head)) => {
//!             buf.drain(..n);
//!             break head;
//!         }
//!         (0, None) => match pieces.next() {
//!             Some(piece) => buf.extend_from_slice(piece),
//!             None => panic!("{}", recv.handle_eof()),
//!         },
//!         (n, None) => drop(buf.drain(..n)), // a 1xx head, skipped
//!     }
//! };
//! assert_eq!(response.status, 200);
//! assert_eq!(response.header("content-type"), Some(&b"text/plain"[..]));
//!
//! // RecvBody: body data is a range of the caller's buffer (zero-copy).
//! let mut body = match recv.into_body(&response).unwrap() {
//!     AfterHead::Body(body) => body,
//!     AfterHead::Done(_) => unreachable!("a chunked body follows"),
//! };
//! let mut data = Vec::new();
//! while !body.is_finished() {
//!     let chunk = body.read(&buf).unwrap();
//!     data.extend_from_slice(&buf[chunk.data.clone()]);
//!     buf.drain(..chunk.consumed);
//!     if chunk.need_more() {
//!         match pieces.next() {
//!             Some(piece) => buf.extend_from_slice(piece),
//!             None => body.handle_eof().unwrap(),
//!         }
//!     }
//! }
//! assert_eq!(data, b"hello world");
//!
//! // Complete: the connection may go back to a pool.
//! assert_eq!(body.finish().reuse, ConnectionReuse::KeepAlive);
//!
//! // A response without a body goes straight from the head to Complete.
//! let recv = Exchange::new(&head, &Limits::default()).request_sent();
//! let response = mpnet_core::http1::ResponseHead::new(
//!     204,
//!     "",
//!     http::Version::HTTP_11,
//!     [("Connection", "close")],
//! );
//! match recv.into_body(&response).unwrap() {
//!     AfterHead::Done(done) => {
//!         assert_eq!(done.reuse, ConnectionReuse::Close(CloseReason::ConnectionClose))
//!     }
//!     AfterHead::Body(_) => unreachable!("204 has no body"),
//! }
//! ```

use super::body::{BodyReader, Framing};
use super::response::{parse_head, HeadParse};
use super::{BodyChunk, HeadBuffers, ProtocolError, RequestHead, ResponseHead};
use crate::Limits;

/// The states of an [`Exchange`]. Their data is private: an exchange is only
/// made by [`Exchange::new`] and moved on by its transitions.
pub mod state {
    use super::{BodyReader, CloseReason};

    /// Sending the request: the head is encoded and waits to be written.
    #[derive(Debug)]
    pub struct SendRequest {
        /// The head, then the attached body bytes, if any.
        pub(super) head: Vec<u8>,
        /// How many bytes at the end of `head` are an attached body.
        pub(super) attached: usize,
        pub(super) body_len: Option<u64>,
    }

    /// Waiting for the final response head.
    #[derive(Debug)]
    pub struct RecvResponse {
        /// Bytes taken by skipped 1xx heads; they count against the head limit.
        pub(super) skipped: usize,
    }

    /// Reading the response body.
    #[derive(Debug)]
    pub struct RecvBody {
        pub(super) reader: BodyReader,
        /// Why the head already rules out reuse, if it does.
        pub(super) head_close: Option<CloseReason>,
        /// The caller reported EOF.
        pub(super) peer_closed: bool,
    }
}

/// The largest request-head buffer [`Exchange::request_sent_keeping_buffer`]
/// hands back for reuse (16 KiB: every head but those with very large
/// headers, with an [attached](Exchange::attach_body) body).
pub const KEPT_HEAD_BUFFER_MAX: usize = 16 * 1024;

/// The largest body [`Exchange::attach_body`] puts in the head's buffer
/// (copying it there costs less than a second write below this size).
pub const ATTACHED_BODY_MAX: usize = 4 * 1024;

/// What an exchange needs from its request and limits in every state.
#[derive(Debug, Clone)]
struct Common {
    head_request: bool,
    client_close: bool,
    max_header_bytes: usize,
    max_header_count: usize,
    max_chunk_line_bytes: usize,
}

/// One HTTP/1.1 request-response exchange in state `S` (see
/// [`state`] and the module docs).
#[derive(Debug)]
pub struct Exchange<S> {
    common: Common,
    state: S,
}

/// What follows a final response head.
#[derive(Debug)]
pub enum AfterHead {
    /// A body follows: read it.
    Body(Exchange<state::RecvBody>),
    /// No body (HEAD request, 101, 204, 304, `Content-Length: 0`): done.
    Done(Complete),
}

/// A finished exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Complete {
    /// Whether the connection may carry another exchange.
    pub reuse: ConnectionReuse,
}

/// Whether a connection may be reused after an exchange. This is data for
/// the transport (which owns any pool), not a decision it is spared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionReuse {
    /// HTTP/1.1, nobody said close, and the body was delimited and fully
    /// read: the connection may go back to a pool.
    KeepAlive,
    /// The connection must be closed, for this reason.
    Close(CloseReason),
}

impl ConnectionReuse {
    /// Whether the connection may be reused.
    pub fn is_keep_alive(&self) -> bool {
        matches!(self, ConnectionReuse::KeepAlive)
    }
}

/// Why a connection cannot be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The response was HTTP/1.0.
    Http10,
    /// The request or the response said `Connection: close`.
    ConnectionClose,
    /// The body had no length: it ended when the server closed.
    CloseDelimited,
    /// `101 Switching Protocols`: the connection now speaks another protocol.
    SwitchingProtocols,
    /// [`Exchange::finish`] was called before the body was fully read.
    BodyNotFinished,
    /// The server closed the connection (the body was complete anyway).
    PeerClosed,
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CloseReason::Http10 => "the response is HTTP/1.0",
            CloseReason::ConnectionClose => "Connection: close",
            CloseReason::CloseDelimited => "the body is delimited by the connection's close",
            CloseReason::SwitchingProtocols => "101 Switching Protocols",
            CloseReason::BodyNotFinished => "the body was not fully read",
            CloseReason::PeerClosed => "the server closed the connection",
        })
    }
}

impl Exchange<state::SendRequest> {
    /// Starts an exchange: encodes `head` once, and keeps of `limits` what
    /// reading the response needs.
    pub fn new(head: &RequestHead<'_>, limits: &Limits) -> Self {
        Self::new_in(head, limits, Vec::with_capacity(256))
    }

    /// [`new`](Self::new), encoding the head into `buf` (cleared first)
    /// instead of a new buffer: a transport that keeps the buffer
    /// [`request_sent_keeping_buffer`](Self::request_sent_keeping_buffer)
    /// hands back sends every request of a connection without allocating
    /// for its head.
    pub fn new_in(head: &RequestHead<'_>, limits: &Limits, mut buf: Vec<u8>) -> Self {
        buf.clear();
        head.write_to(&mut buf);
        Exchange {
            common: Common {
                head_request: *head.method == http::Method::HEAD,
                client_close: false,
                max_header_bytes: limits.max_header_bytes,
                max_header_count: limits.max_header_count,
                max_chunk_line_bytes: limits.max_chunk_line_bytes,
            },
            state: state::SendRequest {
                head: buf,
                attached: 0,
                body_len: head.body_len,
            },
        }
    }

    /// Asks the server to close the connection after this response
    /// (`connection: close` is added to the head); the exchange then ends
    /// with `Close(ConnectionClose)`. For transports that will not reuse
    /// the connection. Calling it twice adds the header once.
    pub fn connection_close(&mut self) {
        if self.common.client_close {
            return;
        }
        let bytes = &mut self.state.head;
        let head_len = bytes.len().saturating_sub(self.state.attached);
        // The head always ends with the blank line `write_to` put there.
        if bytes[..head_len].ends_with(b"\r\n\r\n") {
            let at = head_len.saturating_sub(2);
            bytes.splice(at..at, b"connection: close\r\n".iter().copied());
            self.common.client_close = true;
        }
    }

    /// Attaches the request body to the head when it is complete (its
    /// length is the head's `body_len`) and at most [`ATTACHED_BODY_MAX`]
    /// bytes: [`head`](Self::head) then holds both, so head and body leave
    /// in one write (one TCP segment, one TLS record) instead of two.
    /// Returns whether the body was attached; if not, the caller writes it
    /// after the head as usual.
    pub fn attach_body(&mut self, body: &[u8]) -> bool {
        let whole = self.state.body_len == Some(body.len() as u64);
        if !whole || body.is_empty() || body.len() > ATTACHED_BODY_MAX || self.state.attached > 0 {
            return false;
        }
        self.state.head.extend_from_slice(body);
        self.state.attached = body.len();
        true
    }

    /// The bytes to write first, in full: the request head, followed by
    /// the body when it was [attached](Self::attach_body). After them the
    /// caller writes the [`body_len`](Self::body_len) body bytes, if any and
    /// not attached.
    pub fn head(&self) -> &[u8] {
        &self.state.head
    }

    /// The length of the request body that follows the head, if any.
    pub fn body_len(&self) -> Option<u64> {
        self.state.body_len
    }

    /// The head (and body) are written: wait for the response.
    pub fn request_sent(self) -> Exchange<state::RecvResponse> {
        self.request_sent_keeping_buffer().0
    }

    /// [`request_sent`](Self::request_sent), handing back the head's
    /// buffer for the connection's next [`new_in`](Self::new_in). A buffer
    /// grown past [`KEPT_HEAD_BUFFER_MAX`] bytes (a request with huge
    /// headers) is dropped and an empty one returned, so a connection never
    /// holds more than that between requests.
    pub fn request_sent_keeping_buffer(self) -> (Exchange<state::RecvResponse>, Vec<u8>) {
        let mut buf = self.state.head;
        if buf.capacity() > KEPT_HEAD_BUFFER_MAX {
            buf = Vec::new();
        }
        buf.clear();
        let next = Exchange {
            common: self.common,
            state: state::RecvResponse { skipped: 0 },
        };
        (next, buf)
    }
}

impl Exchange<state::RecvResponse> {
    /// Looks for a response head at the start of `input`, the bytes read so
    /// far and not yet consumed.
    ///
    /// - `Ok((0, None))`: need more input. Read more, append, call again.
    /// - `Ok((n, None))` with `n > 0`: an informational head (100, 102,
    ///   103, ...) of `n` bytes was skipped; drop them and call again.
    /// - `Ok((n, Some(head)))`: the final head (any status from 200, or
    ///   101) took `n` bytes; the body starts at `input[n..]`. Then call
    ///   [`into_body`](Self::into_body), not this again.
    ///
    /// All heads of the exchange together may take at most
    /// `Limits::max_header_bytes`: once `input` holds more than what is left
    /// of that without a complete head, or a head is larger, the answer is
    /// `HeadTooLarge`. More than `Limits::max_header_count` fields is
    /// `TooManyHeaders`; a malformed head is `BadStatusLine` or `BadHeader`,
    /// reported as soon as the bad byte is in `input`.
    pub fn try_response(
        &mut self,
        input: &[u8],
    ) -> Result<(usize, Option<ResponseHead>), ProtocolError> {
        self.try_response_in(input, &mut HeadBuffers::new())
    }

    /// [`try_response`](Self::try_response), packing the head into the
    /// buffers `spare` keeps instead of new ones: the final head takes
    /// them (leaving `spare` empty); a skipped 1xx head hands them back.
    /// With buffers a previous head left (see [`HeadBuffers`]) and a head
    /// that fits them, parsing allocates nothing. The answer is the same as
    /// `try_response`'s whatever `spare` holds.
    pub fn try_response_in(
        &mut self,
        input: &[u8],
        spare: &mut HeadBuffers,
    ) -> Result<(usize, Option<ResponseHead>), ProtocolError> {
        if input.is_empty() {
            return Ok((0, None));
        }
        let limit = self.common.max_header_bytes;
        let budget = limit.saturating_sub(self.state.skipped);
        match parse_head(input, budget, limit, self.common.max_header_count, spare)? {
            HeadParse::Partial => Ok((0, None)),
            HeadParse::Complete { len, head } if head.is_informational() && head.status != 101 => {
                self.state.skipped = self.state.skipped.saturating_add(len);
                spare.refill(head);
                Ok((len, None))
            }
            HeadParse::Complete { len, head } => Ok((len, Some(head))),
        }
    }

    /// The connection ended before a final head: the error to report.
    pub fn handle_eof(&self) -> ProtocolError {
        ProtocolError::ClosedBeforeHead
    }

    /// Decides how the body of `head` (the final head that
    /// [`try_response`](Self::try_response) returned) is framed, and moves
    /// on: to [`AfterHead::Body`] if there is a body to read, else to
    /// [`AfterHead::Done`]. A bad `Content-Length` or `Transfer-Encoding` is
    /// an error. A large `Content-Length` is not: the caller checks
    /// [`Exchange::content_length`] against its own limit (downloads stream
    /// to disk).
    pub fn into_body(self, head: &ResponseHead) -> Result<AfterHead, ProtocolError> {
        let head_close = self.head_close_reason(head);
        let framing = Framing::of(head, self.common.head_request)?;
        Ok(
            match BodyReader::new(framing, self.common.max_chunk_line_bytes) {
                None => AfterHead::Done(Complete {
                    reuse: head_close.map_or(ConnectionReuse::KeepAlive, ConnectionReuse::Close),
                }),
                Some(reader) => AfterHead::Body(Exchange {
                    common: self.common,
                    state: state::RecvBody {
                        reader,
                        head_close,
                        peer_closed: false,
                    },
                }),
            },
        )
    }

    /// Why the head alone rules out reusing the connection, if it does.
    fn head_close_reason(&self, head: &ResponseHead) -> Option<CloseReason> {
        if head.status == 101 {
            Some(CloseReason::SwitchingProtocols)
        } else if self.common.client_close || head.has_token("connection", "close") {
            Some(CloseReason::ConnectionClose)
        } else if head.version != http::Version::HTTP_11 {
            Some(CloseReason::Http10)
        } else {
            None
        }
    }
}

impl Exchange<state::RecvBody> {
    /// Reads body bytes from the start of `input`, the bytes read so far and
    /// not yet consumed. The body data is `input[chunk.data]`; drop
    /// `chunk.consumed` bytes and keep the rest.
    ///
    /// [`BodyChunk::need_more`] (nothing consumed, no data) means: read
    /// more input, or, if [`is_finished`](Self::is_finished), stop. A chunk
    /// may consume framing bytes and carry no data. Bytes after the end of
    /// the body are never consumed. Errors (chunked framing only) are
    /// sticky.
    pub fn read(&mut self, input: &[u8]) -> Result<BodyChunk, ProtocolError> {
        self.state.reader.read(input)
    }

    /// The connection ended. For a close-delimited body this is its end
    /// (then [`is_finished`](Self::is_finished)); a body already complete
    /// stays complete (and the connection is not reused); otherwise
    /// `ClosedMidBody`.
    pub fn handle_eof(&mut self) -> Result<(), ProtocolError> {
        self.state.peer_closed = true;
        self.state.reader.handle_eof()
    }

    /// Whether the whole body has been read.
    pub fn is_finished(&self) -> bool {
        self.state.reader.is_finished()
    }

    /// The body's Content-Length, when the headers gave one.
    pub fn content_length(&self) -> Option<u64> {
        self.state.reader.content_length()
    }

    /// Ends the exchange; call it once [`is_finished`](Self::is_finished).
    /// Called earlier, it gives `Close(BodyNotFinished)`: the unread rest
    /// of the body makes the connection unusable.
    pub fn finish(self) -> Complete {
        let body = &self.state.reader;
        let reason = if !body.is_finished() {
            Some(CloseReason::BodyNotFinished)
        } else if self.state.head_close.is_some() {
            self.state.head_close
        } else if body.is_close_delimited() {
            Some(CloseReason::CloseDelimited)
        } else if self.state.peer_closed {
            Some(CloseReason::PeerClosed)
        } else {
            None
        };
        Complete {
            reuse: reason.map_or(ConnectionReuse::KeepAlive, ConnectionReuse::Close),
        }
    }
}
