//! One connection: DNS, TCP, the proxy tunnel and TLS, all under the call's
//! deadline, and a read buffer the core's parsers work on in place.
//!
//! Every I/O step races a timer set for the deadline: steps on an open
//! [`Conn`] use the connection's own [`DeadlineTimer`] (armed once, moved
//! only when a deadline comes earlier), the others a timer of their own
//! ([`before`]). Dropping any of these futures drops the socket with it.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{future, AsyncRead, AsyncWrite};
pub(crate) use mpnet_core::failure::{is_timeout, ConnectFailure};
use mpnet_core::pool::PoolKey;
use mpnet_core::request::Profile;
use mpnet_core::spin::Waiting;
use mpnet_core::tls_session::{Handshake, Plaintext, TlsSession};
use mpnet_core::{tls, tunnel, Target};
use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use crate::spin::{self, SpinGate};

/// Size of each read from the socket.
const READ_CHUNK: usize = 32 * 1024;

/// An open connection with its read buffer.
pub(crate) struct Conn {
    tcp: Async<TcpStream>,
    /// The core's TLS session, for secure targets.
    tls: Option<Box<TlsSession>>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The request-head buffer, kept between requests (see
    /// `Exchange::request_sent_keeping_buffer`).
    head_buf: Vec<u8>,
    timer: DeadlineTimer,
    /// Set when a request has been flushed and nothing has been read since
    /// (the next read is for the answer, which cannot be there yet).
    sent: bool,
    /// The request just sent, counted among those awaiting answers until
    /// its answer's first read returns (`mpnet_core::spin::Waiting`).
    awaiting: Option<Waiting>,
    /// How long the first read for an answer polls before it waits on the
    /// reactor (`mpnet_core::spin`); zero until the connection is open.
    spin: Duration,
    gate: SpinGate,
    pub(crate) key: PoolKey,
}

/// One reactor timer that serves every deadline of a connection's calls.
///
/// Registering an `async_io::Timer` wakes the reactor thread (a write to
/// its event fd), so a timer per pending read would cost system calls on
/// every request. This one stays armed across calls: a later deadline is
/// served by the timer already set for an earlier one (when it fires
/// early, [`poll`](Self::poll) sees the deadline has not passed and arms
/// it again), so with a fixed timeout it is re-armed about once per
/// timeout, not once per request. Only a deadline earlier than the armed
/// instant moves it.
pub(crate) struct DeadlineTimer {
    timer: Timer,
    armed: Option<Instant>,
}

impl DeadlineTimer {
    pub(crate) fn new() -> Self {
        DeadlineTimer {
            timer: Timer::never(),
            armed: None,
        }
    }

    /// `Ready(Err(TimedOut))` once `deadline` has passed; otherwise
    /// `Pending`, with `cx` woken no later than `deadline`.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<io::Error> {
        loop {
            if Instant::now() >= deadline {
                return Poll::Ready(timed_out());
            }
            if self.armed.is_none_or(|at| at > deadline) {
                self.timer.set_at(deadline);
                self.armed = Some(deadline);
            }
            match Pin::new(&mut self.timer).poll(cx) {
                Poll::Pending => return Poll::Pending,
                // Fired for an earlier deadline: arm it for this one.
                Poll::Ready(_) => self.armed = None,
            }
        }
    }
}

/// The error for a deadline that has passed (the caller turns it into the
/// API's own timeout error).
pub(crate) fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "deadline passed")
}

/// Runs `io` until it ends or `deadline` passes (then `TimedOut`, and `io`
/// is dropped). A deadline already passed fails without starting `io`.
pub(crate) async fn before<T>(
    deadline: Instant,
    io: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    if Instant::now() >= deadline {
        return Err(timed_out());
    }
    let timer = async {
        Timer::at(deadline).await;
        Err(timed_out())
    };
    future::or(io, timer).await
}

