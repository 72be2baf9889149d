//! `Content-Encoding` decoding (SPEC §4: gzip and deflate bodies are
//! decoded), with the decoded size bounded as it is produced.
//!
//! | `Content-Encoding` | decoding |
//! |---|---|
//! | absent, empty, `identity` | none |
//! | `gzip`, `x-gzip` | RFC 1952: header, raw deflate, CRC-32 and length checked; further members decoded; other bytes after a member ignored (as browsers do) |
//! | `deflate` | RFC 1950 zlib stream; if the first two bytes are not a zlib header, raw RFC 1951 deflate (as browsers do); bytes after the end ignored |
//! | anything else (`br`, `zstd`, several codings) | none: the bytes are passed through as they are |
//!
//! Decompression runs in steps of at most [`STEP`] bytes of output into a
//! scratch buffer the decoder owns; each step is checked against
//! `max_output` before it is appended, so a decompression bomb never makes
//! the output larger than the limit.

use flate2::{Crc, Decompress, FlushDecompress, Status};

use super::response::{list_elements, trim_ows};
use super::ProtocolError;

/// The most output one decompression step produces (32 KiB).
pub const STEP: usize = 32 * 1024;

/// The coding being decoded.
#[derive(Debug)]
enum Coding {
    /// Bytes pass through unchanged.
    Identity,
    /// gzip members.
    Gzip(Box<Gzip>),
    /// zlib or raw deflate; `None` until the first two bytes are seen.
    Deflate(Deflate),
}

/// A `deflate` body.
#[derive(Debug)]
enum Deflate {
    /// Waiting for the first two bytes (one may have arrived).
    Sniff(Option<u8>),
    /// Inflating; `ended` after the end of the stream.
    Stream {
        inflate: Box<Decompress>,
        ended: bool,
    },
}

/// Where a gzip decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GzPhase {
    /// In the fixed 10-byte header; `have` bytes seen.
    Fixed { have: usize },
    /// In the 2-byte FEXTRA length; `have` bytes seen, `len` so far.
    ExtraLen { have: usize, len: u16 },
    /// Skipping `left` bytes of FEXTRA.
    Extra { left: u16 },
    /// Skipping the zero-terminated FNAME.
    Name,
    /// Skipping the zero-terminated FCOMMENT.
    Comment,
    /// Skipping the 2-byte FHCRC; `have` bytes seen.
    HeaderCrc { have: usize },
    /// Inflating the member's deflate data.
    Body,
    /// In the 8-byte trailer; `have` bytes seen.
    Trailer { have: usize },
    /// A member is complete; another may follow.
    Between,
    /// Bytes after the last member: ignored.
    Ignore,
}

/// gzip flag bits (RFC 1952 §2.3.1).
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const FRESERVED: u8 = 0xe0;

/// A gzip body.
#[derive(Debug)]
struct Gzip {
    phase: GzPhase,
    /// The fixed header, then the trailer, as they arrive.
    bytes: [u8; 10],
    flags: u8,
    inflate: Decompress,
    crc: Crc,
    /// Members completed so far.
    members: u32,
}

/// A streaming decoder of one response body's `Content-Encoding`.
///
/// ```
/// use std::io::Write;
/// use mpnet_core::http1::ContentDecoder;
///
/// let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
/// gz.write_all(b"hello hello hello").unwrap();
/// let compressed = gz.finish().unwrap();
///
/// let mut dec = ContentDecoder::new(Some(b"gzip"), 1 << 20);
/// let mut out = Vec::new();
/// for piece in compressed.chunks(3) {
///     dec.push(piece, &mut out).unwrap();
/// }
/// dec.finish(&mut out).unwrap();
/// assert_eq!(out, b"hello hello hello");
/// ```
#[derive(Debug)]
pub struct ContentDecoder {
    coding: Coding,
    max_output: u64,
    total_in: u64,
    total_out: u64,
    /// Where each decompression step writes; empty for identity.
    scratch: Vec<u8>,
    /// Set once decoding failed: every later call returns it.
    error: Option<ProtocolError>,
}

