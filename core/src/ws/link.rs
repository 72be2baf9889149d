//! A WebSocket connection together with its TLS session (`wss://`): what a
//! transport keeps under its socket lock once the handshake is done.
//!
//! The transport reads the socket and hands the bytes to [`Link::receive`]
//! (under TLS the session takes the read buffer's storage rather than
//! copying it, when it can); each [`Link::step`] then gives the connection
//! the next message (under TLS, the records' plaintext where it was
//! decrypted, not copied). It writes what [`Link::transmit_with`] passes it
//! (the connection's frames, encrypted under TLS). Every decision about the
//! bytes is here or in [`Connection`] and [`TlsSession`]; the transport
//! only moves them, and delivers the events between two steps.
//!
//! ```
//! use std::time::Instant;
//! use mpnet_core::ws::{Connection, ConnectionConfig, FixedMask, Link, MessageData, SocketEvent};
//!
//! let ws = Connection::new(ConnectionConfig::default(), Box::new(FixedMask([0; 4])));
//! // "hi" came with the handshake response; "yo" with the next read.
//! let mut link = Link::new(ws, None, b"\x81\x02hi".to_vec());
//! let mut read = vec![0u8; 4096];
//! read[..4].copy_from_slice(b"\x81\x02yo");
//! link.receive(&mut read, 4);
//! assert_eq!(read.len(), 4096, "a buffer for the next read");
//! let now = Instant::now();
//! let mut events = Vec::new();
//! while link.step(now) {
//!     // A transport delivers these before the next step.
//!     events.extend(std::iter::from_fn(|| link.ws.poll_event()));
//! }
//! assert_eq!(
//!     events,
//!     [
//!         SocketEvent::Open,
//!         SocketEvent::Message { data: MessageData::Text("hi".into()) },
//!         SocketEvent::Message { data: MessageData::Text("yo".into()) },
//!     ]
//! );
//!
//! link.ws.send_text("answer").unwrap();
//! let mut written = Vec::new();
//! link.transmit_with(|bytes| {
//!     written.extend_from_slice(bytes);
//!     Ok(())
//! });
//! assert_eq!(&written[..2], b"\x81\x86"); // a masked 6-byte text frame
//! ```

use std::time::Instant;

use crate::error::Error;
use crate::tls;
use crate::tls_session::{Plaintext, TlsSession};

use super::connection::KEEP_CAPACITY;
use super::Connection;

/// The most buffer a link keeps for plaintext once it is used (without
/// TLS, what was read; under TLS, only what came with the handshake
/// response, as records are decrypted and given to the connection in the
/// session's own buffer): a read of small messages is copied without an
/// allocation, a large one into a buffer that is let go afterwards (the
/// transport keeps its own read buffer).
pub const PLAIN_KEPT: usize = 16 * 1024;

/// How many bytes of a large batch of frames [`Link::transmit_with`]
/// encrypts and passes on first, alone: one full TLS record (rustls's
/// largest fragment), which the peer can decrypt while the rest is
/// encrypted. Measured against other splits in BENCHMARKS.md (round 6).
pub const FIRST_RECORD: usize = 16 * 1024;

/// A WebSocket connection and, for `wss`, its TLS session. See the module
/// docs.
pub struct Link {
    /// The WebSocket connection: commands (`send`, `close_with`, ...),
    /// events, the close deadline.
    pub ws: Connection,
    tls: Option<TlsSession>,
    /// Plaintext not yet given to `ws`: `input[start..end]` (the bytes that
    /// came with the handshake response; without TLS, then what was read).
    input: Vec<u8>,
    start: usize,
    end: usize,
    /// The frames taken from `ws`, kept from one transmit to the next.
    frames: Vec<u8>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("secure", &self.tls.is_some())
            .field("unread_plaintext", &(self.end - self.start))
            .field("terminated", &self.ws.is_terminated())
            .finish_non_exhaustive()
    }
}

impl Link {
    /// A link for `ws`, over `tls` for a `wss` socket (its handshake done),
    /// with `leftover`: the plaintext that came after the handshake
    /// response, given to `ws` before anything read later.
    #[must_use]
    pub fn new(ws: Connection, tls: Option<TlsSession>, leftover: Vec<u8>) -> Link {
        let end = leftover.len();
        Link {
            ws,
            tls,
            input: leftover,
            start: 0,
            end,
            frames: Vec::new(),
        }
    }

