//! The chunked transfer coding (RFC 9112 §7.1), decoded in place.
//!
//! The decoder walks the framing (size lines, extensions, the CRLF after
//! each chunk, the trailer section) byte by byte, keeping its position in a
//! small state, and hands chunk data back as a range of the caller's input:
//! nothing is copied or buffered, so the caller may consume partial lines.
//! Lines end in CRLF or a bare LF; a bare CR is an error. Chunk extensions
//! and trailer fields are read and discarded. A chunk-size line (CR and LF
//! not counted) and the whole trailer section are each limited to
//! `max_line_bytes` (`Limits::max_chunk_line_bytes`).

use super::{BodyChunk, ProtocolError};

/// Where the decoder is in the chunked framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In the hex digits of a chunk size; `any` once a digit was seen.
    Size { value: u64, any: bool },
    /// Whitespace after the chunk size, before `;` or the line end.
    SizeWs { value: u64 },
    /// In a chunk extension (ignored).
    Ext { value: u64 },
    /// A CR ended the size line; an LF must follow.
    SizeCr { value: u64 },
    /// In chunk data; `remaining > 0`.
    Data { remaining: u64 },
    /// After chunk data: CRLF or LF expected.
    DataEnd,
    /// After chunk data and a CR: LF expected.
    DataEndCr,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    /// Inside a trailer field line (discarded).
    TrailerLine,
    /// A CR inside a trailer line; LF expected.
    TrailerLineCr,
    /// A CR at the start of a trailer line: the final CRLF, LF expected.
    TrailerEndCr,
    /// The last chunk and the trailer section are read.
    Done,
}

