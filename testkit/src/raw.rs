//! A scripted raw TCP (optionally TLS) server for byte-exact broken
//! responses.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener as StdListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::bg::{accept_loop, bind_loopback, Background};
use crate::ca::Leaf;

/// The most bytes one read step buffers before it gives up and ends the
/// script (a test that needs more uses [`ReadUntil::Bytes`]).
pub const MAX_READ_BUFFER: usize = 16 * 1024 * 1024;

/// How long [`Step::Close`] keeps reading (and discarding) after it has
/// sent its FIN, so that unread client bytes do not turn the close into a
/// reset that could destroy the response in flight.
pub const CLOSE_DRAIN: Duration = Duration::from_secs(2);

/// What a [`Step::Read`] waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadUntil {
    /// Through the first `\r\n\r\n` (the end of a request head).
    HeadEnd,
    /// Exactly this many bytes.
    Bytes(usize),
    /// Through the first occurrence of this (non-empty) byte string.
    Pattern(Vec<u8>),
    /// One whole HTTP/1.1 request: its head and then its body as framed by
    /// `Transfer-Encoding: chunked` or `Content-Length` (none: no body).
    Request,
}

/// One step of a connection's script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Reads until the condition holds. Bytes read past it stay buffered
    /// for the next read step. If the client closes first (or the buffer
    /// passes [`MAX_READ_BUFFER`]), the script ends and the connection is
    /// closed.
    Read(ReadUntil),
    /// Writes these bytes exactly, then flushes.
    Write(Vec<u8>),
    /// Writes these bytes to the TCP socket itself, past the TLS session
    /// (after flushing what it holds): a record the client cannot decrypt,
    /// say. On a plain connection, the same as [`Step::Write`].
    WriteRaw(Vec<u8>),
    /// Writes each of `sealed` through the TLS session (each its own
    /// records) and then `raw` past it, all in one write to the TCP socket,
    /// so the client reads them together: messages followed by a record
    /// it cannot decrypt, say. On a plain connection, all of them as they
    /// are, in one write.
    WriteSealedThenRaw {
        /// Plaintext pieces, each encrypted on its own.
        sealed: Vec<Vec<u8>>,
        /// Bytes written as they are, after the records.
        raw: Vec<u8>,
    },
    /// Waits this long.
    Sleep(Duration),
    /// Closes cleanly (TLS `close_notify`, then FIN) and ends the script;
    /// keeps reading for up to [`CLOSE_DRAIN`] before the socket is freed.
    Close,
    /// Sends TLS `close_notify` and keeps the socket open (no FIN): the
    /// session is over, the connection is not. The script goes on (on a
    /// plain connection this does nothing).
    CloseNotify,
    /// Closes abruptly: no TLS `close_notify`, and `SO_LINGER` 0 so the
    /// peer gets a TCP RST. Ends the script.
    Reset,
    /// Holds the connection open, answering nothing, until the server shuts
    /// down.
    Hang,
    /// Reads a WebSocket upgrade request's head and accepts it (101 with
    /// its `Sec-WebSocket-Accept`), these bytes (server frames, say) in the
    /// same write. A head without `Sec-WebSocket-Key` ends the script.
    AcceptWebSocket(Vec<u8>),
}

impl Step {
    /// `Read(ReadUntil::HeadEnd)`.
    pub fn read_head() -> Step {
        Step::Read(ReadUntil::HeadEnd)
    }

    /// `Read(ReadUntil::Request)`.
    pub fn read_request() -> Step {
        Step::Read(ReadUntil::Request)
    }

    /// `Read(ReadUntil::Bytes(n))`.
    pub fn read_bytes(n: usize) -> Step {
        Step::Read(ReadUntil::Bytes(n))
    }

    /// `Read(ReadUntil::Pattern(pattern))`.
    pub fn read_until(pattern: impl AsRef<[u8]>) -> Step {
        Step::Read(ReadUntil::Pattern(pattern.as_ref().to_vec()))
    }

    /// `Write(bytes)`.
    pub fn write(bytes: impl AsRef<[u8]>) -> Step {
        Step::Write(bytes.as_ref().to_vec())
    }

    /// `Sleep(Duration::from_millis(ms))`.
    pub fn sleep_ms(ms: u64) -> Step {
        Step::Sleep(Duration::from_millis(ms))
    }
}