    /// Whether the link runs over TLS.
    #[must_use]
    pub fn is_secure(&self) -> bool {
        self.tls.is_some()
    }

    /// Takes the `n` bytes a socket read put at the start of `read`, for
    /// the next [`step`](Self::step)s; `read` comes back at least as long
    /// as it was, for the next read. Under TLS, when everything received
    /// before has been decrypted (as it has once `step` returned `false`),
    /// the session keeps `read`'s storage and leaves its own empty buffer
    /// in its place, so the records are not copied
    /// ([`TlsSession::received_in`]); a peer that sends more than
    /// [`MAX_INCOMING`](crate::tls_session::MAX_INCOMING) bytes without
    /// completing a record fails the connection. Without TLS the bytes are
    /// copied after any not yet used, and the link keeps at most
    /// [`PLAIN_KEPT`] bytes of buffer once they are used.
    pub fn receive(&mut self, read: &mut Vec<u8>, n: usize) {
        let n = n.min(read.len());
        if let Some(tls) = self.tls.as_mut() {
            if let Err(e) = tls.received_in(read, n) {
                self.ws.handle_transport_error(tls::socket_tls_error(&e));
            }
            return;
        }
        self.input.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        self.input.truncate(self.end);
        self.input.extend_from_slice(&read[..n]);
        self.end += n;
    }

    /// Gives the connection its next message (or the rest of what was
    /// received, if that ends mid-message): the plaintext received, under
    /// TLS decrypted from the records [`receive`](Self::receive) took.
    ///
    /// Returns whether bytes were given to the connection: the transport
    /// passes on the connection's output and events, then steps again,
    /// until this returns `false` (everything received is in, or the
    /// connection terminated); then it reads the socket again. A TLS
    /// failure fails the connection and a `close_notify` ends its stream
    /// (events follow, as for any read).
    pub fn step(&mut self, now: Instant) -> bool {
        if self.ws.is_terminated() {
            return false;
        }
        if self.start < self.end {
            let kept = self.input.get(self.start..self.end).unwrap_or_default();
            let used = self.ws.handle_input_step(now, kept);
            self.start += used;
            if self.start >= self.end {
                self.start = 0;
                self.end = 0;
                if self.input.capacity() > PLAIN_KEPT {
                    self.input = Vec::new();
                }
            }
            return used > 0;
        }
        let Some(tls) = self.tls.as_mut() else {
            return false;
        };
        // The records' plaintext goes to the connection where it was
        // decrypted, until a message (or any event) is out.
        let ws = &mut self.ws;
        let mut take = |plaintext: &[u8]| {
            if ws.is_terminated() {
                return (0, true);
            }
            let used = ws.handle_input_step(now, plaintext);
            (used, ws.has_events() || ws.is_terminated())
        };
        match tls.read_plaintext_with(&mut take) {
            Ok(Plaintext::Data(n)) => n > 0,
            Ok(Plaintext::Closed) => {
                self.ws.handle_eof();
                false
            }
            Ok(Plaintext::NeedRead) => false,
            Err(e) => {
                self.ws.handle_transport_error(tls::socket_tls_error(&e));
                false
            }
        }
    }

