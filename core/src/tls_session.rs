//! A TLS client session as bytes in and bytes out, over rustls's
//! unbuffered API: the transport reads the socket into
//! [`read_buf`](TlsSession::read_buf), writes [`transmit`](TlsSession::transmit)
//! to it, and asks for plaintext or hands plaintext in. No socket, no
//! clock: the session only decides what the TLS bytes mean.
//!
//! Compared with rustls's buffered `ClientConnection`, application data is
//! encrypted straight into the session's one outgoing buffer (no
//! allocation per record), and the socket is read in pieces of the
//! transport's choosing ([`READ_CHUNK`] bytes at a time rather than one
//! record), so a large body takes an eighth of the system calls.
//!
//! The trust decisions stay in [`crate::tls::client_config`]; this type
//! only moves records.

use std::sync::Arc;

use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, InsufficientSizeError};
use rustls::ClientConfig;

/// The free space [`TlsSession::read_buf`] offers for one socket read.
pub const READ_CHUNK: usize = 128 * 1024;

/// The most TLS bytes the session holds while waiting for the rest of one
/// record or handshake flight. A record is at most 16 KiB plus overhead and
/// a handshake message at most 64 KiB (rustls's own limit), so only a
/// misbehaving peer reaches it; the session then fails instead of growing.
pub const MAX_INCOMING: usize = 2 * READ_CHUNK + 64 * 1024;

/// The most plaintext bytes kept between calls of
/// [`TlsSession::read_plaintext`]: the part of one record that did not fit
/// the caller's buffer.
const MAX_RECORD_PLAINTEXT: usize = 16 * 1024;

/// What the session needs before the handshake can go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// Send [`TlsSession::transmit`], then read the socket into
    /// [`TlsSession::read_buf`].
    NeedRead,
    /// Application data may be sent. The client's last flight may still be
    /// in [`TlsSession::transmit`]: it leaves with the first request.
    Done,
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