impl ContentDecoder {
    /// A decoder for the `Content-Encoding` field value `content_encoding`
    /// (`None` if the response has none). `max_output` bounds the decoded
    /// size (`BodyTooLarge`), for identity and unknown codings too.
    pub fn new(content_encoding: Option<&[u8]>, max_output: u64) -> Self {
        let coding = match content_encoding.map(single_coding) {
            Some(Some(c))
                if c.eq_ignore_ascii_case(b"gzip") || c.eq_ignore_ascii_case(b"x-gzip") =>
            {
                Coding::Gzip(Box::new(Gzip::new()))
            }
            Some(Some(c)) if c.eq_ignore_ascii_case(b"deflate") => {
                Coding::Deflate(Deflate::Sniff(None))
            }
            _ => Coding::Identity,
        };
        let scratch = match coding {
            Coding::Identity => Vec::new(),
            _ => vec![0; STEP],
        };
        ContentDecoder {
            coding,
            max_output,
            total_in: 0,
            total_out: 0,
            scratch,
            error: None,
        }
    }

    /// Whether bytes pass through unchanged (no, identity or an unknown
    /// coding).
    pub fn is_identity(&self) -> bool {
        matches!(self.coding, Coding::Identity)
    }

    /// Decodes `input`, the next bytes of the body, appending the result to
    /// `out`. `BodyTooLarge` as soon as the decoded total would pass
    /// `max_output` (nothing of the step that would pass it is appended);
    /// `BadContentEncoding` on corrupt data. Errors are sticky.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let result = self.push_inner(input, out);
        if let Err(e) = &result {
            self.error = Some(e.clone());
        }
        result
    }

    /// The body ended: checks that the coded stream is complete (a
    /// truncated gzip or deflate stream is `BadContentEncoding`). A body
    /// with no bytes at all is complete whatever its coding (as for HEAD
    /// and 204 responses). Appends nothing today; `out` is there so a
    /// coding that buffers can flush.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        let _ = out;
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let complete = self.total_in == 0
            || match &self.coding {
                Coding::Identity => true,
                // After a whole member, bytes that never became the two-byte
                // magic of another member are trailing garbage too.
                Coding::Gzip(gz) => match gz.phase {
                    GzPhase::Between | GzPhase::Ignore => true,
                    GzPhase::Fixed { have } => {
                        gz.members > 0 && (have < 2 || gz.bytes.get(1) != Some(&0x8b))
                    }
                    _ => false,
                },
                Coding::Deflate(Deflate::Stream { ended, .. }) => *ended,
                Coding::Deflate(Deflate::Sniff(_)) => false,
            };
        if complete {
            Ok(())
        } else {
            let e = ProtocolError::BadContentEncoding("truncated stream".into());
            self.error = Some(e.clone());
            Err(e)
        }
    }

    /// Decoded bytes produced so far.
    pub fn total_out(&self) -> u64 {
        self.total_out
    }

    fn push_inner(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        self.total_in = self.total_in.saturating_add(input.len() as u64);
        let mut sink = Sink {
            out,
            total: &mut self.total_out,
            max: self.max_output,
        };
        match &mut self.coding {
            Coding::Identity => sink.emit(input),
            Coding::Gzip(gz) => gz.push(input, &mut self.scratch, &mut sink),
            Coding::Deflate(deflate) => deflate.push(input, &mut self.scratch, &mut sink),
        }
    }
}

/// The one coding a `Content-Encoding` value names, `identity` elements
/// dropped; `None` for several codings (passed through) and for none.
fn single_coding(value: &[u8]) -> Option<&[u8]> {
    let mut codings =
        list_elements(trim_ows(value)).filter(|c| !c.eq_ignore_ascii_case(b"identity"));
    match (codings.next(), codings.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    }
}

/// Where decoded bytes go, with the output limit.
struct Sink<'a> {
    out: &'a mut Vec<u8>,
    total: &'a mut u64,
    max: u64,
}

impl Sink<'_> {
    /// Appends `data` unless the total would pass the limit.
    fn emit(&mut self, data: &[u8]) -> Result<(), ProtocolError> {
        let total = self
            .total
            .checked_add(data.len() as u64)
            .filter(|&t| t <= self.max)
            .ok_or(ProtocolError::BodyTooLarge { max: self.max })?;
        *self.total = total;
        self.out.extend_from_slice(data);
        Ok(())
    }
}

/// A `BadContentEncoding` error.
fn corrupt(why: impl Into<String>) -> ProtocolError {
    ProtocolError::BadContentEncoding(why.into())
}

