//! `my.connectSocket` and the socket events (SPEC §7) as async tasks.
//!
//! Each socket has a reader task (connect, TLS, handshake, then reading)
//! and a writer task (writing what the socket did not take at once), both
//! spawned on the client's executor. The core's [`Link`] (the `Connection`
//! and its TLS session) sits behind one lock that is never held across an
//! await: the reader reads the raw socket with no lock held and then feeds
//! the link under it. This is mpnet-blocking's design, with a task for its
//! writer thread.
//!
//! Which write goes where is the core's (`mpnet_core::ws::outlet`): at
//! once, by the thread that queued the bytes (a `send` caller, the reader
//! answering a ping), when the writer task holds nothing; else through a
//! channel to the writer task. This module says how to write without
//! waiting and how to reach the writer. Events reach listeners through the
//! core's `mpnet_core::ws::route`: in order, one at a time, with no lock
//! held, so a listener may call `send`, `close` or `connect_socket` itself.
//! The rules (one socket per app, at most 5 tasks, event order) are the
//! core's (`mpnet_core::ws`). Listeners run on the executor's threads (or
//! on the thread that calls `send`/`close`): keep them short.

use std::future::Future as _;
use std::io;
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_channel::{Receiver, Sender};
use async_io::{Async, Timer};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use mpnet_core::dispatch::Queued;
use mpnet_core::task::{Callbacks, Completion};
use mpnet_core::tls_session::TlsSession;
use mpnet_core::ws::app::{superseded_error, Previous, SlotKind, SocketId};
use mpnet_core::ws::connection::DEFAULT_CLOSE_TIMEOUT;
use mpnet_core::ws::listeners::{
    CloseListener, ErrorListener, MessageListener, OpenListener, SharedListeners, SocketListeners,
};
use mpnet_core::ws::outlet::{feed, not_connected, Outlet, SocketIo};
use mpnet_core::ws::route::{AppRoute, EventRoute};
use mpnet_core::ws::{
    ClientHandshake, CloseOptions, ConnectOptions, Connection, Link, SendOptions, SocketEvent,
};
use mpnet_core::{tls, Error, ErrorKind};

use crate::cancel::Cancel;
use crate::client::{Client, ClientInner};
use crate::conn;
use crate::spin::{self, SpinGate};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where a socket's bytes go: the socket itself, written without waiting,
/// and the writer task.
struct Wire {
    direct: Arc<Async<TcpStream>>,
    writer: Sender<Vec<u8>>,
}

impl Outlet for Wire {
    fn write_now(&self, bytes: &[u8]) -> usize {
        write_now(self.direct.get_ref(), bytes)
    }
    fn to_writer(&self, bytes: Vec<u8>) -> bool {
        self.writer.try_send(bytes).is_ok()
    }
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
    /// Where its events go (its id is `None` when the connect was refused
    /// before it started).
    route: Arc<EventRoute>,
    io: Mutex<SocketIo<Wire>>,
    /// The TCP socket, shut down to end the reader and the writer.
    tcp: Mutex<Option<TcpStream>>,
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
    fn new(route: Arc<EventRoute>, callbacks: Callbacks<()>) -> Arc<Self> {
        let (done, connected_rx) = async_channel::bounded(1);
        Arc::new(SocketShared {
            route,
            io: Mutex::new(SocketIo::new()),
            tcp: Mutex::new(None),
            connected: Completion::new(callbacks, move || {
                done.close();
            }),
            connected_rx,
            stop: Cancel::default(),
            rearm: async_channel::bounded(1),
        })
    }

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

    fn rearm(&self) {
        let _ = self.rearm.0.try_send(());
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
        self.rearm();
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
    let kind = SlotKind::for_multiple(opts.multiple);
    // The options first: a connect with bad options replaces nothing
    // (`AppRoute::plan_connect`).
    let mut key = [0u8; 16];
    let planned = getrandom::fill(&mut key)
        .map_err(|e| Error::new(ErrorKind::Unknown, format!("no randomness: {e}")))
        .and_then(|()| app.route.plan_connect(&client.inner.ctx, &opts, key));
    let id = planned.as_ref().ok().map(|(_, plan)| plan.id);
    let route = EventRoute::new(app.route.clone(), id, kind, listeners);
    let shared = SocketShared::new(route, callbacks);
    let (handshake, plan) = match planned {
        Ok(planned) => planned,
        Err(e) => {
            shared.connected.finish(Err(e));
            return SocketTask { shared };
        }
    };
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
            old.route.supersede();
            old.connected.finish(Err(superseded_error()));
            old.stop.cancel();
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
            old.rearm();
        }
    }
}

