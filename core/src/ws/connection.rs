//! One open WebSocket connection as a state machine with no I/O (SPEC §2,
//! §7; RFC 6455 §5-§7).
//!
//! ```text
//!                      peer Close: reply (echo its code, 1000 if none),
//!          +---------- event Close{peer's code | 1005, reason} ---------------+
//!          |                                                                  v
//!  +--------+  close(now, code, reason)  +------------+  peer Close, EOF,  +------------+
//!  | Active | -------------------------> | ClosedByUs | -- close timeout -> | Terminated |
//!  +--------+  supersede(now): same, and +------------+  event Close{our   +------------+
//!     |   |    event Close{1000} at once                  code, reason}      ^      ^
//!     |   |                                                                  |      |
//!     |   +-- violation: event Error,   +---------+  EOF, peer Close,        |      |
//!     |       send Close{1002|1007|1009} | Failing | -- close timeout -------+      |
//!     |       (input is discarded)       +---------+  event Close{that code}        |
//!     |                                                                             |
//!     +-- EOF / transport error without a close frame: event Error, Close{1006} ----+
//! ```
//!
//! The driver's loop (the rule of quinn and str0m: change state, then drain
//! every output):
//!
//! 1. Feed what was read with [`handle_input`](Connection::handle_input),
//!    an end of stream with [`handle_eof`](Connection::handle_eof), a
//!    read/write failure with [`handle_transport_error`](Connection::handle_transport_error),
//!    app commands with [`send`](Connection::send) / [`close`](Connection::close),
//!    and an expired deadline with [`handle_timeout`](Connection::handle_timeout).
//! 2. Then drain [`poll_transmit`](Connection::poll_transmit) (write it all),
//!    [`poll_event`](Connection::poll_event) (deliver to listeners), and
//!    arm a timer for [`poll_timeout`](Connection::poll_timeout).
//! 3. Once [`is_terminated`](Connection::is_terminated) and the transmit
//!    bytes are written, close the TCP/TLS connection.
//!
//! Events come out in the order SPEC §7 promises, by construction: `Open`
//! (queued by [`Connection::new`]), then messages (only while `Active`),
//! then at most one `Error`, then exactly one `Close` once the connection
//! ends, then nothing.
//!
//! Incoming text is checked as UTF-8 as its bytes arrive (even in the middle
//! of a frame), so a bad byte fails the connection at once (close 1007).
//! Fragmented messages are reassembled, control frames between fragments
//! are handled, pings are answered with the same payload. Every frame this
//! end sends is masked with a fresh mask from the [`MaskSource`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};

use super::event::{MessageData, SocketEvent};
use super::frame::{encode_frame, Frame, FrameDecoder, MaskSource, ProtocolViolation, Role};
use super::options::{CloseOptions, SendData, SendOptions};
use super::utf8::Utf8Validator;
use crate::{deadline, Error, ErrorKind, Limits};

/// How long to wait for the peer's close frame (after this end closed) or
/// for the peer to drop the connection (after this end failed it) before
/// the transport drops it (default 5 s).
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The close code of a normal closure.
pub const NORMAL_CLOSURE: u16 = 1000;

/// The close code reported when the connection ended without a close frame.
pub const ABNORMAL_CLOSURE: u16 = 1006;

/// The close code reported when the peer's close frame carried no code.
pub const NO_STATUS_RECEIVED: u16 = 1005;

/// The most capacity a buffer kept for reuse (the base64 scratch, a
/// transmit buffer handed back, a `Link`'s frame buffer) keeps after a
/// large message.
pub(crate) const KEEP_CAPACITY: usize = 256 * 1024;

/// Most bytes of a close reason (a control frame holds 125 bytes, 2 are the code).
pub const MAX_CLOSE_REASON_BYTES: usize = 123;

/// The settings of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// Largest message, reassembled (default 16 MiB). Larger: close 1009
    /// and socket error 12.
    pub max_message_bytes: usize,
    /// See [`DEFAULT_CLOSE_TIMEOUT`].
    pub close_timeout: Duration,
}

