//! The HTTP/1.1 client exchange as a type-state machine, with no I/O.
//!
//! OWNER NOTE (remove when implemented): written by a helper; the public
//! signatures below are the contract the rest of core and the transports use.
//!
//! ```text
//!  Exchange<SendRequest> --request_sent()--> Exchange<RecvResponse>
//!        head() bytes to write                 try_response(input) until a final
//!        (then the body, if any)               (non-1xx) head; 1xx are skipped
//!                                                   |
//!                                             into_body(head)
//!                              +--------------------+----------------------+
//!                              v                                           v
//!                    AfterHead::Body(Exchange<RecvBody>)          AfterHead::Done(Complete)
//!                      read(input) -> BodyChunk (zero-copy)        (HEAD, 204, 304,
//!                      handle_eof() for close-delimited            Content-Length: 0)
//!                      finish() -> Complete
//! ```
//!
//! "Need more input" is a normal answer (`Ok((0, None))`), never an error.
//! The caller owns every buffer: it passes the bytes it has read, the
//! exchange says how many it consumed, and the caller keeps the rest for the
//! next call. Feeding the same bytes split at any boundaries gives the same
//! heads and the same body bytes (the split-anywhere rule of SPEC §2).
//! [`Complete::reuse`] says, as data, whether the connection may go back to
//! a pool.

pub mod body;
pub mod chunked;
pub mod content;
pub mod exchange;
pub mod head;
pub mod response;

pub use body::BodyChunk;
pub use content::ContentDecoder;
pub use exchange::{state, AfterHead, Complete, ConnectionReuse, Exchange};
pub use head::RequestHead;
pub use response::ResponseHead;

/// A peer's violation of HTTP/1.1 or of a client limit (SPEC §4: error 19),
/// or a connection that ended too early (error 12).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The status line is not `HTTP/1.x NNN reason`.
    BadStatusLine,
    /// A header field is malformed.
    BadHeader,
    /// The head is larger than `Limits::max_header_bytes`.
    HeadTooLarge { max: usize },
    /// More header fields than `Limits::max_header_count`.
    TooManyHeaders { max: usize },
    /// Content-Length is not a number, or several disagree.
    BadContentLength,
    /// Transfer-Encoding other than a final `chunked`, or with Content-Length.
    BadTransferEncoding,
    /// A chunk-size line is malformed.
    BadChunkSize,
    /// A chunk-size line or the trailer section is over its limit.
    ChunkLineTooLong { max: usize },
    /// Bytes after a chunk's data other than CRLF.
    BadChunkEnd,
    /// The decoded body exceeds `Limits::max_body_bytes`.
    BodyTooLarge { max: u64 },
    /// The Content-Encoding stream is corrupt.
    BadContentEncoding(String),
    /// The connection closed before the response head was complete.
    ClosedBeforeHead,
    /// The connection closed before the body was complete.
    ClosedMidBody,
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let _ = f;
        todo!()
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
