//! `my.connectSocket` and the socket events (SPEC §7) on threads.
//!
//! Each socket has a reader thread (connect, TLS, handshake, then reading)
//! and a writer thread (writing what the socket did not take at once). The
//! core's [`Link`] (the `Connection` and its TLS session) sits behind one
//! lock that is never held while a socket blocks: reads happen on the raw
//! TCP stream outside the lock, and writes never block under it.
//!
//! Which write goes where is the core's (`mpnet_core::ws::outlet`): at
//! once, by the thread that queued the bytes, when the writer thread holds
//! nothing; else through the writer thread. This module says how to write
//! without blocking (on Linux, a non-blocking send; elsewhere everything
//! goes through the writer thread) and how to reach the writer. Events
//! reach listeners through the core's `mpnet_core::ws::route`: in order,
//! one at a time, with no lock held, so a listener may call `send`,
//! `close` or `connect_socket` itself. The rules (one socket per app, at
//! most 5 tasks, event order) are the core's (`mpnet_core::ws`).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use mpnet_core::dispatch::Queued;
use mpnet_core::task::{Callbacks, Completion};
use mpnet_core::tls_session::TlsSession;
use mpnet_core::ws::app::{superseded_error, Previous, SlotKind, SocketId};
use mpnet_core::ws::listeners::{
    CloseListener, ErrorListener, MessageListener, OpenListener, SharedListeners, SocketListeners,
};
use mpnet_core::ws::outlet::{feed, not_connected, Outlet, SocketIo, WriterQueue};
use mpnet_core::ws::route::{AppRoute, EventRoute};
use mpnet_core::ws::{
    ClientHandshake, CloseOptions, ConnectOptions, Connection, Link, SendOptions, SocketEvent,
};
use mpnet_core::{tls, Error, ErrorKind};

use crate::client::ClientInner;
use crate::conn;
use crate::spin::{self, SpinGate};

/// The longest a reader blocks before looking at the close deadline again.
const READ_WAKE: Duration = Duration::from_millis(250);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where a socket's bytes go: the socket itself, written without blocking
/// (Linux), and the writer thread.
struct Wire {
    direct: Option<TcpStream>,
    writer: mpsc::Sender<Vec<u8>>,
}

impl Outlet for Wire {
    fn write_now(&self, bytes: &[u8]) -> usize {
        self.direct.as_ref().map_or(0, |tcp| write_now(tcp, bytes))
    }
    fn to_writer(&self, bytes: Vec<u8>) -> bool {
        self.writer.send(bytes).is_ok()
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
    /// Where its events go (its id is `None` when the slot table refused
    /// the connect).
    route: Arc<EventRoute>,
    io: Mutex<SocketIo<Wire>>,
    tcp: Mutex<Option<TcpStream>>,
    connected: Completion<()>,
    /// Notified when `connected` ends (for [`SocketTask::wait_connected`]).
    connected_signal: Arc<(Mutex<()>, Condvar)>,
}

impl SocketShared {
    /// Queues `events`, made under the `io` lock the caller still holds,
    /// for delivery once it is released (see `EventRoute::queue`).
    fn queue(&self, events: Vec<SocketEvent>) -> Queued<'_> {
        self.route.queue(events)
    }

    /// A superseded socket delivers nothing after its close event (which
    /// `connect_socket` delivered already).
    fn superseded_quietly(&self) -> bool {
        self.route.is_superseded()
    }

    fn shutdown(&self) {
        if let Some(tcp) = lock(&self.tcp).as_ref() {
            let _ = tcp.shutdown(Shutdown::Both);
        }
    }

    fn send(&self, opts: &SendOptions) -> Result<(), Error> {
        let queued = {
            let mut io = lock(&self.io);
            self.queue(io.send(opts)?)
        };
        queued.run();
        Ok(())
    }

    fn close(&self, opts: &CloseOptions) -> Result<(), Error> {
        let queued = {
            let mut io = lock(&self.io);
            let events = io.close(Instant::now(), opts)?;
            self.route.closing();
            self.queue(events)
        };
        queued.run();
        Ok(())
    }
}