impl ConnectionConfig {
    /// The settings from an app context's limits.
    pub fn from_limits(limits: &Limits) -> Self {
        ConnectionConfig {
            max_message_bytes: limits.max_message_bytes,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
        }
    }
    /// Sets the close timeout.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig::from_limits(&Limits::default())
    }
}

/// Where the close handshake is (RFC 6455 §7; tungstenite's idea).
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Open: messages flow both ways.
    Active,
    /// This end sent a close frame (closeSocket); waiting for the peer's.
    ClosedByUs {
        code: u16,
        reason: String,
        deadline: Instant,
    },
    /// This end failed the connection and sent a close frame; input is
    /// discarded until the peer drops the connection or the deadline.
    Failing {
        code: u16,
        reason: String,
        deadline: Instant,
    },
    /// Over: the close event is out; the transport closes the connection.
    Terminated,
}

/// The kind of a message being reassembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
}

/// One WebSocket connection after a successful handshake. See the module
/// docs for the states and the driver's loop.
///
/// ```
/// use std::time::Instant;
/// use mpnet_core::ws::{Connection, ConnectionConfig, FixedMask, MessageData, SocketEvent};
///
/// let now = Instant::now();
/// let mut conn = Connection::new(ConnectionConfig::default(), Box::new(FixedMask([1, 2, 3, 4])));
/// assert_eq!(conn.poll_event(), Some(SocketEvent::Open));
///
/// // A text message, split across two reads, then a ping.
/// conn.handle_input(now, b"\x81\x05Hel");
/// conn.handle_input(now, b"lo\x89\x01!");
/// assert_eq!(
///     conn.poll_event(),
///     Some(SocketEvent::Message { data: MessageData::Text("Hello".into()) })
/// );
/// // The pong, masked with 1 2 3 4: '!' ^ 1.
/// assert_eq!(conn.poll_transmit(), Some(vec![0x8a, 0x81, 1, 2, 3, 4, b'!' ^ 1]));
///
/// // The server closes with 1000; the reply echoes it.
/// conn.handle_input(now, b"\x88\x02\x03\xe8");
/// assert_eq!(conn.poll_event(), Some(SocketEvent::Close { code: 1000, reason: String::new() }));
/// assert!(conn.poll_transmit().is_some());
/// assert!(conn.is_terminated());
/// ```
pub struct Connection {
    state: State,
    config: ConnectionConfig,
    decoder: FrameDecoder,
    masks: Box<dyn MaskSource + Send>,
    /// The fragmented message being reassembled.
    message: Option<(Kind, Vec<u8>)>,
    utf8: Utf8Validator,
    /// Whether the header of the frame the decoder is in was checked.
    header_checked: bool,
    /// How many payload bytes of that frame went through `utf8`.
    utf8_fed: usize,
    transmit: Vec<u8>,
    /// The decoded bytes of a base64 `send`, kept for the next one.
    scratch: Vec<u8>,
    close_frame_sent: bool,
    events: VecDeque<SocketEvent>,
    error_emitted: bool,
    close_emitted: bool,
    /// Complete messages delivered so far (input stops after each one).
    messages_delivered: u64,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("state", &self.state)
            .field("pending_events", &self.events.len())
            .field("pending_transmit", &self.transmit.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// What a transport opens for `my.connectSocket`: a connection with the
    /// app's `limits` ([`ConnectionConfig::from_limits`]) whose masks come
    /// from `fill` (the caller's randomness, which must fill the whole
    /// slice), 64 at a time ([`BatchedMasks`](super::BatchedMasks)).
    pub fn for_app(limits: &Limits, fill: impl FnMut(&mut [u8]) + Send + 'static) -> Self {
        Connection::new(
            ConnectionConfig::from_limits(limits),
            Box::new(super::BatchedMasks::new(fill)),
        )
    }

    /// A connection that has just opened (the handshake succeeded); the
    /// `Open` event is queued. `masks` gives the mask of every frame sent.
    pub fn new(config: ConnectionConfig, masks: Box<dyn MaskSource + Send>) -> Self {
        let decoder = FrameDecoder::new(Role::Client, config.max_message_bytes);
        let mut events = VecDeque::new();
        events.push_back(SocketEvent::Open);
        Connection {
            state: State::Active,
            config,
            decoder,
            masks,
            message: None,
            utf8: Utf8Validator::default(),
            header_checked: false,
            utf8_fed: 0,
            transmit: Vec::new(),
            scratch: Vec::new(),
            close_frame_sent: false,
            events,
            error_emitted: false,
            close_emitted: false,
            messages_delivered: 0,
        }
    }

    // ----- queries -----

    /// Whether messages may be sent (no close frame sent or received yet).
    pub fn is_open(&self) -> bool {
        self.state == State::Active
    }

    /// Whether the close handshake is under way (this end closed or failed
    /// the connection and waits for the peer).
    pub fn is_closing(&self) -> bool {
        matches!(self.state, State::ClosedByUs { .. } | State::Failing { .. })
    }

    /// Whether the connection is over: once the transmit bytes are written,
    /// the transport closes the TCP/TLS connection. The close event has been
    /// queued.
    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    /// Whether the transport should keep reading (everything but
    /// `Terminated`).
    pub fn wants_read(&self) -> bool {
        !self.is_terminated()
    }

    // ----- outputs -----

    /// The bytes to write next, all pending frames at once; `None` when
    /// there is nothing to write. Call after every input and command.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.transmit.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.transmit))
        }
    }

    /// As [`poll_transmit`](Self::poll_transmit), into `buf` (its
    /// contents are dropped): the connection keeps `buf`'s old allocation
    /// for its next frames, so a transport that passes the same buffer
    /// every time allocates nothing per frame. Returns whether there were
    /// bytes to write.
    pub fn poll_transmit_into(&mut self, buf: &mut Vec<u8>) -> bool {
        if self.transmit.is_empty() {
            return false;
        }
        buf.clear();
        if buf.capacity() > KEEP_CAPACITY {
            *buf = Vec::new();
        }
        std::mem::swap(&mut self.transmit, buf);
        true
    }

    /// Whether events wait for [`poll_event`](Self::poll_event).
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// The next event for the app, in SPEC §7 order. Call until `None` after
    /// every input and command.
    pub fn poll_event(&mut self) -> Option<SocketEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next:
    /// the close-handshake deadline while closing, else `None`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::ClosedByUs { deadline, .. } | State::Failing { deadline, .. } => Some(*deadline),
            State::Active | State::Terminated => None,
        }
    }

    // ----- inputs -----

    /// Feeds bytes read from the peer; `now` is the current time (it arms
    /// the close timeout when a violation fails the connection).
    ///
    /// Returns how many bytes were consumed: all of them while the
    /// connection reads; fewer once it has terminated (the peer's close
    /// frame ended it; the rest is not wanted). Feeding the same bytes split
    /// anywhere gives the same events and the same output (SPEC §2).
    pub fn handle_input(&mut self, now: Instant, input: &[u8]) -> usize {
        let mut used = 0;
        while used < input.len() && !self.is_terminated() {
            let n = self.handle_input_step(now, input.get(used..).unwrap_or_default());
            if n == 0 {
                break;
            }
            used += n;
        }
        used
    }

    /// As [`handle_input`](Self::handle_input), but stops right after each
    /// complete message, so the app can act on it (answer, close) before the
    /// next frame is read — as a client reading one message at a time does,
    /// and as the Autobahn suite expects (a message before a bad frame is
    /// still answered). Transports call it in a loop: drain events and
    /// transmits, then feed the rest again while bytes remain and the
    /// connection [`wants_read`](Self::wants_read).
    pub fn handle_input_step(&mut self, now: Instant, input: &[u8]) -> usize {
        let mut used = 0;
        while used < input.len() {
            match self.state {
                State::Terminated => break,
                State::Failing { .. } => return input.len(),
                State::Active | State::ClosedByUs { .. } => {}
            }
            let rest = input.get(used..).unwrap_or_default();
            // The message budget: what the message being reassembled has left.
            let assembled = self.message.as_ref().map_or(0, |(_, data)| data.len());
            self.decoder
                .set_max_data_payload(self.config.max_message_bytes.saturating_sub(assembled));
            let step = self.decoder.decode(rest);
            match step {
                Ok((n, frame)) => {
                    used += n;
                    let messages_before = self.messages_delivered;
                    let result = match frame {
                        Some(frame) => self.on_frame(frame),
                        None => self.on_partial(),
                    };
                    if let Err(v) = result {
                        self.on_violation(now, v);
                    }
                    if self.messages_delivered != messages_before {
                        // A whole message is out: give the app its turn
                        // (it may answer, e.g. echo) before the next frame
                        // is read, as a client reading one message at a
                        // time would. The caller feeds the rest again.
                        break;
                    }
                    if n == 0 && self.state != State::Terminated {
                        // A decoder that needs input always consumes some.
                        break;
                    }
                }
                Err(v) => {
                    used = input.len();
                    self.on_violation(now, v);
                }
            }
        }
        used
    }

    /// The peer ended the stream (read returned 0 bytes).
    ///
    /// While open, this is an abnormal end: an `Error` event (code 1) and a
    /// `Close` event with 1006. While closing, the close event carries this
    /// end's code. Afterwards the connection is terminated.
    pub fn handle_eof(&mut self) {
        if self.state == State::Active {
            self.emit_error(Error::new(
                ErrorKind::Network,
                "the server closed the connection without a close frame",
            ));
        }
        self.terminate();
    }

    /// Reading or writing failed (reset, TLS alert, ...): like
    /// [`handle_eof`](Self::handle_eof), with `error` as the error event.
    pub fn handle_transport_error(&mut self, error: Error) {
        if self.state == State::Active {
            self.emit_error(error);
        }
        self.terminate();
    }

    /// The time is `now`: when the close-handshake deadline has passed the
    /// connection terminates (the close event carries this end's code) and
    /// the transport drops the TCP connection.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.poll_timeout() {
            Some(deadline) if now >= deadline => self.terminate(),
            _ => {}
        }
    }

    // ----- commands -----

    /// Sends a text message. Error 10 when the socket is not open.
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.ensure_open()?;
        self.queue_frame(OpCode::Data(Data::Text), text.as_bytes());
        Ok(())
    }

    /// Sends a binary message. Error 10 when the socket is not open.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.ensure_open()?;
        self.queue_frame(OpCode::Data(Data::Binary), data);
        Ok(())
    }

    /// `sendSocketMessage` (SPEC §7): text, or with `isBuffer` the
    /// base64-decoded bytes (or bytes as they are) as a binary message.
    /// Error 10 when the socket is not open, 11 when the data is not valid
    /// base64.
    pub fn send(&mut self, opts: &SendOptions) -> Result<(), Error> {
        self.ensure_open()?;
        match &opts.data {
            SendData::Text(text) => self.send_text(text),
            SendData::Binary(bytes) => self.send_binary(bytes),
            SendData::Base64(text) => {
                // Decoded into a buffer kept for the next message.
                let mut bytes = std::mem::take(&mut self.scratch);
                bytes.clear();
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode_vec(text, &mut bytes)
                    .map_err(|e| {
                        Error::new(
                            ErrorKind::SendFailed,
                            format!("data is not valid base64 ({e}) but isBuffer is true"),
                        )
                    });
                let sent = decoded.and_then(|()| self.send_binary(&bytes));
                if bytes.capacity() <= KEEP_CAPACITY {
                    self.scratch = bytes;
                }
                sent
            }
        }
    }

    /// Sends a ping (at most 125 bytes, else error 2). Error 10 when the
    /// socket is not open.
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        if payload.len() > 125 {
            return Err(Error::invalid("a ping payload holds at most 125 bytes"));
        }
        self.ensure_open()?;
        self.queue_frame(OpCode::Control(Control::Ping), payload);
        Ok(())
    }

    /// `closeSocket` (SPEC §7): starts the close handshake with `code`
    /// (default 1000) and `reason` (default empty), then waits for the
    /// peer's close frame up to the close timeout from `now`. The close
    /// event, when the connection ends, carries this code and reason.
    ///
    /// Errors: 2 when `code` is not 1000 or 3000-4999 or `reason` is over
    /// 123 bytes (checked first, as a browser does); 10 when the socket is
    /// not open (closing or closed already).
    pub fn close(
        &mut self,
        now: Instant,
        code: Option<u16>,
        reason: Option<&str>,
    ) -> Result<(), Error> {
        let code = code.unwrap_or(NORMAL_CLOSURE);
        if code != NORMAL_CLOSURE && !(3000..=4999).contains(&code) {
            return Err(Error::invalid(format!(
                "close code must be 1000 or 3000-4999, got {code}"
            )));
        }
        let reason = reason.unwrap_or_default();
        if reason.len() > MAX_CLOSE_REASON_BYTES {
            return Err(Error::invalid(format!(
                "close reason is {} bytes of UTF-8, over the limit of {MAX_CLOSE_REASON_BYTES}",
                reason.len()
            )));
        }
        self.ensure_open()?;
        self.queue_close(code, reason);
        self.message = None;
        self.state = State::ClosedByUs {
            code,
            reason: reason.to_string(),
            deadline: self.deadline(now),
        };
        Ok(())
    }

    /// [`close`](Self::close) with the options of the JSON bridge.
    pub fn close_with(&mut self, now: Instant, opts: &CloseOptions) -> Result<(), Error> {
        self.close(now, opts.code, opts.reason.as_deref())
    }

    /// A newer `connectSocket` replaces this app socket (SPEC §7): when open
    /// it starts the close handshake with 1000; in every state the close
    /// event is queued at once (1000, or the code of a close already under
    /// way), so it reaches the app before anything of the new socket. The
    /// connection keeps running the handshake in the background (transmit,
    /// read, timeout) until [`is_terminated`](Self::is_terminated), with no
    /// further events.
    pub fn supersede(&mut self, now: Instant) {
        if self.state == State::Active {
            self.queue_close(NORMAL_CLOSURE, "");
            self.message = None;
            self.state = State::ClosedByUs {
                code: NORMAL_CLOSURE,
                reason: String::new(),
                deadline: self.deadline(now),
            };
        }
        match &self.state {
            State::ClosedByUs { code, reason, .. } | State::Failing { code, reason, .. } => {
                let (code, reason) = (*code, reason.clone());
                self.emit_close(code, reason);
            }
            State::Active | State::Terminated => {}
        }
    }

    // ----- internals -----

    /// `now` plus the close timeout (see [`deadline::after`]).
    fn deadline(&self, now: Instant) -> Instant {
        deadline::after(now, self.config.close_timeout)
    }

    fn ensure_open(&self) -> Result<(), Error> {
        if self.state == State::Active {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::NotConnected,
                "the socket is not open (it is closing or closed)",
            ))
        }
    }

    /// Whether a frame with this header carries text: a text frame, or a
    /// continuation of a text message.
    fn is_text(&self, opcode: OpCode) -> bool {
        match opcode {
            OpCode::Data(Data::Text) => true,
            OpCode::Data(Data::Continue) => matches!(self.message, Some((Kind::Text, _))),
            _ => false,
        }
    }

    /// The fragmentation rules (RFC 6455 §5.4), checked once per frame as
    /// soon as its header is in.
    fn check_header(&self, opcode: OpCode) -> Result<(), ProtocolViolation> {
        match (opcode, &self.message) {
            (OpCode::Data(Data::Continue), None) => Err(ProtocolViolation::UnexpectedContinuation),
            (OpCode::Data(Data::Text | Data::Binary), Some(_)) => {
                Err(ProtocolViolation::ExpectedContinuation)
            }
            _ => Ok(()),
        }
    }

    /// The decoder is inside a frame: check its header once, and the UTF-8
    /// of a text payload as far as it has arrived (fail fast).
    fn on_partial(&mut self) -> Result<(), ProtocolViolation> {
        if self.state != State::Active {
            return Ok(());
        }
        let Some(partial) = self.decoder.partial() else {
            return Ok(());
        };
        let opcode = partial.header.opcode;
        if !self.header_checked {
            self.check_header(opcode)?;
            self.header_checked = true;
        }
        if self.is_text(opcode) {
            let fresh = partial.payload.get(self.utf8_fed..).unwrap_or_default();
            self.utf8
                .feed(fresh)
                .map_err(|_| ProtocolViolation::InvalidUtf8)?;
            self.utf8_fed = partial.payload.len();
        }
        Ok(())
    }

    /// A complete frame arrived.
    fn on_frame(&mut self, frame: Frame) -> Result<(), ProtocolViolation> {
        let header_checked = std::mem::take(&mut self.header_checked);
        let utf8_fed = std::mem::take(&mut self.utf8_fed);
        if self.state != State::Active {
            // Closing: only the peer's close frame matters now.
            if frame.opcode == OpCode::Control(Control::Close) {
                self.terminate();
            }
            return Ok(());
        }
        if !header_checked {
            self.check_header(frame.opcode)?;
        }
        match frame.opcode {
            OpCode::Data(_) => {
                if self.is_text(frame.opcode) {
                    let fresh = frame.payload.get(utf8_fed..).unwrap_or_default();
                    self.utf8
                        .feed(fresh)
                        .map_err(|_| ProtocolViolation::InvalidUtf8)?;
                    if frame.fin {
                        self.utf8
                            .finish()
                            .map_err(|_| ProtocolViolation::InvalidUtf8)?;
                    }
                }
                self.on_data(frame)
            }
            OpCode::Control(Control::Ping) => {
                self.queue_frame(OpCode::Control(Control::Pong), &frame.payload);
                Ok(())
            }
            OpCode::Control(Control::Close) => self.on_peer_close(&frame.payload),
            OpCode::Control(_) => Ok(()),
        }
    }

    /// A data frame whose header and UTF-8 were checked.
    fn on_data(&mut self, frame: Frame) -> Result<(), ProtocolViolation> {
        let (kind, data) = match (frame.opcode, self.message.take()) {
            (OpCode::Data(Data::Continue), Some((kind, mut data))) => {
                data.extend_from_slice(&frame.payload);
                if !frame.fin {
                    self.message = Some((kind, data));
                    return Ok(());
                }
                (kind, Bytes::from(data))
            }
            (OpCode::Data(Data::Text), None) if frame.fin => (Kind::Text, frame.payload),
            (OpCode::Data(Data::Binary), None) if frame.fin => (Kind::Binary, frame.payload),
            (OpCode::Data(Data::Text), None) => {
                self.message = Some((Kind::Text, frame.payload.to_vec()));
                return Ok(());
            }
            (OpCode::Data(Data::Binary), None) => {
                self.message = Some((Kind::Binary, frame.payload.to_vec()));
                return Ok(());
            }
            // check_header has refused every other combination.
            _ => return Err(ProtocolViolation::ExpectedContinuation),
        };
        if data.len() > self.config.max_message_bytes {
            return Err(ProtocolViolation::MessageTooLarge {
                max: self.config.max_message_bytes,
            });
        }
        let data = match kind {
            Kind::Binary => MessageData::Binary(data),
            // `Vec::from` takes the frame's buffer back without a copy
            // when nothing else holds it (a whole-frame message).
            Kind::Text => MessageData::Text(
                String::from_utf8(Vec::from(data)).map_err(|_| ProtocolViolation::InvalidUtf8)?,
            ),
        };
        if !self.error_emitted && !self.close_emitted {
            self.events.push_back(SocketEvent::Message { data });
            self.messages_delivered += 1;
        }
        Ok(())
    }

    /// The peer's close frame while open: reply and terminate.
    fn on_peer_close(&mut self, payload: &[u8]) -> Result<(), ProtocolViolation> {
        let (reply, code, reason) = match payload {
            [] => (NORMAL_CLOSURE, NO_STATUS_RECEIVED, String::new()),
            [_] => return Err(ProtocolViolation::CloseTooShort),
            [hi, lo, rest @ ..] => {
                let code = u16::from_be_bytes([*hi, *lo]);
                if !CloseCode::from(code).is_allowed() {
                    return Err(ProtocolViolation::InvalidCloseCode(code));
                }
                let reason =
                    std::str::from_utf8(rest).map_err(|_| ProtocolViolation::InvalidCloseReason)?;
                (code, code, reason.to_string())
            }
        };
        self.queue_close(reply, "");
        self.message = None;
        self.state = State::Terminated;
        self.emit_close(code, reason);
        Ok(())
    }

    /// Fails the connection (RFC 6455 §7.1.7): error event, close frame with
    /// the violation's code, then wait for the peer to go. A violation while
    /// closing ends the connection at once.
    fn on_violation(&mut self, now: Instant, v: ProtocolViolation) {
        if self.state != State::Active {
            self.terminate();
            return;
        }
        let code = v.close_code();
        let reason = v.close_reason();
        // A bad close frame is still the peer's close: once ours is sent the
        // handshake is over.
        let peer_closed = matches!(
            v,
            ProtocolViolation::CloseTooShort
                | ProtocolViolation::InvalidCloseCode(_)
                | ProtocolViolation::InvalidCloseReason
        );
        let error = match v {
            ProtocolViolation::MessageTooLarge { .. } => Error::new(
                ErrorKind::MessageTooLarge,
                format!(
                    "the server sent a message larger than {} bytes; the socket was closed with 1009",
                    self.config.max_message_bytes
                ),
            ),
            other => Error::new(
                ErrorKind::Protocol,
                format!("{other}; the socket was closed with {code}"),
            ),
        };
        self.emit_error(error);
        self.queue_close(code, reason);
        self.message = None;
        self.state = State::Failing {
            code,
            reason: reason.to_string(),
            deadline: self.deadline(now),
        };
        if peer_closed {
            self.terminate();
        }
    }

    /// Ends the connection: the close event (unless already out) carries
    /// this end's code when it closed or failed the connection, else 1006.
    fn terminate(&mut self) {
        let (code, reason) = match std::mem::replace(&mut self.state, State::Terminated) {
            State::ClosedByUs { code, reason, .. } | State::Failing { code, reason, .. } => {
                (code, reason)
            }
            State::Active => (ABNORMAL_CLOSURE, String::new()),
            State::Terminated => return,
        };
        self.message = None;
        self.emit_close(code, reason);
    }

    fn emit_error(&mut self, error: Error) {
        if !self.error_emitted && !self.close_emitted {
            self.error_emitted = true;
            self.events.push_back(SocketEvent::Error(error));
        }
    }

    fn emit_close(&mut self, code: u16, reason: String) {
        if !self.close_emitted {
            self.close_emitted = true;
            self.events.push_back(SocketEvent::Close { code, reason });
        }
    }

    fn queue_frame(&mut self, opcode: OpCode, payload: &[u8]) {
        if self.close_frame_sent {
            return;
        }
        let mask = self.masks.mask();
        encode_frame(&mut self.transmit, true, opcode, payload, Some(mask));
    }

    fn queue_close(&mut self, code: u16, reason: &str) {
        let mut payload = Vec::with_capacity(2 + reason.len());
        payload.extend_from_slice(&code.to_be_bytes());
        payload.extend_from_slice(reason.as_bytes());
        self.queue_frame(OpCode::Control(Control::Close), &payload);
        self.close_frame_sent = true;
    }
}
