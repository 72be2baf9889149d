//! A TLS client session as bytes in and bytes out: rustls's unbuffered API
//! for the handshake, then for TLS 1.3 mpnet's own record layer
//! ([`crate::tls_record`]) with rustls's key schedule. The transport reads
//! the socket into
//! [`read_buf`](TlsSession::read_buf), writes [`transmit`](TlsSession::transmit)
//! to it, and asks for plaintext or hands plaintext in. The session opens
//! no socket and keeps no timer; it decides only what the TLS bytes mean.
//!
//! The clock (certificate validity, ticket ages) and the randomness
//! (ClientHello random, session IDs) are those of the `ClientConfig` the
//! transport passes in ([`crate::tls::client_config`] takes them from the
//! caller). One exception: *ring* generates the key-exchange share from the
//! operating system's generator itself, which no rustls configuration can
//! replace.
//!
//! Compared with rustls's buffered `ClientConnection`, records are encoded
//! into one reused outgoing buffer, and the socket is read in pieces of up
//! to [`READ_CHUNK`] bytes rather than one record (at most ~16 KiB) at a
//! time: a 256 MiB download takes ~2,000 reads instead of ~16,500
//! (`strace -c`, mpnet-blocking). rustls 0.23 allocates one buffer per
//! record it encrypts and one per record it decrypts, in both its APIs; so
//! once a TLS 1.3 handshake is done (with one of TLS 1.3's three suites,
//! and a config that allows it, as [`crate::tls::client_config`]'s does)
//! records are sealed in the outgoing buffer and opened in the incoming
//! one instead, by [`crate::tls_record::RecordLayer`]. TLS 1.2 stays with
//! rustls throughout.
//!
//! The trust decisions stay in [`crate::tls::client_config`]; this type
//! only moves records.

use std::sync::Arc;

use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, InsufficientSizeError};
use rustls::{CipherSuite, ClientConfig, ProtocolVersion};

use crate::tls_record::{reserve, Opened, RecordError, RecordLayer, MAX_FRAGMENT};

/// The free space [`TlsSession::read_buf`] offers for one socket read.
/// Each connection keeps a buffer this big while it lives (pooled ones
/// included).
pub const READ_CHUNK: usize = 128 * 1024;

/// The most TLS bytes the session holds without being able to make a
/// record of them, and the most decrypted bytes it keeps for the next
/// [`TlsSession::read_plaintext`]. A record is at most 16 KiB plus
/// overhead and a handshake message at most 64 KiB (rustls's own limit),
/// so only a misbehaving peer reaches it; the session then fails instead of
/// growing.
pub const MAX_INCOMING: usize = 2 * READ_CHUNK + 64 * 1024;

/// The most plaintext one [`TlsSession::encrypt`] call takes, and how much
/// queued TLS makes [`TlsSession::should_send`] true: a large body is
/// encrypted and sent in pieces, never held whole.
pub const ENCRYPT_PIECE: usize = 64 * 1024;

/// The outgoing buffer is shrunk back to this once sent, if it grew past it.
const KEPT_OUTGOING_MAX: usize = 2 * ENCRYPT_PIECE;

/// What the session needs before the handshake can go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// Send [`TlsSession::transmit`], then read the socket into
    /// [`TlsSession::read_buf`].
    NeedRead,
    /// Application data may be sent. The client's last flight may still be
    /// in [`TlsSession::transmit`]: it leaves with the first request.
    Done,
    /// The server closed the session (`close_notify`) before the handshake
    /// ended: for the caller, the connection's end.
    Closed,
}

/// The outcome of [`TlsSession::read_plaintext`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plaintext {
    /// This many bytes were written at the start of the caller's buffer.
    Data(usize),
    /// No whole record is buffered: send [`TlsSession::transmit`] if it is
    /// not empty, then read the socket into [`TlsSession::read_buf`].
    NeedRead,
    /// The peer closed the session cleanly (`close_notify`): no more data.
    Closed,
}

/// What one call into rustls did.
enum Event {
    /// Handshake records were encoded or sent, or records were read.
    Progress,
    /// The caller's application data was encrypted.
    Encrypted,
    /// Nothing more to do until more bytes arrive (during the handshake).
    Blocked,
    /// Application data may be sent; nothing was received.
    Writable,
    /// The peer's `close_notify` (reported once).
    PeerClosed,
    /// Both sides have closed.
    Closed,
}

/// A TLS client session. Errors are rustls's own; after one, the session
/// is dead: every later call gives the same error, except that the reads
/// first hand out the plaintext decrypted before it (and a socket read
/// taken meanwhile is dropped unread), and
/// [`transmit`](Self::transmit) may hold an alert for the peer, worth one
/// best-effort write.
pub struct TlsSession {
    engine: Engine,
    /// Whether TLS 1.3 traffic may still move to mpnet's record layer: the
    /// config allows secret extraction, and rustls has read no record past
    /// its handshake.
    may_take_over: bool,
    /// The most plaintext per record this side sends.
    max_fragment: usize,
    /// Received TLS bytes: `incoming[in_start..in_end]` is not processed yet.
    incoming: Vec<u8>,
    in_start: usize,
    in_end: usize,
    /// TLS bytes to send: `outgoing[out_start..out_end]`.
    outgoing: Vec<u8>,
    out_start: usize,
    out_end: usize,
    /// Decrypted bytes not handed out yet: `pending[pending_start..]`.
    pending: Vec<u8>,
    pending_start: usize,
    peer_closed: bool,
    /// The error that ended the session: every later call returns it,
    /// once the plaintext decrypted before it is handed out (rustls must
    /// not be driven past a fatal error).
    failed: Option<rustls::Error>,
}

/// Who seals and opens the records.
enum Engine {
    /// rustls: the handshake, and all of a session it keeps (TLS 1.2, a
    /// config that keeps the secrets in, records read past the handshake).
    Rustls(Box<UnbufferedClientConnection>),
    /// TLS 1.3 traffic after the handshake.
    Records(Box<RecordLayer>),
    /// Only while rustls hands over; a failed hand-over leaves it, and the
    /// session has failed.
    Gone,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field(
                "records",
                &match self.engine {
                    Engine::Rustls(_) => "rustls",
                    Engine::Records(_) => "mpnet",
                    Engine::Gone => "none",
                },
            )
            .field("unprocessed", &(self.in_end - self.in_start))
            .field("to_send", &(self.out_end - self.out_start))
            .field(
                "pending_plaintext",
                &(self.pending.len() - self.pending_start),
            )
            .field("peer_closed", &self.peer_closed)
            .field("failed", &self.failed)
            .finish()
    }
}

/// A rustls error for a peer that sends more than [`MAX_INCOMING`] bytes
/// without completing a record.
fn too_much_incoming() -> rustls::Error {
    rustls::Error::General(format!(
        "the peer sent over {MAX_INCOMING} bytes without completing a TLS record"
    ))
}

/// Gives back the memory of an emptied buffer that grew past `keep`.
fn shrink(buf: &mut Vec<u8>, keep: usize) {
    if buf.len() > keep {
        buf.truncate(keep);
        buf.shrink_to(keep);
    }
}