/// Which script each accepted connection runs.
#[derive(Clone, Debug)]
enum Scripts {
    /// Every connection runs this one.
    Same(Vec<Step>),
    /// Connection `i` (0-based, in accept order) runs `scripts[i]`; later
    /// connections run the last one.
    PerConnection(Vec<Vec<Step>>),
}

impl Scripts {
    fn for_connection(&self, i: usize) -> Vec<Step> {
        match self {
            Scripts::Same(s) => s.clone(),
            Scripts::PerConnection(v) => v.get(i).or_else(|| v.last()).cloned().unwrap_or_default(),
        }
    }
}

#[derive(Default)]
struct RawStats {
    connections: AtomicU64,
    finished: AtomicU64,
    received: Mutex<Vec<Vec<u8>>>,
}

/// Builds a [`RawServer`].
#[derive(Clone, Debug)]
pub struct RawServerBuilder {
    scripts: Scripts,
    tls: Option<Leaf>,
    port: u16,
}

impl RawServerBuilder {
    /// Every connection runs `steps`.
    pub fn script(mut self, steps: Vec<Step>) -> Self {
        self.scripts = Scripts::Same(steps);
        self
    }

    /// Connection `i` (in accept order) runs `scripts[i]`; connections past
    /// the end run the last script (none given: connections are closed at
    /// once).
    pub fn per_connection(mut self, scripts: Vec<Vec<Step>>) -> Self {
        self.scripts = Scripts::PerConnection(scripts);
        self
    }

    /// Serve TLS presenting `leaf` (for example `ca.leaf()`, or an expired
    /// one); the script then runs over the decrypted stream. No ALPN is
    /// negotiated.
    pub fn tls(mut self, leaf: Leaf) -> Self {
        self.tls = Some(leaf);
        self
    }

    /// Listen on `127.0.0.1:port` (default 0: ephemeral).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Starts the server; fails if the port cannot be bound.
    pub fn try_start(self) -> io::Result<RawServer> {
        let listener = bind_loopback(self.port)?;
        let stats = Arc::new(RawStats::default());
        let tls = self
            .tls
            .map(|leaf| TlsAcceptor::from(leaf.server_config(false)));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let scripts = self.scripts;
        let st = stats.clone();
        let port = listener.local_addr()?.port();
        let bg = Background::spawn(&format!("mpnet-testkit-raw-{port}"), listener, move |l| {
            accept_loop(l, move |tcp, _peer| {
                let index = st.connections.fetch_add(1, Ordering::SeqCst) as usize;
                if let Ok(mut r) = st.received.lock() {
                    r.push(Vec::new());
                }
                let script = scripts.for_connection(index);
                let tls = tls.clone();
                let st = st.clone();
                tokio::spawn(async move {
                    let conn = match tls {
                        None => Some(Conn::Plain(tcp)),
                        Some(acceptor) => {
                            match tokio::time::timeout(
                                Duration::from_secs(10),
                                acceptor.accept(tcp),
                            )
                            .await
                            {
                                Ok(Ok(s)) => Some(Conn::Tls(Box::new(s))),
                                _ => None,
                            }
                        }
                    };
                    if let Some(conn) = conn {
                        run_script(conn, script, index, &st).await;
                    }
                    st.finished.fetch_add(1, Ordering::SeqCst);
                });
            })
        })?;
        Ok(RawServer { bg, stats, scheme })
    }

    /// Starts the server.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub fn start(self) -> RawServer {
        self.try_start().expect("start the raw test server")
    }
}

/// A raw TCP server on `127.0.0.1` whose connections each run a script of
/// [`Step`]s, so tests can send broken HTTP/1.1 responses byte for byte.
///
/// Every byte read from connection `i` is logged and available from
/// [`RawServer::received`]. Stops on [`RawServer::shutdown`] or drop,
/// closing every connection (including hanging ones).
pub struct RawServer {
    bg: Background,
    stats: Arc<RawStats>,
    scheme: &'static str,
}

impl std::fmt::Debug for RawServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawServer")
            .field("addr", &self.addr())
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

impl RawServer {
    /// A builder with an empty script, plain TCP, ephemeral port.
    pub fn builder() -> RawServerBuilder {
        RawServerBuilder {
            scripts: Scripts::Same(Vec::new()),
            tls: None,
            port: 0,
        }
    }

