//! `my.connectSocket` and the socket events (SPEC §7) as async tasks.
//!
//! Each socket has a reader task (connect, TLS, handshake, then reading)
//! and a writer task (writing what the core queued), both spawned on the
//! client's executor. The core's `Connection` sits behind one lock that is
//! never held across an await: the reader reads with no lock held and then
//! feeds the core under it; whatever the core queues goes through a channel
//! to the writer task. TLS is futures-rustls, on a stream split into its
//! reading and writing halves. So sending from any thread while messages
//! arrive never waits and never deadlocks, whatever the peer does.
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
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use async_channel::{Receiver, Sender};
use async_io::{Async, Timer};
use futures_lite::io::{BufReader, ReadHalf, WriteHalf};
use futures_lite::{future, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures_rustls::TlsConnector;
use mpnet_core::dispatch::Dispatcher;
use mpnet_core::task::{Callbacks, Completion};
use mpnet_core::ws::app::{superseded_error, Previous, SlotKind, SocketId, SocketSlots};
use mpnet_core::ws::connection::DEFAULT_CLOSE_TIMEOUT;
use mpnet_core::ws::listeners::{
    CloseListener, ErrorListener, MessageListener, OpenListener, SharedListeners, SocketListeners,
};
use mpnet_core::ws::{
    ClientHandshake, CloseOptions, ConnectOptions, Connection, ConnectionConfig, SendOptions,
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
    /// `None` until the handshake has succeeded.
    ws: Option<Connection>,
    /// Bytes for the writer task.
    out: Option<Sender<Vec<u8>>>,
    /// A buffer the writer task is done with, handed to the core for its
    /// next frames: in a message-answer-message exchange no frame allocates.
    spare: Vec<u8>,
}

/// The most capacity a recycled buffer keeps after a large message.
const KEEP_CAPACITY: usize = 256 * 1024;

impl Io {
    /// Moves what the core queued to the writer task and returns the events
    /// to deliver.
    fn flush(&mut self) -> Vec<SocketEvent> {
        let mut events = Vec::new();
        let Some(ws) = self.ws.as_mut() else {
            return events;
        };
        let mut bytes = std::mem::take(&mut self.spare);
        if ws.poll_transmit_into(&mut bytes) {
            if let Some(out) = &self.out {
                if out.try_send(bytes).is_err() {
                    ws.handle_transport_error(Error::new(
                        ErrorKind::SendFailed,
                        "the connection is broken",
                    ));
                }
            }
        } else {
            self.spare = bytes;
        }
        while let Some(e) = ws.poll_event() {
            events.push(e);
        }
        events
    }
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
            io: Mutex::new(Io {
                ws: None,
                out: None,
                spare: Vec::new(),
            }),
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

/// What the reader hands the writer once the socket is open: the stream's
/// writing half and the queue of bytes to write.
type WriterHalf = (WriteHalf<Stream>, Receiver<Vec<u8>>);

/// How much a TLS socket's reads take from the kernel at once.
const READ_BUFFER: usize = 128 * 1024;

/// The socket's stream. Under TLS, rustls reads the socket through a
/// [`READ_BUFFER`] buffer: it asks for at most 4 KiB (or one record) per
/// read, so a 64 KiB message would otherwise cost about eight system calls
/// where one is enough.
type Stream = conn::Stream<Buffered>;

/// The TCP socket with a read buffer; writes (vectored ones too, as
/// rustls makes them) go straight to the socket.
struct Buffered(BufReader<Async<TcpStream>>);

impl AsyncRead for Buffered {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Buffered {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.0.get_mut()).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.0.get_mut()).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.0.get_mut()).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.0.get_mut()).poll_close(cx)
    }
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
                if let Some(ws) = io.ws.as_mut() {
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
            match io.ws.as_mut() {
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
    let (stream, leftover) = match shared.stop.run(open(client, shared, handshake)).await {
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
        io.ws = Some(Connection::new(config, Box::new(masks)));
        io.out = Some(tx);
        io.flush()
    };
    let (reader, write_half) = futures_lite::io::split(stream);
    let _ = hand_over.try_send((write_half, rx));
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
    // Frames that came with the handshake response, after the open event.
    feed(shared, Instant::now(), &leftover);
    let events = lock(&shared.io).flush();
    shared.deliver(events);
    read_loop(reader, shared).await;
    // The writer ends once the core's last bytes are written; a peer that
    // takes none gets the close timeout.
    lock(&shared.io).out = None;
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
) -> Result<(Stream, Vec<u8>), Error> {
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
    let (tcp, _) = conn::tcp_connect(&target.connect_host(), target.port(), deadline)
        .await
        .map_err(|e| io_err(&e, "connecting failed"))?;
    *lock(&shared.tcp) = tcp.get_ref().try_clone().ok();
    let mut stream = if target.scheme().is_secure() {
        let name = tls::server_name(target)?;
        let connector = TlsConnector::from(tls::websocket_config(&client.tls));
        let buffered = Buffered(BufReader::with_capacity(READ_BUFFER, tcp));
        let session = conn::before(deadline, connector.connect(name, buffered))
            .await
            .map_err(|e| io_err(&e, "TLS handshake failed"))?;
        Stream::Tls(Box::new(session))
    } else {
        Stream::Plain(tcp)
    };
    // The upgrade request.
    conn::before(deadline, async {
        stream.write_all(handshake.request()).await?;
        stream.flush().await
    })
    .await
    .map_err(|e| io_err(&e, "sending the handshake"))?;
    // The response.
    let mut input = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let (used, accepted) = handshake.try_response(&input)?;
        if accepted.is_some() {
            let leftover = input.split_off(used);
            return Ok((stream, leftover));
        }
        let n = match conn::before(deadline, stream.read(&mut buf)).await {
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

/// The error for a failed read: a TLS failure, or unknown (1).
fn read_error(e: &io::Error) -> Error {
    let err = tls::io_error(e, "reading failed");
    if err.kind() == ErrorKind::Tls {
        err
    } else {
        Error::new(ErrorKind::Unknown, format!("reading failed: {e}"))
    }
}

/// Reads until the connection terminates; every read is fed to the core
/// one message at a time, and its output and events are passed on. Wakes
/// at the core's deadline (the close handshake's timeout), looked at again
/// after every `close`.
async fn read_loop(mut reader: ReadHalf<Stream>, shared: &Arc<SocketShared>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let deadline = lock(&shared.io)
            .ws
            .as_ref()
            .and_then(|ws| ws.poll_timeout());
        let woke = {
            let read = async { Woke::Read(reader.read(&mut buf).await) };
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
            let Some(ws) = io.ws.as_mut() else { return };
            match woke {
                Woke::Read(Ok(0)) => {
                    ws.handle_eof();
                    None
                }
                Woke::Read(Ok(n)) => Some(n),
                Woke::Read(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    ws.handle_eof();
                    None
                }
                Woke::Read(Err(e)) if e.kind() == io::ErrorKind::Interrupted => None,
                Woke::Read(Err(e)) => {
                    ws.handle_transport_error(read_error(&e));
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
            feed(shared, now, &buf[..n]);
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
        // An answer queued for the writer task goes out before this task
        // reads again: the read would most likely find nothing yet (two
        // system calls and a re-registration) and delay the answer.
        let queued = lock(&shared.io).out.as_ref().is_some_and(|o| !o.is_empty());
        if queued {
            future::yield_now().await;
        }
    }
}

/// Feeds `input` one message at a time, delivering each message's events
/// (so a listener's answer is queued) before the next frame is read.
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

/// The writer task: once the socket is open, writes what the core queued,
/// in order, flushing TLS records whenever the queue runs empty.
async fn write_loop(handed: Receiver<WriterHalf>, shared: Arc<SocketShared>) {
    let Ok((mut writer, rx)) = handed.recv().await else {
        return;
    };
    while let Ok(mut bytes) = rx.recv().await {
        let mut written = writer.write_all(&bytes).await;
        if written.is_ok() && rx.is_empty() {
            written = writer.flush().await;
        }
        if written.is_ok() && bytes.capacity() <= KEEP_CAPACITY {
            bytes.clear();
            let mut io = lock(&shared.io);
            if io.spare.capacity() < bytes.capacity() {
                io.spare = bytes;
            }
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