impl Conn {
    fn new(tcp: Async<TcpStream>, key: PoolKey) -> Self {
        Conn {
            tcp,
            tls: None,
            buf: Vec::new(),
            start: 0,
            end: 0,
            head_buf: Vec::new(),
            timer: DeadlineTimer::new(),
            sent: false,
            awaiting: None,
            spin: Duration::ZERO,
            gate: SpinGate::default(),
            key,
        }
    }

    /// Runs `step` until it is ready or `deadline` passes (`TimedOut`, on
    /// the connection's [`DeadlineTimer`]). A deadline already passed fails
    /// without trying `step`.
    async fn until<T>(
        &mut self,
        deadline: Instant,
        mut step: impl FnMut(&mut Conn, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> io::Result<T> {
        if Instant::now() >= deadline {
            return Err(timed_out());
        }
        future::poll_fn(|cx| match step(self, cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => self.timer.poll(cx, deadline).map(Err),
        })
        .await
    }

    /// Writes all of `data` before `deadline`. Over TLS the records are
    /// queued, and written whenever the session says enough is queued
    /// (`TlsSession::should_send`): call [`flush`](Self::flush) to send
    /// the rest.
    pub(crate) async fn write_all(&mut self, data: &[u8], deadline: Instant) -> io::Result<()> {
        let mut rest = data;
        self.until(deadline, |conn, cx| match &mut conn.tls {
            Some(tls) => loop {
                if tls.should_send() {
                    ready!(poll_send(&conn.tcp, tls, cx))?;
                }
                if rest.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                let n = tls.encrypt(rest).map_err(tls_io)?;
                rest = rest.get(n..).unwrap_or_default();
            },
            None => {
                while !rest.is_empty() {
                    match ready!(Pin::new(&mut &conn.tcp).poll_write(cx, rest)) {
                        Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                        Ok(n) => rest = rest.get(n..).unwrap_or_default(),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                }
                Poll::Ready(Ok(()))
            }
        })
        .await
    }

    /// Writes every queued TLS byte (nothing to do on a plain connection).
    fn poll_send_queued(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.tls {
            Some(tls) => poll_send(&self.tcp, tls, cx),
            None => Poll::Ready(Ok(())),
        }
    }

    /// Sends the queued TLS records: the request has been sent.
    pub(crate) async fn flush(&mut self, deadline: Instant) -> io::Result<()> {
        self.until(deadline, Conn::poll_send_queued).await?;
        self.sent = true;
        self.awaiting = Some(Waiting::begin());
        Ok(())
    }

    /// How long the first read for each answer polls before it waits on
    /// the reactor (`mpnet_core::spin`); set for each request (the
    /// client's setting may change while the connection is pooled). The
    /// handshake's reads never poll: the peer is computing keys.
    pub(crate) fn set_read_spin(&mut self, budget: Duration) {
        self.spin = budget;
    }

    /// Whether every byte received so far has been handed out: nothing in
    /// the read buffer and, under TLS, nothing received that the session
    /// has not turned into plaintext.
    fn drained(&self) -> bool {
        self.start == self.end && self.tls.as_ref().is_none_or(|t| t.is_drained())
    }

    /// Waits until the socket is readable, without reading, for the first
    /// read after a request: trying the read first would only fail with
    /// `EAGAIN` (the answer cannot have come yet), and async-io readiness
    /// left over from the previous answer would make it try twice. On the
    /// `first` poll, a `Ready` from `poll_readable` is that old readiness
    /// (interest was last registered before the previous answer was read)
    /// and the second call registers interest anew (a socket that is
    /// readable after all is still reported at once by the reactor); on
    /// later polls `Ready` is the new event.
    fn poll_answer_readable(&mut self, cx: &mut Context<'_>, first: bool) -> Poll<io::Result<()>> {
        let tcp = &self.tcp;
        match tcp.poll_readable(cx) {
            Poll::Ready(Ok(())) if first => tcp.poll_readable(cx),
            other => other,
        }
    }

    /// The bytes read and not yet consumed.
    pub(crate) fn filled(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Takes the connection's kept request-head buffer; give it back with
    /// [`keep_head_buf`](Self::keep_head_buf) once the head is written.
    pub(crate) fn take_head_buf(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.head_buf)
    }

    /// Keeps `buf` for the next request's head.
    pub(crate) fn keep_head_buf(&mut self, buf: Vec<u8>) {
        self.head_buf = buf;
    }

    /// Marks `n` bytes of [`filled`](Self::filled) as consumed.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads more bytes before `deadline`; `Ok(0)` is the end of the stream.
    pub(crate) async fn fill(&mut self, deadline: Instant) -> io::Result<usize> {
        // The request stops counting as awaiting its answer once this read
        // returns (`mpnet_core::spin::Waiting`).
        let awaiting = self.awaiting.take();
        if std::mem::take(&mut self.sent) && self.drained() {
            // The first read for an answer polls first when few requests
            // await answers.
            let polled = match &awaiting {
                Some(w) if !self.spin.is_zero() && w.few(spin::max_spinning()) => {
                    spin::readable_soon(self.tcp.get_ref(), &mut self.gate, self.spin)
                }
                _ => None,
            };
            // An error the poll met is the read's (a reset stays a reset).
            if let Some(Err(e)) = polled {
                return Err(e);
            }
            if polled.is_none() {
                let mut first = true;
                self.until(deadline, |conn, cx| {
                    conn.poll_answer_readable(cx, std::mem::take(&mut first))
                })
                .await?;
            }
        }
        let read = self.until(deadline, Conn::poll_fill).await;
        drop(awaiting);
        read
    }

    /// `Ready(TimedOut)` once `deadline` has passed, else `Pending` with a
    /// wake-up at the deadline (for readers that poll [`poll_fill`]
    /// themselves).
    ///
    /// [`poll_fill`]: Self::poll_fill
    pub(crate) fn poll_deadline(
        &mut self,
        cx: &mut Context<'_>,
        deadline: Instant,
    ) -> Poll<io::Error> {
        self.timer.poll(cx, deadline)
    }

    /// Reads more bytes when the socket has some (the poll form of
    /// [`fill`](Self::fill), for readers that are themselves polled; the
    /// caller keeps the deadline).
    pub(crate) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.start > 0 && self.buf.len() - self.end < READ_CHUNK {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < READ_CHUNK {
            self.buf.resize(self.end + READ_CHUNK, 0);
        }
        let spare = &mut self.buf[self.end..];
        let n = match &mut self.tls {
            None => loop {
                match ready!(Pin::new(&mut &self.tcp).poll_read(cx, spare)) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => break other?,
                }
            },
            Some(tls) => ready!(poll_plaintext(&self.tcp, tls, cx, spare))?,
        };
        self.end += n;
        Poll::Ready(Ok(n))
    }

    /// Whether the peer has already closed or sent unexpected bytes on an
    /// idle connection (checked before reuse without waiting: the socket
    /// is non-blocking).
    pub(crate) fn is_stale(&mut self) -> bool {
        if self.start != self.end || self.tls.as_mut().is_some_and(|s| s.has_unread_input()) {
            return true;
        }
        let mut probe = [0u8; 1];
        match self.tcp.get_ref().peek(&mut probe) {
            Ok(_) => true, // EOF (0) or unexpected bytes
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        }
    }

    /// Shuts the socket down.
    pub(crate) fn close(self) {
        let _ = self.tcp.get_ref().shutdown(std::net::Shutdown::Both);
    }

    /// Starts TLS on a plain connection before `deadline`, leaving the
    /// client's last handshake flight queued for the first request's
    /// flush (one write wakes the server once for both). The read buffer
    /// and key stay; a connection already secure is returned as it is.
    async fn secure(
        mut self,
        config: &Arc<ClientConfig>,
        name: ServerName<'static>,
        deadline: Instant,
    ) -> io::Result<Conn> {
        if self.tls.is_some() {
            return Ok(self);
        }
        let mut session = TlsSession::new(config.clone(), name).map_err(tls_io)?;
        let tcp = &self.tcp;
        before(
            deadline,
            future::poll_fn(|cx| poll_handshake(tcp, &mut session, cx)),
        )
        .await?;
        self.tls = Some(Box::new(session));
        Ok(self)
    }
}

/// A TLS error as the `io::Error` the connection's callers classify
/// ([`tls::io_error`] finds the rustls error inside).
fn tls_io(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Writes every TLS byte `tls` has queued to `tcp`.
fn poll_send(
    tcp: &Async<TcpStream>,
    tls: &mut TlsSession,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    while !tls.transmit().is_empty() {
        match ready!(Pin::new(&mut &*tcp).poll_write(cx, tls.transmit())) {
            Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => tls.sent(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
    Poll::Ready(Ok(()))
}

/// One socket read into the session; `Ok(0)` is the socket's end.
fn poll_receive(
    tcp: &Async<TcpStream>,
    tls: &mut TlsSession,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    ready!(poll_send(tcp, tls, cx))?;
    loop {
        let buf = tls.read_buf().map_err(tls_io)?;
        match ready!(Pin::new(&mut &*tcp).poll_read(cx, buf)) {
            Ok(n) => {
                tls.received(n);
                return Poll::Ready(Ok(n));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

/// Plaintext for `dst`, reading the socket as the session needs; `Ok(0)`
/// is the end of the stream (a `close_notify`, or the socket's end:
/// whether the body was complete is the HTTP layer's call).
fn poll_plaintext(
    tcp: &Async<TcpStream>,
    tls: &mut TlsSession,
    cx: &mut Context<'_>,
    dst: &mut [u8],
) -> Poll<io::Result<usize>> {
    loop {
        match tls.read_plaintext(dst).map_err(tls_io)? {
            Plaintext::Data(n) => return Poll::Ready(Ok(n)),
            Plaintext::Closed => return Poll::Ready(Ok(0)),
            Plaintext::NeedRead => {
                if ready!(poll_receive(tcp, tls, cx))? == 0 {
                    return Poll::Ready(Ok(0));
                }
            }
        }
    }
}

/// Drives the handshake until application data may be sent. On a TLS
/// error the alert the session queued is sent first, if the socket takes
/// it at once.
fn poll_handshake(
    tcp: &Async<TcpStream>,
    tls: &mut TlsSession,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    loop {
        match tls.handshake() {
            Ok(Handshake::Done) => return Poll::Ready(Ok(())),
            Ok(Handshake::Closed) => return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
            Ok(Handshake::NeedRead) => {
                if ready!(poll_receive(tcp, tls, cx))? == 0 {
                    return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                }
            }
            Err(e) => {
                let _ = poll_send(tcp, tls, cx);
                return Poll::Ready(Err(tls_io(e)));
            }
        }
    }
}

/// Drives `tls`'s handshake over `tcp` until application data may be sent
/// (the client's last flight may still be queued: [`send_all`] sends it
/// with the first data).
pub(crate) async fn handshake(tcp: &Async<TcpStream>, tls: &mut TlsSession) -> io::Result<()> {
    future::poll_fn(|cx| poll_handshake(tcp, tls, cx)).await
}

/// Writes all of `data` to `tcp`, through `tls` when there is a session.
pub(crate) async fn send_all(
    tcp: &Async<TcpStream>,
    tls: Option<&mut TlsSession>,
    data: &[u8],
) -> io::Result<()> {
    match tls {
        Some(tls) => {
            let mut rest = data;
            while !rest.is_empty() {
                let n = tls.encrypt(rest).map_err(tls_io)?;
                rest = rest.get(n..).unwrap_or_default();
                if tls.should_send() {
                    future::poll_fn(|cx| poll_send(tcp, tls, cx)).await?;
                }
            }
            future::poll_fn(|cx| poll_send(tcp, tls, cx)).await
        }
        None => {
            let mut tcp = tcp;
            futures_lite::AsyncWriteExt::write_all(&mut tcp, data).await
        }
    }
}

/// Reads into `buf` from `tcp` (plaintext from `tls` when there is a
/// session); `Ok(0)` is the end of the stream.
pub(crate) async fn receive(
    tcp: &Async<TcpStream>,
    tls: Option<&mut TlsSession>,
    buf: &mut [u8],
) -> io::Result<usize> {
    match tls {
        Some(tls) => future::poll_fn(|cx| poll_plaintext(tcp, tls, cx, buf)).await,
        None => {
            let mut tcp = tcp;
            futures_lite::AsyncReadExt::read(&mut tcp, buf).await
        }
    }
}

/// Resolves `host:port` before `deadline` (addresses and localhost names
/// without a lookup: `addresses_without_lookup`; the system resolver runs on a
/// helper thread the deadline can walk away from).
async fn resolve(host: &str, port: u16, deadline: Instant) -> io::Result<Vec<SocketAddr>> {
    if let Some(addrs) = mpnet_core::target::addresses_without_lookup(host, port) {
        return Ok(addrs);
    }
    before(deadline, async_net::resolve((host, port))).await
}

/// Resolves and connects; returns the stream and when resolution ended.
pub(crate) async fn tcp_connect(
    host: &str,
    port: u16,
    deadline: Instant,
) -> io::Result<(Async<TcpStream>, Instant)> {
    let addrs = resolve(host, port, deadline).await?;
    let dns = Instant::now();
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"));
    for addr in addrs {
        match before(deadline, Async::<TcpStream>::connect(addr)).await {
            Ok(s) => {
                s.get_ref().set_nodelay(true)?;
                return Ok((s, dns));
            }
            Err(e) if is_timeout(&e) => return Err(e),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Everything needed to open a connection to a target.
pub(crate) struct ConnectArgs<'a> {
    pub target: &'a Target,
    pub proxy: Option<&'a Target>,
    pub tls: &'a Arc<ClientConfig>,
    pub deadline: Instant,
    pub started: Instant,
}

/// Opens a connection: DNS, TCP (to the proxy when there is one, then a
/// CONNECT tunnel), TLS for secure schemes. Fills the profile's phases.
/// I/O errors come back as `io::Error`s tagged by [`ConnectFailure`].
pub(crate) async fn connect(
    args: &ConnectArgs<'_>,
    profile: &mut Profile,
) -> Result<Conn, ConnectFailure> {
    let key = PoolKey::new(args.target, args.proxy);
    let (tcp, dns) = match args.proxy {
        Some(p) => tcp_connect(&p.connect_host(), p.port(), args.deadline)
            .await
            .map_err(ConnectFailure::Proxy)?,
        None => tcp_connect(
            &args.target.connect_host(),
            args.target.port(),
            args.deadline,
        )
        .await
        .map_err(ConnectFailure::Io)?,
    };
    let since = |i: Instant| Some(i.saturating_duration_since(args.started));
    profile.dns = since(dns);
    profile.connect = since(Instant::now());
    let mut conn = Conn::new(tcp, key);
    if args.proxy.is_some() {
        open_tunnel(&mut conn, args.target, args.deadline).await?;
    }
    if args.target.scheme().is_secure() {
        let name = tls::server_name(args.target).map_err(ConnectFailure::Api)?;
        conn = conn
            .secure(args.tls, name, args.deadline)
            .await
            .map_err(ConnectFailure::Io)?;
        profile.tls = since(Instant::now());
    }
    Ok(conn)
}

async fn open_tunnel(
    conn: &mut Conn,
    target: &Target,
    deadline: Instant,
) -> Result<(), ConnectFailure> {
    conn.write_all(&tunnel::connect_request(target), deadline)
        .await
        .map_err(ConnectFailure::Proxy)?;
    loop {
        if let Some(n) =
            tunnel::read_connect_response(conn.filled()).map_err(ConnectFailure::Api)?
        {
            conn.consume(n);
            return Ok(());
        }
        if conn.fill(deadline).await.map_err(ConnectFailure::Proxy)? == 0 {
            return Err(ConnectFailure::Api(tunnel::proxy_error(
                "the proxy closed the connection before answering CONNECT".into(),
            )));
        }
    }
}
