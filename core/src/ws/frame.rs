//! WebSocket frames (RFC 6455 §5): an encoder and an incremental decoder
//! over bytes the caller owns (SPEC §2, §7).
//!
//! ```text
//!            decode(input) -> (consumed, None)            decode(..) -> (n, Some(frame))
//!  +--------+  header bytes   +---------+  payload bytes   +---------+
//!  | Header | --------------> | Payload | ---------------> | (Header)|  next frame
//!  +--------+  (<= 14, kept   +---------+  (unmasked into  +---------+
//!      |        inside)           |         an own buffer)
//!      +--- violation ------------+----> Err(ProtocolViolation): the stream is
//!                                        dead; the caller fails the connection
//! ```
//!
//! The decoder keeps every byte it has seen (at most 14 header bytes and the
//! payload of the frame being read), so the caller can hand it any slice and
//! drop what was consumed: feeding the same bytes split anywhere gives the
//! same frames and the same violation at the same point (SPEC §2).
//!
//! Header checks happen as soon as the header bytes that carry them arrive,
//! before any payload is buffered: reserved bits (no extension is ever
//! negotiated), reserved opcodes, masking (a server must not mask, a client
//! must), control frames that are fragmented or longer than 125 bytes, a
//! 64-bit length with its top bit set, and a data payload over the decoder's
//! budget (close 1009, socket error 12).
//!
//! The encoder writes minimal lengths and, for a client, masks the payload
//! with the 4 bytes the caller's [`MaskSource`] gives (RFC 6455 §5.3; the
//! source is injected so tests are reproducible).

use std::fmt;

use bytes::{Bytes, BytesMut};
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

/// Where client frame masks come from (RFC 6455 §5.3: a fresh,
/// unpredictable mask per frame). The transport passes a source backed by
/// the OS random generator; tests pass a fixed one.
pub trait MaskSource {
    /// The mask for the next frame.
    fn mask(&mut self) -> [u8; 4];
}

impl<F: FnMut() -> [u8; 4]> MaskSource for F {
    fn mask(&mut self) -> [u8; 4] {
        self()
    }
}

/// A source that always gives the same mask (for tests and examples; a real
/// client needs fresh random masks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedMask(pub [u8; 4]);

impl MaskSource for FixedMask {
    fn mask(&mut self) -> [u8; 4] {
        self.0
    }
}

/// A [`MaskSource`] that draws masks from a random generator in batches:
/// `fill` (the transport's OS generator) refills 64 masks at once, so a
/// frame costs no system call of its own. Every mask still comes from
/// `fill` and is used once.
///
/// ```
/// use mpnet_core::ws::frame::{BatchedMasks, MaskSource};
/// let mut calls = 0u8;
/// let mut masks = BatchedMasks::new(move |buf: &mut [u8]| {
///     calls += 1;
///     buf.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8 ^ calls);
/// });
/// assert_eq!(masks.mask(), [1, 0, 3, 2]);
/// assert_eq!(masks.mask(), [5, 4, 7, 6]);
/// ```
pub struct BatchedMasks<F> {
    fill: F,
    buf: [u8; MASK_BATCH * 4],
    used: usize,
}

/// Masks drawn per refill of a [`BatchedMasks`].
const MASK_BATCH: usize = 64;

impl<F: FnMut(&mut [u8])> BatchedMasks<F> {
    /// Masks from `fill`, which must fill the whole slice it is given.
    pub fn new(fill: F) -> Self {
        BatchedMasks {
            fill,
            buf: [0; MASK_BATCH * 4],
            used: MASK_BATCH * 4,
        }
    }
}

impl<F: FnMut(&mut [u8])> MaskSource for BatchedMasks<F> {
    fn mask(&mut self) -> [u8; 4] {
        if self.used + 4 > self.buf.len() {
            (self.fill)(&mut self.buf);
            self.used = 0;
        }
        let mut m = [0u8; 4];
        m.copy_from_slice(self.buf.get(self.used..self.used + 4).unwrap_or(&[0; 4]));
        self.used += 4;
        m
    }
}

impl<F> fmt::Debug for BatchedMasks<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchedMasks")
            .field("left", &((self.buf.len() - self.used) / 4))
            .finish_non_exhaustive()
    }
}

/// One decoded frame: the payload is unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The FIN bit: this is the last frame of its message.
    pub fin: bool,
    /// The opcode (never reserved: the decoder refuses those).
    pub opcode: OpCode,
    /// The payload, unmasked.
    pub payload: Bytes,
}