/// The sockets of one app: the slot table, the app socket and the
/// app-level listeners.
#[derive(Default)]
pub(crate) struct AppSockets {
    route: Arc<AppRoute>,
    app_socket: Mutex<Option<Arc<SocketShared>>>,
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
            .field("id", &self.shared.route.id().map(SocketId::get))
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
        self.shared.route.listeners().on_open(cb);
    }
    /// `onMessage`.
    pub fn on_message(&self, cb: Arc<MessageListener>) {
        self.shared.route.listeners().on_message(cb);
    }
    /// `onError`.
    pub fn on_error(&self, cb: Arc<ErrorListener>) {
        self.shared.route.listeners().on_error(cb);
    }
    /// `onClose`.
    pub fn on_close(&self, cb: Arc<CloseListener>) {
        self.shared.route.listeners().on_close(cb);
    }
    /// `offOpen(cb)`, or every open listener with `None`.
    pub fn off_open(&self, cb: Option<&Arc<OpenListener>>) {
        self.shared.route.listeners().off_open(cb);
    }
    /// `offMessage(cb)`, or all with `None`.
    pub fn off_message(&self, cb: Option<&Arc<MessageListener>>) {
        self.shared.route.listeners().off_message(cb);
    }
    /// `offError(cb)`, or all with `None`.
    pub fn off_error(&self, cb: Option<&Arc<ErrorListener>>) {
        self.shared.route.listeners().off_error(cb);
    }
    /// `offClose(cb)`, or all with `None`.
    pub fn off_close(&self, cb: Option<&Arc<CloseListener>>) {
        self.shared.route.listeners().off_close(cb);
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
    let mut key = [0u8; 16];
    let planned = getrandom::fill(&mut key)
        .map_err(|e| Error::new(ErrorKind::Unknown, format!("no randomness: {e}")))
        .and_then(|()| app.route.plan_connect(&client.ctx, &opts, key));
    let id = planned.as_ref().ok().map(|(_, plan)| plan.id);
    let kind = SlotKind::for_multiple(opts.multiple);
    let signal = Arc::new((Mutex::new(()), Condvar::new()));
    let notify = signal.clone();
    let shared = Arc::new(SocketShared {
        route: EventRoute::new(app.route.clone(), id, kind, listeners),
        io: Mutex::new(SocketIo::new()),
        tcp: Mutex::new(None),
        connected: Completion::new(callbacks, move || {
            let _guard = lock(&notify.0);
            notify.1.notify_all();
        }),
        connected_signal: signal,
    });
    let task = SocketTask {
        shared: shared.clone(),
    };
    let (handshake, plan) = match planned {
        Ok(planned) => planned,
        Err(e) => {
            shared.connected.finish(Err(e));
            return task;
        }
    };
    if kind == SlotKind::App {
        let old = lock(&app.app_socket).replace(shared.clone());
        if let (Some(old), Some(previous)) = (old, plan.previous) {
            replace_app_socket(&old, previous);
        }
    }
    let inner = client.clone();
    let worker = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("mpnet-socket".into())
        .spawn(move || {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run(&inner, &worker, &handshake);
            }));
            // Out of the unwind (the hook printed the panic): a listener
            // that panics again now ends this thread, nothing worse.
            if ran.is_err() {
                end_unfinished(&worker);
            }
        });
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
            old.route.supersede();
            old.connected.finish(Err(superseded_error()));
            old.shutdown();
        }
        Previous::Close(_) => {
            // Superseded under the lock its close event is queued under: no
            // event of its own can come after that close.
            let queued = {
                let mut io = lock(&old.io);
                let queued = old.queue(io.supersede(Instant::now()));
                old.route.supersede();
                queued
            };
            queued.run();
        }
    }
}

fn fail_connect(shared: &Arc<SocketShared>, error: Error) {
    shared.connected.finish(Err(error));
    shared.route.finished();
}

