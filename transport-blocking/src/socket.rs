//! `my.connectSocket` and the socket events (SPEC §7) on threads.
//!
//! Each socket has a reader thread (connect, TLS, handshake, then reading)
//! and a writer thread (writing what the core queued). The TLS session and
//! the core's `Connection` sit behind one lock that is never held while a
//! socket blocks: reads happen on the raw TCP stream outside the lock, and
//! writes never block under it. On Linux the thread that queued the bytes
//! (a `send` caller, or the reader answering a ping) writes them at once
//! with a non-blocking send when the writer thread has nothing queued;
//! whatever the socket does not take goes to the writer thread, which
//! blocks for it. So sending from any thread while messages arrive never
//! deadlocks, whatever the peer does, and the common case costs no thread
//! hand-off.
//!
//! Events reach listeners through a [`Dispatcher`] (`mpnet_core::dispatch`):
//! delivered in order, one at a time, with no lock held, so a listener may
//! call `send`, `close` or `connect_socket` itself. The app socket's events
//! and the app-level listeners (`on_socket_open`, ...) share the app's
//! dispatcher, which is what puts a replaced socket's close event before the
//! new socket's open event. The rules (one socket per app, at most 5
//! tasks, event order) are the core's (`mpnet_core::ws`).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use mpnet_core::dispatch::Dispatcher;
use mpnet_core::task::{Callbacks, Completion};
use mpnet_core::ws::app::{superseded_error, Previous, SlotKind, SocketId, SocketSlots};
use mpnet_core::ws::listeners::{
    CloseListener, ErrorListener, MessageListener, OpenListener, SharedListeners, SocketListeners,
};
use mpnet_core::ws::{
    ClientHandshake, CloseOptions, ConnectOptions, Connection, ConnectionConfig, SendOptions,
    SocketEvent,
};
use mpnet_core::{tls, Error, ErrorKind};
use rustls::ClientConnection;

use crate::client::ClientInner;
use crate::conn;

/// The longest a reader blocks before looking at the close deadline again.
const READ_WAKE: Duration = Duration::from_millis(250);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Listeners plus the dispatcher that delivers to them.
#[derive(Default)]
struct Scope {
    listeners: SharedListeners,
    dispatcher: Dispatcher,
}

/// A socket's I/O state, under one lock.
struct Io {
    /// `None` until the handshake has succeeded.
    ws: Option<Connection>,
    tls: Option<ClientConnection>,
    /// Bytes for the writer thread.
    out: Option<mpsc::Sender<Vec<u8>>>,
    /// The socket, for the direct writes (`None`: all through the writer).
    direct: Option<TcpStream>,
    /// Buffers given to the writer thread and not yet fully written: a
    /// direct write is made only when this is 0, so bytes keep their order.
    queued: Arc<AtomicUsize>,
    /// The frames taken from the core, and their TLS records: both kept
    /// from one flush to the next, so a message allocates neither.
    plain: Vec<u8>,
    wire: Vec<u8>,
}

/// The most capacity a reused buffer keeps after a large message.
const KEEP_CAPACITY: usize = 256 * 1024;

impl Io {
    fn new() -> Io {
        Io {
            ws: None,
            tls: None,
            out: None,
            direct: None,
            queued: Arc::default(),
            plain: Vec::new(),
            wire: Vec::new(),
        }
    }

    /// Writes what the core queued (through TLS): at once when the socket
    /// takes it, else through the writer thread. Returns the events to
    /// deliver.
    fn flush(&mut self) -> Vec<SocketEvent> {
        let mut events = Vec::new();
        let Io {
            ws,
            tls,
            out,
            direct,
            queued,
            plain,
            wire,
        } = self;
        let Some(ws) = ws.as_mut() else {
            return events;
        };
        if ws.poll_transmit_into(plain) {
            let bytes: &mut Vec<u8> = match tls.as_mut() {
                Some(tls) => {
                    wire.clear();
                    if let Err(e) = encrypt(tls, plain, wire) {
                        ws.handle_transport_error(tls::io_error(&e, "TLS write failed"));
                    }
                    wire
                }
                None => plain,
            };
            let mut done = 0;
            if let (Some(tcp), 0) = (direct.as_ref(), queued.load(Ordering::SeqCst)) {
                done = write_now(tcp, bytes);
            }
            let rest = bytes.get(done..).unwrap_or_default();
            if let (Some(out), false) = (out.as_ref(), rest.is_empty()) {
                queued.fetch_add(1, Ordering::SeqCst);
                if out.send(rest.to_vec()).is_err() {
                    ws.handle_transport_error(Error::new(
                        ErrorKind::SendFailed,
                        "the connection is broken",
                    ));
                }
            }
            for buf in [plain, wire] {
                buf.clear();
                if buf.capacity() > KEEP_CAPACITY {
                    *buf = Vec::new();
                }
            }
        }
        while let Some(e) = ws.poll_event() {
            events.push(e);
        }
        events
    }
}