/// Where [`TlsSession::advance`] puts decrypted application data.
enum Sink<'a> {
    /// Copied into `buf[filled..]`.
    Copy { buf: &'a mut [u8], filled: usize },
    /// Offered to `take`, which says how much it used and whether to stop
    /// (it used less, or wants its caller to act before more comes).
    Offer {
        take: &'a mut dyn FnMut(&[u8]) -> (usize, bool),
        used: usize,
        stopped: bool,
    },
}

impl Sink<'_> {
    /// A sink for calls that expect no application data (any is kept).
    fn none() -> Sink<'static> {
        Sink::Copy {
            buf: &mut [],
            filled: 0,
        }
    }

    /// Whether the sink takes no more now: its buffer is full, or `take`
    /// said stop.
    fn is_done(&self) -> bool {
        match self {
            Sink::Copy { buf, filled } => *filled >= buf.len(),
            Sink::Offer { stopped, .. } => *stopped,
        }
    }

    /// How many bytes it has taken.
    fn taken(&self) -> usize {
        match self {
            Sink::Copy { filled, .. } => *filled,
            Sink::Offer { used, .. } => *used,
        }
    }

    /// Gives `data`; returns how much was taken and whether to stop.
    fn give(&mut self, data: &[u8]) -> (usize, bool) {
        match self {
            Sink::Copy { buf, filled } => {
                let room = buf.len() - *filled;
                let n = data.len().min(room);
                buf[*filled..*filled + n].copy_from_slice(&data[..n]);
                *filled += n;
                (n, false)
            }
            Sink::Offer {
                take,
                used,
                stopped,
            } => {
                let (n, stop) = take(data);
                let n = n.min(data.len());
                *used += n;
                *stopped |= stop || n < data.len();
                (n, *stopped)
            }
        }
    }
}