/// Inflates from `input` in steps of at most `scratch.len()` bytes, handing
/// each step's output to `emit`. Returns the input consumed and whether the
/// deflate stream ended. Stops when the input is used up and no output is
/// pending, or at the end of the stream.
fn inflate(
    z: &mut Decompress,
    input: &[u8],
    scratch: &mut [u8],
    mut emit: impl FnMut(&[u8]) -> Result<(), ProtocolError>,
) -> Result<(usize, bool), ProtocolError> {
    let mut consumed = 0usize;
    loop {
        let rest = input.get(consumed..).unwrap_or_default();
        let (in_before, out_before) = (z.total_in(), z.total_out());
        let status = z
            .decompress(rest, scratch, FlushDecompress::None)
            .map_err(|e| corrupt(e.to_string()))?;
        let used = usize::try_from(z.total_in().saturating_sub(in_before)).unwrap_or(rest.len());
        let made = usize::try_from(z.total_out().saturating_sub(out_before)).unwrap_or(0);
        consumed = consumed.saturating_add(used.min(rest.len()));
        emit(scratch.get(..made).unwrap_or_default())?;
        if status == Status::StreamEnd {
            return Ok((consumed, true));
        }
        let output_full = made == scratch.len();
        if (!output_full && consumed >= input.len()) || (used == 0 && made == 0) {
            return Ok((consumed, false));
        }
    }
}

impl Deflate {
    fn push(
        &mut self,
        mut input: &[u8],
        scratch: &mut [u8],
        sink: &mut Sink<'_>,
    ) -> Result<(), ProtocolError> {
        if let Deflate::Sniff(first) = *self {
            let (cmf, flg) = match (first, input) {
                (Some(cmf), [flg, ..]) => (cmf, *flg),
                (None, [cmf, flg, ..]) => (*cmf, *flg),
                (None, [cmf]) => {
                    *self = Deflate::Sniff(Some(*cmf));
                    return Ok(());
                }
                (_, []) => return Ok(()),
            };
            let zlib = cmf & 0x0f == 8
                && cmf >> 4 <= 7
                && flg & 0x20 == 0
                && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0;
            let mut z = Box::new(Decompress::new(zlib));
            if let Some(cmf) = first {
                // The byte from the previous push goes in first.
                inflate(&mut z, &[cmf], scratch, |d| sink.emit(d))?;
            }
            *self = Deflate::Stream {
                inflate: z,
                ended: false,
            };
        }
        if let Deflate::Stream { inflate: z, ended } = self {
            if *ended {
                return Ok(());
            }
            while !input.is_empty() && !*ended {
                let (used, end) = inflate(z, input, scratch, |d| sink.emit(d))?;
                *ended = end;
                if used == 0 && !end {
                    return Err(corrupt("deflate stream made no progress"));
                }
                input = input.get(used..).unwrap_or_default();
            }
        }
        Ok(())
    }
}

impl Gzip {
    fn new() -> Self {
        Gzip {
            phase: GzPhase::Fixed { have: 0 },
            bytes: [0; 10],
            flags: 0,
            inflate: Decompress::new(false),
            crc: Crc::new(),
            members: 0,
        }
    }

    fn push(
        &mut self,
        input: &[u8],
        scratch: &mut [u8],
        sink: &mut Sink<'_>,
    ) -> Result<(), ProtocolError> {
        let mut pos = 0usize;
        while pos < input.len() {
            let rest = input.get(pos..).unwrap_or_default();
            if self.phase == GzPhase::Body {
                let crc = &mut self.crc;
                let (used, ended) = inflate(&mut self.inflate, rest, scratch, |d| {
                    sink.emit(d)?;
                    crc.update(d);
                    Ok(())
                })?;
                pos = pos.saturating_add(used);
                if ended {
                    self.phase = GzPhase::Trailer { have: 0 };
                } else if used == 0 {
                    return Err(corrupt("gzip stream made no progress"));
                }
                continue;
            }
            if self.phase == GzPhase::Ignore {
                return Ok(());
            }
            // Every other phase is a few header or trailer bytes.
            if let Some(&byte) = rest.first() {
                self.step(byte)?;
            }
            pos = pos.saturating_add(1);
        }
        Ok(())
    }