/// Writes what the socket takes of `bytes` now, without blocking; returns
/// how many bytes were written. A full buffer or an error stops it: the
/// writer thread gets the rest (and meets the error, if any).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn write_now(tcp: &TcpStream, bytes: &[u8]) -> usize {
    use rustix::net::SendFlags;
    let mut done = 0;
    while let Some(rest) = bytes.get(done..).filter(|r| !r.is_empty()) {
        match rustix::net::send(tcp, rest, SendFlags::DONTWAIT | SendFlags::NOSIGNAL) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
    }
    done
}

/// Elsewhere the writer thread writes everything.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn write_now(_tcp: &TcpStream, _bytes: &[u8]) -> usize {
    0
}

/// Encrypts `plain` into TLS records appended to `wire`, in pieces as
/// rustls accepts them (its plaintext buffer is bounded).
fn encrypt(tls: &mut ClientConnection, mut plain: &[u8], wire: &mut Vec<u8>) -> io::Result<()> {
    while !plain.is_empty() {
        let n = tls.writer().write(plain)?;
        plain = plain.get(n..).unwrap_or_default();
        let mut drained = false;
        while tls.wants_write() {
            tls.write_tls(&mut InPieces(wire))?;
            drained = true;
        }
        if n == 0 && !drained {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "TLS accepted no data",
            ));
        }
    }
    Ok(())
}

/// Appends what is written to a `Vec` in small pieces
/// (`mpnet_core::ws::frame::extend_in_pieces`: faster than one large
/// `memcpy` on some CPUs).
struct InPieces<'a>(&'a mut Vec<u8>);