impl TlsSession {
    /// A session to `name` with `config`; the handshake starts with the
    /// first [`handshake`](Self::handshake) call.
    pub fn new(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<Self, rustls::Error> {
        // rustls's `max_fragment_size` counts the record header.
        let max_fragment = config
            .max_fragment_size
            .map_or(MAX_FRAGMENT, |n| {
                n.saturating_sub(crate::tls_record::HEADER)
            })
            .clamp(1, MAX_FRAGMENT);
        let may_take_over = config.enable_secret_extraction;
        Ok(TlsSession {
            engine: Engine::Rustls(Box::new(UnbufferedClientConnection::new(config, name)?)),
            may_take_over,
            max_fragment,
            incoming: Vec::new(),
            in_start: 0,
            in_end: 0,
            outgoing: Vec::new(),
            out_start: 0,
            out_end: 0,
            pending: Vec::new(),
            pending_start: 0,
            peer_closed: false,
            failed: None,
        })
    }

    /// The TLS bytes waiting to be sent.
    pub fn transmit(&self) -> &[u8] {
        &self.outgoing[self.out_start..self.out_end]
    }

    /// Whether enough TLS is queued that it should be sent before more
    /// plaintext is encrypted (at least [`ENCRYPT_PIECE`] bytes).
    pub fn should_send(&self) -> bool {
        self.out_end - self.out_start >= ENCRYPT_PIECE
    }

    /// Marks `n` bytes of [`transmit`](Self::transmit) as sent.
    pub fn sent(&mut self, n: usize) {
        self.out_start = (self.out_start + n).min(self.out_end);
        if self.out_start == self.out_end {
            self.out_start = 0;
            self.out_end = 0;
            shrink(&mut self.outgoing, KEPT_OUTGOING_MAX);
        }
    }

    /// Free space for the next socket read: up to [`READ_CHUNK`] bytes.
    /// Fails when the session already holds [`MAX_INCOMING`] bytes it
    /// could not make a record of (a misbehaving peer).
    pub fn read_buf(&mut self) -> Result<&mut [u8], rustls::Error> {
        if self.in_start > 0 && self.incoming.len() - self.in_end < READ_CHUNK {
            self.incoming.copy_within(self.in_start..self.in_end, 0);
            self.in_end -= self.in_start;
            self.in_start = 0;
        }
        let room = READ_CHUNK.min(MAX_INCOMING - self.in_end);
        if room == 0 {
            return Err(too_much_incoming());
        }
        reserve(&mut self.incoming, self.in_end, room);
        Ok(&mut self.incoming[self.in_end..self.in_end + room])
    }

    /// Records that the socket read put `n` bytes at the start of
    /// [`read_buf`](Self::read_buf).
    pub fn received(&mut self, n: usize) {
        self.in_end = (self.in_end + n).min(self.incoming.len());
    }

    /// Takes the `n` bytes a socket read put at the start of `buf`, as
    /// [`read_buf`](Self::read_buf) and [`received`](Self::received) do,
    /// but without copying them when every byte received before has been
    /// processed: the session then keeps `buf`'s storage and leaves its own
    /// in `buf`, at least as long as `buf` was, for the next read. Else the
    /// bytes are appended to what is waiting. Fails when the session would
    /// then hold more than [`MAX_INCOMING`] unprocessed bytes, or has
    /// failed; a session that failed while it keeps plaintext decrypted
    /// before the failure drops the bytes instead (the reads hand out that
    /// plaintext, then the error).
    pub fn received_in(&mut self, buf: &mut Vec<u8>, n: usize) -> Result<(), rustls::Error> {
        self.check_kept_or_alive()?;
        if self.failed.is_some() {
            // Failed with plaintext still kept: the bytes can no longer be
            // read; the kept plaintext comes out, then the error.
            return Ok(());
        }
        let n = n.min(buf.len());
        if self.in_end - self.in_start + n > MAX_INCOMING {
            return Err(self.fail(too_much_incoming()));
        }
        if self.in_start == self.in_end {
            let len = buf.len();
            std::mem::swap(&mut self.incoming, buf);
            self.in_start = 0;
            self.in_end = n;
            if buf.len() < len {
                buf.resize(len, 0);
            }
            return Ok(());
        }
        if self.in_start > 0 {
            self.incoming.copy_within(self.in_start..self.in_end, 0);
            self.in_end -= self.in_start;
            self.in_start = 0;
        }
        reserve(&mut self.incoming, self.in_end, n);
        self.incoming[self.in_end..self.in_end + n].copy_from_slice(&buf[..n]);
        self.in_end += n;
        Ok(())
    }

    /// Drives the handshake as far as the received bytes allow, queueing
    /// the client's messages in [`transmit`](Self::transmit). Data the
    /// server sends before the handshake ends is kept for
    /// [`read_plaintext`](Self::read_plaintext).
    pub fn handshake(&mut self) -> Result<Handshake, rustls::Error> {
        self.check_alive()?;
        loop {
            match self.advance(&[], &mut Sink::none())? {
                Event::Progress | Event::Encrypted => {}
                Event::Blocked => return Ok(Handshake::NeedRead),
                Event::Writable => return Ok(Handshake::Done),
                Event::PeerClosed | Event::Closed => return Ok(Handshake::Closed),
            }
        }
    }

    /// Encrypts the first [`ENCRYPT_PIECE`] bytes of `data` at most into
    /// records queued in [`transmit`](Self::transmit); returns how many it
    /// took. Call only after [`handshake`](Self::handshake) said
    /// [`Handshake::Done`]; send the queue when
    /// [`should_send`](Self::should_send) says so.
    pub fn encrypt(&mut self, data: &[u8]) -> Result<usize, rustls::Error> {
        self.check_alive()?;
        let piece = &data[..data.len().min(ENCRYPT_PIECE)];
        if piece.is_empty() {
            return Ok(0);
        }
        loop {
            match self.advance(piece, &mut Sink::none())? {
                Event::Encrypted => return Ok(piece.len()),
                // Records received meanwhile are kept for the reader; a
                // peer that closed may still be written to.
                Event::Progress | Event::PeerClosed => {}
                Event::Blocked | Event::Writable => {
                    return Err(self.fail(rustls::Error::General(
                        "the TLS handshake is not complete".into(),
                    )))
                }
                Event::Closed => {
                    return Err(
                        self.fail(rustls::Error::General("the TLS session is closed".into()))
                    )
                }
            }
        }
    }

    /// Encrypts all of `data` into records queued in
    /// [`transmit`](Self::transmit), [`ENCRYPT_PIECE`] bytes at a time,
    /// without sending between pieces: for data the caller holds whole
    /// anyway (a WebSocket frame, an upgrade request), so the queue grows to
    /// its size.
    pub fn encrypt_all(&mut self, mut data: &[u8]) -> Result<(), rustls::Error> {
        while !data.is_empty() {
            let n = self.encrypt(data)?;
            data = data.get(n..).unwrap_or_default();
        }
        Ok(())
    }

    /// Decrypts buffered records into `dst`: as many as fit, the rest of
    /// the last one kept for the next call. [`Plaintext::NeedRead`] asks
    /// for more socket bytes. A record that fails comes out as an error
    /// after the plaintext of the records before it: the calls give the
    /// data, then the error. That holds when the failure was met by an
    /// [`encrypt`](Self::encrypt) too (while rustls keeps the records, it
    /// takes in what was received before it writes; mpnet's record layer
    /// leaves it to the reads): the plaintext decrypted before it is still
    /// handed out, and the error only after the last of it.
    pub fn read_plaintext(&mut self, dst: &mut [u8]) -> Result<Plaintext, rustls::Error> {
        self.check_kept_or_alive()?;
        if dst.is_empty() {
            return Ok(Plaintext::Data(0));
        }
        let mut sink = Sink::Copy {
            buf: dst,
            filled: 0,
        };
        self.give_pending(&mut sink);
        self.decrypt_into(&mut sink)
    }

    /// As [`read_plaintext`](Self::read_plaintext), but offers the
    /// plaintext to `take` where it lies instead of copying it out: plaintext
    /// kept from before first, then each record's as it is decrypted.
    /// `take` returns how many bytes it used and whether to stop now (to
    /// let its caller act on what it took); what it does not use is kept
    /// for the next call, and it is not offered more in this one.
    /// [`Plaintext::Data`] gives the bytes used in all.
    ///
    /// `take` must use at least one byte of what it is offered unless the
    /// caller is done with the session: kept plaintext is offered again
    /// first on every call, and no further record is decrypted while it is
    /// there (a `take` that waits for more bytes before using any would
    /// get `Data(0)` for ever). Records left undecrypted after a stop wait
    /// for the next call under mpnet's record layer; while rustls keeps the
    /// records (TLS 1.2), an [`encrypt`](Self::encrypt) made before the
    /// next call decrypts them first (into the kept plaintext, by copy), as
    /// rustls takes in what it has received before it writes; if one of
    /// them fails, that `encrypt` fails, and the plaintext of the records
    /// before it still comes out of the next calls, then the error.
    pub fn read_plaintext_with(
        &mut self,
        take: &mut dyn FnMut(&[u8]) -> (usize, bool),
    ) -> Result<Plaintext, rustls::Error> {
        self.check_kept_or_alive()?;
        let mut sink = Sink::Offer {
            take,
            used: 0,
            stopped: false,
        };
        self.give_pending(&mut sink);
        self.decrypt_into(&mut sink)
    }

    /// Decrypts records into `sink` until it is done, the records run out,
    /// or the peer closed; the common end of both `read_plaintext`s.
    fn decrypt_into(&mut self, sink: &mut Sink<'_>) -> Result<Plaintext, rustls::Error> {
        if self.failed.is_some() {
            // Only plaintext kept from before the failure is handed out:
            // rustls is not driven past a fatal error.
            return Ok(Plaintext::Data(sink.taken()));
        }
        while !sink.is_done() && self.pending_is_empty() && !self.peer_closed {
            match self.advance(&[], sink) {
                Ok(Event::Progress | Event::Encrypted) => {}
                Ok(Event::Blocked | Event::Writable | Event::PeerClosed | Event::Closed) => break,
                // Records decrypted before the bad one are handed out first;
                // the session keeps the error for the next call.
                Err(_) if sink.taken() > 0 => break,
                Err(e) => return Err(e),
            }
        }
        if self.in_start == self.in_end {
            self.in_start = 0;
            self.in_end = 0;
            shrink(&mut self.incoming, READ_CHUNK);
        }
        let taken = sink.taken();
        Ok(if taken > 0 || !self.pending_is_empty() {
            Plaintext::Data(taken)
        } else if self.peer_closed {
            Plaintext::Closed
        } else {
            Plaintext::NeedRead
        })
    }

    /// Whether everything received has been handed out as plaintext:
    /// no decrypted bytes kept and no received bytes unprocessed (so the
    /// next plaintext needs a socket read).
    pub fn is_drained(&self) -> bool {
        self.pending_is_empty() && self.in_start == self.in_end && !self.peer_closed
    }

    /// For a connection about to be reused: whether what was received
    /// after the last answer holds data, a `close_notify` or an error (a
    /// session ticket alone does not count). Consumes what it finds: a
    /// session that says yes is done with.
    pub fn has_unread_input(&mut self) -> bool {
        if self.failed.is_some() || self.peer_closed || !self.pending_is_empty() {
            return true;
        }
        if self.in_start == self.in_end {
            return false;
        }
        !matches!(self.read_plaintext(&mut [0u8; 1]), Ok(Plaintext::NeedRead))
    }

    /// One step of the session: `app` encrypted when data may be sent,
    /// else handshake records encoded or received records taken in, their
    /// plaintext given to `sink` (what it does not take kept in `pending`,
    /// and the records after it left for the next call).
    fn advance(&mut self, app: &[u8], sink: &mut Sink<'_>) -> Result<Event, rustls::Error> {
        match self.engine {
            Engine::Rustls(_) => self.advance_rustls(app, sink),
            Engine::Records(_) => self.advance_records(app, sink),
            Engine::Gone => Err(self.fail(rustls::Error::General(
                "the TLS session could not continue after its handshake".into(),
            ))),
        }
    }

    /// [`advance`](Self::advance) with mpnet's record layer: `app` is
    /// sealed without looking at what was received (a record waiting there
    /// is opened by the next read); else one whole received record is
    /// opened in place.
    fn advance_records(&mut self, app: &[u8], sink: &mut Sink<'_>) -> Result<Event, rustls::Error> {
        let Engine::Records(layer) = &mut self.engine else {
            return Ok(Event::Blocked);
        };
        if !app.is_empty() {
            return match layer.seal(app, &mut self.outgoing, &mut self.out_end) {
                Ok(()) => Ok(Event::Encrypted),
                Err(e) => Err(self.fail(e)),
            };
        }
        let opened = layer.open(
            &mut self.incoming[self.in_start..self.in_end],
            &mut self.outgoing,
            &mut self.out_end,
        );
        let (used, opened) = match opened {
            Ok(Some(record)) => record,
            Ok(None) => return Ok(Event::Writable),
            Err(e) => return Err(self.fail_records(e)),
        };
        let at = self.in_start;
        self.in_start += used;
        match opened {
            Opened::Data(range) => {
                let data = &self.incoming[at + range.start..at + range.end];
                let (taken, _) = sink.give(data);
                let later = data.get(taken..).unwrap_or_default();
                if !later.is_empty() {
                    if self.pending.len() + later.len() > MAX_INCOMING {
                        return Err(self.fail(too_much_incoming()));
                    }
                    self.pending.extend_from_slice(later);
                }
                Ok(Event::Progress)
            }
            Opened::Nothing => Ok(Event::Progress),
            Opened::Closed => {
                self.peer_closed = true;
                Ok(Event::PeerClosed)
            }
        }
    }

    /// Hands TLS 1.3 traffic over to mpnet's record layer, when the
    /// handshake is done, rustls has nothing of the peer's left to process
    /// and nothing of its own to send, the config allows it and the suite
    /// is one the layer has. Else rustls keeps the session.
    fn take_over_records(&mut self) -> Result<(), rustls::Error> {
        let Engine::Rustls(conn) = &self.engine else {
            return Ok(());
        };
        let suite_ok = matches!(
            conn.negotiated_cipher_suite().map(|s| s.suite()),
            Some(
                CipherSuite::TLS13_AES_128_GCM_SHA256
                    | CipherSuite::TLS13_AES_256_GCM_SHA384
                    | CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
            )
        );
        if !self.may_take_over
            || !suite_ok
            || conn.protocol_version() != Some(ProtocolVersion::TLSv1_3)
            || conn.is_handshaking()
            || self.in_start != self.in_end
        {
            return Ok(());
        }
        let Engine::Rustls(conn) = std::mem::replace(&mut self.engine, Engine::Gone) else {
            return Ok(());
        };
        let (secrets, keys) = conn
            .dangerous_into_kernel_connection()
            .map_err(|e| self.fail(e))?;
        let layer = RecordLayer::new(secrets, keys, self.max_fragment).map_err(|e| self.fail(e))?;
        self.engine = Engine::Records(Box::new(layer));
        Ok(())
    }

    /// One call into rustls, with the state it gives handled (see
    /// [`advance`](Self::advance)); the first time it says application
    /// data may be sent, TLS 1.3 traffic moves to mpnet's record layer.
    fn advance_rustls(&mut self, app: &[u8], sink: &mut Sink<'_>) -> Result<Event, rustls::Error> {
        let Engine::Rustls(conn) = &mut self.engine else {
            return Ok(Event::Blocked);
        };
        let settled = !conn.is_handshaking();
        let status = conn.process_tls_records(&mut self.incoming[self.in_start..self.in_end]);
        let mut discard = status.discard;
        let mut writable = false;
        if settled && discard > 0 {
            // rustls has read records after the handshake (data sent with
            // the server's last flight, or a key update whose answer it
            // keeps queued until its next write, which a hand-over would
            // drop): it keeps the session.
            self.may_take_over = false;
        }
        let event = match status.state {
            Err(e) => Err(e),
            Ok(ConnectionState::EncodeTlsData(mut s)) => {
                encode(&mut s, &mut self.outgoing, &mut self.out_end).map(|()| Event::Progress)
            }
            Ok(ConnectionState::TransmitTlsData(s)) => {
                // The bytes are in `outgoing`, in order, ahead of anything
                // queued later: to rustls they are sent.
                s.done();
                Ok(Event::Progress)
            }
            Ok(ConnectionState::BlockedHandshake) => Ok(Event::Blocked),
            Ok(ConnectionState::WriteTraffic(mut w)) => {
                if app.is_empty() {
                    writable = true;
                    Ok(Event::Writable)
                } else {
                    write_app_data(&mut w, app, &mut self.outgoing, &mut self.out_end)
                        .map(|()| Event::Encrypted)
                }
            }
            Ok(ConnectionState::ReadTraffic(mut r)) => {
                let mut outcome = Ok(Event::Progress);
                while let Some(record) = r.next_record() {
                    match record {
                        Ok(rec) => {
                            discard += rec.discard;
                            let (taken, stop) = sink.give(rec.payload);
                            let later = rec.payload.get(taken..).unwrap_or_default();
                            if !later.is_empty() {
                                if self.pending.len() + later.len() > MAX_INCOMING {
                                    outcome = Err(too_much_incoming());
                                    break;
                                }
                                self.pending.extend_from_slice(later);
                                // One record at a time once the caller's
                                // buffer is full: the rest stays in rustls.
                                break;
                            }
                            if stop {
                                break;
                            }
                        }
                        Err(e) => {
                            outcome = Err(e);
                            break;
                        }
                    }
                }
                outcome
            }
            Ok(ConnectionState::PeerClosed) => {
                self.peer_closed = true;
                Ok(Event::PeerClosed)
            }
            Ok(ConnectionState::Closed) => {
                self.peer_closed = true;
                Ok(Event::Closed)
            }
            Ok(_) => Err(rustls::Error::General(
                "unexpected TLS state for a client".into(),
            )),
        };
        self.in_start += discard;
        let event = event.map_err(|e| self.fail(e))?;
        if writable {
            self.take_over_records()?;
        }
        Ok(event)
    }

    fn pending_is_empty(&self) -> bool {
        self.pending_start >= self.pending.len()
    }

    /// Gives kept plaintext to `sink`, as much as it takes.
    fn give_pending(&mut self, sink: &mut Sink<'_>) {
        if self.pending_is_empty() {
            return;
        }
        let (n, _) = sink.give(&self.pending[self.pending_start..]);
        self.pending_start += n;
        if self.pending_is_empty() {
            self.pending.clear();
            self.pending_start = 0;
            if self.pending.capacity() > READ_CHUNK {
                self.pending.shrink_to(READ_CHUNK);
            }
        }
    }

    /// Whether TLS records are now sealed and opened by mpnet's record
    /// layer (a TLS 1.3 session after its handshake).
    #[must_use]
    pub fn uses_mpnet_records(&self) -> bool {
        matches!(self.engine, Engine::Records(_))
    }

    /// The record layer, once it has taken over.
    #[cfg(test)]
    pub(crate) fn record_layer(&mut self) -> Option<&mut RecordLayer> {
        match &mut self.engine {
            Engine::Records(layer) => Some(layer),
            _ => None,
        }
    }

    /// Whether the session ended with an error. Plaintext decrypted before
    /// it may still be kept ([`keeps_plaintext`](Self::keeps_plaintext)).
    #[must_use]
    pub fn has_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Whether decrypted plaintext is kept for the next
    /// [`read_plaintext`](Self::read_plaintext) (or `_with`) call.
    #[must_use]
    pub fn keeps_plaintext(&self) -> bool {
        !self.pending_is_empty()
    }

    /// For the reads: the error that ended the session, once no plaintext
    /// decrypted before it is kept.
    fn check_kept_or_alive(&self) -> Result<(), rustls::Error> {
        if self.pending_is_empty() {
            self.check_alive()
        } else {
            Ok(())
        }
    }

    /// The error that ended the session, if one did.
    fn check_alive(&self) -> Result<(), rustls::Error> {
        match &self.failed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Ends the session with `e`: queues the alert for the peer, keeps the
    /// error for later calls, and gives it back.
    fn fail(&mut self, e: rustls::Error) -> rustls::Error {
        if self.failed.is_none() {
            match &mut self.engine {
                Engine::Rustls(_) => self.queue_alert(),
                Engine::Records(layer) => layer.seal_alert(
                    rustls::AlertDescription::InternalError,
                    &mut self.outgoing,
                    &mut self.out_end,
                ),
                Engine::Gone => {}
            }
            self.failed = Some(e.clone());
        }
        e
    }

    /// [`fail`](Self::fail) for a failure of mpnet's record layer, which
    /// names the alert the peer is owed.
    fn fail_records(&mut self, e: RecordError) -> rustls::Error {
        if self.failed.is_none() {
            if let (Engine::Records(layer), Some(alert)) = (&mut self.engine, e.alert) {
                layer.seal_alert(alert, &mut self.outgoing, &mut self.out_end);
            }
            self.failed = Some(e.error.clone());
        }
        e.error
    }

    /// After an error, moves the alert rustls queued (if any) into
    /// [`transmit`](Self::transmit).
    fn queue_alert(&mut self) {
        let Engine::Rustls(conn) = &mut self.engine else {
            return;
        };
        // rustls offers its queued messages before it looks at the input
        // again, so the alert comes first; one at most, since asking again
        // would process the bad input a second time.
        for _ in 0..2 {
            let status = conn.process_tls_records(&mut self.incoming[self.in_start..self.in_end]);
            let discard = status.discard;
            let done = match status.state {
                Ok(ConnectionState::EncodeTlsData(mut s)) => {
                    let _ = encode(&mut s, &mut self.outgoing, &mut self.out_end);
                    true
                }
                Ok(ConnectionState::TransmitTlsData(s)) => {
                    s.done();
                    false
                }
                _ => true,
            };
            self.in_start += discard;
            if done {
                return;
            }
        }
    }
}

/// An `InsufficientSize` error's size, or the error itself.
type SizeResult = Result<usize, Result<InsufficientSizeError, rustls::Error>>;

fn encrypt_size(e: EncryptError) -> Result<InsufficientSizeError, rustls::Error> {
    match e {
        EncryptError::InsufficientSize(s) => Ok(s),
        EncryptError::EncryptExhausted => Err(rustls::Error::EncryptError),
    }
}

/// Runs `op` on the free end of `out`, growing it to the size rustls asks
/// for when it is too small; appends what `op` wrote.
fn grow_and_retry(
    out: &mut Vec<u8>,
    end: &mut usize,
    mut op: impl FnMut(&mut [u8]) -> SizeResult,
) -> Result<(), rustls::Error> {
    loop {
        match op(&mut out[*end..]) {
            Ok(n) => {
                *end += n;
                return Ok(());
            }
            Err(Ok(InsufficientSizeError { required_size })) => {
                reserve(out, *end, required_size);
            }
            Err(Err(e)) => return Err(e),
        }
    }
}

/// Encodes one handshake record into `out`.
fn encode(
    s: &mut rustls::unbuffered::EncodeTlsData<'_, rustls::client::ClientConnectionData>,
    out: &mut Vec<u8>,
    end: &mut usize,
) -> Result<(), rustls::Error> {
    grow_and_retry(out, end, |buf| match s.encode(buf) {
        Ok(n) => Ok(n),
        Err(EncodeError::InsufficientSize(size)) => Err(Ok(size)),
        Err(other) => Err(Err(rustls::Error::General(other.to_string()))),
    })
}

/// Encrypts `data` as application-data records into `out`.
fn write_app_data(
    w: &mut rustls::unbuffered::WriteTraffic<'_, rustls::client::ClientConnectionData>,
    data: &[u8],
    out: &mut Vec<u8>,
    end: &mut usize,
) -> Result<(), rustls::Error> {
    grow_and_retry(out, end, |buf| w.encrypt(data, buf).map_err(encrypt_size))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use mpnet_testkit::TestCa;
    use proptest::prelude::*;
    use rustls::ServerConnection;
    use std::io::{Read, Write};

    /// Runs the test function `$name(records: bool)` with rustls's record
    /// layer and with mpnet's, as two tests: `$name::rustls` and
    /// `$name::mpnet`.
    macro_rules! both_engines {
        ($name:ident) => {
            mod $name {
                #[test]
                fn rustls() {
                    super::$name(false);
                }
                #[test]
                fn mpnet() {
                    super::$name(true);
                }
            }
        };
    }

    /// A client session and an in-memory rustls server, handshake done
    /// (the client's last flight still queued, as the session leaves it),
    /// with the record layer production uses: mpnet's for TLS 1.3.
    pub(crate) fn pair(ca: &TestCa) -> (TlsSession, ServerConnection) {
        pair_with(ca, true)
    }

    /// The test CA's client settings, allowing mpnet's record layer or not.
    pub(crate) fn config(ca: &TestCa, records: bool) -> Arc<ClientConfig> {
        let mut config = (*ca.client_config()).clone();
        config.enable_secret_extraction = records;
        Arc::new(config)
    }

    /// [`pair`] with mpnet's record layer (`records`) or rustls's.
    pub(crate) fn pair_with(ca: &TestCa, records: bool) -> (TlsSession, ServerConnection) {
        pair_with_server(config(ca, records), ca.leaf().server_config(true))
    }

    /// [`pair`] with these client and server settings.
    pub(crate) fn pair_with_server(
        client_config: Arc<ClientConfig>,
        server_config: Arc<rustls::ServerConfig>,
    ) -> (TlsSession, ServerConnection) {
        let mut client = TlsSession::new(
            client_config,
            ServerName::try_from("localhost").expect("name"),
        )
        .expect("session");
        let mut server = ServerConnection::new(server_config).expect("server");
        server.set_buffer_limit(None);
        loop {
            let state = client.handshake().expect("client handshake");
            deliver_to_server(&mut client, &mut server);
            if state == Handshake::Done {
                return (client, server);
            }
            deliver_to_client(&mut server, &mut client, usize::MAX);
        }
    }

    /// Everything the client queued, into the server.
    pub(crate) fn deliver_to_server(
        client: &mut TlsSession,
        server: &mut ServerConnection,
    ) -> Vec<u8> {
        let mut bytes = client.transmit();
        let n = bytes.len();
        let mut got = Vec::new();
        while !bytes.is_empty() {
            server.read_tls(&mut bytes).expect("server read_tls");
            server.process_new_packets().expect("server process");
            got.extend(server_plaintext(server));
        }
        client.sent(n);
        got
    }

    /// Everything the server queued, into the client, `piece` bytes per
    /// "socket read".
    pub(crate) fn deliver_to_client(
        server: &mut ServerConnection,
        client: &mut TlsSession,
        piece: usize,
    ) {
        let mut wire = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut wire).expect("server write_tls");
        }
        let mut at = 0;
        while at < wire.len() {
            let buf = client.read_buf().expect("room");
            let n = piece.max(1).min(buf.len()).min(wire.len() - at);
            buf[..n].copy_from_slice(&wire[at..at + n]);
            client.received(n);
            at += n;
        }
    }

