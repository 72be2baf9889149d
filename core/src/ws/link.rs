//! A WebSocket connection together with its TLS session (`wss://`): what a
//! transport keeps under its socket lock once the handshake is done.
//!
//! The transport reads the socket and hands the bytes to [`Link::step`],
//! which gives the connection the next message (decrypting records first
//! under TLS); it writes what [`Link::transmit_with`] passes it (the
//! connection's frames, encrypted under TLS). Every decision about the
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
//! let mut wire: &[u8] = b"\x81\x02yo";
//! let now = Instant::now();
//! let mut events = Vec::new();
//! while link.step(now, &mut wire) {
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

/// How much plaintext one decryption pass takes out of the TLS session: a
/// 64 KiB message with its frame header in one pass. A `wss` link keeps a
/// buffer this big while it lives.
pub const PLAINTEXT_CHUNK: usize = 128 * 1024;

/// A WebSocket connection and, for `wss`, its TLS session. See the module
/// docs.
pub struct Link {
    /// The WebSocket connection: commands (`send`, `close_with`, ...),
    /// events, the close deadline.
    pub ws: Connection,
    tls: Option<TlsSession>,
    /// Plaintext not yet given to `ws`: `input[start..end]` (the bytes that
    /// came with the handshake response, then decrypted records).
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

    /// Gives the connection its next message (or the rest of what was
    /// received, if that ends mid-message): first plaintext kept from
    /// before, then, under TLS, records decrypted from `wire`, else `wire`
    /// itself. `wire` is what the transport just read from the socket; it
    /// is advanced past what was taken.
    ///
    /// Returns whether bytes were given to the connection: the transport
    /// passes on the connection's output and events, then steps again,
    /// until this returns `false` (everything received is in, or the
    /// connection terminated). A TLS failure fails the connection and a
    /// `close_notify` ends its stream (events follow, as for any read).
    pub fn step(&mut self, now: Instant, wire: &mut &[u8]) -> bool {
        loop {
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
                }
                return used > 0;
            }
            let Some(tls) = self.tls.as_mut() else {
                let used = self.ws.handle_input_step(now, wire);
                *wire = wire.get(used..).unwrap_or_default();
                return used > 0;
            };
            if self.input.len() < PLAINTEXT_CHUNK {
                self.input.resize(PLAINTEXT_CHUNK, 0);
            }
            let decrypted = match tls.read_plaintext(&mut self.input) {
                Ok(Plaintext::Data(n)) => Ok(n),
                Ok(Plaintext::Closed) => {
                    self.ws.handle_eof();
                    return false;
                }
                Ok(Plaintext::NeedRead) if wire.is_empty() => return false,
                Ok(Plaintext::NeedRead) => match tls.read_buf() {
                    Ok(room) => {
                        let n = room.len().min(wire.len());
                        room[..n].copy_from_slice(&wire[..n]);
                        tls.received(n);
                        *wire = wire.get(n..).unwrap_or_default();
                        Ok(0)
                    }
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            match decrypted {
                Ok(n) => self.end = n,
                Err(e) => {
                    self.ws.handle_transport_error(tls::socket_tls_error(&e));
                    return false;
                }
            }
        }
    }

    /// Takes what the connection queued and passes the bytes to write
    /// (TLS records under TLS, with whatever the session queued itself: an
    /// alert after a failure, a key-update answer) to `pass_on`, once;
    /// nothing when nothing is queued. An error from `pass_on`, or from the
    /// encryption, fails the connection with it.
    pub fn transmit_with(&mut self, pass_on: impl FnOnce(&[u8]) -> Result<(), Error>) {
        let Link {
            ws, tls, frames, ..
        } = self;
        let queued = ws.poll_transmit_into(frames);
        let passed = match tls.as_mut() {
            None if queued => pass_on(frames),
            None => return,
            Some(tls) => {
                let encrypted = if queued {
                    tls.encrypt_all(frames)
                        .map_err(|e| tls::socket_tls_error(&e))
                } else {
                    Ok(())
                };
                let bytes = tls.transmit();
                let passed = match encrypted {
                    Ok(()) if bytes.is_empty() => Ok(()),
                    Ok(()) => pass_on(bytes),
                    Err(e) => {
                        // Best effort: the alert the failure queued, if any.
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
        };
        frames.clear();
        if frames.capacity() > KEEP_CAPACITY {
            *frames = Vec::new();
        }
        if let Err(e) = passed {
            ws.handle_transport_error(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::tls_session::tests::pair;
    use crate::ws::{ConnectionConfig, FixedMask, MessageData, SocketEvent};
    use mpnet_testkit::TestCa;
    use proptest::prelude::*;
    use rustls::ServerConnection;
    use std::io::{Read, Write};

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
        while link.step(now, &mut &[][..]) {
            drain(link);
        }
        drain(link);
        for piece in pieces {
            let mut wire = *piece;
            while link.step(now, &mut wire) {
                drain(link);
            }
            drain(link);
            assert!(wire.is_empty() || link.ws.is_terminated(), "wire left over");
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
        let wire = [text_frame("second"), text_frame("third")].concat();
        let now = Instant::now();
        let mut slice = &wire[..];
        assert!(link.step(now, &mut slice), "the leftover");
        assert_eq!(slice.len(), wire.len(), "the read waits for the leftover");
        assert!(link.step(now, &mut slice), "second");
        assert!(link.step(now, &mut slice), "third");
        assert!(slice.is_empty());
        assert!(!link.step(now, &mut slice));
        assert_eq!(
            texts(&std::iter::from_fn(|| link.ws.poll_event()).collect::<Vec<_>>()),
            ["first", "second", "third"]
        );
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

    fn server_output(server: &mut ServerConnection) -> Vec<u8> {
        let mut wire = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut wire).expect("server write_tls");
        }
        wire
    }

    #[test]
    fn tls_records_in_and_out() {
        let ca = TestCa::new();
        let (client, mut server) = pair(&ca);
        // The 101's leftover is plaintext; the rest comes as records, a
        // 40 KiB message among them (three records).
        let big = "b".repeat(40 * 1024);
        let mut link = Link::new(connection(), Some(client), text_frame("left"));
        server
            .writer()
            .write_all(&[text_frame(&big), text_frame("after")].concat())
            .expect("server write");
        let wire = server_output(&mut server);
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
            server.writer().write_all(&frames).expect("server write");
            let wire = server_output(&mut server);
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