impl Frame {
    /// Appends this frame's wire form to `out`, masked with `mask` when one
    /// is given (a client's frames always are). See [`encode_frame`].
    pub fn encode(&self, mask: Option<[u8; 4]>, out: &mut Vec<u8>) {
        encode_frame(out, self.fin, self.opcode, &self.payload, mask);
    }
}

/// Appends one frame to `out` (RFC 6455 §5.2): FIN, no reserved bits, the
/// opcode, the minimal length form, the mask key and the (masked) payload.
///
/// RFC 6455 §5.7, a masked "Hello":
///
/// ```
/// use mpnet_core::ws::frame::encode_frame;
/// use tungstenite::protocol::frame::coding::{Data, OpCode};
/// let mut out = Vec::new();
/// encode_frame(&mut out, true, OpCode::Data(Data::Text), b"Hello", Some([0x37, 0xfa, 0x21, 0x3d]));
/// assert_eq!(out, [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// ```
pub fn encode_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: OpCode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    let first = if fin { 0x80 } else { 0 } | (u8::from(opcode) & 0x0f);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    out.reserve(payload.len() + 14);
    out.push(first);
    let len = payload.len();
    if len < 126 {
        // Fits in 7 bits: the cast cannot truncate.
        out.push(mask_bit | len as u8);
    } else if let Ok(len16) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&len16.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            let start = out.len();
            extend_in_pieces(out, payload);
            apply_mask(out.get_mut(start..).unwrap_or_default(), key, 0);
        }
        None => extend_in_pieces(out, payload),
    }
}

/// The size of each copy of payload bytes: under glibc's `rep movsb`
/// threshold on x86-64 (2112 bytes), so its vector loop does the copy. On
/// AMD Zen `rep movsb` copied a 64 KiB payload several times slower (the
/// decoder's copy was 15% of the WSS reader thread's samples, under 2% in
/// pieces); elsewhere pieces this size cost nothing measurable.
pub const COPY_PIECE: usize = 2048;

/// `out.extend_from_slice(bytes)`, in [`COPY_PIECE`] pieces.
pub fn extend_in_pieces(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len());
    for piece in bytes.chunks(COPY_PIECE) {
        out.extend_from_slice(piece);
    }
}

/// XORs `data` in place with the repeated 4-byte mask `key` (RFC 6455
/// §5.3), where `data[0]` is byte `offset` of the payload (so a payload
/// can be unmasked in pieces). Masking twice gives the data back.
///
/// Eight bytes at a time as one `u64` XOR (the compiler widens the loop
/// further), then byte by byte for the tail.
///
/// ```
/// use mpnet_core::ws::frame::apply_mask;
/// let key = [0x37, 0xfa, 0x21, 0x3d];
/// let mut data = *b"Hello, masked world";
/// apply_mask(&mut data, key, 0);
/// assert_eq!(&data[..5], &[0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// // The same bytes unmasked in two pieces, the second from offset 7.
/// let (a, b) = data.split_at_mut(7);
/// apply_mask(a, key, 0);
/// apply_mask(b, key, 7);
/// assert_eq!(&data, b"Hello, masked world");
/// ```
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    // The key as it falls on data[0], data[1], ...
    let k: [u8; 4] = std::array::from_fn(|i| key[(offset + i) % 4]);
    let wide = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    // A multiple of 8 bytes was consumed, so the tail starts at phase 0.
    for (byte, m) in chunks.into_remainder().iter_mut().zip(k.iter().cycle()) {
        *byte ^= m;
    }
}

/// Which side's frames a decoder reads: a client reads a server's frames
/// (which must not be masked), a server reads a client's (which must be).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// This end is the client: incoming frames must be unmasked.
    Client,
    /// This end is the server: incoming frames must be masked (test servers
    /// and round-trip tests use this).
    Server,
}

