//! A socket's [`Link`] under its transport's lock, and how what the link
//! queues reaches the wire; the same for every transport.
//!
//! The thread that queued bytes (a `send` caller, the reader answering a
//! ping, a listener answering a message) writes them at once, without
//! waiting, when the transport's writer holds nothing; whatever the socket
//! does not take then goes to the writer, which waits for the socket. So
//! sending never blocks and never deadlocks against a peer that does not
//! read, bytes keep their order, and the common case costs no hand-off.
//! The transport says how to write without waiting and how to reach its
//! writer (an [`Outlet`]); [`SocketIo`] decides which, and [`feed`] steps
//! the link one message at a time with events delivered between steps.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use std::time::Instant;
//! use mpnet_core::ws::listeners::SocketListeners;
//! use mpnet_core::ws::outlet::{feed, Outlet, SocketIo};
//! use mpnet_core::ws::route::{AppRoute, EventRoute};
//! use mpnet_core::ws::{Connection, ConnectionConfig, FixedMask, Link, MessageData};
//!
//! /// A socket that takes 4 bytes at once, and a writer that keeps the rest.
//! #[derive(Default)]
//! struct Wire {
//!     now: Mutex<Vec<u8>>,
//!     writer: Mutex<Vec<u8>>,
//! }
//! impl Outlet for &Wire {
//!     fn write_now(&self, bytes: &[u8]) -> usize {
//!         let n = bytes.len().min(4);
//!         self.now.lock().unwrap().extend_from_slice(&bytes[..n]);
//!         n
//!     }
//!     fn to_writer(&self, bytes: Vec<u8>) -> bool {
//!         self.writer.lock().unwrap().extend(bytes);
//!         true
//!     }
//! }
//!
//! let wire = Wire::default();
//! let io = Mutex::new(SocketIo::new());
//! let ws = Connection::new(ConnectionConfig::default(), Box::new(FixedMask([0; 4])));
//! io.lock().unwrap().open(Link::new(ws, None, b"\x81\x02hi".to_vec()), &wire);
//! // Where the events go: a task's route whose listeners log them.
//! let app = Arc::new(AppRoute::new());
//! let plan = app.plan(true).unwrap();
//! let route = EventRoute::new(app, Some(plan.id), plan.kind, SocketListeners::default());
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let s = seen.clone();
//! route.listeners().on_open(Arc::new(move || s.lock().unwrap().push("open".to_string())));
//! let s = seen.clone();
//! route.listeners().on_message(Arc::new(move |m: &MessageData| s.lock().unwrap().push(m.js_data())));
//! feed(&io, Instant::now(), None, &route);
//! assert_eq!(*seen.lock().unwrap(), ["open", "hi"]);
//!
//! io.lock().unwrap().ws().unwrap().send_text("yo").unwrap();
//! let more = io.lock().unwrap().flush();
//! assert!(more.is_empty());
//! assert_eq!(wire.now.lock().unwrap().len(), 4);
//! assert_eq!(wire.writer.lock().unwrap().len(), 4, "the rest of the 8-byte frame");
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::error::{Error, ErrorKind};

use super::route::EventRoute;
use super::{CloseOptions, Connection, Link, SendOptions, SocketEvent};

/// How a transport writes one socket's bytes.
pub trait Outlet {
    /// Writes what the socket takes of `bytes` now, without waiting;
    /// returns how many bytes it took (0 on a full buffer or an error: the
    /// writer gets the rest and meets the error, if any).
    fn write_now(&self, bytes: &[u8]) -> usize;
    /// Hands `bytes` to the transport's writer, to be written after what it
    /// holds, in order; each buffer written is counted off with
    /// [`WriterQueue::written`]. Returns `false` when the writer is gone.
    fn to_writer(&self, bytes: Vec<u8>) -> bool;
}

/// The writer's side of the count of buffers handed to it and not yet
/// written: while any are, nothing is written at once (bytes keep their
/// order).
#[derive(Debug, Clone, Default)]
pub struct WriterQueue(Arc<AtomicUsize>);

impl WriterQueue {
    /// One buffer handed to the writer has been written whole.
    pub fn written(&self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }

    /// Whether the writer holds bytes not yet written.
    pub fn is_busy(&self) -> bool {
        self.0.load(Ordering::SeqCst) > 0
    }
}

/// A socket's I/O state, under the transport's lock: the link once the
/// handshake succeeded, and where its bytes go.
#[derive(Debug)]
pub struct SocketIo<O> {
    link: Option<Link>,
    outlet: Option<O>,
    queued: WriterQueue,
}

impl<O> Default for SocketIo<O> {
    fn default() -> Self {
        SocketIo {
            link: None,
            outlet: None,
            queued: WriterQueue::default(),
        }
    }
}