impl Write for InPieces<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        mpnet_core::ws::frame::extend_in_pieces(self.0, buf);
        Ok(buf.len())
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let mut n = 0;
        for buf in bufs {
            mpnet_core::ws::frame::extend_in_pieces(self.0, buf);
            n += buf.len();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One socket (a `SocketTask`, or the app socket).
struct SocketShared {
    /// `None` when the slot table refused the connect.
    id: Option<SocketId>,
    kind: SlotKind,
    io: Mutex<Io>,
    own: Scope,
    app: Arc<AppSockets>,
    tcp: Mutex<Option<TcpStream>>,
    superseded: AtomicBool,
    connected: Completion<()>,
    /// Notified when `connected` ends (for [`SocketTask::wait_connected`]).
    connected_signal: Arc<(Mutex<()>, Condvar)>,
}

impl SocketShared {
    /// Delivers `events` to this socket's listeners, then (app socket) to
    /// the app-level ones, in order.
    fn deliver(self: &Arc<Self>, events: Vec<SocketEvent>) {
        if events.is_empty() || self.superseded_quietly() {
            return;
        }
        let me = self.clone();
        let dispatcher = match self.kind {
            SlotKind::App => &self.app.scope.dispatcher,
            SlotKind::Task => &self.own.dispatcher,
        };
        dispatcher.run(move || {
            for event in &events {
                if matches!(event, SocketEvent::Close { .. }) {
                    me.app.finished(me.id);
                }
                me.own.listeners.snapshot().dispatch(event);
                if me.kind == SlotKind::App {
                    me.app.scope.listeners.snapshot().dispatch(event);
                }
            }
        });
    }

    /// A superseded socket delivers nothing after its close event (which
    /// `connect_socket` delivered already).
    fn superseded_quietly(&self) -> bool {
        self.superseded.load(Ordering::SeqCst)
    }

    fn shutdown(&self) {
        if let Some(tcp) = lock(&self.tcp).as_ref() {
            let _ = tcp.shutdown(Shutdown::Both);
        }
    }

    fn send(self: &Arc<Self>, opts: &SendOptions) -> Result<(), Error> {
        let events = {
            let mut io = lock(&self.io);
            let ws = io.ws.as_mut().ok_or_else(not_connected)?;
            ws.send(opts)?;
            io.flush()
        };
        self.deliver(events);
        Ok(())
    }

    fn close(self: &Arc<Self>, opts: &CloseOptions) -> Result<(), Error> {
        let events = {
            let mut io = lock(&self.io);
            let ws = io.ws.as_mut().ok_or_else(not_connected)?;
            ws.close_with(Instant::now(), opts)?;
            io.flush()
        };
        if let Some(id) = self.id {
            lock(&self.app.slots).closing(id);
        }
        self.deliver(events);
        Ok(())
    }
}

fn not_connected() -> Error {
    Error::new(
        ErrorKind::NotConnected,
        "the socket is not open: connect first and wait for the open event",
    )
}

/// The sockets of one app: the slot table, the app socket and the
/// app-level listeners.
#[derive(Default)]
pub(crate) struct AppSockets {
    slots: Mutex<SocketSlots>,
    app_socket: Mutex<Option<Arc<SocketShared>>>,
    scope: Scope,
}

impl AppSockets {
    fn finished(&self, id: Option<SocketId>) {
        if let Some(id) = id {
            lock(&self.slots).finished(id);
        }
    }
}

/// A `SocketTask`: one socket with its own listeners (and, for the app
/// socket, the app-level ones too).
#[derive(Clone)]
pub struct SocketTask {
    shared: Arc<SocketShared>,
}

impl std::fmt::Debug for SocketTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketTask")
            .field("id", &self.shared.id.map(SocketId::get))
            .finish()
    }
}