/// Ends a socket whose reader thread panicked before the connection ended
/// (a listener or callback it ran panicked): its connect fails, or its
/// error and close events are delivered, so the rules still hold
/// (`complete` once, one close) and nothing waits for it forever.
fn end_unfinished(shared: &Arc<SocketShared>) {
    shared.shutdown();
    let error = Error::new(
        ErrorKind::Unknown,
        "the socket's thread panicked (a listener or callback it ran) before the socket closed",
    );
    if !shared.connected.is_finished() {
        fail_connect(shared, error);
        return;
    }
    let queued = {
        let mut io = lock(&shared.io);
        let events = io.abandon(error);
        // The writer thread ends once its queue is gone.
        io.close_outlet();
        shared.queue(events)
    };
    queued.run();
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
    // Masks from the OS generator, 64 per system call. A failed generator
    // leaves zero masks: still valid frames.
    let ws = Connection::for_app(client.ctx.limits(), |buf: &mut [u8]| {
        buf.fill(0);
        let _ = getrandom::fill(buf);
    });
    let direct = if cfg!(any(target_os = "linux", target_os = "android")) {
        tcp.try_clone().ok()
    } else {
        None
    };
    let wire = Wire { direct, writer: tx };
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
    let (opened, queue) = {
        let mut io = lock(&shared.io);
        io.open(Link::new(ws, session, leftover), wire);
        let events = io.flush();
        let _ = shared.route.opened();
        // SPEC §7: success just before the open event (queued first by
        // core), in order with whatever the socket delivers next.
        let done = shared.clone();
        let opened = shared.route.queue_after(
            move || {
                done.connected.finish(Ok(()));
            },
            events,
        );
        (opened, io.writer_queue())
    };
    let writer_shared = shared.clone();
    let writer_thread = std::thread::Builder::new()
        .name("mpnet-socket-writer".into())
        .spawn(move || write_loop(writer, rx, &queue, &writer_shared));
    opened.run();
    // Frames that came with the handshake response, after the open event.
    feed(&shared.io, Instant::now(), None, &shared.route);
    read_loop(tcp, shared, client);
    // The writer ends once the core's last bytes are written.
    lock(&shared.io).close_outlet();
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
    let deadline = handshake.deadline(Instant::now());
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
    let (mut input, mut checked) = (Vec::new(), 0);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let (used, accepted) = handshake.try_response_growing(&input, &mut checked)?;
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
/// output and events passed on. Each read polls for up to the client's
/// budget before it blocks (`mpnet_core::spin`).
fn read_loop(mut tcp: TcpStream, shared: &Arc<SocketShared>, client: &ClientInner) {
    // Room for a 64 KiB message with its frame and TLS overhead in one
    // read; the TLS session's own buffer is this size too, so the two are
    // swapped rather than copied (`Link::receive`).
    let mut buf = vec![0u8; mpnet_core::tls_session::READ_CHUNK];
    // The read timeout last set (a system call only when it changes).
    let mut armed: Option<Duration> = None;
    let mut gate = SpinGate::default();
    loop {
        let timeout = lock(&shared.io).link().and_then(|l| l.ws.poll_timeout());
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
        let read = match spin::read_soon(&tcp, &mut buf, &mut gate, client.read_spin()) {
            Some(read) => read,
            None => tcp.read(&mut buf),
        };
        let now = Instant::now();
        match read {
            Ok(n) if n > 0 => feed(&shared.io, now, Some((&mut buf, n)), &shared.route),
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
        let (queued, terminated) = {
            let mut io = lock(&shared.io);
            let terminated = io.ws().is_none_or(|ws| ws.is_terminated());
            (shared.queue(io.flush()), terminated)
        };
        queued.run();
        if terminated {
            return;
        }
    }
}

/// The writer thread: writes what the core queued, in order.
fn write_loop(
    mut tcp: TcpStream,
    rx: mpsc::Receiver<Vec<u8>>,
    queue: &WriterQueue,
    shared: &Arc<SocketShared>,
) {
    while let Ok(bytes) = rx.recv() {
        let written = tcp.write_all(&bytes);
        if written.is_ok() {
            queue.written();
        }
        if let Err(e) = written {
            let queued = {
                let mut io = lock(&shared.io);
                if let Some(ws) = io.ws() {
                    ws.handle_transport_error(Error::new(
                        ErrorKind::SendFailed,
                        format!("sending failed: {e}"),
                    ));
                }
                shared.queue(io.flush())
            };
            queued.run();
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
        self.route.listeners()
    }
}