/// An incremental decoder of a chunked body.
///
/// ```
/// use mpnet_core::http1::ChunkedDecoder;
/// let input = b"3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n";
/// let mut dec = ChunkedDecoder::new(4096);
/// let chunk = dec.decode(input).unwrap();
/// assert_eq!(&input[chunk.data.clone()], b"abc");
/// // The framing after the data was consumed in the same call.
/// assert_eq!(chunk.consumed, input.len());
/// assert!(dec.is_finished());
/// ```
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Bytes of the current size line, CR and LF not counted.
    line_bytes: usize,
    /// Bytes of the trailer section so far, CR and LF not counted.
    trailer_bytes: usize,
    max_line_bytes: usize,
    /// Set once decoding failed: every later call returns it.
    error: Option<ProtocolError>,
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body. `max_line_bytes` bounds a
    /// chunk-size line and the trailer section (`ChunkLineTooLong`).
    pub fn new(max_line_bytes: usize) -> Self {
        ChunkedDecoder {
            state: State::Size {
                value: 0,
                any: false,
            },
            line_bytes: 0,
            trailer_bytes: 0,
            max_line_bytes,
            error: None,
        }
    }

    /// Decodes from the start of `input`, which continues the bytes already
    /// consumed.
    ///
    /// Returns how many bytes were consumed and where the (at most one,
    /// contiguous) run of chunk data lies within `input`. Framing before and
    /// after that run is consumed too, so a call can consume bytes and
    /// return no data. `consumed == 0` with empty data means: more input is
    /// needed, or the body [is finished](Self::is_finished). Bytes after the
    /// end of the body are never consumed.
    ///
    /// An error is sticky: every later call returns it again. Data before a
    /// framing error is still returned first.
    pub fn decode(&mut self, input: &[u8]) -> Result<BodyChunk, ProtocolError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let mut pos = match self.skip_framing(input, 0) {
            Ok(pos) => pos,
            Err(e) => {
                self.error = Some(e.clone());
                return Err(e);
            }
        };
        let start = pos;
        if let State::Data { remaining } = self.state {
            let available = input.len().saturating_sub(pos);
            let take = usize::try_from(remaining).map_or(available, |r| r.min(available));
            pos = pos.saturating_add(take);
            // `take <= remaining`, so neither the cast nor the subtraction wraps.
            let left = remaining.saturating_sub(take as u64);
            self.state = if left == 0 {
                State::DataEnd
            } else {
                State::Data { remaining: left }
            };
        }
        let data = start..pos;
        if !data.is_empty() {
            // Consume the framing that follows as far as it is valid; an
            // error there is reported by the next call, after this data.
            let saved = (self.state, self.line_bytes, self.trailer_bytes);
            match self.skip_framing(input, pos) {
                Ok(end) => pos = end,
                Err(_) => (self.state, self.line_bytes, self.trailer_bytes) = saved,
            }
        }
        Ok(BodyChunk {
            consumed: pos,
            data,
        })
    }

    /// The connection ended. `Ok` if the body is complete, or if only the
    /// trailer section's end is missing after the last chunk (servers that
    /// close right after `0\r\n`; the body is whole). Otherwise
    /// `ClosedMidBody`, or the sticky error.
    pub fn handle_eof(&mut self) -> Result<(), ProtocolError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match self.state {
            State::Done | State::TrailerStart => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(ProtocolError::ClosedMidBody),
        }
    }

    /// Whether the last chunk and the trailer section have been read.
    pub fn is_finished(&self) -> bool {
        self.state == State::Done
    }

    /// Steps through framing bytes from `pos` until chunk data, the end of
    /// the body, or the end of `input`. Returns the new position.
    fn skip_framing(&mut self, input: &[u8], mut pos: usize) -> Result<usize, ProtocolError> {
        while let Some(&byte) = input.get(pos) {
            if matches!(self.state, State::Data { .. } | State::Done) {
                break;
            }
            self.step(byte)?;
            pos += 1;
        }
        Ok(pos)
    }

    /// Counts one byte of a size line against the limit.
    fn count_line(&mut self) -> Result<(), ProtocolError> {
        self.line_bytes = self.line_bytes.saturating_add(1);
        if self.line_bytes > self.max_line_bytes {
            return Err(ProtocolError::ChunkLineTooLong {
                max: self.max_line_bytes,
            });
        }
        Ok(())
    }

    /// Counts one byte of the trailer section against the limit.
    fn count_trailer(&mut self) -> Result<(), ProtocolError> {
        self.trailer_bytes = self.trailer_bytes.saturating_add(1);
        if self.trailer_bytes > self.max_line_bytes {
            return Err(ProtocolError::ChunkLineTooLong {
                max: self.max_line_bytes,
            });
        }
        Ok(())
    }

    /// The state after a size line announcing `value` bytes.
    fn after_size_line(value: u64) -> State {
        if value == 0 {
            State::TrailerStart
        } else {
            State::Data { remaining: value }
        }
    }

    /// The state at the start of the next size line.
    fn next_size_line(&mut self) -> State {
        self.line_bytes = 0;
        State::Size {
            value: 0,
            any: false,
        }
    }

    /// Advances the framing by one byte. Never called in `Data` or `Done`
    /// (those leave the state as it is).
    fn step(&mut self, byte: u8) -> Result<(), ProtocolError> {
        use ProtocolError::{BadChunkEnd, BadChunkSize, BadTrailer};
        self.state = match self.state {
            State::Size { value, any } => match byte {
                b'\r' | b'\n' | b' ' | b'\t' | b';' if !any => return Err(BadChunkSize),
                b'\r' => State::SizeCr { value },
                b'\n' => Self::after_size_line(value),
                b' ' | b'\t' => {
                    self.count_line()?;
                    State::SizeWs { value }
                }
                b';' => {
                    self.count_line()?;
                    State::Ext { value }
                }
                _ => {
                    let digit = hex_value(byte).ok_or(BadChunkSize)?;
                    self.count_line()?;
                    let value = value
                        .checked_mul(16)
                        .and_then(|v| v.checked_add(digit))
                        .ok_or(BadChunkSize)?;
                    State::Size { value, any: true }
                }
            },
            State::SizeWs { value } => match byte {
                b'\r' => State::SizeCr { value },
                b'\n' => Self::after_size_line(value),
                b' ' | b'\t' => {
                    self.count_line()?;
                    State::SizeWs { value }
                }
                b';' => {
                    self.count_line()?;
                    State::Ext { value }
                }
                _ => return Err(BadChunkSize),
            },
            State::Ext { value } => match byte {
                b'\r' => State::SizeCr { value },
                b'\n' => Self::after_size_line(value),
                _ => {
                    self.count_line()?;
                    State::Ext { value }
                }
            },
            State::SizeCr { value } => match byte {
                b'\n' => Self::after_size_line(value),
                _ => return Err(BadChunkSize),
            },
            State::DataEnd => match byte {
                b'\r' => State::DataEndCr,
                b'\n' => self.next_size_line(),
                _ => return Err(BadChunkEnd),
            },
            State::DataEndCr => match byte {
                b'\n' => self.next_size_line(),
                _ => return Err(BadChunkEnd),
            },
            State::TrailerStart => match byte {
                b'\r' => State::TrailerEndCr,
                b'\n' => State::Done,
                _ => {
                    self.count_trailer()?;
                    State::TrailerLine
                }
            },
            State::TrailerLine => match byte {
                b'\r' => State::TrailerLineCr,
                b'\n' => State::TrailerStart,
                _ => {
                    self.count_trailer()?;
                    State::TrailerLine
                }
            },
            State::TrailerLineCr | State::TrailerEndCr if byte != b'\n' => return Err(BadTrailer),
            State::TrailerLineCr => State::TrailerStart,
            State::TrailerEndCr => State::Done,
            state @ (State::Data { .. } | State::Done) => state,
        };
        Ok(())
    }
}