    /// All plaintext the client can decrypt now, read `dst_len` bytes at a
    /// time.
    pub(crate) fn drain(client: &mut TlsSession, dst_len: usize) -> (Vec<u8>, Plaintext) {
        let mut got = Vec::new();
        let mut dst = vec![0u8; dst_len];
        loop {
            match client.read_plaintext(&mut dst).expect("read") {
                Plaintext::Data(n) => got.extend_from_slice(&dst[..n]),
                other => return (got, other),
            }
        }
    }

    fn server_plaintext(server: &mut ServerConnection) -> Vec<u8> {
        let mut got = Vec::new();
        let _ = server.reader().read_to_end(&mut got);
        got
    }

    /// Everything `data`, encrypted piece by piece as a transport does,
    /// sending whenever `should_send` says so; gives the number of sends
    /// before the last and what the server read.
    pub(crate) fn send_all(
        client: &mut TlsSession,
        server: &mut ServerConnection,
        mut data: &[u8],
    ) -> (usize, Vec<u8>) {
        let mut sends = 0;
        let mut got = Vec::new();
        while !data.is_empty() {
            let n = client.encrypt(data).expect("encrypt");
            assert!(n > 0 && n <= ENCRYPT_PIECE);
            data = &data[n..];
            if client.should_send() {
                sends += 1;
                got.extend(deliver_to_server(client, server));
            }
        }
        got.extend(deliver_to_server(client, server));
        (sends, got)
    }

