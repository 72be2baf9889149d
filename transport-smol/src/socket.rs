//! `my.connectSocket` and the socket events (SPEC §7) as async tasks.
//!
//! Each socket has a reader task (connect, TLS, handshake, then reading)
//! and a writer task (writing what the socket did not take at once), both
//! spawned on the client's executor. The core's TLS session
//! (`mpnet_core::tls_session`) and its `Connection` sit behind one lock
//! that is never held across an await: the reader reads the raw socket
//! with no lock held and then feeds the session and the core under it.
//! Whatever the core queues is encrypted under the lock and written at once
//! by the thread that queued it (a `send` caller, or the reader answering a
//! ping) with a non-blocking write when the writer task has nothing
//! queued; what the socket does not take goes through a channel to the
//! writer task. So sending from any thread while messages arrive never
//! waits and never deadlocks, whatever the peer does, and the common case
//! costs no task hand-off. This is mpnet-blocking's design, with a task
//! for its writer thread.
//!
//! Events reach listeners through a [`Dispatcher`] (`mpnet_core::dispatch`):
//! delivered in order, one at a time, with no lock held, so a listener may
//! call `send`, `close` or `connect_socket` itself. The app socket's events
//! and the app-level listeners (`on_socket_open`, ...) share the app's
//! dispatcher, which is what puts a replaced socket's close event before
//! the new socket's open event. The rules (one socket per app, at most 5
//! tasks, event order) are the core's (`mpnet_core::ws`). Listeners run on
//! the executor's threads (or on the thread that calls `send`/`close`):
//! keep them short.

use std::io;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_channel::{Receiver, Sender};
use async_io::{Async, Timer};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use mpnet_core::dispatch::Dispatcher;
use mpnet_core::task::{Callbacks, Completion};
use mpnet_core::tls_session::TlsSession;
use mpnet_core::ws::app::{superseded_error, Previous, SlotKind, SocketId, SocketSlots};
use mpnet_core::ws::connection::DEFAULT_CLOSE_TIMEOUT;
use mpnet_core::ws::listeners::{
    CloseListener, ErrorListener, MessageListener, OpenListener, SharedListeners, SocketListeners,
};
use mpnet_core::ws::{
    ClientHandshake, CloseOptions, ConnectOptions, Connection, ConnectionConfig, Link, SendOptions,
    SocketEvent,
};
use mpnet_core::{tls, Error, ErrorKind};

use crate::cancel::Cancel;
use crate::client::{Client, ClientInner};
use crate::conn;

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
    /// Bytes for the writer task.
    out: Option<Sender<Vec<u8>>>,
    /// The socket, for the writes made at once (`None`: all through the
    /// writer task).
    direct: Option<Arc<Async<TcpStream>>>,
    /// Buffers given to the writer task and not yet fully written: a
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
    /// the socket takes it, else through the writer task. Returns the
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
        link.transmit_with(|bytes| pass_on(bytes, direct, queued, out));
        std::iter::from_fn(|| link.ws.poll_event()).collect()
    }
}

/// Writes what the socket takes of `bytes` now, without waiting, when the
/// writer task has nothing queued; the rest goes to the writer task (which
/// meets the error, if the socket failed).
fn pass_on(
    bytes: &[u8],
    direct: &Option<Arc<Async<TcpStream>>>,
    queued: &AtomicUsize,
    out: &Option<Sender<Vec<u8>>>,
) -> Result<(), Error> {
    let mut done = 0;
    if let (Some(tcp), 0) = (direct, queued.load(Ordering::SeqCst)) {
        done = write_now(tcp.get_ref(), bytes);
    }
    let rest = bytes.get(done..).unwrap_or_default();
    if let (Some(out), false) = (out, rest.is_empty()) {
        queued.fetch_add(1, Ordering::SeqCst);
        if out.try_send(rest.to_vec()).is_err() {
            return Err(Error::new(
                ErrorKind::SendFailed,
                "the connection is broken",
            ));
        }
    }
    Ok(())
}

