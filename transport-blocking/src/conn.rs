//! One connection: DNS, TCP, the proxy tunnel and TLS, all under the call's
//! deadline, and a read buffer the core's parsers work on in place.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) use mpnet_core::failure::{is_timeout, ConnectFailure};
use mpnet_core::pool::PoolKey;
use mpnet_core::request::Profile;
use mpnet_core::tls_session::{Handshake, Plaintext, TlsSession};
use mpnet_core::{tls, tunnel, Target};
use rustls::ClientConfig;

use crate::cancel::Cancel;
use crate::spin::{self, SpinGate};
use mpnet_core::spin::Waiting;

/// Size of each read from the socket.
const READ_CHUNK: usize = 32 * 1024;

/// What runs over the socket: bytes as they are, or the core's TLS session.
enum Stream {
    Plain,
    Tls(Box<TlsSession>),
}

/// The connection's socket as the byte stream HTTP and TLS read and
/// write: the very socket of [`Conn::tcp`], shared (reads and writes go
/// through `&TcpStream`), so opening a connection duplicates no file
/// descriptor. A call a signal interrupts is made again: the kernel does
/// not restart socket calls on a socket with timeouts, and nothing above
/// (rustls, the exchange) should see `Interrupted`.
pub(crate) struct SharedTcp {
    tcp: Arc<TcpStream>,
    /// Polling before a read blocks ([`spin`]): the budget, zero for none.
    spin: Duration,
    /// Whether the next read is the first for an answer (only that one
    /// polls).
    poll_next: bool,
    gate: SpinGate,
}

impl SharedTcp {
    /// The stream over `tcp`; its reads block at once.
    pub(crate) fn new(tcp: Arc<TcpStream>) -> Self {
        SharedTcp {
            tcp,
            spin: Duration::ZERO,
            poll_next: false,
            gate: SpinGate::default(),
        }
    }
}

/// `op`, made again for as long as it is interrupted by a signal.
fn uninterrupted<T>(mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

impl Read for SharedTcp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if std::mem::take(&mut self.poll_next) {
            if let Some(read) = spin::read_soon(&self.tcp, buf, &mut self.gate, self.spin) {
                return read;
            }
        }
        uninterrupted(|| (&*self.tcp).read(buf))
    }
}

impl Write for SharedTcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        uninterrupted(|| (&*self.tcp).write(buf))
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        uninterrupted(|| (&*self.tcp).write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self.tcp).flush()
    }
}

/// An open connection with its read buffer.
pub(crate) struct Conn {
    stream: Stream,
    sock: SharedTcp,
    tcp: Arc<TcpStream>,
    /// The read/write timeout on the socket, and when it was set.
    timeout: Option<(Instant, Duration)>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The request-head buffer, kept between requests (see
    /// `Exchange::request_sent_keeping_buffer`).
    head_buf: Vec<u8>,
    /// Set when a request has been flushed and nothing read since (the
    /// next read is the first for the answer): the request counted among
    /// those awaiting answers (`mpnet_core::spin::Waiting`).
    awaiting: Option<Waiting>,
    pub(crate) key: PoolKey,
}

/// The error for a deadline that has passed (the caller turns it into the
/// API's own timeout error).
pub(crate) fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "deadline passed")
}

fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(timed_out())
    } else {
        Ok(left)
    }
}

/// How far a socket timeout may miss the deadline before it is set again.
/// A call may end this much early, or this or 1/256 of the time left
/// (whichever is more) late: at most 120 ms late for a 30 s timeout, so a
/// long download sets its socket timeouts a few times a second, not every
/// 2 ms.
const TIMEOUT_SLACK: Duration = Duration::from_millis(2);

/// Whether a socket timeout of `set`, for a call starting now, ends it
/// close enough to a deadline `left` away (see [`TIMEOUT_SLACK`]).
fn timeout_fits(set: Duration, left: Duration) -> bool {
    if set >= left {
        set - left <= TIMEOUT_SLACK.max(left / 256)
    } else {
        left - set <= TIMEOUT_SLACK
    }
}

/// Makes the next blocking call on `tcp` end by `deadline`: sets its read
/// and write timeouts only when the ones already set (`set`: when, and how
/// long) do not fit it ([`timeout_fits`]). A passed deadline is `TimedOut`.
/// Called before every socket call of a multi-read step (a TLS record, a
/// handshake), so a peer that sends a byte at a time cannot stretch it.
pub(crate) fn arm_timeouts(
    tcp: &TcpStream,
    set: &mut Option<(Instant, Duration)>,
    deadline: Instant,
) -> io::Result<()> {
    let now = Instant::now();
    let left = deadline.saturating_duration_since(now);
    if left.is_zero() {
        return Err(timed_out());
    }
    if set.is_some_and(|(_, was)| timeout_fits(was, left)) {
        return Ok(());
    }
    tcp.set_read_timeout(Some(left))?;
    tcp.set_write_timeout(Some(left))?;
    *set = Some((now, left));
    Ok(())
}