/// The value of an ASCII hex digit.
fn hex_value(byte: u8) -> Option<u64> {
    char::from(byte).to_digit(16).map(u64::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` one byte at a time, the way a slow transport would.
    fn bytewise(input: &[u8]) -> Result<(Vec<u8>, usize), ProtocolError> {
        let mut dec = ChunkedDecoder::new(64);
        let mut body = Vec::new();
        let mut buf = Vec::new();
        let mut fed = 0;
        while !dec.is_finished() && fed < input.len() {
            buf.push(input[fed]);
            fed += 1;
            let c = dec.decode(&buf)?;
            body.extend_from_slice(&buf[c.data.clone()]);
            buf.drain(..c.consumed);
        }
        Ok((body, buf.len() + input.len() - fed))
    }

    #[test]
    fn bytewise_body_and_leftover() {
        let input = b"4\r\nWiki\r\n5 ; a=\"b\"\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX: y\r\n\r\nNEXT";
        let (body, left) = bytewise(input).unwrap();
        assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.");
        assert_eq!(left, 4);
    }

    #[test]
    fn bare_lf_lines_are_accepted() {
        let (body, _) = bytewise(b"2\nab\n0\n\n").unwrap();
        assert_eq!(body, b"ab");
    }

    #[test]
    fn errors() {
        let cases: &[(&[u8], ProtocolError)] = &[
            (b"zz\r\n", ProtocolError::BadChunkSize),
            (b"\r\n", ProtocolError::BadChunkSize),
            (b" 1\r\n", ProtocolError::BadChunkSize),
            (b"1 x\r\n", ProtocolError::BadChunkSize),
            (b"1\rx", ProtocolError::BadChunkSize),
            (b"ffffffffffffffffff\r\n", ProtocolError::BadChunkSize),
            (b"1\r\nax\r\n", ProtocolError::BadChunkEnd),
            (b"1\r\na\rx", ProtocolError::BadChunkEnd),
            (b"0\r\nA: b\rc", ProtocolError::BadTrailer),
            (b"0\r\n\rc", ProtocolError::BadTrailer),
            (&[b'0'; 65], ProtocolError::ChunkLineTooLong { max: 64 }),
            (
                b"1;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                ProtocolError::ChunkLineTooLong { max: 64 },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                bytewise(input).unwrap_err(),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
            let mut dec = ChunkedDecoder::new(64);
            let mut got = dec.decode(input);
            // Data before the error comes first, then the error.
            if got.is_ok() {
                let c = got.unwrap();
                got = dec.decode(&input[c.consumed..]);
            }
            assert_eq!(got.unwrap_err(), *want);
            // Sticky.
            assert_eq!(dec.decode(b"").unwrap_err(), *want);
        }
    }

    #[test]
    fn trailer_section_is_bounded() {
        let mut input = b"0\r\n".to_vec();
        for _ in 0..20 {
            input.extend_from_slice(b"A: b\r\n");
        }
        assert_eq!(
            bytewise(&input).unwrap_err(),
            ProtocolError::ChunkLineTooLong { max: 64 }
        );
    }

    #[test]
    fn eof_rules() {
        let mut dec = ChunkedDecoder::new(64);
        dec.decode(b"1\r\na").unwrap();
        assert_eq!(dec.handle_eof(), Err(ProtocolError::ClosedMidBody));

        let mut dec = ChunkedDecoder::new(64);
        let c = dec.decode(b"1\r\na\r\n0\r\n").unwrap();
        assert_eq!(c.consumed, 9);
        assert!(!dec.is_finished());
        assert_eq!(dec.handle_eof(), Ok(()));
        assert!(dec.is_finished());

        let mut dec = ChunkedDecoder::new(64);
        dec.decode(b"0\r\nA: b").unwrap();
        assert_eq!(dec.handle_eof(), Err(ProtocolError::ClosedMidBody));
    }
}
