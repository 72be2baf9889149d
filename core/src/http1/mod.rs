//! The HTTP/1.1 client exchange as a type-state machine, with no I/O
//! (SPEC §2; it carries the `my.request` response rules of SPEC §4).
//!
//! ```text
//!  Exchange<SendRequest> --request_sent()--> Exchange<RecvResponse>
//!    head(): bytes to write                    try_response(input) until a final
//!    (then exactly body_len body bytes)        head; 1xx heads other than 101 are
//!    connection_close(): ask for close         skipped (Ok((n, None)), n > 0);
//!                                              handle_eof() -> ClosedBeforeHead
//!                                                   |
//!                                             into_body(&head)   (framing decided here)
//!                              +--------------------+----------------------+
//!                              v                                           v
//!                    AfterHead::Body(Exchange<RecvBody>)          AfterHead::Done(Complete)
//!                      read(input) -> BodyChunk (zero-copy)        (HEAD request, 101, 204,
//!                      handle_eof(): ends a close-delimited        304, Content-Length: 0)
//!                        body, else ClosedMidBody
//!                      is_finished() -> finish() -> Complete
//! ```
//!
//! "Need more input" is a normal answer (`Ok((0, None))`, or a
//! [`BodyChunk`] that consumed nothing), never an error. The caller owns
//! every buffer: it passes the bytes it has read, the exchange says how many
//! it consumed, and the caller keeps the rest for the next call. Feeding the
//! same bytes split at any boundaries gives the same heads, the same body
//! bytes and the same errors (the split-anywhere rule of SPEC §2).
//! [`Complete::reuse`] says, as data, whether the connection may go back to
//! a pool, and if not, why ([`CloseReason`]).
//!
//! | file | job |
//! |---|---|
//! | `head.rs` | write the request head |
//! | `response.rs` | parse a response head (`httparse`), header look-ups, the JS header object |
//! | `body.rs` | decide the body framing and read a body by it |
//! | `chunked.rs` | the chunked transfer coding, decoded in place |
//! | `content.rs` | `Content-Encoding` (gzip, deflate) with a bounded output |
//! | `exchange.rs` | the type-states tying the above together |

pub mod body;
pub mod chunked;
pub mod content;
pub mod exchange;
pub mod head;
pub mod response;

pub use body::BodyChunk;
pub use chunked::ChunkedDecoder;
pub use content::ContentDecoder;
pub use exchange::{
    state, AfterHead, CloseReason, Complete, ConnectionReuse, Exchange, ATTACHED_BODY_MAX,
    KEPT_HEAD_BUFFER_MAX,
};
pub use head::RequestHead;
pub use response::{HeadBuffers, ResponseHead, KEPT_RESPONSE_HEAD_MAX};

/// A peer's violation of HTTP/1.1 or of a client limit (SPEC §4: error 19),
/// or a connection that ended too early (error 12).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The status line is not `HTTP/1.x NNN reason`.
    BadStatusLine,
    /// A header field is malformed (no colon, bad name, obs-fold, bad byte).
    BadHeader,
    /// The head is larger than `Limits::max_header_bytes`.
    HeadTooLarge {
        /// The limit.
        max: usize,
    },
    /// More header fields than `Limits::max_header_count`.
    TooManyHeaders {
        /// The limit.
        max: usize,
    },
    /// Content-Length is not a number, or several disagree.
    BadContentLength,
    /// Transfer-Encoding other than a final `chunked`, or with Content-Length.
    BadTransferEncoding,
    /// A chunk-size line is malformed (not hex, overflows 64 bits, bad byte).
    BadChunkSize,
    /// A chunk-size line or the trailer section is over its limit.
    ChunkLineTooLong {
        /// The limit.
        max: usize,
    },
    /// Bytes after a chunk's data other than CRLF.
    BadChunkEnd,
    /// The trailer section after the last chunk is malformed (a bare CR).
    BadTrailer,
    /// The decoded body exceeds `Limits::max_body_bytes`.
    BodyTooLarge {
        /// The limit.
        max: u64,
    },
    /// The Content-Encoding stream is corrupt or truncated.
    BadContentEncoding(String),
    /// The connection closed before the response head was complete.
    ClosedBeforeHead,
    /// The connection closed before the body was complete.
    ClosedMidBody,
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtocolError::BadStatusLine => f.write_str("malformed HTTP status line"),
            ProtocolError::BadHeader => f.write_str("malformed HTTP response header"),
            ProtocolError::HeadTooLarge { max } => {
                write!(f, "HTTP response head larger than {max} bytes")
            }
            ProtocolError::TooManyHeaders { max } => {
                write!(f, "more than {max} HTTP response header fields")
            }
            ProtocolError::BadContentLength => f.write_str("invalid or conflicting Content-Length"),
            ProtocolError::BadTransferEncoding => f.write_str(
                "unsupported Transfer-Encoding (only a single chunked, without Content-Length)",
            ),
            ProtocolError::BadChunkSize => f.write_str("malformed chunk size line"),
            ProtocolError::ChunkLineTooLong { max } => {
                write!(
                    f,
                    "chunk size line or trailer section longer than {max} bytes"
                )
            }
            ProtocolError::BadChunkEnd => f.write_str("chunk data not followed by CRLF"),
            ProtocolError::BadTrailer => f.write_str("malformed chunked trailer section"),
            ProtocolError::BodyTooLarge { max } => {
                write!(f, "response body larger than {max} bytes")
            }
            ProtocolError::BadContentEncoding(why) => {
                write!(f, "corrupt Content-Encoding: {why}")
            }
            ProtocolError::ClosedBeforeHead => {
                f.write_str("connection closed before the response head was complete")
            }
            ProtocolError::ClosedMidBody => {
                f.write_str("connection closed before the response body was complete")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

impl From<ProtocolError> for crate::Error {
    /// `ClosedBeforeHead`/`ClosedMidBody` are network errors (12); the rest
    /// are protocol errors (19).
    fn from(e: ProtocolError) -> Self {
        let kind = match e {
            ProtocolError::ClosedBeforeHead | ProtocolError::ClosedMidBody => {
                crate::ErrorKind::Network
            }
            _ => crate::ErrorKind::Protocol,
        };
        crate::Error::new(kind, e.to_string())
    }
}