    /// Takes what the connection queued and passes the bytes to write
    /// (TLS records under TLS, with whatever the session queued itself: an
    /// alert after a failure, a key-update answer) to `pass_on`; nothing
    /// when nothing is queued. Without TLS the frames are passed on at
    /// once. Under TLS, when the frames are more than
    /// [`FIRST_RECORD`] and a quarter, the first record is passed on alone
    /// and the rest after it: the peer receives and decrypts that record
    /// while the rest is encrypted, instead of waiting for all of it. An
    /// error from `pass_on`, or from the encryption, fails the connection
    /// with it (and nothing more is passed on); when the encryption failed
    /// the TLS session while it keeps plaintext decrypted before the failure
    /// (under TLS 1.2 rustls takes in what was received before it writes,
    /// and may meet a record that does not decrypt), the messages in that plaintext come
    /// out of the next [`step`](Self::step)s first, and the failure after
    /// them. Transports step until `step` returns `false` before they read
    /// again, so those steps come; a [`receive`](Self::receive) made
    /// meanwhile drops its bytes without losing the messages.
    pub fn transmit_with(&mut self, mut pass_on: impl FnMut(&[u8]) -> Result<(), Error>) {
        let Link {
            ws, tls, frames, ..
        } = self;
        let queued = ws.poll_transmit_into(frames);
        let passed = match tls.as_mut() {
            None if queued => pass_on(frames),
            None => return,
            Some(tls) => {
                let data: &[u8] = if queued { frames } else { &[] };
                let (first, rest) = if data.len() > FIRST_RECORD + FIRST_RECORD / 4 {
                    data.split_at(FIRST_RECORD)
                } else {
                    (data, &[][..])
                };
                let passed = encrypt_and_pass_on(tls, first, &mut pass_on);
                if passed.is_ok() && !rest.is_empty() {
                    encrypt_and_pass_on(tls, rest, &mut pass_on)
                } else {
                    passed
                }
            }
        };
        frames.clear();
        if frames.capacity() > KEEP_CAPACITY {
            *frames = Vec::new();
        }
        // An encryption that met a bad record among those received (under
        // TLS 1.2 rustls takes in what it has received before it writes;
        // mpnet's TLS 1.3 record layer leaves that to the reads) ends the session,
        // but the plaintext of the records before that one is kept: the
        // next steps give it to the connection, then the error
        // (`TlsSession::read_plaintext_with`), so no message that arrived
        // whole is lost.
        let kept = tls
            .as_ref()
            .is_some_and(|t| t.has_failed() && t.keeps_plaintext());
        if let (Err(e), false) = (passed, kept) {
            ws.handle_transport_error(e);
        }
    }
}