/// A frame the peer sent that breaks RFC 6455, or a limit of this end. Each
/// one fails the connection with the close code [`close_code`](Self::close_code).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolViolation {
    /// RSV1-3 set although no extension was negotiated (1002).
    ReservedBits(u8),
    /// An opcode RFC 6455 reserves, 0x3-0x7 or 0xB-0xF (1002).
    ReservedOpcode(u8),
    /// A control frame longer than 125 bytes (1002).
    ControlTooLong(u64),
    /// A control frame without FIN (1002).
    FragmentedControl,
    /// A masked frame from a server, or an unmasked one from a client (1002).
    BadMasking,
    /// A 64-bit payload length with its most significant bit set (1002).
    LengthOverflow,
    /// A continuation frame with no fragmented message in progress (1002).
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is unfinished
    /// (1002).
    ExpectedContinuation,
    /// A close frame with a 1-byte payload (1002).
    CloseTooShort,
    /// A close frame with a code that may not be sent: 1005, 1006, 1015,
    /// 0-999, 1004, 1014, 1016-2999, 5000+ (1002).
    InvalidCloseCode(u16),
    /// A close frame whose reason is not UTF-8 (1002).
    InvalidCloseReason,
    /// A text message that is not UTF-8, found as early as the bad byte
    /// arrives (1007).
    InvalidUtf8,
    /// A message larger than the limit (1009; socket error 12).
    MessageTooLarge {
        /// The limit, `Limits::max_message_bytes`.
        max: usize,
    },
}

impl ProtocolViolation {
    /// The close code this end sends when it fails the connection for this
    /// violation (RFC 6455 §7.4.1): 1007 for bad UTF-8, 1009 for a message
    /// over the limit, 1002 for the rest.
    pub fn close_code(&self) -> u16 {
        match self {
            ProtocolViolation::InvalidUtf8 => 1007,
            ProtocolViolation::MessageTooLarge { .. } => 1009,
            _ => 1002,
        }
    }

    /// The short reason sent in the close frame (at most 123 bytes).
    pub fn close_reason(&self) -> &'static str {
        match self {
            ProtocolViolation::InvalidUtf8 => "invalid UTF-8 in a text message",
            ProtocolViolation::MessageTooLarge { .. } => "message too large",
            _ => "protocol error",
        }
    }
}

impl fmt::Display for ProtocolViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolViolation::ReservedBits(bits) => write!(
                f,
                "the server set reserved bits {bits:#05b} but no extension was negotiated"
            ),
            ProtocolViolation::ReservedOpcode(op) => {
                write!(f, "the server sent a frame with reserved opcode {op:#x}")
            }
            ProtocolViolation::ControlTooLong(len) => write!(
                f,
                "the server sent a control frame of {len} bytes (at most 125 allowed)"
            ),
            ProtocolViolation::FragmentedControl => {
                f.write_str("the server sent a fragmented control frame")
            }
            ProtocolViolation::BadMasking => f.write_str("the peer's frame masking is wrong"),
            ProtocolViolation::LengthOverflow => {
                f.write_str("the server sent a 64-bit frame length with its top bit set")
            }
            ProtocolViolation::UnexpectedContinuation => {
                f.write_str("the server sent a continuation frame with no message to continue")
            }
            ProtocolViolation::ExpectedContinuation => {
                f.write_str("the server started a new message before finishing a fragmented one")
            }
            ProtocolViolation::CloseTooShort => {
                f.write_str("the server sent a close frame with a 1-byte payload")
            }
            ProtocolViolation::InvalidCloseCode(code) => {
                write!(f, "the server sent a close frame with invalid code {code}")
            }
            ProtocolViolation::InvalidCloseReason => {
                f.write_str("the server sent a close frame whose reason is not UTF-8")
            }
            ProtocolViolation::InvalidUtf8 => {
                f.write_str("the server sent a text message that is not valid UTF-8")
            }
            ProtocolViolation::MessageTooLarge { max } => {
                write!(f, "the server sent a message larger than {max} bytes")
            }
        }
    }
}

impl std::error::Error for ProtocolViolation {}

/// The header of the frame being read, once its header bytes are all in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The FIN bit.
    pub fin: bool,
    /// The opcode (never reserved).
    pub opcode: OpCode,
    /// The payload length.
    pub len: usize,
    mask: Option<[u8; 4]>,
}

/// The frame a decoder is in the middle of: its header and the payload
/// bytes (unmasked) that have arrived so far. Lets the connection check a
/// text frame's UTF-8 before the frame is complete (fail fast).
#[derive(Debug, Clone, Copy)]
pub struct PartialFrame<'a> {
    /// The frame's header.
    pub header: &'a FrameHeader,
    /// The payload received so far, unmasked (a prefix of the payload).
    pub payload: &'a [u8],
}