impl SocketTask {
    /// `SocketTask.send` (SPEC §7 `sendSocketMessage`): 10 when not open,
    /// 11 when `isBuffer` data is not base64.
    pub fn send(&self, opts: &SendOptions) -> Result<(), Error> {
        self.shared.send(opts)
    }
    /// `SocketTask.close` (SPEC §7 `closeSocket`).
    pub fn close(&self, opts: &CloseOptions) -> Result<(), Error> {
        self.shared.close(opts)
    }
    /// `onOpen`.
    pub fn on_open(&self, cb: Arc<OpenListener>) {
        self.shared.own.listeners.on_open(cb);
    }
    /// `onMessage`.
    pub fn on_message(&self, cb: Arc<MessageListener>) {
        self.shared.own.listeners.on_message(cb);
    }
    /// `onError`.
    pub fn on_error(&self, cb: Arc<ErrorListener>) {
        self.shared.own.listeners.on_error(cb);
    }
    /// `onClose`.
    pub fn on_close(&self, cb: Arc<CloseListener>) {
        self.shared.own.listeners.on_close(cb);
    }
    /// `offOpen(cb)`, or every open listener with `None`.
    pub fn off_open(&self, cb: Option<&Arc<OpenListener>>) {
        self.shared.own.listeners.off_open(cb);
    }
    /// `offMessage(cb)`, or all with `None`.
    pub fn off_message(&self, cb: Option<&Arc<MessageListener>>) {
        self.shared.own.listeners.off_message(cb);
    }
    /// `offError(cb)`, or all with `None`.
    pub fn off_error(&self, cb: Option<&Arc<ErrorListener>>) {
        self.shared.own.listeners.off_error(cb);
    }
    /// `offClose(cb)`, or all with `None`.
    pub fn off_close(&self, cb: Option<&Arc<CloseListener>>) {
        self.shared.own.listeners.off_close(cb);
    }
    /// Waits until the connect has succeeded or failed.
    pub fn wait_connected(&self) -> Result<(), Error> {
        let (mutex, ended) = &*self.shared.connected_signal;
        let mut guard = lock(mutex);
        loop {
            if let Some(r) = self.shared.connected.result() {
                return r;
            }
            guard = ended.wait(guard).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Starts `connectSocket` (SPEC §7). Returns at once; the connect's
/// `success` (just before the open event) or `fail` runs from the socket's
/// thread, or at once for options errors and refusals.
pub(crate) fn connect_socket(
    client: &Arc<ClientInner>,
    opts: ConnectOptions,
    callbacks: Callbacks<()>,
    listeners: SocketListeners,
) -> SocketTask {
    let app = client.sockets.clone();
    let kind = if opts.multiple {
        SlotKind::Task
    } else {
        SlotKind::App
    };
    // The options and URL are checked first: a connect that cannot start
    // (codes 2-5, 8, 13) leaves the existing socket alone.
    let mut key = [0u8; 16];
    let handshake = getrandom::fill(&mut key)
        .map_err(|e| Error::new(ErrorKind::Unknown, format!("no randomness: {e}")))
        .and_then(|()| ClientHandshake::new(&client.ctx, &opts, key));
    let plan = handshake
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|_| lock(&app.slots).connect(opts.multiple));
    let (id, previous) = match &plan {
        Ok(p) => (Some(p.id), p.previous),
        Err(_) => (None, None),
    };
    let signal = Arc::new((Mutex::new(()), Condvar::new()));
    let notify = signal.clone();
    let shared = Arc::new(SocketShared {
        id,
        kind,
        io: Mutex::new(Io::new()),
        own: Scope {
            listeners: SharedListeners::new(listeners),
            dispatcher: Dispatcher::default(),
        },
        app: app.clone(),
        tcp: Mutex::new(None),
        superseded: AtomicBool::new(false),
        connected: Completion::new(callbacks, move || {
            let _guard = lock(&notify.0);
            notify.1.notify_all();
        }),
        connected_signal: signal,
    });
    let task = SocketTask {
        shared: shared.clone(),
    };
    let (Ok(handshake), Ok(_)) = (handshake, plan.as_ref()) else {
        if let Err(e) = plan {
            shared.connected.finish(Err(e));
        }
        return task;
    };
    if kind == SlotKind::App {
        let old = lock(&app.app_socket).replace(shared.clone());
        if let (Some(old), Some(previous)) = (old, previous) {
            replace_app_socket(&old, previous);
        }
    }
    let inner = client.clone();
    let worker = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("mpnet-socket".into())
        .spawn(move || run(&inner, &worker, &handshake));
    if let Err(e) = spawned {
        fail_connect(
            &shared,
            Error::new(ErrorKind::Unknown, format!("no thread: {e}")),
        );
    }
    task
}

/// The old app socket when a new `connectSocket` comes (SPEC §7): a connect
/// still in progress fails with 2; an open socket gets its close event
/// (1000) now, before anything of the new one, and closes in the background.
fn replace_app_socket(old: &Arc<SocketShared>, previous: Previous) {
    match previous {
        Previous::FailConnect(_) => {
            old.superseded.store(true, Ordering::SeqCst);
            old.connected.finish(Err(superseded_error()));
            old.shutdown();
        }
        Previous::Close(_) => {
            let events = {
                let mut io = lock(&old.io);
                if let Some(ws) = io.ws.as_mut() {
                    ws.supersede(Instant::now());
                }
                io.flush()
            };
            old.deliver(events);
            old.superseded.store(true, Ordering::SeqCst);
        }
    }
}

fn fail_connect(shared: &Arc<SocketShared>, error: Error) {
    shared.connected.finish(Err(error));
    shared.app.finished(shared.id);
}

/// The socket's reader thread: connect, then read until the connection
/// terminates.
fn run(client: &Arc<ClientInner>, shared: &Arc<SocketShared>, handshake: &ClientHandshake) {
    let (tcp, leftover) = match open(client, shared, handshake) {
        Ok(opened) => opened,
        Err(e) => {
            shared.shutdown();
            if !shared.superseded_quietly() {
                fail_connect(shared, e);
            }
            return;
        }
    };
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let mut config = ConnectionConfig::from_limits(client.ctx.limits());
    config = config.close_timeout(mpnet_core::ws::connection::DEFAULT_CLOSE_TIMEOUT);
    // Masks from the OS generator, 64 per system call. A failed generator
    // leaves zero masks: still valid frames.
    let masks = mpnet_core::ws::BatchedMasks::new(|buf: &mut [u8]| {
        buf.fill(0);
        let _ = getrandom::fill(buf);
    });
    let direct = if cfg!(any(target_os = "linux", target_os = "android")) {
        tcp.try_clone().ok()
    } else {
        None
    };
    let (events, queued) = {
        let mut io = lock(&shared.io);
        io.ws = Some(Connection::new(config, Box::new(masks)));
        io.out = Some(tx);
        io.direct = direct;
        (io.flush(), io.queued.clone())
    };
    let writer = match tcp.try_clone() {
        Ok(w) => w,
        Err(e) => {
            fail_connect(
                shared,
                Error::new(ErrorKind::Unknown, format!("socket clone failed: {e}")),
            );
            return;
        }
    };
    let writer_shared = shared.clone();
    let writer_thread = std::thread::Builder::new()
        .name("mpnet-socket-writer".into())
        .spawn(move || write_loop(writer, rx, &queued, &writer_shared));
    if let Some(id) = shared.id {
        let _ = lock(&shared.app.slots).opened(id);
    }
    // SPEC §7: success just before the open event (queued first by core).
    shared.connected.finish(Ok(()));
    shared.deliver(events);
    // Frames that came with the handshake response, after the open event.
    feed(shared, Instant::now(), &leftover);
    let events = lock(&shared.io).flush();
    shared.deliver(events);
    read_loop(tcp, shared);
    // The writer ends once the core's last bytes are written.
    {
        let mut io = lock(&shared.io);
        io.out = None;
        io.direct = None;
    }
    if let Ok(handle) = writer_thread {
        let _ = handle.join();
    }
    shared.shutdown();
}

/// TCP, TLS and the handshake, all before the connect timeout (6).
fn open(
    client: &Arc<ClientInner>,
    shared: &Arc<SocketShared>,
    handshake: &ClientHandshake,
) -> Result<(TcpStream, Vec<u8>), Error> {
    let deadline = Instant::now() + handshake.timeout();
    let target = handshake.target();
    let io_err = |e: &io::Error, doing: &str| {
        if conn::is_timeout(e) {
            handshake.timeout_error()
        } else {
            let err = tls::io_error(e, doing);
            if err.kind() == ErrorKind::Tls {
                err
            } else {
                Error::new(ErrorKind::Unknown, err.message().to_string())
            }
        }
    };
    let (mut tcp, _) = conn::tcp_connect(&target.connect_host(), target.port(), deadline)
        .map_err(|e| io_err(&e, "connecting failed"))?;
    *lock(&shared.tcp) = tcp.try_clone().ok();
    if shared.superseded_quietly() {
        return Err(superseded_error());
    }
    let mut session = if target.scheme().is_secure() {
        let name = tls::server_name(target)?;
        let config = tls::websocket_config(&client.tls);
        let mut session = ClientConnection::new(config, name).map_err(|e| tls::tls_error(&e))?;
        set_deadline(&tcp, deadline).map_err(|e| io_err(&e, "TLS"))?;
        while session.is_handshaking() {
            session
                .complete_io(&mut tcp)
                .map_err(|e| io_err(&e, "TLS handshake failed"))?;
        }
        Some(session)
    } else {
        None
    };
    // The upgrade request.
    set_deadline(&tcp, deadline).map_err(|e| io_err(&e, "sending the handshake"))?;
    match session.as_mut() {
        Some(s) => {
            s.writer()
                .write_all(handshake.request())
                .map_err(|e| io_err(&e, "sending the handshake"))?;
            while s.wants_write() {
                s.write_tls(&mut tcp)
                    .map_err(|e| io_err(&e, "sending the handshake"))?;
            }
        }
        None => tcp
            .write_all(handshake.request())
            .map_err(|e| io_err(&e, "sending the handshake"))?,
    }
    // The response.
    let mut input = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let (used, accepted) = handshake.try_response(&input)?;
        if accepted.is_some() {
            let leftover = input.split_off(used);
            lock(&shared.io).tls = session;
            tcp.set_read_timeout(None)
                .map_err(|e| io_err(&e, "socket"))?;
            tcp.set_write_timeout(None)
                .map_err(|e| io_err(&e, "socket"))?;
            return Ok((tcp, leftover));
        }
        set_deadline(&tcp, deadline).map_err(|e| io_err(&e, "reading the handshake"))?;
        let n = read_plain(&mut tcp, session.as_mut(), &mut buf, &mut input)
            .map_err(|e| io_err(&e, "reading the handshake"))?;
        if n == 0 {
            return Err(handshake.eof_error());
        }
    }
}

fn set_deadline(tcp: &TcpStream, deadline: Instant) -> io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(conn::timed_out());
    }
    tcp.set_read_timeout(Some(left))?;
    tcp.set_write_timeout(Some(left))
}