/// Writes what the (non-blocking) socket takes of `bytes`; returns how
/// many bytes were written. A full buffer or an error stops it.
fn write_now(mut tcp: &TcpStream, bytes: &[u8]) -> usize {
    use std::io::Write;
    let mut done = 0;
    while let Some(rest) = bytes.get(done..).filter(|r| !r.is_empty()) {
        match tcp.write(rest) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    done
}

/// One socket (a `SocketTask`, or the app socket).
struct SocketShared {
    /// `None` when the connect was refused before it started.
    id: Option<SocketId>,
    kind: SlotKind,
    io: Mutex<Io>,
    own: Scope,
    app: Arc<AppSockets>,
    /// The TCP socket, shut down to end the reader and the writer.
    tcp: Mutex<Option<TcpStream>>,
    superseded: AtomicBool,
    connected: Completion<()>,
    /// Closed once the connect's result is stored: blocking and async
    /// waiters both wait on it.
    connected_rx: Receiver<()>,
    /// Stops a connect in progress (superseded by a newer one).
    stop: Cancel,
    /// Wakes the reader to look at the core's deadline again (a close
    /// started from another thread).
    rearm: (Sender<()>, Receiver<()>),
}

impl SocketShared {
    fn new(
        id: Option<SocketId>,
        kind: SlotKind,
        app: Arc<AppSockets>,
        callbacks: Callbacks<()>,
        listeners: SocketListeners,
    ) -> Arc<Self> {
        let (done, connected_rx) = async_channel::bounded(1);
        Arc::new(SocketShared {
            id,
            kind,
            io: Mutex::new(Io::new()),
            own: Scope {
                listeners: SharedListeners::new(listeners),
                dispatcher: Dispatcher::default(),
            },
            app,
            tcp: Mutex::new(None),
            superseded: AtomicBool::new(false),
            connected: Completion::new(callbacks, move || {
                done.close();
            }),
            connected_rx,
            stop: Cancel::default(),
            rearm: async_channel::bounded(1),
        })
    }

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

    fn rearm(&self) {
        let _ = self.rearm.0.try_send(());
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
        self.rearm();
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
    /// 11 when `isBuffer` data is not base64. Never waits: the frame is
    /// queued for the socket's writer task.
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
    /// Blocks the thread until the connect has succeeded or failed. Not
    /// for use inside async code (use [`connected`](Self::connected) there),
    /// nor inside a listener.
    pub fn wait_connected(&self) -> Result<(), Error> {
        loop {
            if let Some(r) = self.shared.connected.result() {
                return r;
            }
            // Returns once the channel is closed, after the result is stored.
            let _ = self.shared.connected_rx.recv_blocking();
        }
    }
    /// Resolves once the connect has succeeded or failed. Dropping this
    /// future changes nothing (use [`close`](Self::close)).
    pub async fn connected(&self) -> Result<(), Error> {
        loop {
            if let Some(r) = self.shared.connected.result() {
                return r;
            }
            let _ = self.shared.connected_rx.recv().await;
        }
    }
}

/// Starts `connectSocket` (SPEC §7). Returns at once; the connect's
/// `success` (just before the open event) or `fail` runs from the socket's
/// reader task, or at once for options errors and refusals.
pub(crate) fn connect_socket(
    client: &Client,
    opts: ConnectOptions,
    callbacks: Callbacks<()>,
    listeners: SocketListeners,
) -> SocketTask {
    let app = client.inner.sockets.clone();
    let kind = if opts.multiple {
        SlotKind::Task
    } else {
        SlotKind::App
    };
    // The options first: a connect with bad options replaces nothing
    // (`SocketSlots::connect`).
    let mut key = [0u8; 16];
    let planned = getrandom::fill(&mut key)
        .map_err(|e| Error::new(ErrorKind::Unknown, format!("no randomness: {e}")))
        .and_then(|()| ClientHandshake::new(&client.inner.ctx, &opts, key))
        .and_then(|h| Ok((h, lock(&app.slots).connect(opts.multiple)?)));
    let (handshake, plan) = match planned {
        Ok(planned) => planned,
        Err(e) => {
            let shared = SocketShared::new(None, kind, app, callbacks, listeners);
            shared.connected.finish(Err(e));
            return SocketTask { shared };
        }
    };
    let shared = SocketShared::new(Some(plan.id), kind, app.clone(), callbacks, listeners);
    if kind == SlotKind::App {
        let old = lock(&app.app_socket).replace(shared.clone());
        if let (Some(old), Some(previous)) = (old, plan.previous) {
            replace_app_socket(&old, previous);
        }
    }
    // Both tasks are spawned here, so that neither holds the executor (a
    // host's executor may go away, dropping them): the writer waits for
    // its half of the stream, which the reader hands over once open.
    let (hand_over, handed) = async_channel::bounded(1);
    let writer = client.spawn(write_loop(handed, shared.clone()));
    let reader = shared.clone();
    let inner = client.inner.clone();
    client
        .spawn(async move {
            let unfinished = Unfinished(Some(reader.clone()));
            run(&inner, &reader, &handshake, hand_over, writer).await;
            unfinished.disarm();
        })
        .detach();
    SocketTask { shared }
}

/// What the reader hands the writer once the socket is open: the socket
/// and the queue of bytes to write.
type WriterHalf = (Arc<Async<TcpStream>>, Receiver<Vec<u8>>);

/// How much one read takes from the kernel: a 64 KiB message with its
/// frame and TLS overhead in one read. The TLS session's own buffer is
/// this size too, so the two are swapped rather than copied
/// (`Link::receive`).
const READ_BUFFER: usize = mpnet_core::tls_session::READ_CHUNK;

/// An open socket: TCP, the TLS session of a `wss` one, and the plaintext
/// that came after the handshake response.
struct Opened {
    tcp: Async<TcpStream>,
    tls: Option<TlsSession>,
    leftover: Vec<u8>,
}

/// The old app socket when a new `connectSocket` comes (SPEC §7): a connect
/// still in progress fails with 2; an open socket gets its close event
/// (1000) now, before anything of the new one, and closes in the background.
fn replace_app_socket(old: &Arc<SocketShared>, previous: Previous) {
    match previous {
        Previous::FailConnect(_) => {
            old.superseded.store(true, Ordering::SeqCst);
            old.connected.finish(Err(superseded_error()));
            old.stop.cancel();
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
            old.rearm();
        }
    }
}

fn fail_connect(shared: &Arc<SocketShared>, error: Error) {
    shared.connected.finish(Err(error));
    shared.app.finished(shared.id);
}

/// Ends a socket whose reader task is dropped before the connection ended
/// (an executor shut down with it in): its connect fails, or its error and
/// close events are delivered, so the rules still hold (one close).
struct Unfinished(Option<Arc<SocketShared>>);

impl Unfinished {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        let Some(shared) = self.0.take() else {
            return;
        };
        shared.shutdown();
        let error = Error::new(
            ErrorKind::Unknown,
            "the executor dropped the socket's task before the socket closed",
        );
        if !shared.connected.is_finished() {
            fail_connect(&shared, error);
            return;
        }
        let events = {
            let mut io = lock(&shared.io);
            match io.ws() {
                Some(ws) if !ws.is_terminated() => {
                    ws.handle_transport_error(error);
                    io.flush()
                }
                _ => Vec::new(),
            }
        };
        shared.deliver(events);
    }
}

/// The socket's reader task: connect, then read until the connection
/// terminates.
async fn run(
    client: &ClientInner,
    shared: &Arc<SocketShared>,
    handshake: &ClientHandshake,
    hand_over: Sender<WriterHalf>,
    writer: smol::Task<()>,
) {
    let opened = match shared.stop.run(open(client, shared, handshake)).await {
        Some(Ok(opened)) => opened,
        Some(Err(e)) => {
            shared.shutdown();
            if !shared.superseded_quietly() {
                fail_connect(shared, e);
            }
            return;
        }
        // Superseded: its connect has failed with 2 already.
        None => {
            shared.shutdown();
            return;
        }
    };
    let Opened { tcp, tls, leftover } = opened;
    let tcp = Arc::new(tcp);
    let (tx, rx) = async_channel::unbounded::<Vec<u8>>();
    let config =
        ConnectionConfig::from_limits(client.ctx.limits()).close_timeout(DEFAULT_CLOSE_TIMEOUT);
    // Masks from the OS generator, 64 per system call. A failed generator
    // leaves zero masks: still valid frames.
    let masks = mpnet_core::ws::BatchedMasks::new(|buf: &mut [u8]| {
        buf.fill(0);
        let _ = getrandom::fill(buf);
    });
    let events = {
        let mut io = lock(&shared.io);
        io.link = Some(Link::new(
            Connection::new(config, Box::new(masks)),
            tls,
            leftover,
        ));
        io.out = Some(tx);
        io.direct = Some(tcp.clone());
        io.flush()
    };
    let _ = hand_over.try_send((tcp.clone(), rx));
    if let Some(id) = shared.id {
        if lock(&shared.app.slots).opened(id).is_err() {
            // Superseded as the handshake ended (its connect failed with
            // 2): dropped without any event.
            shared.shutdown();
            return;
        }
    }
    // SPEC §7: success just before the open event (queued first by core).
    shared.connected.finish(Ok(()));
    shared.deliver(events);
    // Frames that came with the handshake response (and, under TLS, any
    // records read with it), after the open event.
    feed(shared, Instant::now(), None);
    read_loop(&tcp, shared).await;
    // The writer ends once the core's last bytes are written; a peer that
    // takes none gets the close timeout.
    {
        let mut io = lock(&shared.io);
        io.out = None;
        io.direct = None;
    }
    let limit = async {
        Timer::after(DEFAULT_CLOSE_TIMEOUT).await;
    };
    future::or(writer, limit).await;
    shared.shutdown();
}

/// TCP, TLS and the handshake, all before the connect timeout (6).
async fn open(
    client: &ClientInner,
    shared: &SocketShared,
    handshake: &ClientHandshake,
) -> Result<Opened, Error> {
    let deadline = Instant::now() + handshake.timeout();
    let target = handshake.target();
    let io_err = |e: &io::Error, doing: &str| handshake.io_error(e, doing);
    let (tcp, _) = conn::tcp_connect(&target.connect_host(), target.port(), deadline)
        .await
        .map_err(|e| io_err(&e, "connecting failed"))?;
    *lock(&shared.tcp) = tcp.get_ref().try_clone().ok();
    let mut session = if target.scheme().is_secure() {
        let name = tls::server_name(target)?;
        let config = tls::websocket_config(&client.tls);
        let mut session = TlsSession::new(config, name).map_err(|e| tls::socket_tls_error(&e))?;
        conn::before(deadline, conn::handshake(&tcp, &mut session))
            .await
            .map_err(|e| io_err(&e, "TLS handshake failed"))?;
        Some(session)
    } else {
        None
    };
    // The upgrade request.
    conn::before(
        deadline,
        conn::send_all(&tcp, session.as_mut(), handshake.request()),
    )
    .await
    .map_err(|e| io_err(&e, "sending the handshake"))?;
    // The response.
    let mut input = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let (used, accepted) = handshake.try_response(&input)?;
        if accepted.is_some() {
            let leftover = input.split_off(used);
            return Ok(Opened {
                tcp,
                tls: session,
                leftover,
            });
        }
        let n = match conn::before(deadline, conn::receive(&tcp, session.as_mut(), &mut buf)).await
        {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(io_err(&e, "reading the handshake")),
        };
        if n == 0 {
            return Err(handshake.eof_error());
        }
        input.extend_from_slice(&buf[..n]);
    }
}