impl Conn {
    /// Makes blocking calls end by `deadline`: sets the socket's timeouts
    /// only when the ones already set do not fit it ([`timeout_fits`]; a
    /// warm keep-alive request then sets none).
    fn set_deadline(&mut self, deadline: Instant) -> io::Result<()> {
        arm_timeouts(&self.tcp, &mut self.timeout, deadline)
    }

    /// The socket (for cancellation).
    pub(crate) fn tcp(&self) -> &Arc<TcpStream> {
        &self.tcp
    }

    /// Writes all of `data` before `deadline`. Over TLS the records are
    /// queued, and written whenever the session says enough is queued
    /// (`TlsSession::should_send`): call [`flush`](Self::flush) to send
    /// the rest.
    pub(crate) fn write_all(&mut self, data: &[u8], deadline: Instant) -> io::Result<()> {
        self.set_deadline(deadline)?;
        match &mut self.stream {
            Stream::Plain => self.sock.write_all(data),
            Stream::Tls(s) => {
                let mut data = data;
                while !data.is_empty() {
                    let n = s.encrypt(data).map_err(tls_io)?;
                    data = data.get(n..).unwrap_or_default();
                    if s.should_send() {
                        send_queued(s, &mut self.sock)?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Sends every queued TLS record (and the handshake's last flight, the
    /// first time).
    pub(crate) fn flush(&mut self, deadline: Instant) -> io::Result<()> {
        self.set_deadline(deadline)?;
        match &mut self.stream {
            Stream::Plain => self.sock.flush(),
            Stream::Tls(s) => send_queued(s, &mut self.sock),
        }?;
        self.awaiting = Some(Waiting::begin());
        Ok(())
    }

    /// How long the first read for each answer polls before it blocks
    /// (`mpnet_core::spin`); set for each request (the client's setting
    /// may change while the connection is pooled). The handshake's reads
    /// never poll: the peer is computing keys.
    pub(crate) fn set_read_spin(&mut self, budget: Duration) {
        self.sock.spin = budget;
    }

    /// Whether every byte received so far has been handed out: nothing in
    /// the read buffer and, under TLS, nothing received that the session
    /// has not turned into plaintext.
    fn drained(&self) -> bool {
        self.start == self.end
            && match &self.stream {
                Stream::Plain => true,
                Stream::Tls(s) => s.is_drained(),
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
    pub(crate) fn fill(&mut self, deadline: Instant) -> io::Result<usize> {
        self.set_deadline(deadline)?;
        if self.start > 0 && self.buf.len() - self.end < READ_CHUNK {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < READ_CHUNK {
            self.buf.resize(self.end + READ_CHUNK, 0);
        }
        // The first read for an answer may poll first (`SharedTcp::read`)
        // when few requests await answers; the request stops counting as
        // awaiting once this read returns.
        let awaiting = self.awaiting.take();
        self.sock.poll_next = !self.sock.spin.is_zero()
            && awaiting
                .as_ref()
                .is_some_and(|w| w.few(spin::max_spinning()))
            && self.drained();
        let spare = &mut self.buf[self.end..];
        // `SharedTcp` already makes interrupted reads again.
        let n = match &mut self.stream {
            Stream::Plain => self.sock.read(spare)?,
            Stream::Tls(s) => read_plaintext(s, &mut self.sock, spare, &mut || {
                arm_timeouts(&self.tcp, &mut self.timeout, deadline)
            })?,
        };
        self.end += n;
        Ok(n)
    }

    /// Whether the peer has already closed or sent unexpected bytes on an
    /// idle connection (checked before reuse without blocking).
    pub(crate) fn is_stale(&mut self) -> bool {
        let tls_spoke = match &mut self.stream {
            Stream::Tls(s) => s.has_unread_input(),
            Stream::Plain => false,
        };
        self.start != self.end || tls_spoke || peer_closed_or_spoke(&self.tcp)
    }

    /// Shuts the socket down.
    pub(crate) fn close(self) {
        let _ = self.tcp.shutdown(std::net::Shutdown::Both);
    }
}

/// A non-blocking peek at an idle socket: true when it has reached EOF, has
/// bytes waiting, or fails. One `recv(MSG_PEEK | MSG_DONTWAIT)` on Unix.
#[cfg(unix)]
fn peer_closed_or_spoke(tcp: &TcpStream) -> bool {
    use rustix::net::{recv, RecvFlags};
    let mut probe = [0u8; 1];
    match recv(tcp, &mut probe[..], RecvFlags::PEEK | RecvFlags::DONTWAIT) {
        Ok(_) => true, // EOF (0) or unexpected bytes
        Err(e) => e != rustix::io::Errno::WOULDBLOCK && e != rustix::io::Errno::INTR,
    }
}

/// A non-blocking peek at an idle socket (elsewhere: switch the socket to
/// non-blocking around a `peek`).
#[cfg(not(unix))]
fn peer_closed_or_spoke(tcp: &TcpStream) -> bool {
    if tcp.set_nonblocking(true).is_err() {
        return true;
    }
    let mut probe = [0u8; 1];
    let stale = match tcp.peek(&mut probe) {
        Ok(_) => true, // EOF (0) or unexpected bytes
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    };
    stale || tcp.set_nonblocking(false).is_err()
}

/// Resolves `host:port` before `deadline` (addresses and localhost names
/// without a lookup: `addresses_without_lookup`; std's resolver cannot time out,
/// so it runs on a helper thread the deadline can walk away from).
fn resolve(host: &str, port: u16, deadline: Instant) -> Result<Vec<SocketAddr>, io::Error> {
    if let Some(addrs) = mpnet_core::target::addresses_without_lookup(host, port) {
        return Ok(addrs);
    }
    let (tx, rx) = mpsc::channel();
    let name = host.to_string();
    std::thread::Builder::new()
        .name("mpnet-dns".into())
        .spawn(move || {
            let _ = tx.send(
                (name.as_str(), port)
                    .to_socket_addrs()
                    .map(|a| a.collect::<Vec<_>>()),
            );
        })?;
    match rx.recv_timeout(remaining(deadline)?) {
        Ok(r) => r,
        Err(_) => Err(timed_out()),
    }
}

/// Resolves and connects; returns the stream and when resolution ended.
pub(crate) fn tcp_connect(
    host: &str,
    port: u16,
    deadline: Instant,
) -> io::Result<(TcpStream, Instant)> {
    let addrs = resolve(host, port, deadline)?;
    let dns = Instant::now();
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"));
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, remaining(deadline)?) {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok((s, dns));
            }
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
    pub cancel: &'a Cancel,
    pub started: Instant,
}

/// Opens a connection: DNS, TCP (to the proxy when there is one, then a
/// CONNECT tunnel), TLS for secure schemes. Fills the profile's phases.
/// I/O errors come back as `io::Error`s tagged by [`ConnectFailure`].
pub(crate) fn connect(
    args: &ConnectArgs<'_>,
    profile: &mut Profile,
) -> Result<Conn, ConnectFailure> {
    let key = PoolKey::new(args.target, args.proxy);
    let (tcp, dns) = match args.proxy {
        Some(p) => tcp_connect(&p.connect_host(), p.port(), args.deadline)
            .map_err(ConnectFailure::Proxy)?,
        None => tcp_connect(
            &args.target.connect_host(),
            args.target.port(),
            args.deadline,
        )
        .map_err(ConnectFailure::Io)?,
    };
    let since = |i: Instant| Some(i.saturating_duration_since(args.started));
    profile.dns = since(dns);
    profile.connect = since(Instant::now());
    let tcp = Arc::new(tcp);
    args.cancel.watch(&tcp);
    let mut conn = Conn {
        stream: Stream::Plain,
        sock: SharedTcp::new(tcp.clone()),
        tcp,
        timeout: None,
        buf: Vec::new(),
        start: 0,
        end: 0,
        head_buf: Vec::new(),
        awaiting: None,
        key,
    };
    if args.proxy.is_some() {
        open_tunnel(&mut conn, args.target, args.deadline)?;
    }
    if args.target.scheme().is_secure() {
        let name = tls::server_name(args.target).map_err(ConnectFailure::Api)?;
        let mut session = TlsSession::new(args.tls.clone(), name)
            .map_err(|e| ConnectFailure::Api(tls::tls_error(&e)))?;
        conn.set_deadline(args.deadline)
            .map_err(ConnectFailure::Io)?;
        let (tcp, timeout) = (&conn.tcp, &mut conn.timeout);
        handshake(&mut session, &mut conn.sock, &mut || {
            arm_timeouts(tcp, timeout, args.deadline)
        })
        .map_err(ConnectFailure::Io)?;
        conn.stream = Stream::Tls(Box::new(session));
        profile.tls = since(Instant::now());
    }
    Ok(conn)
}

/// A TLS error as the `io::Error` the connection's callers classify
/// ([`tls::io_error`] finds the rustls error inside).
pub(crate) fn tls_io(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Writes every TLS byte the session has queued.
pub(crate) fn send_queued(s: &mut TlsSession, sock: &mut SharedTcp) -> io::Result<()> {
    while !s.transmit().is_empty() {
        match sock.write(s.transmit())? {
            0 => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            n => s.sent(n),
        }
    }
    Ok(())
}

/// The call made before every socket call of a multi-read step: keeps the
/// socket's timeouts on the step's deadline ([`arm_timeouts`]).
pub(crate) type Arm<'a> = dyn FnMut() -> io::Result<()> + 'a;

/// Sends what the session has queued, then makes one socket read into it
/// (each call armed by `arm`); `Ok(0)` is the socket's end.
fn receive(s: &mut TlsSession, sock: &mut SharedTcp, arm: &mut Arm<'_>) -> io::Result<usize> {
    arm()?;
    send_queued(s, sock)?;
    arm()?;
    let n = sock.read(s.read_buf().map_err(tls_io)?)?;
    s.received(n);
    Ok(n)
}

/// Reads socket bytes into the session until it has plaintext for `dst`;
/// `Ok(0)` is the end of the stream (a `close_notify`, or the socket's end:
/// whether the body was complete is the HTTP layer's call).
pub(crate) fn read_plaintext(
    s: &mut TlsSession,
    sock: &mut SharedTcp,
    dst: &mut [u8],
    arm: &mut Arm<'_>,
) -> io::Result<usize> {
    loop {
        match s.read_plaintext(dst).map_err(tls_io)? {
            Plaintext::Data(n) => return Ok(n),
            Plaintext::Closed => return Ok(0),
            Plaintext::NeedRead => {
                if receive(s, sock, arm)? == 0 {
                    return Ok(0);
                }
            }
        }
    }
}

/// Drives the TLS handshake until the client may send application data,
/// leaving the client's last flight (its `Finished`) queued: the first
/// request's [`Conn::flush`] sends both in one write, so the server is
/// woken once for them, not twice. On a TLS error the alert the session
/// queued is sent first (best effort).
pub(crate) fn handshake(
    s: &mut TlsSession,
    sock: &mut SharedTcp,
    arm: &mut Arm<'_>,
) -> io::Result<()> {
    loop {
        match s.handshake() {
            Ok(Handshake::Done) => return Ok(()),
            Ok(Handshake::Closed) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Ok(Handshake::NeedRead) => {
                if receive(s, sock, arm)? == 0 {
                    return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
                }
            }
            Err(e) => {
                let _ = send_queued(s, sock);
                return Err(tls_io(e));
            }
        }
    }
}

fn open_tunnel(conn: &mut Conn, target: &Target, deadline: Instant) -> Result<(), ConnectFailure> {
    conn.write_all(&tunnel::connect_request(target), deadline)
        .map_err(ConnectFailure::Proxy)?;
    loop {
        if let Some(n) =
            tunnel::read_connect_response(conn.filled()).map_err(ConnectFailure::Api)?
        {
            conn.consume(n);
            return Ok(());
        }
        if conn.fill(deadline).map_err(ConnectFailure::Proxy)? == 0 {
            return Err(ConnectFailure::Api(tunnel::proxy_error(
                "the proxy closed the connection before answering CONNECT".into(),
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket timeout may end a call a little late (more so for long
    /// deadlines), never more than 2 ms early.
    #[test]
    fn timeouts_end_calls_late_by_little_and_early_by_less() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        assert!(timeout_fits(s(30), s(30)));
        assert!(timeout_fits(s(30), s(30) - ms(100)), "100 ms late of 30 s");
        assert!(!timeout_fits(s(30), s(30) - ms(200)), "200 ms late of 30 s");
        assert!(!timeout_fits(s(30), s(30) + ms(100)), "100 ms early");
        assert!(timeout_fits(s(30), s(30) + ms(1)));
        assert!(timeout_fits(ms(200), ms(199)));
        assert!(!timeout_fits(ms(200), ms(190)), "10 ms late of 190 ms");
    }

    /// An interrupted call is made again; any other outcome is returned as
    /// it came.
    #[test]
    fn interrupted_calls_are_made_again() {
        let mut calls = 0;
        let r = uninterrupted(|| {
            calls += 1;
            if calls < 3 {
                Err(io::Error::from(io::ErrorKind::Interrupted))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(r.ok(), Some(3));
        let mut calls = 0;
        let r: io::Result<()> = uninterrupted(|| {
            calls += 1;
            Err(io::Error::from(io::ErrorKind::TimedOut))
        });
        assert_eq!(r.map_err(|e| e.kind()), Err(io::ErrorKind::TimedOut));
        assert_eq!(calls, 1);
    }
}