/// Reads from the socket and appends the plaintext to `out`; `Ok(0)` is the
/// end of the stream.
fn read_plain(
    tcp: &mut TcpStream,
    tls: Option<&mut ClientConnection>,
    buf: &mut [u8],
    out: &mut Vec<u8>,
) -> io::Result<usize> {
    let n = tcp.read(buf)?;
    match tls {
        None => {
            out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        Some(tls) => {
            if n == 0 {
                return Ok(0);
            }
            let before = out.len();
            tls_input(tls, &buf[..n], out)?;
            // Records may hold no plaintext yet: report progress anyway.
            Ok((out.len() - before).max(1))
        }
    }
}

/// Feeds TLS records and collects the plaintext; a clean `close_notify`
/// leaves nothing more to read.
fn tls_input(tls: &mut ClientConnection, mut wire: &[u8], out: &mut Vec<u8>) -> io::Result<bool> {
    let mut closed = false;
    while !wire.is_empty() {
        let n = tls.read_tls(&mut wire)?;
        if n == 0 {
            break;
        }
        let state = tls
            .process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        // Straight into `out`, no buffer of its own.
        let ready = state.plaintext_bytes_to_read();
        if ready > 0 {
            let at = out.len();
            out.resize(at + ready, 0);
            tls.reader()
                .read_exact(out.get_mut(at..).unwrap_or_default())?;
        }
        closed |= state.peer_has_closed();
    }
    Ok(closed)
}

/// Reads until the connection terminates; every read is decrypted and fed
/// to the core one message at a time, and its output and events passed on.
fn read_loop(mut tcp: TcpStream, shared: &Arc<SocketShared>) {
    // Room for a 64 KiB message with its frame and TLS overhead in one read.
    let mut buf = vec![0u8; 128 * 1024];
    // The read timeout last set (a system call only when it changes).
    let mut armed: Option<Duration> = None;
    loop {
        let timeout = lock(&shared.io)
            .ws
            .as_ref()
            .and_then(|ws| ws.poll_timeout());
        // Wake at least every READ_WAKE so a close() made while this read
        // blocks gets its close-handshake deadline honoured.
        let wait = timeout
            .map(|t| {
                t.saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1))
            })
            .unwrap_or(READ_WAKE)
            .min(READ_WAKE);
        if armed != Some(wait) && tcp.set_read_timeout(Some(wait)).is_ok() {
            armed = Some(wait);
        }
        let read = tcp.read(&mut buf);
        let now = Instant::now();
        match read {
            Ok(n) if n > 0 => {
                let wire = buf.get(..n).unwrap_or_default();
                if lock(&shared.io).tls.is_some() {
                    feed_tls(shared, now, wire);
                } else {
                    feed(shared, now, wire);
                }
            }
            other => {
                let mut io = lock(&shared.io);
                let Some(ws) = io.ws.as_mut() else { return };
                match other {
                    Ok(_) => ws.handle_eof(),
                    Err(e) if conn::is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {
                        ws.handle_timeout(now);
                    }
                    Err(e) => ws.handle_transport_error(Error::new(
                        ErrorKind::Unknown,
                        format!("reading failed: {e}"),
                    )),
                }
            }
        }
        let (events, terminated) = {
            let mut io = lock(&shared.io);
            let terminated = io.ws.as_ref().is_none_or(Connection::is_terminated);
            (io.flush(), terminated)
        };
        shared.deliver(events);
        if terminated {
            return;
        }
    }
}