/// What woke the reader.
enum Woke {
    Read(io::Result<usize>),
    Timeout,
    Rearm,
}

/// Reads until the connection terminates; every read is fed to the core
/// one message at a time, and its output and events are passed on. Wakes
/// at the core's deadline (the close handshake's timeout), looked at again
/// after every `close`.
async fn read_loop(tcp: &Async<TcpStream>, shared: &Arc<SocketShared>) {
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        // A connection that has terminated (before the first read, too: a
        // close frame that came with the handshake response) reads no more.
        let deadline = {
            let io = lock(&shared.io);
            match io.link.as_ref().map(|l| &l.ws) {
                Some(ws) if !ws.is_terminated() => ws.poll_timeout(),
                _ => return,
            }
        };
        let woke = {
            let read = async { Woke::Read((&*tcp).read(&mut buf).await) };
            let timer = async {
                match deadline {
                    Some(at) => {
                        Timer::at(at).await;
                        Woke::Timeout
                    }
                    None => future::pending().await,
                }
            };
            let rearm = async {
                let _ = shared.rearm.1.recv().await;
                Woke::Rearm
            };
            future::or(read, future::or(timer, rearm)).await
        };
        let now = Instant::now();
        let received = {
            let mut io = lock(&shared.io);
            let Some(ws) = io.ws() else { return };
            match woke {
                Woke::Read(Ok(0)) => {
                    ws.handle_eof();
                    None
                }
                Woke::Read(Ok(n)) => Some(n),
                Woke::Read(Err(e)) if e.kind() == io::ErrorKind::Interrupted => None,
                Woke::Read(Err(e)) => {
                    ws.handle_transport_error(Error::new(
                        ErrorKind::Unknown,
                        format!("reading failed: {e}"),
                    ));
                    None
                }
                Woke::Timeout => {
                    ws.handle_timeout(now);
                    None
                }
                Woke::Rearm => None,
            }
        };
        if let Some(n) = received {
            feed(shared, now, Some((&mut buf, n)));
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
        // An answer queued for the writer task goes out before this task
        // reads again: the read would most likely find nothing yet (two
        // system calls and a re-registration) and delay the answer.
        let queued = lock(&shared.io).out.as_ref().is_some_and(|o| !o.is_empty());
        if queued {
            future::yield_now().await;
        }
    }
}

/// Gives the core what was read (the first `n` bytes of the buffer, which
/// it may swap for another: see `Link::receive`), then steps it one
/// message at a time, delivering each message's events (so a listener's
/// answer is written) before the next frame is read. `None`: only what the
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

/// The writer task: once the socket is open, writes what the socket did
/// not take at once, in order.
async fn write_loop(handed: Receiver<WriterHalf>, shared: Arc<SocketShared>) {
    let Ok((tcp, rx)) = handed.recv().await else {
        return;
    };
    let queued = lock(&shared.io).queued.clone();
    while let Ok(bytes) = rx.recv().await {
        let written = (&*tcp).write_all(&bytes).await;
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
            shared.shutdown();
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
