//! `my.connectSocket` and the socket events (SPEC §7) on threads.
//!
//! Each socket has a reader thread (connect, TLS, handshake, then reading)
//! and a writer thread (writing what the socket did not take at once). The
//! core's [`Link`] (the `Connection` and its TLS session) sits behind one
//! lock that is never held while a socket blocks: reads happen on the raw
//! TCP stream outside the lock, and writes never block under it. On Linux the thread that queued the bytes
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
use mpnet_core::tls_session::TlsSession;
use mpnet_core::ws::app::{superseded_error, Previous, SlotKind, SocketId, SocketSlots};
use mpnet_core::ws::listeners::{
    CloseListener, ErrorListener, MessageListener, OpenListener, SharedListeners, SocketListeners,
};
use mpnet_core::ws::{
    ClientHandshake, CloseOptions, ConnectOptions, Connection, ConnectionConfig, Link, SendOptions,
    SocketEvent,
};
use mpnet_core::{tls, Error, ErrorKind};

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
    /// The connection and its TLS session; `None` until the handshake has
    /// succeeded.
    link: Option<Link>,
    /// Bytes for the writer thread.
    out: Option<mpsc::Sender<Vec<u8>>>,
    /// The socket, for the direct writes (`None`: all through the writer).
    direct: Option<TcpStream>,
    /// Buffers given to the writer thread and not yet fully written: a
    /// direct write is made only when this is 0, so bytes keep their order.
    queued: Arc<AtomicUsize>,
}

impl Io {
    fn new() -> Io {
        Io {
            link: None,
            out: None,
            direct: None,
            queued: Arc::default(),
        }
    }

    /// The connection, once open.
    fn ws(&mut self) -> Option<&mut Connection> {
        self.link.as_mut().map(|l| &mut l.ws)
    }