/// Decrypts `wire` and feeds the plaintext to the core one message at a
/// time, straight from rustls' buffer (no copy of its own), delivering each
/// message's events before the next frame is read. A clean `close_notify`
/// is the end of the stream; a TLS failure fails the connection.
fn feed_tls(shared: &Arc<SocketShared>, now: Instant, mut wire: &[u8]) {
    use std::io::BufRead;
    let mut peer_closed = false;
    loop {
        let events = {
            let mut io = lock(&shared.io);
            let io = &mut *io;
            let (Some(ws), Some(tls)) = (io.ws.as_mut(), io.tls.as_mut()) else {
                return;
            };
            if ws.is_terminated() {
                return;
            }
            let mut reader = tls.reader();
            match reader.fill_buf() {
                Ok(plain) if !plain.is_empty() => {
                    let used = ws.handle_input_step(now, plain);
                    reader.consume(used);
                    if used == 0 {
                        // Terminated: the rest is not wanted.
                        return;
                    }
                }
                // No plaintext ready: decrypt more of `wire`, if any.
                _ if wire.is_empty() => break,
                _ => {
                    let step = tls.read_tls(&mut wire).and_then(|read| {
                        let state = tls
                            .process_new_packets()
                            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                        Ok((read, state.peer_has_closed()))
                    });
                    match step {
                        Ok((read, closed)) => {
                            peer_closed |= closed;
                            if read == 0 {
                                // rustls takes nothing more (close_notify seen).
                                wire = &[];
                            }
                        }
                        Err(e) => {
                            ws.handle_transport_error(tls::io_error(&e, "reading failed"));
                            return;
                        }
                    }
                }
            }
            io.flush()
        };
        shared.deliver(events);
    }
    if peer_closed {
        if let Some(ws) = lock(&shared.io).ws.as_mut() {
            ws.handle_eof();
        }
    }
}