impl<O: Outlet> SocketIo<O> {
    /// Not open yet: no link, nowhere to write.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The socket is open: `link` is driven from now on, its bytes go out
    /// through `outlet`.
    pub fn open(&mut self, link: Link, outlet: O) {
        self.link = Some(link);
        self.outlet = Some(outlet);
    }

    /// The count the transport's writer counts its buffers off with.
    pub fn writer_queue(&self) -> WriterQueue {
        self.queued.clone()
    }

    /// Lets the outlet go (the reader ended): nothing more is written, and
    /// the writer ends once it has written what it holds.
    pub fn close_outlet(&mut self) {
        self.outlet = None;
    }

    /// The link, once open.
    pub fn link(&self) -> Option<&Link> {
        self.link.as_ref()
    }

    /// The link's connection, once open.
    pub fn ws(&mut self) -> Option<&mut Connection> {
        self.link.as_mut().map(|l| &mut l.ws)
    }

    /// `SocketTask.send` (SPEC §7 `sendSocketMessage`): the frame queued
    /// and written ([`flush`](Self::flush)); returns the events to deliver.
    /// 10 before the socket is open; 11 when `isBuffer` data is not base64.
    pub fn send(&mut self, opts: &SendOptions) -> Result<Vec<SocketEvent>, Error> {
        self.ws().ok_or_else(not_connected)?.send(opts)?;
        Ok(self.flush())
    }

    /// `SocketTask.close` (SPEC §7 `closeSocket`) at `now`: the close frame
    /// queued and written; returns the events to deliver. 10 before the
    /// socket is open.
    pub fn close(&mut self, now: Instant, opts: &CloseOptions) -> Result<Vec<SocketEvent>, Error> {
        self.ws().ok_or_else(not_connected)?.close_with(now, opts)?;
        Ok(self.flush())
    }

    /// A newer `connectSocket` replaced this open app socket
    /// ([`Connection::supersede`]); returns the events to deliver (its close
    /// event, 1000). Nothing when it is not open.
    pub fn supersede(&mut self, now: Instant) -> Vec<SocketEvent> {
        if let Some(ws) = self.ws() {
            ws.supersede(now);
        }
        self.flush()
    }

    /// The transport's reader stopped before the connection terminated (it
    /// panicked, or its executor dropped it): an open connection fails with
    /// `error` (SPEC §7: one error, then close 1006); returns the events to
    /// deliver. Nothing when it is not open or already terminated.
    pub fn abandon(&mut self, error: Error) -> Vec<SocketEvent> {
        match self.ws() {
            Some(ws) if !ws.is_terminated() => {
                ws.handle_transport_error(error);
                self.flush()
            }
            _ => Vec::new(),
        }
    }

    /// Writes what the connection queued (TLS records for `wss`): at once
    /// when the writer holds nothing and the socket takes it, else through
    /// the writer. Returns the events to deliver (a writer that is gone
    /// fails the connection: error 11, sending failed, and close 1006
    /// among them).
    pub fn flush(&mut self) -> Vec<SocketEvent> {
        let SocketIo {
            link,
            outlet,
            queued,
        } = self;
        let Some(link) = link.as_mut() else {
            return Vec::new();
        };
        link.transmit_with(|bytes| pass_on(bytes, outlet.as_ref(), queued));
        std::iter::from_fn(|| link.ws.poll_event()).collect()
    }
}

/// The error of a `send` or `close` before the socket is open (SPEC §7: 10).
#[must_use]
pub fn not_connected() -> Error {
    Error::new(
        ErrorKind::NotConnected,
        "the socket is not open: connect first and wait for the open event",
    )
}

/// Writes `bytes` at once where it may, and hands the rest to the writer.
fn pass_on<O: Outlet>(bytes: &[u8], outlet: Option<&O>, queued: &WriterQueue) -> Result<(), Error> {
    let Some(outlet) = outlet else {
        return Ok(());
    };
    let done = if queued.is_busy() {
        0
    } else {
        outlet.write_now(bytes).min(bytes.len())
    };
    let rest = bytes.get(done..).unwrap_or_default();
    if rest.is_empty() {
        return Ok(());
    }
    queued.0.fetch_add(1, Ordering::SeqCst);
    if outlet.to_writer(rest.to_vec()) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::SendFailed,
            "the connection is broken",
        ))
    }
}

