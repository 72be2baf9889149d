//! The response body's framing (RFC 9112 §6.3): decided once from the head,
//! then applied to each piece of input.
//!
//! | head | framing |
//! |---|---|
//! | request was HEAD; status 1xx, 204, 304 | no body |
//! | `Transfer-Encoding` | exactly one coding, `chunked`; anything else, or together with `Content-Length`: `BadTransferEncoding` |
//! | `Content-Length` | every value (several fields, comma lists) equal digits; else `BadContentLength` |
//! | neither | close-delimited: the body ends when the server closes |

use std::ops::Range;

use super::response::{list_elements, ResponseHead};
use super::{ChunkedDecoder, ProtocolError};

/// A piece of body read from the caller's input.
///
/// `consumed == 0` with empty `data` means "need more input" (or the body
/// is finished). `data` may be empty while `consumed > 0` (chunk framing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyChunk {
    /// Bytes of input consumed; the caller drops them and keeps the rest.
    pub consumed: usize,
    /// Where the body data lies within the input (zero-copy);
    /// `data.end <= consumed`.
    pub data: Range<usize>,
}

impl BodyChunk {
    /// Whether nothing was consumed and nothing produced: read more input
    /// (unless the body is finished).
    pub fn need_more(&self) -> bool {
        self.consumed == 0 && self.data.is_empty()
    }
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body at all.
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// No framing headers: the body runs until the server closes.
    CloseDelimited,
}

impl Framing {
    /// Decides the framing of `head`, the response to a request that was
    /// (`head_request`) or was not a HEAD request. Framing headers of a
    /// response that has no body are not checked.
    pub(crate) fn of(head: &ResponseHead, head_request: bool) -> Result<Framing, ProtocolError> {
        if head_request || head.is_informational() || head.status == 204 || head.status == 304 {
            return Ok(Framing::None);
        }
        let chunked = transfer_encoding_is_chunked(head)?;
        let length = content_length(head)?;
        match (chunked, length) {
            (Some(_), Some(_)) => Err(ProtocolError::BadTransferEncoding),
            (Some(()), None) => Ok(Framing::Chunked),
            (None, Some(n)) => Ok(Framing::Length(n)),
            (None, None) => Ok(Framing::CloseDelimited),
        }
    }
}

/// `Some(())` if the head has `Transfer-Encoding: chunked` (its one and
/// only coding), `None` if it has no Transfer-Encoding field.
fn transfer_encoding_is_chunked(head: &ResponseHead) -> Result<Option<()>, ProtocolError> {
    let mut fields = head.headers_named("transfer-encoding").peekable();
    if fields.peek().is_none() {
        return Ok(None);
    }
    let mut codings = fields.flat_map(list_elements);
    match (codings.next(), codings.next()) {
        (Some(coding), None) if coding.eq_ignore_ascii_case(b"chunked") => Ok(Some(())),
        _ => Err(ProtocolError::BadTransferEncoding),
    }
}

/// The Content-Length of the head, if any. Several fields and comma lists
/// are fine when every value is the same run of digits.
fn content_length(head: &ResponseHead) -> Result<Option<u64>, ProtocolError> {
    let mut length = None;
    for field in head.headers_named("content-length") {
        for element in field.split(|&b| b == b',') {
            let n = parse_decimal(super::response::trim_ows(element))
                .ok_or(ProtocolError::BadContentLength)?;
            match length {
                Some(m) if m != n => return Err(ProtocolError::BadContentLength),
                _ => length = Some(n),
            }
        }
    }
    Ok(length)
}

/// A non-empty run of ASCII digits as a `u64`; `None` on anything else or
/// on overflow.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let d = char::from(b).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// Reads a body by its framing.
#[derive(Debug, Clone)]
pub(crate) enum BodyReader {
    /// `remaining` of `total` Content-Length bytes still to come.
    Length { total: u64, remaining: u64 },
    /// A chunked body.
    Chunked(ChunkedDecoder),
    /// Until the server closes; `eof` once it has.
    CloseDelimited { eof: bool },
}

impl BodyReader {
    /// A reader for `framing`, or `None` if there is no body to read
    /// (`Framing::None`, `Content-Length: 0`).
    pub(crate) fn new(framing: Framing, max_chunk_line_bytes: usize) -> Option<BodyReader> {
        match framing {
            Framing::None | Framing::Length(0) => None,
            Framing::Length(n) => Some(BodyReader::Length {
                total: n,
                remaining: n,
            }),
            Framing::Chunked => Some(BodyReader::Chunked(ChunkedDecoder::new(
                max_chunk_line_bytes,
            ))),
            Framing::CloseDelimited => Some(BodyReader::CloseDelimited { eof: false }),
        }
    }

    /// Reads body bytes from the start of `input`; see [`BodyChunk`].
    pub(crate) fn read(&mut self, input: &[u8]) -> Result<BodyChunk, ProtocolError> {
        match self {
            BodyReader::Length { remaining, .. } => {
                let take = usize::try_from(*remaining).map_or(input.len(), |r| r.min(input.len()));
                // `take <= remaining`: the cast and the subtraction are exact.
                *remaining = remaining.saturating_sub(take as u64);
                Ok(BodyChunk {
                    consumed: take,
                    data: 0..take,
                })
            }
            BodyReader::Chunked(decoder) => decoder.decode(input),
            BodyReader::CloseDelimited { eof: true } => Ok(BodyChunk {
                consumed: 0,
                data: 0..0,
            }),
            BodyReader::CloseDelimited { eof: false } => Ok(BodyChunk {
                consumed: input.len(),
                data: 0..input.len(),
            }),
        }
    }