/// A TLS client session. Errors are rustls's own; after one, the session
/// is dead, and [`transmit`](Self::transmit) may hold an alert for the peer
/// (worth one best-effort write).
pub struct TlsSession {
    conn: UnbufferedClientConnection,
    /// Received TLS bytes: `incoming[in_start..in_end]` is not processed yet.
    incoming: Vec<u8>,
    in_start: usize,
    in_end: usize,
    /// TLS bytes to send: `outgoing[out_start..out_end]`.
    outgoing: Vec<u8>,
    out_start: usize,
    out_end: usize,
    /// Decrypted bytes that did not fit the caller's buffer:
    /// `pending[pending_start..]`.
    pending: Vec<u8>,
    pending_start: usize,
    peer_closed: bool,
    /// The error that ended the session: every later call returns it
    /// (rustls must not be driven past a fatal error).
    failed: Option<rustls::Error>,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("unprocessed", &(self.in_end - self.in_start))
            .field("to_send", &(self.out_end - self.out_start))
            .field(
                "pending_plaintext",
                &(self.pending.len() - self.pending_start),
            )
            .field("peer_closed", &self.peer_closed)
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

/// Makes room for `more` bytes after `end` in `buf` (its length is its
/// usable size; new room is zeroed once, then reused).
fn reserve(buf: &mut Vec<u8>, end: usize, more: usize) {
    let want = end.saturating_add(more);
    if buf.len() < want {
        buf.resize(want, 0);
    }
}

impl TlsSession {
    /// A session to `name` with `config`; the handshake starts with the
    /// first [`handshake`](Self::handshake) call.
    pub fn new(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<Self, rustls::Error> {
        Ok(TlsSession {
            conn: UnbufferedClientConnection::new(config, name)?,
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

    /// Marks `n` bytes of [`transmit`](Self::transmit) as sent.
    pub fn sent(&mut self, n: usize) {
        self.out_start = (self.out_start + n).min(self.out_end);
        if self.out_start == self.out_end {
            self.out_start = 0;
            self.out_end = 0;
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

    /// Drives the handshake as far as the received bytes allow, queueing
    /// the client's messages in [`transmit`](Self::transmit). Data the
    /// server sends before the handshake ends is kept for
    /// [`read_plaintext`](Self::read_plaintext).
    pub fn handshake(&mut self) -> Result<Handshake, rustls::Error> {
        self.check_alive()?;
        loop {
            let status = self
                .conn
                .process_tls_records(&mut self.incoming[self.in_start..self.in_end]);
            let discard = status.discard;
            let outcome = match status.state {
                Err(e) => Err(e),
                Ok(ConnectionState::EncodeTlsData(mut s)) => {
                    encode(&mut s, &mut self.outgoing, &mut self.out_end).map(|()| None)
                }
                Ok(ConnectionState::TransmitTlsData(s)) => {
                    // The bytes are in `outgoing`, in order, ahead of
                    // anything queued later: to rustls they are sent.
                    s.done();
                    Ok(None)
                }
                Ok(ConnectionState::BlockedHandshake) => Ok(Some(Handshake::NeedRead)),
                Ok(ConnectionState::WriteTraffic(_)) => Ok(Some(Handshake::Done)),
                Ok(ConnectionState::ReadTraffic(mut r)) => {
                    let mut held = Ok(());
                    while let Some(record) = r.next_record() {
                        match record {
                            Ok(rec) => self.pending.extend_from_slice(rec.payload),
                            Err(e) => {
                                held = Err(e);
                                break;
                            }
                        }
                    }
                    held.map(|()| None)
                }
                Ok(ConnectionState::PeerClosed | ConnectionState::Closed) => {
                    self.peer_closed = true;
                    Err(rustls::Error::General(
                        "the server closed the connection during the TLS handshake".into(),
                    ))
                }
                Ok(_) => Err(rustls::Error::General(
                    "unexpected TLS state during the handshake".into(),
                )),
            };
            self.in_start += discard;
            match outcome {
                Ok(Some(done)) => return Ok(done),
                Ok(None) => {}
                Err(e) => return Err(self.fail(e)),
            }
        }
    }

    /// Encrypts `data` into records queued in [`transmit`](Self::transmit).
    /// Call only after [`handshake`](Self::handshake) said
    /// [`Handshake::Done`].
    pub fn encrypt(&mut self, data: &[u8]) -> Result<(), rustls::Error> {
        self.check_alive()?;
        loop {
            let status = self
                .conn
                .process_tls_records(&mut self.incoming[self.in_start..self.in_end]);
            let discard = status.discard;
            let outcome = match status.state {
                Err(e) => Err(e),
                Ok(ConnectionState::WriteTraffic(mut w)) => {
                    write_app_data(&mut w, data, &mut self.outgoing, &mut self.out_end)
                        .map(|()| true)
                }
                Ok(ConnectionState::EncodeTlsData(mut s)) => {
                    encode(&mut s, &mut self.outgoing, &mut self.out_end).map(|()| false)
                }
                Ok(ConnectionState::TransmitTlsData(s)) => {
                    s.done();
                    Ok(false)
                }
                Ok(ConnectionState::ReadTraffic(mut r)) => {
                    // Received data comes first: keep it for the reader.
                    let mut held = Ok(false);
                    while let Some(record) = r.next_record() {
                        match record {
                            Ok(rec) => self.pending.extend_from_slice(rec.payload),
                            Err(e) => {
                                held = Err(e);
                                break;
                            }
                        }
                    }
                    held
                }
                Ok(ConnectionState::PeerClosed) => {
                    self.peer_closed = true;
                    Ok(false)
                }
                Ok(ConnectionState::Closed) => {
                    Err(rustls::Error::General("the TLS session is closed".into()))
                }
                Ok(_) => Err(rustls::Error::General(
                    "the TLS handshake is not complete".into(),
                )),
            };
            self.in_start += discard;
            match outcome {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => return Err(self.fail(e)),
            }
        }
    }

    /// Decrypts buffered records into `dst`: as many whole records as fit,
    /// and the part of one that does not is kept for the next call.
    /// [`Plaintext::NeedRead`] asks for more socket bytes.
    pub fn read_plaintext(&mut self, dst: &mut [u8]) -> Result<Plaintext, rustls::Error> {
        self.check_alive()?;
        if dst.is_empty() {
            return Ok(Plaintext::Data(0));
        }
        let mut filled = self.drain_pending(dst);
        while filled < dst.len() {
            if self.peer_closed {
                break;
            }
            let status = self
                .conn
                .process_tls_records(&mut self.incoming[self.in_start..self.in_end]);
            let discard = status.discard;
            // `Some(true)`: go on; `Some(false)`: nothing more for now.
            let outcome = match status.state {
                Err(e) => Err(e),
                Ok(ConnectionState::ReadTraffic(mut r)) => {
                    let mut held = Ok(true);
                    while let Some(record) = r.next_record() {
                        match record {
                            Ok(rec) => {
                                let room = dst.len() - filled;
                                let (now, later) =
                                    rec.payload.split_at(rec.payload.len().min(room));
                                dst[filled..filled + now.len()].copy_from_slice(now);
                                filled += now.len();
                                if !later.is_empty() {
                                    // At most one record's tail is kept.
                                    self.pending.clear();
                                    self.pending_start = 0;
                                    self.pending.extend_from_slice(later);
                                    break;
                                }
                            }
                            Err(e) => {
                                held = Err(e);
                                break;
                            }
                        }
                    }
                    held
                }
                Ok(ConnectionState::EncodeTlsData(mut s)) => {
                    // A post-handshake message to answer (a key update):
                    // queued ahead of anything the caller sends next.
                    encode(&mut s, &mut self.outgoing, &mut self.out_end).map(|()| true)
                }
                Ok(ConnectionState::TransmitTlsData(s)) => {
                    s.done();
                    Ok(true)
                }
                Ok(ConnectionState::PeerClosed | ConnectionState::Closed) => {
                    self.peer_closed = true;
                    Ok(false)
                }
                Ok(ConnectionState::WriteTraffic(_)) => Ok(false),
                Ok(_) => Err(rustls::Error::General(
                    "the TLS handshake is not complete".into(),
                )),
            };
            self.in_start += discard;
            match outcome {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(self.fail(e)),
            }
            if !self.pending_is_empty() {
                break;
            }
        }
        if self.in_start == self.in_end {
            self.in_start = 0;
            self.in_end = 0;
        }
        Ok(if filled > 0 {
            Plaintext::Data(filled)
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

    fn pending_is_empty(&self) -> bool {
        self.pending_start >= self.pending.len()
    }

    /// Copies kept plaintext into `dst`; returns how much.
    fn drain_pending(&mut self, dst: &mut [u8]) -> usize {
        let kept = &self.pending[self.pending_start..];
        let n = kept.len().min(dst.len());
        dst[..n].copy_from_slice(&kept[..n]);
        self.pending_start += n;
        if self.pending_is_empty() {
            self.pending.clear();
            self.pending_start = 0;
            if self.pending.capacity() > 4 * MAX_RECORD_PLAINTEXT {
                self.pending.shrink_to(MAX_RECORD_PLAINTEXT);
            }
        }
        n
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
        self.queue_alert();
        self.failed = Some(e.clone());
        e
    }

    /// After an error, moves the alert rustls queued (if any) into
    /// [`transmit`](Self::transmit).
    fn queue_alert(&mut self) {
        // rustls offers its queued messages before it looks at the input
        // again, so the alert comes first.
        for _ in 0..2 {
            let status = self
                .conn
                .process_tls_records(&mut self.incoming[self.in_start..self.in_end]);
            match status.state {
                Ok(ConnectionState::EncodeTlsData(mut s)) => {
                    // One alert at most; asking again would process the
                    // bad input a second time.
                    let _ = encode(&mut s, &mut self.outgoing, &mut self.out_end);
                    return;
                }
                Ok(ConnectionState::TransmitTlsData(s)) => s.done(),
                _ => return,
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
mod tests {
    use super::*;
    use mpnet_testkit::TestCa;
    use proptest::prelude::*;
    use rustls::ServerConnection;
    use std::io::{Read, Write};

    /// A client session and an in-memory rustls server, handshake done
    /// (the client's last flight still queued, as the session leaves it).
    fn pair(ca: &TestCa) -> (TlsSession, ServerConnection) {
        let mut client = TlsSession::new(
            ca.client_config(),
            ServerName::try_from("localhost").expect("name"),
        )
        .expect("session");
        let mut server = ServerConnection::new(ca.leaf().server_config(true)).expect("server");
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
    fn deliver_to_server(client: &mut TlsSession, server: &mut ServerConnection) {
        let mut bytes = client.transmit();
        let n = bytes.len();
        while !bytes.is_empty() {
            server.read_tls(&mut bytes).expect("server read_tls");
            server.process_new_packets().expect("server process");
        }
        client.sent(n);
    }

    /// Everything the server queued, into the client, `piece` bytes per
    /// "socket read".
    fn deliver_to_client(server: &mut ServerConnection, client: &mut TlsSession, piece: usize) {
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
    fn drain(client: &mut TlsSession, dst_len: usize) -> (Vec<u8>, Plaintext) {
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

    #[test]
    fn request_and_response_cross() {
        let ca = TestCa::new();
        let (mut client, mut server) = pair(&ca);
        client.encrypt(b"GET / HTTP/1.1\r\n\r\n").expect("encrypt");
        // The handshake's last flight and the request leave together.
        deliver_to_server(&mut client, &mut server);
        assert_eq!(server_plaintext(&mut server), b"GET / HTTP/1.1\r\n\r\n");
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        server.writer().write_all(&body).expect("server write");
        deliver_to_client(&mut server, &mut client, usize::MAX);
        let (got, end) = drain(&mut client, 32 * 1024);
        assert_eq!(got, body);
        assert_eq!(end, Plaintext::NeedRead);
        // A second exchange on the same session.
        client.encrypt(b"again").expect("encrypt");
        deliver_to_server(&mut client, &mut server);
        assert_eq!(server_plaintext(&mut server), b"again");
    }

    #[test]
    fn close_notify_ends_the_stream() {
        let ca = TestCa::new();
        let (mut client, mut server) = pair(&ca);
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

    #[test]
    fn garbage_from_the_server_is_an_error() {
        let ca = TestCa::new();
        let (mut client, _server) = pair(&ca);
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Split-anywhere: the server's records cut into any pieces, read
        /// into any buffer size, give the same plaintext.
        #[test]
        fn any_cut_gives_the_same_plaintext(
            pieces in proptest::collection::vec(1usize..40_000, 1..8),
            dst_len in 1usize..70_000,
            len in 0usize..120_000,
        ) {
            let ca = TestCa::new();
            let (mut client, mut server) = pair(&ca);
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