/// Gives the link what was read (the first `n` bytes of the buffer, which
/// it may swap for another: see [`Link::receive`]), then steps it one
/// message at a time under the lock, passing each message's output on and
/// queueing its events on `route` under the lock, then delivering them
/// with the lock released (see [`EventRoute::queue`]), so a listener's
/// answer is written before the next frame is read. `None`: only what the
/// link already holds (what came with the handshake response).
pub fn feed<O: Outlet>(
    io: &Mutex<SocketIo<O>>,
    now: Instant,
    mut read: Option<(&mut Vec<u8>, usize)>,
    route: &Arc<EventRoute>,
) {
    loop {
        let (fed, queued) = {
            let mut io = io.lock().unwrap_or_else(|p| p.into_inner());
            let Some(link) = io.link.as_mut() else { return };
            if let Some((buf, n)) = read.take() {
                link.receive(buf, n);
            }
            let fed = link.step(now);
            (fed, route.queue(io.flush()))
        };
        queued.run();
        if !fed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::{ConnectionConfig, FixedMask};
    use std::cell::RefCell;

    /// A socket taking `room` bytes at once; the writer's buffers; whether
    /// the writer is there.
    struct Wire {
        room: RefCell<usize>,
        now: RefCell<Vec<u8>>,
        writer: RefCell<Vec<Vec<u8>>>,
        writer_alive: bool,
    }

    impl Wire {
        fn new(room: usize) -> Wire {
            Wire {
                room: RefCell::new(room),
                now: RefCell::default(),
                writer: RefCell::default(),
                writer_alive: true,
            }
        }
    }

    impl Outlet for &Wire {
        fn write_now(&self, bytes: &[u8]) -> usize {
            let mut room = self.room.borrow_mut();
            let n = bytes.len().min(*room);
            *room -= n;
            self.now.borrow_mut().extend_from_slice(&bytes[..n]);
            n
        }
        fn to_writer(&self, bytes: Vec<u8>) -> bool {
            self.writer.borrow_mut().push(bytes);
            self.writer_alive
        }
    }

    fn opened(wire: &Wire) -> SocketIo<&Wire> {
        let mut io = SocketIo::new();
        let ws = Connection::new(ConnectionConfig::default(), Box::new(FixedMask([0; 4])));
        io.open(Link::new(ws, None, Vec::new()), wire);
        let open = io.flush();
        assert!(matches!(open.as_slice(), [SocketEvent::Open]), "{open:?}");
        io
    }

    #[test]
    fn once_the_writer_holds_bytes_nothing_is_written_at_once_until_it_has_written_them() {
        let wire = Wire::new(3);
        let mut io = opened(&wire);
        let queue = io.writer_queue();
        io.ws().expect("open").send_text("first").expect("send");
        assert!(io.flush().is_empty());
        assert_eq!(wire.now.borrow().len(), 3, "what the socket took");
        assert_eq!(wire.writer.borrow().len(), 1, "the rest, to the writer");
        assert!(queue.is_busy());

        // The socket has room again, but the writer's bytes go first.
        *wire.room.borrow_mut() = 100;
        io.ws().expect("open").send_text("second").expect("send");
        io.flush();
        assert_eq!(wire.now.borrow().len(), 3);
        assert_eq!(wire.writer.borrow().len(), 2);

        queue.written();
        queue.written();
        assert!(!queue.is_busy());
        io.ws().expect("open").send_text("third").expect("send");
        io.flush();
        assert_eq!(wire.now.borrow().len(), 3 + 11, "written at once again");
    }

    #[test]
    fn a_writer_that_is_gone_fails_the_connection_and_no_outlet_writes_nothing() {
        let mut wire = Wire::new(0);
        wire.writer_alive = false;
        let mut io = opened(&wire);
        io.ws().expect("open").send_text("lost").expect("send");
        let events = io.flush();
        assert!(
            matches!(
                events.as_slice(),
                [SocketEvent::Error(e), SocketEvent::Close { code: 1006, .. }]
                    if e.code(crate::Api::Socket) == 11
            ),
            "{events:?}"
        );

        let wire = Wire::new(100);
        let mut io = opened(&wire);
        io.close_outlet();
        io.ws().expect("open").send_text("dropped").expect("send");
        assert!(io.flush().is_empty());
        assert!(wire.now.borrow().is_empty() && wire.writer.borrow().is_empty());
    }

    #[test]
    fn an_abandoned_connection_fails_once_and_one_not_open_gives_nothing() {
        let gone = || Error::new(crate::ErrorKind::Unknown, "the reader stopped");
        let mut io: SocketIo<&Wire> = SocketIo::new();
        assert!(io.abandon(gone()).is_empty(), "not open: nothing");

        let wire = Wire::new(100);
        let mut io = opened(&wire);
        let events = io.abandon(gone());
        assert!(
            matches!(
                events.as_slice(),
                [SocketEvent::Error(e), SocketEvent::Close { code: 1006, .. }]
                    if e.code(crate::Api::Socket) == 1
            ),
            "{events:?}"
        );
        assert!(io.abandon(gone()).is_empty(), "terminated: nothing more");
    }
}