    /// The connection ended: finishes a close-delimited body; a complete
    /// body stays complete; anything else is `ClosedMidBody`.
    pub(crate) fn handle_eof(&mut self) -> Result<(), ProtocolError> {
        match self {
            BodyReader::Length { remaining: 0, .. } => Ok(()),
            BodyReader::Length { .. } => Err(ProtocolError::ClosedMidBody),
            BodyReader::Chunked(decoder) => decoder.handle_eof(),
            BodyReader::CloseDelimited { eof } => {
                *eof = true;
                Ok(())
            }
        }
    }

    /// Whether the whole body has been read.
    pub(crate) fn is_finished(&self) -> bool {
        match self {
            BodyReader::Length { remaining, .. } => *remaining == 0,
            BodyReader::Chunked(decoder) => decoder.is_finished(),
            BodyReader::CloseDelimited { eof } => *eof,
        }
    }

    /// The Content-Length, when the body is delimited by one.
    pub(crate) fn content_length(&self) -> Option<u64> {
        match self {
            BodyReader::Length { total, .. } => Some(*total),
            _ => None,
        }
    }

    /// Whether the body ends only when the server closes.
    pub(crate) fn is_close_delimited(&self) -> bool {
        matches!(self, BodyReader::CloseDelimited { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(status: u16, headers: &[(&str, &str)]) -> ResponseHead {
        ResponseHead::new(status, "", http::Version::HTTP_11, headers.iter().copied())
    }

    /// Status, headers, whether the request was HEAD, the framing.
    type Case = (
        u16,
        &'static [(&'static str, &'static str)],
        bool,
        Result<Framing, ProtocolError>,
    );

    #[test]
    fn framing_table() {
        use Framing::*;
        use ProtocolError::*;
        let cases: &[Case] = &[
            (200, &[], false, Ok(CloseDelimited)),
            (200, &[], true, Ok(None)),
            (204, &[("content-length", "5")], false, Ok(None)),
            (304, &[("transfer-encoding", "gzip")], false, Ok(None)),
            (200, &[("Content-Length", "5")], false, Ok(Length(5))),
            (
                200,
                &[("content-length", "5, 5"), ("Content-Length", "5")],
                false,
                Ok(Length(5)),
            ),
            (
                200,
                &[("content-length", "5"), ("Content-Length", "6")],
                false,
                Err(BadContentLength),
            ),
            (
                200,
                &[("content-length", "5,")],
                false,
                Err(BadContentLength),
            ),
            (200, &[("content-length", "")], false, Err(BadContentLength)),
            (
                200,
                &[("content-length", "-1")],
                false,
                Err(BadContentLength),
            ),
            (
                200,
                &[("content-length", "+1")],
                false,
                Err(BadContentLength),
            ),
            (
                200,
                &[("content-length", "0x10")],
                false,
                Err(BadContentLength),
            ),
            (
                200,
                &[("content-length", "18446744073709551616")],
                false,
                Err(BadContentLength),
            ),
            (
                200,
                &[("content-length", "18446744073709551615")],
                false,
                Ok(Length(u64::MAX)),
            ),
            (
                200,
                &[("Transfer-Encoding", " Chunked ")],
                false,
                Ok(Chunked),
            ),
            (
                200,
                &[("transfer-encoding", "gzip, chunked")],
                false,
                Err(BadTransferEncoding),
            ),
            (
                200,
                &[
                    ("transfer-encoding", "chunked"),
                    ("transfer-encoding", "chunked"),
                ],
                false,
                Err(BadTransferEncoding),
            ),
            (
                200,
                &[("transfer-encoding", "chunked, gzip")],
                false,
                Err(BadTransferEncoding),
            ),
            (
                200,
                &[("transfer-encoding", "")],
                false,
                Err(BadTransferEncoding),
            ),
            (
                200,
                &[("transfer-encoding", "chunked"), ("content-length", "5")],
                false,
                Err(BadTransferEncoding),
            ),
        ];
        for (status, headers, head_request, want) in cases {
            assert_eq!(
                Framing::of(&head(*status, headers), *head_request),
                *want,
                "{status} {headers:?}"
            );
        }
    }

    #[test]
    fn length_reader() {
        let mut r = BodyReader::new(Framing::Length(5), 64).unwrap();
        assert_eq!(
            r.read(b"abc").unwrap(),
            BodyChunk {
                consumed: 3,
                data: 0..3
            }
        );
        assert_eq!(r.handle_eof(), Err(ProtocolError::ClosedMidBody));
        assert_eq!(
            r.read(b"defgh").unwrap(),
            BodyChunk {
                consumed: 2,
                data: 0..2
            }
        );
        assert!(r.is_finished());
        assert!(r.read(b"x").unwrap().need_more());
        assert_eq!(r.content_length(), Some(5));
        assert!(BodyReader::new(Framing::Length(0), 64).is_none());
    }
}