    /// Starts a plain-TCP server where every connection runs `script`.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub fn start(script: Vec<Step>) -> RawServer {
        Self::builder().script(script).start()
    }

    /// Starts a TLS server presenting `leaf` where every connection runs
    /// `script` over the decrypted stream.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub fn start_tls(leaf: Leaf, script: Vec<Step>) -> RawServer {
        Self::builder().script(script).tls(leaf).start()
    }

    /// `http://127.0.0.1:PORT/{path}`, or `https://` when serving TLS.
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}://127.0.0.1:{}/{}",
            self.scheme,
            self.port(),
            path.trim_start_matches('/')
        )
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.bg.addr().port()
    }

    /// The listening address (always `127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.bg.addr()
    }

    /// How many TCP connections were accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.stats.connections.load(Ordering::SeqCst)
    }

    /// How many connections have finished their script (or failed their
    /// TLS handshake) so far. Hanging connections never finish.
    pub fn connections_finished(&self) -> u64 {
        self.stats.finished.load(Ordering::SeqCst)
    }

    /// Every byte read so far from connection `index` (0-based, in accept
    /// order; decrypted for TLS), or `None` if there is no such connection.
    pub fn received(&self, index: usize) -> Option<Vec<u8>> {
        self.stats
            .received
            .lock()
            .ok()
            .and_then(|r| r.get(index).cloned())
    }

    /// Stops the server, closing the listener and every connection, then
    /// returns. Calling it again does nothing.
    pub fn shutdown(&mut self) {
        self.bg.stop();
    }
}

/// A loopback port where nothing listens (at the moment of the call): binds
/// `127.0.0.1:0`, reads the port, closes the listener. Connecting to it is
/// refused unless another program takes the port meanwhile.
///
/// # Panics
/// If no loopback port can be bound.
pub fn refused_port() -> u16 {
    let l = StdListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .expect("bind an ephemeral loopback port");
    l.local_addr().expect("local address").port()
}

/// A connection as the script sees it.
enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.get_ref().0,
        }
    }

    fn io(&mut self) -> &mut dyn AsyncIo {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.as_mut(),
        }
    }
}

trait AsyncIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncIo for T {}

/// Reads more bytes into `buf`, logging them; `false` on EOF or error.
async fn read_more(conn: &mut Conn, buf: &mut Vec<u8>, index: usize, st: &RawStats) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    match conn.io().read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            if let Ok(mut r) = st.received.lock() {
                if let Some(log) = r.get_mut(index) {
                    log.extend_from_slice(&chunk[..n]);
                }
            }
            true
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The length of the complete HTTP/1.1 request at the start of `buf`:
/// `Ok(None)` if more bytes are needed, `Err` if it cannot be framed.
fn request_len(buf: &[u8]) -> Result<Option<usize>, ()> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    let head = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(()),
    };
    let mut chunked = false;
    let mut length = 0u64;
    for h in req.headers.iter() {
        let v = String::from_utf8_lossy(h.value);
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v
                .rsplit(',')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"));
        } else if h.name.eq_ignore_ascii_case("content-length") {
            length = v.trim().parse().map_err(|_| ())?;
        }
    }
    if !chunked {
        let total = (head as u64).saturating_add(length);
        return Ok((total <= buf.len() as u64).then_some(total as usize));
    }
    let mut pos = head;
    loop {
        let size = match httparse::parse_chunk_size(&buf[pos..]) {
            Ok(httparse::Status::Complete((n, size))) => {
                pos += n;
                size
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(()),
        };
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                match find(&buf[pos..], b"\r\n") {
                    Some(0) => return Ok(Some(pos + 2)),
                    Some(i) => pos += i + 2,
                    None => return Ok(None),
                }
            }
        }
        let end = (pos as u64).saturating_add(size).saturating_add(2);
        if end > buf.len() as u64 {
            return Ok(None);
        }
        pos = end as usize;
    }
}

/// How many bytes at the start of `buf` satisfy `until`, if any yet.
fn satisfied(buf: &[u8], until: &ReadUntil) -> Result<Option<usize>, ()> {
    Ok(match until {
        ReadUntil::HeadEnd => find(buf, b"\r\n\r\n").map(|i| i + 4),
        ReadUntil::Bytes(n) => (buf.len() >= *n).then_some(*n),
        ReadUntil::Pattern(p) => find(buf, p).map(|i| i + p.len()),
        ReadUntil::Request => return request_len(buf),
    })
}