    fn a_large_body_goes_out_in_pieces(records: bool) {
        let ca = TestCa::new();
        let (mut client, mut server) = pair_with(&ca, records);
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let (sends, got) = send_all(&mut client, &mut server, &body);
        // Never all 300 KB queued at once: sent every ENCRYPT_PIECE.
        assert!(sends >= 4, "{sends} sends");
        assert_eq!(got, body);
        assert!(client.outgoing.len() <= KEPT_OUTGOING_MAX);
    }
    both_engines!(a_large_body_goes_out_in_pieces);

    /// Everything the server queued, as TLS bytes.
    pub(crate) fn server_output(server: &mut ServerConnection) -> Vec<u8> {
        let mut wire = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut wire).expect("server write_tls");
        }
        wire
    }

    /// `data` written by the server, as its TLS records.
    pub(crate) fn server_records(server: &mut ServerConnection, data: &[u8]) -> Vec<u8> {
        server.writer().write_all(data).expect("server write");
        server_output(server)
    }

    fn received_in_takes_the_buffer_when_nothing_waits_else_appends(records: bool) {
        let ca = TestCa::new();
        let (mut client, mut server) = pair_with(&ca, records);
        deliver_to_server(&mut client, &mut server);
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 249) as u8).collect();
        let wire = server_records(&mut server, &data);

        // Nothing waits: the read buffer's storage becomes the session's.
        let mut read = vec![0u8; READ_CHUNK];
        let cut = 20_000; // inside the second record
        read[..cut].copy_from_slice(&wire[..cut]);
        let storage = read.as_ptr();
        client.received_in(&mut read, cut).expect("in");
        assert_eq!(client.incoming.as_ptr(), storage, "taken, not copied");
        assert_ne!(read.as_ptr(), storage);
        assert!(
            read.len() >= READ_CHUNK,
            "a whole buffer back for the next read"
        );
        let (first, state) = drain(&mut client, 100_000);
        assert_eq!(state, Plaintext::NeedRead);
        assert_eq!(first.len(), 16_384, "one whole record");

        // Part of a record waits: the next read is appended to it.
        let rest = wire.len() - cut;
        read[..rest].copy_from_slice(&wire[cut..]);
        let storage = read.as_ptr();
        client.received_in(&mut read, rest).expect("in");
        assert_eq!(read.as_ptr(), storage, "kept by the caller");
        let (second, _) = drain(&mut client, 100_000);
        assert_eq!([first, second].concat(), data);
    }
    both_engines!(received_in_takes_the_buffer_when_nothing_waits_else_appends);

    /// An application-data record of the right shape whose tag cannot
    /// match: it does not decrypt.
    pub(crate) fn bad_record() -> Vec<u8> {
        [&[0x17, 3, 3, 0, 32][..], &[0xAB; 32]].concat()
    }

    /// A client that has received, in one read, one record for each of
    /// `pieces` (written by its server) and then [`bad_record`].
    fn received_then_a_bad_record(pieces: &[&[u8]], records: bool) -> TlsSession {
        let ca = TestCa::new();
        let (mut client, mut server) = pair_with(&ca, records);
        deliver_to_server(&mut client, &mut server);
        let mut wire: Vec<u8> = pieces
            .iter()
            .flat_map(|piece| server_records(&mut server, piece))
            .collect();
        wire.extend(bad_record());
        let mut read = wire.clone();
        client.received_in(&mut read, wire.len()).expect("in");
        client
    }

    /// The reader takes the first record, `one`, and stops there.
    fn read_one_and_stop(client: &mut TlsSession) {
        let mut first = Vec::new();
        let mut take = |p: &[u8]| {
            first.extend_from_slice(p);
            (p.len(), true)
        };
        assert_eq!(
            client.read_plaintext_with(&mut take),
            Ok(Plaintext::Data(3))
        );
        assert_eq!(first, b"one");
    }

    fn plaintext_before_a_bad_record_comes_first_then_the_error(records: bool) {
        let mut client = received_then_a_bad_record(&[b"before"], records);
        let mut dst = [0u8; 64];
        assert_eq!(client.read_plaintext(&mut dst), Ok(Plaintext::Data(6)));
        assert_eq!(&dst[..6], b"before");
        let failed = client.read_plaintext(&mut dst).expect_err("the bad record");
        assert!(matches!(failed, rustls::Error::DecryptError), "{failed:?}");
        // The session stays failed, with an alert for the peer.
        assert!(client.read_plaintext(&mut dst).is_err());
        assert!(!client.transmit().is_empty());
    }
    both_engines!(plaintext_before_a_bad_record_comes_first_then_the_error);

    #[test]
    fn an_encrypt_that_meets_a_bad_record_fails_and_the_plaintext_before_it_still_comes_out() {
        // rustls takes in what it has received before it encrypts; mpnet's
        // record layer does not (`mpnet_records_an_encrypt_leaves_...`).
        let mut client = received_then_a_bad_record(&[b"one", b"two"], false);
        read_one_and_stop(&mut client);
        // An answer: rustls takes in the rest first, and meets the bad record.
        let failed = client.encrypt(b"answer").expect_err("the bad record");
        assert!(matches!(failed, rustls::Error::DecryptError), "{failed:?}");
        assert!(client.has_failed() && client.keeps_plaintext());
        // The record before it still comes out, then the error, for good.
        let mut rest = Vec::new();
        let mut take = |p: &[u8]| {
            rest.extend_from_slice(p);
            (p.len(), false)
        };
        assert_eq!(
            client.read_plaintext_with(&mut take),
            Ok(Plaintext::Data(3))
        );
        assert_eq!(rest, b"two");
        assert!(!client.keeps_plaintext());
        let mut dst = [0u8; 16];
        assert!(matches!(
            client.read_plaintext(&mut dst),
            Err(rustls::Error::DecryptError)
        ));
        assert!(client.encrypt(b"more").is_err());
    }

    #[test]
    fn after_a_failure_kept_plaintext_outlives_new_reads_and_a_take_of_nothing() {
        // rustls takes in what it has received before it encrypts; mpnet's
        // record layer does not (`mpnet_records_an_encrypt_leaves_...`).
        let mut client = received_then_a_bad_record(&[b"one", b"two"], false);
        assert!(client.encrypt(b"answer").is_err());
        assert!(client.has_failed() && client.keeps_plaintext());
        // A take of nothing keeps it all (the documented contract).
        for _ in 0..3 {
            assert_eq!(
                client.read_plaintext_with(&mut |_| (0, true)),
                Ok(Plaintext::Data(0))
            );
        }
        // A read taken meanwhile is dropped, not an error before the data.
        let mut more = vec![0u8; 8];
        assert_eq!(client.received_in(&mut more, 8), Ok(()));
        assert!(client.has_unread_input());
        let mut dst = [0u8; 2];
        let mut got = Vec::new();
        while let Ok(Plaintext::Data(n)) = client.read_plaintext(&mut dst) {
            got.extend_from_slice(&dst[..n]);
        }
        assert_eq!(got, b"onetwo");
        assert!(client.read_plaintext(&mut dst).is_err());
        assert!(
            client.received_in(&mut more, 8).is_err(),
            "nothing kept: the error"
        );
    }
    #[test]
    fn mpnet_records_an_encrypt_leaves_received_records_to_the_reader() {
        let mut client = received_then_a_bad_record(&[b"one", b"two"], true);
        read_one_and_stop(&mut client);
        // The answer is sealed without opening what waits: no copy of it.
        client.encrypt(b"answer").expect("sealed");
        assert!(!client.has_failed() && !client.keeps_plaintext());
        assert!(!client.transmit().is_empty());
        // The reader gets the next record, then the bad one's error, for good.
        let mut dst = [0u8; 2];
        let mut got = Vec::new();
        while let Ok(Plaintext::Data(n)) = client.read_plaintext(&mut dst) {
            got.extend_from_slice(&dst[..n]);
        }
        assert_eq!(got, b"two");
        assert!(matches!(
            client.read_plaintext(&mut dst),
            Err(rustls::Error::DecryptError)
        ));
        assert!(client.encrypt(b"more").is_err());
        let mut more = vec![0u8; 8];
        assert!(client.received_in(&mut more, 8).is_err());
    }

    fn read_plaintext_with_offers_each_record_and_keeps_what_is_left(records: bool) {
        let ca = TestCa::new();
        let (mut client, mut server) = pair_with(&ca, records);
        deliver_to_server(&mut client, &mut server);
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 247) as u8).collect();
        let mut read = server_records(&mut server, &data);
        let n = read.len();
        client.received_in(&mut read, n).expect("in");

        // The first offer is a whole record (16 KiB); take 100 bytes and
        // stop: the rest of the record is kept, nothing more is offered.
        let mut offers = Vec::new();
        let got = client
            .read_plaintext_with(&mut |p: &[u8]| {
                offers.push(p.len());
                (100, false)
            })
            .expect("read");
        assert_eq!(got, Plaintext::Data(100));
        assert_eq!(offers, [16_384]);

        // Then the kept rest first, taken whole without stopping, then the
        // next records as they are decrypted, until they run out.
        let mut seen = data[..100].to_vec();
        let mut offers = Vec::new();
        let got = client
            .read_plaintext_with(&mut |p: &[u8]| {
                offers.push(p.len());
                seen.extend_from_slice(p);
                (p.len(), false)
            })
            .expect("read");
        assert_eq!(got, Plaintext::Data(40_000 - 100));
        assert_eq!(offers, [16_284, 16_384, 40_000 - 2 * 16_384]);
        assert_eq!(seen, data);
        assert_eq!(
            client.read_plaintext_with(&mut |_| (0, false)),
            Ok(Plaintext::NeedRead)
        );

        // Asked to stop after a record: the next record waits undecrypted.
        let mut read = server_records(&mut server, &data);
        let n = read.len();
        client.received_in(&mut read, n).expect("in");
        let mut offers = 0;
        let got = client
            .read_plaintext_with(&mut |p: &[u8]| {
                offers += 1;
                (p.len(), true)
            })
            .expect("read");
        assert_eq!((got, offers), (Plaintext::Data(16_384), 1));
        assert!(!client.is_drained());
    }
    both_engines!(read_plaintext_with_offers_each_record_and_keeps_what_is_left);

    fn received_in_refuses_more_than_max_incoming(records: bool) {
        let ca = TestCa::new();
        let (mut client, _server) = pair_with(&ca, records);
        // A record header that promises more than ever comes, then bytes.
        let mut read = vec![0u8; READ_CHUNK];
        read[..5].copy_from_slice(&[0x17, 3, 3, 0x40, 0x11]);
        client
            .received_in(&mut read, 10)
            .expect("a partial record is kept");
        let mut failed = None;
        for _ in 0..(MAX_INCOMING / READ_CHUNK + 1) {
            if let Err(e) = client.received_in(&mut read, READ_CHUNK) {
                failed = Some(e);
                break;
            }
        }
        let failed = failed.expect("refused past MAX_INCOMING");
        assert!(
            failed
                .to_string()
                .contains("without completing a TLS record"),
            "{failed}"
        );
    }
    both_engines!(received_in_refuses_more_than_max_incoming);

    fn encrypt_all_queues_every_piece(records: bool) {
        let ca = TestCa::new();
        let (mut client, mut server) = pair_with(&ca, records);
        let data: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
        client.encrypt_all(&data).expect("encrypt");
        // More than one piece, all queued, nothing sent yet.
        assert!(client.transmit().len() > 2 * ENCRYPT_PIECE);
        assert_eq!(deliver_to_server(&mut client, &mut server), data);
        assert!(client.transmit().is_empty());
    }
    both_engines!(encrypt_all_queues_every_piece);

    fn session_tickets_are_not_unread_input_but_data_is(records: bool) {
        let ca = TestCa::new();
        let (mut client, mut server) = pair_with(&ca, records);
        send_all(&mut client, &mut server, b"GET / HTTP/1.1\r\n\r\n");
        // The server's TLS 1.3 session tickets arrive, and nothing else.
        deliver_to_client(&mut server, &mut client, usize::MAX);
        assert!(!client.is_drained(), "tickets are buffered, unprocessed");
        assert!(!client.has_unread_input());
        server.writer().write_all(b"extra").expect("write");
        deliver_to_client(&mut server, &mut client, usize::MAX);
        assert!(client.has_unread_input());
    }
    both_engines!(session_tickets_are_not_unread_input_but_data_is);

    #[test]
    fn a_close_notify_during_the_handshake_is_the_end_not_an_error() {
        let ca = TestCa::new();
        let mut client = TlsSession::new(
            ca.client_config(),
            ServerName::try_from("localhost").expect("name"),
        )
        .expect("session");
        let mut server = ServerConnection::new(ca.leaf().server_config(true)).expect("server");
        assert_eq!(client.handshake().ok(), Some(Handshake::NeedRead));
        deliver_to_server(&mut client, &mut server);
        server.send_close_notify();
        deliver_to_client(&mut server, &mut client, usize::MAX);
        assert_eq!(client.handshake().ok(), Some(Handshake::Closed));
    }

    fn data_after_a_key_update_is_read_and_answered(records: bool) {
        let ca = TestCa::new();
        let (mut client, mut server) = pair_with(&ca, records);
        assert_eq!(send_all(&mut client, &mut server, b"one").1, b"one");
        server.refresh_traffic_keys().expect("key update");
        server
            .writer()
            .write_all(b"after the update")
            .expect("write");
        deliver_to_client(&mut server, &mut client, 7);
        let (got, _) = drain(&mut client, 5);
        assert_eq!(got, b"after the update");
        assert_eq!(send_all(&mut client, &mut server, b"two").1, b"two");
    }
    both_engines!(data_after_a_key_update_is_read_and_answered);

    #[test]
    fn tls_1_2_works_too() {
        let ca = TestCa::new();
        let leaf = ca.leaf();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12])
            .expect("TLS 1.2")
            .with_no_client_auth()
            .with_single_cert(vec![leaf.cert_der(), leaf.issuer_der()], leaf.key_der())
            .expect("certificate");
        // Secrets allowed out, as production allows them: TLS 1.2 still
        // stays with rustls's record layer.
        let mut client = TlsSession::new(
            config(&ca, true),
            ServerName::try_from("localhost").expect("name"),
        )
        .expect("session");
        let mut server = ServerConnection::new(Arc::new(server_config)).expect("server");
        while client.handshake().expect("handshake") == Handshake::NeedRead {
            deliver_to_server(&mut client, &mut server);
            deliver_to_client(&mut server, &mut client, 100);
        }
        assert!(!client.uses_mpnet_records());
        assert_eq!(
            send_all(&mut client, &mut server, b"over 1.2").1,
            b"over 1.2"
        );
        assert_eq!(
            server.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_2)
        );
        server.writer().write_all(b"answer").expect("write");
        deliver_to_client(&mut server, &mut client, usize::MAX);
        assert_eq!(drain(&mut client, 64).0, b"answer");
    }

    fn request_and_response_cross(records: bool) {
        let ca = TestCa::new();
        let (mut client, mut server) = pair_with(&ca, records);
        client.encrypt(b"GET / HTTP/1.1\r\n\r\n").expect("encrypt");
        // The handshake's last flight and the request leave together.
        assert_eq!(
            deliver_to_server(&mut client, &mut server),
            b"GET / HTTP/1.1\r\n\r\n"
        );
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        server.writer().write_all(&body).expect("server write");
        deliver_to_client(&mut server, &mut client, usize::MAX);
        let (got, end) = drain(&mut client, 32 * 1024);
        assert_eq!(got, body);
        assert_eq!(end, Plaintext::NeedRead);
        // A second exchange on the same session.
        client.encrypt(b"again").expect("encrypt");
        assert_eq!(deliver_to_server(&mut client, &mut server), b"again");
    }
    both_engines!(request_and_response_cross);

    fn close_notify_ends_the_stream(records: bool) {
        let ca = TestCa::new();
        let (mut client, mut server) = pair_with(&ca, records);
        client.encrypt(b"x").expect("encrypt");
        deliver_to_server(&mut client, &mut server);
        server.writer().write_all(b"bye").expect("write");
        server.send_close_notify();
        deliver_to_client(&mut server, &mut client, usize::MAX);
        let (got, end) = drain(&mut client, 2);
        assert_eq!(got, b"bye");
        assert_eq!(end, Plaintext::Closed);
        assert_eq!(
            client.read_plaintext(&mut [0u8; 8]).expect("read"),
            Plaintext::Closed
        );
    }
    both_engines!(close_notify_ends_the_stream);

    #[test]
    fn an_untrusted_certificate_fails_with_an_alert_to_send() {
        let ca = TestCa::new();
        let mut client = TlsSession::new(
            ca.client_config(),
            ServerName::try_from("localhost").expect("name"),
        )
        .expect("session");
        let mut server =
            ServerConnection::new(ca.untrusted_leaf().server_config(true)).expect("server");
        let err = loop {
            match client.handshake() {
                Ok(Handshake::NeedRead) => {
                    deliver_to_server(&mut client, &mut server);
                    deliver_to_client(&mut server, &mut client, usize::MAX);
                }
                Ok(Handshake::Done) => panic!("an untrusted server was accepted"),
                Ok(Handshake::Closed) => panic!("the server closed"),
                Err(e) => break e,
            }
        };
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
            ),
            "{err:?}"
        );
        // The alert the client queued reaches the server as one.
        assert!(!client.transmit().is_empty());
        let mut bytes = client.transmit();
        while !bytes.is_empty() {
            server.read_tls(&mut bytes).expect("server read_tls");
        }
        assert_eq!(
            server.process_new_packets().err(),
            Some(rustls::Error::AlertReceived(
                rustls::AlertDescription::UnknownCA
            ))
        );
    }

    #[test]
    fn incoming_bytes_are_bounded() {
        let ca = TestCa::new();
        let mut client = TlsSession::new(
            ca.client_config(),
            ServerName::try_from("localhost").expect("name"),
        )
        .expect("session");
        let mut total = 0;
        let err = loop {
            match client.read_buf() {
                Ok(buf) => {
                    let n = buf.len();
                    client.received(n);
                    total += n;
                }
                Err(e) => break e,
            }
        };
        assert_eq!(total, MAX_INCOMING);
        assert!(
            err.to_string().contains("without completing a TLS record"),
            "{err}"
        );
    }

    fn garbage_from_the_server_is_an_error(records: bool) {
        let ca = TestCa::new();
        let (mut client, _server) = pair_with(&ca, records);
        let buf = client.read_buf().expect("room");
        buf[..5].copy_from_slice(&[23, 3, 3, 0xff, 0xff]);
        client.received(5);
        let first = client.read_plaintext(&mut [0u8; 64]).expect_err("garbage");
        // The session stays failed with the same error (rustls is not
        // driven again).
        assert_eq!(
            client.read_plaintext(&mut [0u8; 64]).err(),
            Some(first.clone())
        );
        assert_eq!(client.encrypt(b"x").err(), Some(first));
    }
    both_engines!(garbage_from_the_server_is_an_error);

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Split-anywhere: the server's records cut into any pieces, read
        /// into any buffer size, give the same plaintext.
        #[test]
        fn any_cut_gives_the_same_plaintext(
            pieces in proptest::collection::vec(1usize..40_000, 1..8),
            dst_len in 1usize..70_000,
            len in 0usize..120_000,
            records in any::<bool>(),
        ) {
            let ca = TestCa::new();
            let (mut client, mut server) = pair_with(&ca, records);
            client.encrypt(b"hello").expect("encrypt");
            deliver_to_server(&mut client, &mut server);
            let body: Vec<u8> = (0..len as u32).map(|i| (i * 7 % 256) as u8).collect();
            server.writer().write_all(&body).expect("write");
            let mut wire = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut wire).expect("write_tls");
            }
            let mut got = Vec::new();
            let mut dst = vec![0u8; dst_len];
            let mut at = 0;
            let mut i = 0;
            while at < wire.len() {
                let n = pieces[i % pieces.len()].min(wire.len() - at);
                i += 1;
                let buf = client.read_buf().expect("room");
                let n = n.min(buf.len());
                buf[..n].copy_from_slice(&wire[at..at + n]);
                client.received(n);
                at += n;
                while let Plaintext::Data(k) = client.read_plaintext(&mut dst).expect("read") {
                    got.extend_from_slice(&dst[..k]);
                }
            }
            prop_assert_eq!(got, body);
        }
    }
}