    /// Writes what the core queued (TLS records for `wss`): at once when
    /// the socket takes it, else through the writer thread. Returns the
    /// events to deliver.
    fn flush(&mut self) -> Vec<SocketEvent> {
        let Io {
            link,
            out,
            direct,
            queued,
        } = self;
        let Some(link) = link.as_mut() else {
            return Vec::new();
        };
        link.transmit_with(|bytes| {
            let mut done = 0;
            if let (Some(tcp), 0) = (direct.as_ref(), queued.load(Ordering::SeqCst)) {
                done = write_now(tcp, bytes);
            }
            let rest = bytes.get(done..).unwrap_or_default();
            if let (Some(out), false) = (out.as_ref(), rest.is_empty()) {
                queued.fetch_add(1, Ordering::SeqCst);
                if out.send(rest.to_vec()).is_err() {
                    return Err(Error::new(
                        ErrorKind::SendFailed,
                        "the connection is broken",
                    ));
                }
            }
            Ok(())
        });
        std::iter::from_fn(|| link.ws.poll_event()).collect()
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
            let ws = io.ws().ok_or_else(not_connected)?;
            ws.send(opts)?;
            io.flush()
        };
        self.deliver(events);
        Ok(())
    }

    fn close(self: &Arc<Self>, opts: &CloseOptions) -> Result<(), Error> {
        let events = {
            let mut io = lock(&self.io);
            let ws = io.ws().ok_or_else(not_connected)?;
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
                if let Some(ws) = io.ws() {
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
    let (tcp, session, leftover) = match open(client, shared, handshake) {
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
        io.link = Some(Link::new(
            Connection::new(config, Box::new(masks)),
            session,
            leftover,
        ));
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
    feed(shared, Instant::now(), None);
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

/// TCP, TLS and the handshake, all before the connect timeout (6). Gives
/// the socket, the TLS session of a `wss` one and the plaintext that came
/// after the handshake response.
fn open(
    client: &Arc<ClientInner>,
    shared: &Arc<SocketShared>,
    handshake: &ClientHandshake,
) -> Result<(TcpStream, Option<TlsSession>, Vec<u8>), Error> {
    let deadline = Instant::now() + handshake.timeout();
    let target = handshake.target();
    let io_err = |e: &io::Error, doing: &str| handshake.io_error(e, doing);
    let (tcp, _) = conn::tcp_connect(&target.connect_host(), target.port(), deadline)
        .map_err(|e| io_err(&e, "connecting failed"))?;
    *lock(&shared.tcp) = tcp.try_clone().ok();
    if shared.superseded_quietly() {
        return Err(superseded_error());
    }
    let mut sock = tcp
        .try_clone()
        .map(|t| conn::SharedTcp::new(Arc::new(t)))
        .map_err(|e| io_err(&e, "socket"))?;
    // Every socket call below is armed for the connect deadline (6), so a
    // peer that answers a byte at a time cannot stretch it.
    let mut timeouts = None;
    let mut arm = || conn::arm_timeouts(&tcp, &mut timeouts, deadline);
    let mut session = if target.scheme().is_secure() {
        let name = tls::server_name(target)?;
        let config = tls::websocket_config(&client.tls);
        let mut session = TlsSession::new(config, name).map_err(|e| tls::socket_tls_error(&e))?;
        conn::handshake(&mut session, &mut sock, &mut arm)
            .map_err(|e| io_err(&e, "TLS handshake failed"))?;
        Some(session)
    } else {
        None
    };
    // The upgrade request.
    match session.as_mut() {
        Some(s) => s
            .encrypt_all(handshake.request())
            .map_err(conn::tls_io)
            .and_then(|()| arm())
            .and_then(|()| conn::send_queued(s, &mut sock)),
        None => arm().and_then(|()| sock.write_all(handshake.request())),
    }
    .map_err(|e| io_err(&e, "sending the handshake"))?;
    // The response.
    let mut input = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let (used, accepted) = handshake.try_response(&input)?;
        if accepted.is_some() {
            let leftover = input.split_off(used);
            tcp.set_read_timeout(None)
                .map_err(|e| io_err(&e, "socket"))?;
            tcp.set_write_timeout(None)
                .map_err(|e| io_err(&e, "socket"))?;
            return Ok((tcp, session, leftover));
        }
        let n = match session.as_mut() {
            Some(s) => conn::read_plaintext(s, &mut sock, &mut buf, &mut arm),
            None => arm().and_then(|()| sock.read(&mut buf)),
        }
        .map_err(|e| io_err(&e, "reading the handshake"))?;
        if n == 0 {
            return Err(handshake.eof_error());
        }
        input.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
}

/// Reads until the connection terminates; every read is fed to the core
/// one message at a time (through the TLS session for `wss`), and its
/// output and events passed on.
fn read_loop(mut tcp: TcpStream, shared: &Arc<SocketShared>) {
    // Room for a 64 KiB message with its frame and TLS overhead in one
    // read; the TLS session's own buffer is this size too, so the two are
    // swapped rather than copied (`Link::receive`).
    let mut buf = vec![0u8; mpnet_core::tls_session::READ_CHUNK];
    // The read timeout last set (a system call only when it changes).
    let mut armed: Option<Duration> = None;
    loop {
        let timeout = lock(&shared.io)
            .link
            .as_ref()
            .and_then(|l| l.ws.poll_timeout());
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
            Ok(n) if n > 0 => feed(shared, now, Some((&mut buf, n))),
            other => {
                let mut io = lock(&shared.io);
                let Some(ws) = io.ws() else { return };
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
            let terminated = io.ws().is_none_or(|ws| ws.is_terminated());
            (io.flush(), terminated)
        };
        shared.deliver(events);
        if terminated {
            return;
        }
    }
}

/// Gives the core what was read (the first `n` bytes of the buffer, which
/// it may swap for another: see `Link::receive`), then steps it one
/// message at a time, delivering each message's events (so a listener's
/// answer is sent) before the next frame is read. `None`: only what the
/// core already holds (what came with the handshake response).
fn feed(shared: &Arc<SocketShared>, now: Instant, mut read: Option<(&mut Vec<u8>, usize)>) {
    loop {
        let (fed, events) = {
            let mut io = lock(&shared.io);
            let Some(link) = io.link.as_mut() else { return };
            if let Some((buf, n)) = read.take() {
                link.receive(buf, n);
            }
            let fed = link.step(now);
            (fed, io.flush())
        };
        shared.deliver(events);
        if !fed {
            return;
        }
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
                if let Some(ws) = io.ws() {
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