/// An incremental frame decoder. See the module docs.
///
/// ```
/// use mpnet_core::ws::frame::{FrameDecoder, Role};
/// let wire = [0x81, 0x05, b'H', b'e', b'l', b'l', b'o', 0x89, 0x00];
/// let mut dec = FrameDecoder::new(Role::Client, 1 << 20);
/// // Split anywhere: the first call sees only part of the first frame.
/// assert_eq!(dec.decode(&wire[..4]).unwrap(), (4, None));
/// let (n, frame) = dec.decode(&wire[4..]).unwrap();
/// assert_eq!((n, &frame.unwrap().payload[..]), (3, &b"Hello"[..]));
/// let (n, ping) = dec.decode(&wire[7..]).unwrap();
/// assert_eq!((n, ping.unwrap().payload.len()), (2, 0));
/// ```
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    role: Role,
    max_data_payload: usize,
    head: [u8; 14],
    head_len: usize,
    current: Option<FrameHeader>,
    /// The payload of the frame being read.
    payload: BytesMut,
    /// Where the payloads of non-text frames are written: each completed
    /// one is split off it, and its allocation is taken back for the next
    /// frame once the app has dropped the message (`BytesMut::reserve`), so
    /// a stream of binary messages reuses one buffer that stays warm in
    /// the cache instead of a fresh allocation per message. Text frames get
    /// a buffer of their own, which becomes the message's `String` as is.
    arena: BytesMut,
}

/// How many bytes of payload capacity are reserved ahead of arrival; a
/// header's claimed length alone never allocates more than this.
const RESERVE_AHEAD: usize = 64 * 1024;

/// A frame longer than this does not leave its buffer to the arena (the
/// decoder keeps no more than about this much after a large message).
const KEEP_ARENA: usize = 256 * 1024;

impl FrameDecoder {
    /// A decoder for frames arriving at `role`'s end. A text or binary frame
    /// whose payload is over `max_data_payload` bytes fails with
    /// [`ProtocolViolation::MessageTooLarge`] as soon as its length is read.
    pub fn new(role: Role, max_data_payload: usize) -> Self {
        FrameDecoder {
            role,
            max_data_payload,
            head: [0; 14],
            head_len: 0,
            current: None,
            payload: BytesMut::new(),
            arena: BytesMut::new(),
        }
    }

    /// Changes the payload budget of data frames (the connection lowers it
    /// while a fragmented message is being reassembled). Applies to frames
    /// whose length has not been read yet.
    pub fn set_max_data_payload(&mut self, max: usize) {
        self.max_data_payload = max;
    }