/// [`Step::WriteSealedThenRaw`] (and [`Step::WriteRaw`], with nothing to
/// seal): flushes what the session holds, then writes `sealed`'s pieces as
/// records and `raw` past the session, in one write to the socket.
async fn write_sealed_then_raw(conn: &mut Conn, sealed: &[Vec<u8>], raw: &[u8]) -> io::Result<()> {
    conn.io().flush().await?;
    match conn {
        Conn::Plain(s) => s.write_all(&[sealed.concat(), raw.to_vec()].concat()).await,
        Conn::Tls(s) => {
            let (tcp, session) = s.get_mut();
            let bytes = seal_then_raw(session, sealed, raw)?;
            tcp.write_all(&bytes).await
        }
    }
}

/// `sealed`'s pieces as TLS records of `session` (each its own), then
/// `raw`, in one buffer.
fn seal_then_raw(
    session: &mut rustls::ServerConnection,
    sealed: &[Vec<u8>],
    raw: &[u8],
) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut out = Vec::new();
    for piece in sealed {
        session.writer().write_all(piece)?;
        while session.wants_write() {
            session.write_tls(&mut out)?;
        }
    }
    out.extend_from_slice(raw);
    Ok(out)
}

async fn run_script(mut conn: Conn, script: Vec<Step>, index: usize, st: &RawStats) {
    let mut buf: Vec<u8> = Vec::new();
    for step in script {
        match step {
            Step::Read(until) => loop {
                match satisfied(&buf, &until) {
                    Ok(Some(n)) => {
                        buf.drain(..n);
                        break;
                    }
                    Ok(None) if buf.len() <= MAX_READ_BUFFER => {
                        if !read_more(&mut conn, &mut buf, index, st).await {
                            return close(conn, index, st).await;
                        }
                    }
                    _ => return close(conn, index, st).await,
                }
            },
            Step::Write(bytes) => {
                let io = conn.io();
                if io.write_all(&bytes).await.is_err() || io.flush().await.is_err() {
                    return;
                }
            }
            Step::WriteRaw(raw) => {
                if write_sealed_then_raw(&mut conn, &[], &raw).await.is_err() {
                    return;
                }
            }
            Step::WriteSealedThenRaw { sealed, raw } => {
                if write_sealed_then_raw(&mut conn, &sealed, &raw)
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Step::Sleep(d) => tokio::time::sleep(d).await,
            Step::Close => return close(conn, index, st).await,
            Step::CloseNotify => {
                if let Conn::Tls(s) = &mut conn {
                    s.get_mut().1.send_close_notify();
                    if s.flush().await.is_err() {
                        return;
                    }
                }
            }
            Step::Reset => {
                #[allow(deprecated)] // linger 0 never blocks: it resets at once.
                let _ = conn.tcp().set_linger(Some(Duration::ZERO));
                return;
            }
            Step::Hang => std::future::pending::<()>().await,
            Step::AcceptWebSocket(then) => {
                let head = loop {
                    match satisfied(&buf, &ReadUntil::HeadEnd) {
                        Ok(Some(n)) => break n,
                        Ok(None) if buf.len() <= MAX_READ_BUFFER => {
                            if !read_more(&mut conn, &mut buf, index, st).await {
                                return close(conn, index, st).await;
                            }
                        }
                        _ => return close(conn, index, st).await,
                    }
                };
                let key = websocket_key(&buf[..head]);
                buf.drain(..head);
                let Some(key) = key else {
                    return close(conn, index, st).await;
                };
                let mut bytes = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                    derive_accept_key(&key)
                )
                .into_bytes();
                bytes.extend_from_slice(&then);
                let io = conn.io();
                if io.write_all(&bytes).await.is_err() || io.flush().await.is_err() {
                    return;
                }
            }
        }
    }
    close(conn, index, st).await
}

/// The `Sec-WebSocket-Key` of a request head.
fn websocket_key(head: &[u8]) -> Option<Vec<u8>> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(head).ok()?;
    req.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-key"))
        .map(|h| h.value.to_vec())
}

/// Clean close: shutdown (TLS close_notify + FIN), then drain for a while.
async fn close(mut conn: Conn, index: usize, st: &RawStats) {
    let _ = conn.io().shutdown().await;
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(CLOSE_DRAIN, async {
        while read_more(&mut conn, &mut sink, index, st).await {
            sink.clear();
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_framing() {
        assert_eq!(request_len(b"GET / HTTP/1.1\r\n\r\nX"), Ok(Some(18)));
        assert_eq!(
            request_len(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nab"),
            Ok(None)
        );
        let c = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\nNEXT";
        assert_eq!(request_len(c), Ok(Some(c.len() - 4)));
        assert!(request_len(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n").is_err());
    }
}