    /// Takes one header, trailer or between-members byte.
    fn step(&mut self, byte: u8) -> Result<(), ProtocolError> {
        self.phase = match self.phase {
            GzPhase::Between if byte == 0x1f => {
                self.inflate.reset(false);
                self.crc.reset();
                self.bytes[0] = byte;
                GzPhase::Fixed { have: 1 }
            }
            GzPhase::Between => GzPhase::Ignore,
            GzPhase::Fixed { have } => {
                if let Some(slot) = self.bytes.get_mut(have) {
                    *slot = byte;
                }
                let have = have.saturating_add(1);
                if have < 10 {
                    GzPhase::Fixed { have }
                } else {
                    self.after_fixed_header()?
                }
            }
            GzPhase::ExtraLen { have: 0, .. } => GzPhase::ExtraLen {
                have: 1,
                len: u16::from(byte),
            },
            GzPhase::ExtraLen { len, .. } => {
                let len = len | u16::from(byte) << 8;
                if len == 0 {
                    self.after_extra()
                } else {
                    GzPhase::Extra { left: len }
                }
            }
            GzPhase::Extra { left } => match left.saturating_sub(1) {
                0 => self.after_extra(),
                left => GzPhase::Extra { left },
            },
            GzPhase::Name if byte == 0 => self.after_name(),
            GzPhase::Comment if byte == 0 => self.after_comment(),
            phase @ (GzPhase::Name | GzPhase::Comment) => phase,
            GzPhase::HeaderCrc { have: 0 } => GzPhase::HeaderCrc { have: 1 },
            GzPhase::HeaderCrc { .. } => GzPhase::Body,
            GzPhase::Trailer { have } => {
                if let Some(slot) = self.bytes.get_mut(have) {
                    *slot = byte;
                }
                let have = have.saturating_add(1);
                if have < 8 {
                    GzPhase::Trailer { have }
                } else {
                    self.check_trailer()?;
                    GzPhase::Between
                }
            }
            phase @ (GzPhase::Body | GzPhase::Ignore) => phase,
        };
        Ok(())
    }

    /// Checks the fixed header and picks the next phase.
    fn after_fixed_header(&mut self) -> Result<GzPhase, ProtocolError> {
        let [id1, id2, cm, flags, ..] = self.bytes;
        if id1 != 0x1f || id2 != 0x8b {
            if self.members > 0 {
                // Not another member: trailing bytes, ignored.
                return Ok(GzPhase::Ignore);
            }
            return Err(corrupt("not a gzip stream"));
        }
        if cm != 8 {
            return Err(corrupt("unknown gzip compression method"));
        }
        if flags & FRESERVED != 0 {
            return Err(corrupt("reserved gzip flags set"));
        }
        self.flags = flags;
        Ok(if flags & FEXTRA != 0 {
            GzPhase::ExtraLen { have: 0, len: 0 }
        } else {
            self.after_extra()
        })
    }

    fn after_extra(&self) -> GzPhase {
        if self.flags & FNAME != 0 {
            GzPhase::Name
        } else {
            self.after_name()
        }
    }

    fn after_name(&self) -> GzPhase {
        if self.flags & FCOMMENT != 0 {
            GzPhase::Comment
        } else {
            self.after_comment()
        }
    }

    fn after_comment(&self) -> GzPhase {
        if self.flags & FHCRC != 0 {
            GzPhase::HeaderCrc { have: 0 }
        } else {
            GzPhase::Body
        }
    }

    /// Checks CRC-32 and ISIZE (length mod 2^32) of the member just read.
    fn check_trailer(&mut self) -> Result<(), ProtocolError> {
        let [c0, c1, c2, c3, s0, s1, s2, s3, ..] = self.bytes;
        if u32::from_le_bytes([c0, c1, c2, c3]) != self.crc.sum() {
            return Err(corrupt("gzip CRC-32 mismatch"));
        }
        if u32::from_le_bytes([s0, s1, s2, s3]) != self.crc.amount() {
            return Err(corrupt("gzip length mismatch"));
        }
        self.members = self.members.saturating_add(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coding_names() {
        assert!(ContentDecoder::new(None, 1).is_identity());
        assert!(ContentDecoder::new(Some(b""), 1).is_identity());
        assert!(ContentDecoder::new(Some(b"br"), 1).is_identity());
        assert!(ContentDecoder::new(Some(b"gzip, br"), 1).is_identity());
        assert!(!ContentDecoder::new(Some(b" GZIP "), 1).is_identity());
        assert!(!ContentDecoder::new(Some(b"identity, x-gzip"), 1).is_identity());
        assert!(!ContentDecoder::new(Some(b"Deflate"), 1).is_identity());
    }

    #[test]
    fn identity_is_bounded() {
        let mut dec = ContentDecoder::new(Some(b"br"), 4);
        let mut out = Vec::new();
        dec.push(b"abc", &mut out).unwrap();
        assert_eq!(
            dec.push(b"de", &mut out),
            Err(ProtocolError::BodyTooLarge { max: 4 })
        );
        assert_eq!(out, b"abc");
        assert_eq!(dec.total_out(), 3);
    }

    #[test]
    fn empty_body_is_complete() {
        let mut dec = ContentDecoder::new(Some(b"gzip"), 4);
        dec.finish(&mut Vec::new()).unwrap();
    }
}