/// Encrypts `data` and passes on what the session then has to send (the
/// records, after anything it queued itself); on an encryption failure
/// still passes on the alert it queued, if any, best effort.
fn encrypt_and_pass_on(
    tls: &mut TlsSession,
    data: &[u8],
    pass_on: &mut impl FnMut(&[u8]) -> Result<(), Error>,
) -> Result<(), Error> {
    let encrypted = tls.encrypt_all(data).map_err(|e| tls::socket_tls_error(&e));
    let bytes = tls.transmit();
    let passed = match encrypted {
        Ok(()) if bytes.is_empty() => Ok(()),
        Ok(()) => pass_on(bytes),
        Err(e) => {
            if !bytes.is_empty() {
                let _ = pass_on(bytes);
            }
            Err(e)
        }
    };
    let all = tls.transmit().len();
    tls.sent(all);
    passed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::tls_session::tests::{bad_record, pair, pair_with, server_output, server_records};
    use crate::ws::{ConnectionConfig, FixedMask, MessageData, SocketEvent};
    use mpnet_testkit::TestCa;
    use proptest::prelude::*;
    use rustls::ServerConnection;
    use std::io::Read;

    fn connection() -> Connection {
        Connection::new(ConnectionConfig::default(), Box::new(FixedMask([0; 4])))
    }

    /// An unmasked (server) text frame.
    fn text_frame(text: &str) -> Vec<u8> {
        let len = text.len();
        let mut f = vec![0x81];
        if len < 126 {
            f.push(len as u8);
        } else {
            f.push(126);
            f.extend_from_slice(&u16::try_from(len).expect("short").to_be_bytes());
        }
        f.extend_from_slice(text.as_bytes());
        f
    }

    /// Steps through `pieces` (one "socket read" each), collecting events.
    fn run(link: &mut Link, pieces: &[&[u8]]) -> Vec<SocketEvent> {
        let now = Instant::now();
        let mut events = Vec::new();
        let mut drain =
            |link: &mut Link| events.extend(std::iter::from_fn(|| link.ws.poll_event()));
        // What came with the handshake first.
        while link.step(now) {
            drain(link);
        }
        drain(link);
        for piece in pieces {
            // A read buffer longer than the bytes read, as a transport's.
            let mut read = vec![0u8; piece.len() + 100];
            read[..piece.len()].copy_from_slice(piece);
            link.receive(&mut read, piece.len());
            assert!(
                read.len() >= piece.len() + 100,
                "the read buffer came back shorter"
            );
            while link.step(now) {
                drain(link);
            }
            drain(link);
        }
        events
    }

    fn texts(events: &[SocketEvent]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                SocketEvent::Message {
                    data: MessageData::Text(t),
                } => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn plain_messages_come_one_step_each_leftover_first() {
        let mut link = Link::new(connection(), None, text_frame("first"));
        let mut wire = [text_frame("second"), text_frame("third")].concat();
        let n = wire.len();
        let now = Instant::now();
        // Read before the leftover was used: appended after it.
        link.receive(&mut wire, n);
        assert!(link.step(now), "the leftover");
        assert!(link.step(now), "second");
        assert!(link.step(now), "third");
        assert!(!link.step(now));
        assert_eq!(
            texts(&std::iter::from_fn(|| link.ws.poll_event()).collect::<Vec<_>>()),
            ["first", "second", "third"]
        );
    }

    #[test]
    fn plain_reads_come_in_order_and_the_buffer_comes_back_whole() {
        let mut link = Link::new(connection(), None, Vec::new());
        let big = "b".repeat(40 * 1024);
        let events = run(
            &mut link,
            &[&text_frame("one"), &text_frame(&big), &text_frame("three")],
        );
        assert_eq!(texts(&events), ["one", big.as_str(), "three"]);
        assert!(
            link.input.capacity() <= PLAIN_KEPT,
            "kept {} bytes",
            link.input.capacity()
        );
    }

    #[test]
    fn a_tls_read_longer_than_the_sessions_buffer_comes_back_whole() {
        let ca = TestCa::new();
        let (client, mut server) = pair(&ca);
        let mut link = Link::new(connection(), Some(client), Vec::new());
        let wire = server_records(&mut server, &text_frame("one"));
        let len = 3 * crate::tls_session::READ_CHUNK;
        let mut read = vec![0u8; len];
        read[..wire.len()].copy_from_slice(&wire);
        link.receive(&mut read, wire.len());
        assert!(read.len() >= len, "came back {}", read.len());
        let mut events = Vec::new();
        while link.step(Instant::now()) {
            events.extend(std::iter::from_fn(|| link.ws.poll_event()));
        }
        assert_eq!(texts(&events), ["one"]);
    }

    /// `bytes` (client TLS records) into the server; its plaintext.
    fn server_input(server: &mut ServerConnection, mut bytes: &[u8]) -> Vec<u8> {
        let mut got = Vec::new();
        while !bytes.is_empty() {
            server.read_tls(&mut bytes).expect("server read_tls");
            server.process_new_packets().expect("server process");
            let mut buf = [0u8; 4096];
            loop {
                match server.reader().read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        }
        got
    }

    #[test]
    fn tls_records_in_and_out() {
        let ca = TestCa::new();
        let (client, mut server) = pair(&ca);
        // The 101's leftover is plaintext; the rest comes as records, a
        // 40 KiB message among them (three records).
        let big = "b".repeat(40 * 1024);
        let mut link = Link::new(connection(), Some(client), text_frame("left"));
        let wire = server_records(
            &mut server,
            &[text_frame(&big), text_frame("after")].concat(),
        );
        let events = run(&mut link, &[&wire]);
        assert_eq!(texts(&events), ["left", big.as_str(), "after"]);

        // Out: the frame as a record the server decrypts.
        link.ws.send_text("answer").expect("send");
        let mut written = Vec::new();
        link.transmit_with(|bytes| {
            written.extend_from_slice(bytes);
            Ok(())
        });
        let plain = server_input(&mut server, &written);
        assert_eq!(
            plain,
            [0x81, 0x86, 0, 0, 0, 0, b'a', b'n', b's', b'w', b'e', b'r']
        );
        // Passed on once: nothing more to write.
        link.transmit_with(|_| panic!("nothing queued"));
    }

    /// A link that has received, in one read, three messages ("one",
    /// "two", "three"), each its own record, then a record that does not
    /// decrypt; with mpnet's record layer (`records`, TLS 1.3 as in
    /// production) or rustls's (as under TLS 1.2).
    fn three_messages_then_a_bad_record(records: bool) -> Link {
        let ca = TestCa::new();
        let (client, mut server) = pair_with(&ca, records);
        let mut link = Link::new(connection(), Some(client), Vec::new());
        let mut wire: Vec<u8> = ["one", "two", "three"]
            .iter()
            .flat_map(|text| server_records(&mut server, &text_frame(text)))
            .collect();
        wire.extend(bad_record());
        let mut read = wire.clone();
        link.receive(&mut read, wire.len());
        link
    }

    /// [`three_messages_then_a_bad_record`], stepped to the end; with
    /// `answer`, the app answers each message before the next step (as a
    /// listener does).
    fn answered_until_a_bad_record(answer: bool, records: bool) -> Vec<SocketEvent> {
        let mut link = three_messages_then_a_bad_record(records);
        let now = Instant::now();
        let mut events = Vec::new();
        while link.step(now) {
            let before = events.len();
            events.extend(std::iter::from_fn(|| link.ws.poll_event()));
            let messages = texts(events.get(before..).unwrap_or_default()).len();
            if answer && messages > 0 && !link.ws.is_terminated() {
                link.ws.send_text("thanks").expect("send");
                link.transmit_with(|_| Ok(()));
                events.extend(std::iter::from_fn(|| link.ws.poll_event()));
            }
        }
        events.extend(std::iter::from_fn(|| link.ws.poll_event()));
        events
    }

    #[test]
    fn messages_before_a_bad_record_come_out_though_an_answer_met_it_first() {
        for (answer, records) in [(false, false), (true, false), (false, true), (true, true)] {
            let events = answered_until_a_bad_record(answer, records);
            assert_eq!(
                texts(&events),
                ["one", "two", "three"],
                "answer: {answer}; {events:?}"
            );
            let tail: Vec<_> = events
                .iter()
                .filter(|e| !matches!(e, SocketEvent::Open | SocketEvent::Message { .. }))
                .collect();
            assert!(
                matches!(
                    tail.as_slice(),
                    [
                        SocketEvent::Error(error),
                        SocketEvent::Close { code: 1006, .. }
                    ] if error.code(crate::Api::Socket) == 1
                ),
                "answer: {answer}; {tail:?}"
            );
            // The error and the close come after the last message.
            assert!(
                matches!(events.last(), Some(SocketEvent::Close { .. })),
                "{events:?}"
            );
        }
    }

    #[test]
    fn a_read_taken_while_the_failure_waits_loses_no_message() {
        for records in [false, true] {
            a_read_taken_while_the_failure_waits_loses_no_message_with(records);
        }
    }

    fn a_read_taken_while_the_failure_waits_loses_no_message_with(records: bool) {
        let mut link = three_messages_then_a_bad_record(records);
        let now = Instant::now();
        assert!(link.step(now));
        let mut events: Vec<_> = std::iter::from_fn(|| link.ws.poll_event()).collect();
        link.ws.send_text("thanks").expect("send");
        link.transmit_with(|_| Ok(()));
        assert!(
            !link.ws.is_terminated(),
            "the failure waits for the messages"
        );
        let mut more = vec![0u8; 16];
        link.receive(&mut more, 1);
        while link.step(now) {
            events.extend(std::iter::from_fn(|| link.ws.poll_event()));
        }
        events.extend(std::iter::from_fn(|| link.ws.poll_event()));
        assert_eq!(texts(&events), ["one", "two", "three"], "{events:?}");
        assert!(
            matches!(events.last(), Some(SocketEvent::Close { code: 1006, .. })),
            "{events:?}"
        );
    }

    #[test]
    fn a_large_frame_leaves_its_first_record_alone() {
        let ca = TestCa::new();
        let (client, mut server) = pair(&ca);
        let mut link = Link::new(connection(), Some(client), Vec::new());
        let payload = vec![7u8; 40 * 1024];
        link.ws.send_binary(&payload).expect("send");
        let mut calls: Vec<Vec<u8>> = Vec::new();
        link.transmit_with(|bytes| {
            calls.push(bytes.to_vec());
            Ok(())
        });
        assert_eq!(calls.len(), 2, "the first record, then the rest");
        // One TLS 1.3 record: header, 16 KiB, the inner type, the tag.
        assert_eq!(calls[0].len(), 5 + FIRST_RECORD + 1 + 16);
        assert_eq!(calls[0][..3], [0x17, 3, 3]);
        let plain = server_input(&mut server, &calls.concat());
        // A masked binary frame: 0x82, 126 + the 16-bit length, the
        // (zero) mask, the payload.
        assert_eq!(plain.len(), 2 + 2 + 4 + payload.len());
        assert_eq!(plain[..4], [0x82, 0xFE, 0xA0, 0x00]);
        assert_eq!(plain[8..], payload[..]);

        // A frame of one record and a quarter at most: passed on at once.
        link.ws
            .send_binary(&vec![1u8; FIRST_RECORD + FIRST_RECORD / 4 - 14])
            .expect("send");
        let mut n = 0;
        link.transmit_with(|_| {
            n += 1;
            Ok(())
        });
        assert_eq!(n, 1);
    }

    #[test]
    fn a_failed_first_record_passes_on_nothing_more() {
        let ca = TestCa::new();
        let (client, _server) = pair(&ca);
        let mut link = Link::new(connection(), Some(client), Vec::new());
        link.ws.send_binary(&vec![7u8; 64 * 1024]).expect("send");
        let mut n = 0;
        link.transmit_with(|_| {
            n += 1;
            Err(Error::new(ErrorKind::SendFailed, "gone"))
        });
        assert_eq!(n, 1);
        assert!(link.ws.is_terminated());
    }

    #[test]
    fn close_notify_ends_the_stream_and_garbage_fails_it() {
        let ca = TestCa::new();
        let (client, mut server) = pair(&ca);
        let mut link = Link::new(connection(), Some(client), Vec::new());
        server.send_close_notify();
        let wire = server_output(&mut server);
        let events = run(&mut link, &[&wire]);
        assert!(link.ws.is_terminated());
        assert!(events
            .iter()
            .any(|e| matches!(e, SocketEvent::Close { code: 1006, .. })));

        let (client, _server) = pair(&ca);
        let mut link = Link::new(connection(), Some(client), Vec::new());
        let events = run(&mut link, &[b"\x17\x03\x03\x00\x05garbage"]);
        assert!(link.ws.is_terminated());
        let error = events.iter().find_map(|e| match e {
            SocketEvent::Error(error) => Some(error.kind()),
            _ => None,
        });
        // SPEC §7: 7 is for certificates; a record that does not decrypt
        // is 1.
        assert_eq!(error, Some(ErrorKind::Unknown), "{events:?}");
        // The alert the failure queued goes out, though no frame is queued.
        let mut alert = Vec::new();
        link.transmit_with(|bytes| {
            alert.extend_from_slice(bytes);
            Ok(())
        });
        // TLS 1.3 encrypts it: one application-data record of 2 alert
        // bytes, the inner type and the 16-byte tag.
        assert_eq!(alert, [&[0x17, 3, 3, 0, 19][..], &alert[5..]].concat());
        assert_eq!(alert.len(), 5 + 19, "{alert:?}");
    }

    #[test]
    fn a_failed_pass_on_fails_the_connection() {
        let mut link = Link::new(connection(), None, Vec::new());
        link.ws.send_text("x").expect("send");
        link.transmit_with(|_| Err(Error::new(ErrorKind::SendFailed, "gone")));
        assert!(link.ws.is_terminated());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Split anywhere (SPEC §2): the same records cut into any reads
        /// give the same messages.
        #[test]
        fn tls_input_split_anywhere(cuts in proptest::collection::vec(1usize..9000, 1..12)) {
            let ca = TestCa::new();
            let (client, mut server) = pair(&ca);
            let messages = ["x".repeat(20_000), "y".into(), "z".repeat(300)];
            let frames: Vec<u8> = messages.iter().flat_map(|m| text_frame(m)).collect();
            let wire = server_records(&mut server, &frames);
            let mut pieces: Vec<&[u8]> = Vec::new();
            let mut rest = &wire[..];
            for cut in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (now, later) = rest.split_at((*cut).min(rest.len()));
                pieces.push(now);
                rest = later;
            }
            let mut link = Link::new(connection(), Some(client), Vec::new());
            let events = run(&mut link, &pieces);
            prop_assert_eq!(texts(&events), messages.to_vec());
        }
    }
}