    /// Reads from `input` until one frame is complete or `input` is used up.
    ///
    /// Returns how many bytes of `input` were consumed and the frame, if one
    /// was completed. `Ok((input.len(), None))` means "need more input" (the
    /// bytes are kept inside); bytes after a completed frame are not
    /// consumed, so call again with the rest. Once this returns an error
    /// the stream cannot be resynchronised: stop decoding.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Option<Frame>), ProtocolViolation> {
        let mut used = 0;
        let header = match self.current {
            Some(h) => h,
            None => {
                let (n, header) = self.read_header(input)?;
                used += n;
                match header {
                    Some(h) => {
                        self.current = Some(h);
                        let ahead = h.len.min(RESERVE_AHEAD);
                        if h.opcode == OpCode::Data(Data::Text) {
                            self.payload = BytesMut::with_capacity(ahead);
                        } else {
                            self.payload = std::mem::take(&mut self.arena);
                            self.payload.reserve(ahead);
                        }
                        h
                    }
                    None => return Ok((used, None)),
                }
            }
        };
        let rest = input.get(used..).unwrap_or_default();
        let wanted = header.len.saturating_sub(self.payload.len());
        let take = wanted.min(rest.len());
        let chunk = rest.get(..take).unwrap_or_default();
        let offset = self.payload.len();
        self.payload.reserve(chunk.len());
        // In pieces: see `COPY_PIECE`.
        for piece in chunk.chunks(COPY_PIECE) {
            self.payload.extend_from_slice(piece);
        }
        if let Some(key) = header.mask {
            apply_mask(
                self.payload.get_mut(offset..).unwrap_or_default(),
                key,
                offset,
            );
        }
        used += take;
        if self.payload.len() < header.len {
            return Ok((used, None));
        }
        self.current = None;
        let payload = if header.opcode == OpCode::Data(Data::Text) {
            // Its own buffer, whole: `Vec::from` takes it back without a copy.
            std::mem::take(&mut self.payload).freeze()
        } else {
            let payload = self.payload.split().freeze();
            if header.len <= KEEP_ARENA {
                self.arena = std::mem::take(&mut self.payload);
            } else {
                self.payload = BytesMut::new();
            }
            payload
        };
        Ok((
            used,
            Some(Frame {
                fin: header.fin,
                opcode: header.opcode,
                payload,
            }),
        ))
    }

    /// The frame being read, once its header is complete and until its
    /// payload is.
    pub fn partial(&self) -> Option<PartialFrame<'_>> {
        self.current.as_ref().map(|header| PartialFrame {
            header,
            payload: &self.payload[..],
        })
    }

    /// Whether the decoder is between frames (no byte of a next frame seen).
    pub fn is_idle(&self) -> bool {
        self.current.is_none() && self.head_len == 0
    }

    /// Collects header bytes; returns how many were consumed and the header
    /// once it is complete. Every check runs as soon as its bytes are in.
    fn read_header(
        &mut self,
        input: &[u8],
    ) -> Result<(usize, Option<FrameHeader>), ProtocolViolation> {
        let mut used = 0;
        loop {
            let needed = self.header_len()?;
            if self.head_len == needed {
                break;
            }
            let Some(&byte) = input.get(used) else {
                return Ok((used, None));
            };
            if let Some(slot) = self.head.get_mut(self.head_len) {
                *slot = byte;
            }
            self.head_len += 1;
            used += 1;
        }
        let header = self.finish_header()?;
        self.head_len = 0;
        Ok((used, Some(header)))
    }

    /// How long the header is, as far as the bytes so far tell, checking
    /// the first two bytes as soon as they are in.
    fn header_len(&self) -> Result<usize, ProtocolViolation> {
        if self.head_len < 2 {
            return Ok(2);
        }
        let [b0, b1, ..] = self.head;
        let rsv = (b0 >> 4) & 0x07;
        if rsv != 0 {
            return Err(ProtocolViolation::ReservedBits(rsv));
        }
        let opcode = OpCode::from(b0 & 0x0f);
        match opcode {
            OpCode::Data(Data::Reserved(op)) | OpCode::Control(Control::Reserved(op)) => {
                return Err(ProtocolViolation::ReservedOpcode(op));
            }
            _ => {}
        }
        let masked = b1 & 0x80 != 0;
        if masked != (self.role == Role::Server) {
            return Err(ProtocolViolation::BadMasking);
        }
        let len7 = b1 & 0x7f;
        if let OpCode::Control(_) = opcode {
            if b0 & 0x80 == 0 {
                return Err(ProtocolViolation::FragmentedControl);
            }
            if len7 > 125 {
                // The extended length is not needed to know it is too long.
                return Err(ProtocolViolation::ControlTooLong(u64::from(len7)));
            }
        }
        let ext = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        if ext == 8 && self.head_len >= 3 && self.head[2] & 0x80 != 0 {
            return Err(ProtocolViolation::LengthOverflow);
        }
        let mask = if masked { 4 } else { 0 };
        Ok(2 + ext + mask)
    }

    /// Builds the header from complete header bytes.
    fn finish_header(&self) -> Result<FrameHeader, ProtocolViolation> {
        let [b0, b1, ..] = self.head;
        let opcode = OpCode::from(b0 & 0x0f);
        let len7 = b1 & 0x7f;
        let (len, mask_at) = match len7 {
            126 => (
                u64::from(u16::from_be_bytes([self.head[2], self.head[3]])),
                4,
            ),
            127 => {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(self.head.get(2..10).unwrap_or(&[0; 8]));
                (u64::from_be_bytes(bytes), 10)
            }
            n => (u64::from(n), 2),
        };
        let mask = if b1 & 0x80 != 0 {
            let mut key = [0u8; 4];
            key.copy_from_slice(self.head.get(mask_at..mask_at + 4).unwrap_or(&[0; 4]));
            Some(key)
        } else {
            None
        };
        let too_large = ProtocolViolation::MessageTooLarge {
            max: self.max_data_payload,
        };
        let len = usize::try_from(len).map_err(|_| too_large.clone())?;
        if matches!(opcode, OpCode::Data(_)) && len > self.max_data_payload {
            return Err(too_large);
        }
        Ok(FrameHeader {
            fin: b0 & 0x80 != 0,
            opcode,
            len,
            mask,
        })
    }
}