/// Feeds `input` one message at a time, delivering each message's events
/// (so a listener's answer is sent) before the next frame is read.
fn feed(shared: &Arc<SocketShared>, now: Instant, mut input: &[u8]) {
    while !input.is_empty() {
        let (used, events) = {
            let mut io = lock(&shared.io);
            let Some(ws) = io.ws.as_mut() else { return };
            if ws.is_terminated() {
                return;
            }
            let used = ws.handle_input_step(now, input);
            (used, io.flush())
        };
        shared.deliver(events);
        if used == 0 {
            return;
        }
        input = input.get(used..).unwrap_or_default();
    }
}

/// The writer thread: writes what the core queued, in order.
fn write_loop(
    mut tcp: TcpStream,
    rx: mpsc::Receiver<Vec<u8>>,
    queued: &AtomicUsize,
    shared: &Arc<SocketShared>,
) {
    while let Ok(bytes) = rx.recv() {
        let written = tcp.write_all(&bytes);
        if written.is_ok() {
            queued.fetch_sub(1, Ordering::SeqCst);
        }
        if let Err(e) = written {
            let events = {
                let mut io = lock(&shared.io);
                if let Some(ws) = io.ws.as_mut() {
                    ws.handle_transport_error(Error::new(
                        ErrorKind::SendFailed,
                        format!("sending failed: {e}"),
                    ));
                }
                io.flush()
            };
            shared.deliver(events);
            let _ = tcp.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// The app-level socket API of a client: `onSocketOpen` & co., and the app
/// socket's `sendSocketMessage` / `closeSocket`.
impl AppSockets {
    pub(crate) fn send(&self, opts: &SendOptions) -> Result<(), Error> {
        let socket = lock(&self.app_socket).clone().ok_or_else(not_connected)?;
        socket.send(opts)
    }
    pub(crate) fn close(&self, opts: &CloseOptions) -> Result<(), Error> {
        let socket = lock(&self.app_socket).clone().ok_or_else(not_connected)?;
        socket.close(opts)
    }
    pub(crate) fn listeners(&self) -> &SharedListeners {
        &self.scope.listeners
    }
}