fn fail_connect(shared: &Arc<SocketShared>, error: Error) {
    shared.connected.finish(Err(error));
    shared.route.finished();
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
        let queued = {
            let mut io = lock(&shared.io);
            shared.queue(io.abandon(error))
        };
        queued.run();
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
    // Masks from the OS generator, 64 per system call. A failed generator
    // leaves zero masks: still valid frames.
    let ws = Connection::for_app(client.ctx.limits(), |buf: &mut [u8]| {
        buf.fill(0);
        let _ = getrandom::fill(buf);
    });
    let wire = Wire {
        direct: tcp.clone(),
        writer: tx,
    };
    let opened = {
        let mut io = lock(&shared.io);
        io.open(Link::new(ws, tls, leftover), wire);
        let events = io.flush();
        if shared.route.opened().is_err() {
            // Superseded as the handshake ended (its connect failed with
            // 2): dropped without any event.
            None
        } else {
            // SPEC §7: success just before the open event (queued first by
            // core), in order with whatever the socket delivers next.
            let done = shared.clone();
            Some(shared.route.queue_after(
                move || {
                    done.connected.finish(Ok(()));
                },
                events,
            ))
        }
    };
    let _ = hand_over.try_send((tcp.clone(), rx));
    let Some(opened) = opened else {
        shared.shutdown();
        return;
    };
    opened.run();
    // Frames that came with the handshake response (and, under TLS, any
    // records read with it), after the open event.
    feed(&shared.io, Instant::now(), None, &shared.route);
    read_loop(&tcp, shared, client).await;
    // The writer ends once the core's last bytes are written; a peer that
    // takes none gets the close timeout.
    lock(&shared.io).close_outlet();
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
    let deadline = handshake.deadline(Instant::now());
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
    let (mut input, mut checked) = (Vec::new(), 0);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let (used, accepted) = handshake.try_response_growing(&input, &mut checked)?;
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
async fn read_loop(tcp: &Async<TcpStream>, shared: &Arc<SocketShared>, client: &ClientInner) {
    let mut buf = vec![0u8; READ_BUFFER];
    let mut gate = SpinGate::default();
    loop {
        // A connection that has terminated (before the first read, too: a
        // close frame that came with the handshake response) reads no more.
        let deadline = {
            let io = lock(&shared.io);
            match io.link().map(|l| &l.ws) {
                Some(ws) if !ws.is_terminated() => ws.poll_timeout(),
                _ => return,
            }
        };
        // Whether the read below had to wait for the reactor.
        let mut waited = false;
        // A message that comes within `spin` is read without the reactor
        // (`mpnet_core::spin`).
        let spun = spin::read_soon(tcp.get_ref(), &mut buf, &mut gate, client.read_spin());
        let woke = if let Some(read) = spun {
            Woke::Read(read)
        } else {
            let read = async {
                let mut socket = tcp;
                let mut reading = socket.read(&mut buf);
                let got = future::poll_fn(|cx| {
                    let polled = std::pin::Pin::new(&mut reading).poll(cx);
                    waited |= polled.is_pending();
                    polled
                })
                .await;
                Woke::Read(got)
            };
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
        if waited && matches!(woke, Woke::Read(Ok(_))) {
            // The reactor's event that ended the wait stays marked on the
            // socket after the read took its bytes, and would make the
            // next read that finds nothing try again at once (a second
            // `recvfrom` for nothing) before it registers: take the mark
            // now. It is `Ready` at once, with no system call.
            let _ = future::poll_once(future::poll_fn(|cx| tcp.poll_readable(cx))).await;
        }
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
            feed(&shared.io, now, Some((&mut buf, n)), &shared.route);
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
        // While the writer task holds bytes (an answer the socket did not
        // take at once, waiting or being written), it gets a turn before
        // this task reads again: the read would most likely find nothing
        // yet (two system calls and a re-registration) and delay the answer.
        let queued = lock(&shared.io).writer_queue().is_busy();
        if queued {
            future::yield_now().await;
        }
    }
}

/// The writer task: once the socket is open, writes what the socket did
/// not take at once, in order.
async fn write_loop(handed: Receiver<WriterHalf>, shared: Arc<SocketShared>) {
    let Ok((tcp, rx)) = handed.recv().await else {
        return;
    };
    let queue = lock(&shared.io).writer_queue();
    while let Ok(bytes) = rx.recv().await {
        let written = (&*tcp).write_all(&bytes).await;
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
        self.route.listeners()
    }
}
