//! The httpbin-like HTTP/1.1 server, over TLS ([`HttpsServer`]) or plain TCP
//! ([`HttpServer`]).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;

use crate::bg::{accept_loop, bind_loopback, Background};
use crate::ca::{Leaf, LeafKind, TestCa};
use crate::routes;
use crate::tap::{Heads, Tap};

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Counters shared by a server and its handle.
#[derive(Default, Debug)]
pub(crate) struct Stats {
    pub connections: AtomicU64,
    pub requests: AtomicU64,
}

/// What the request handlers know about the server they run in.
#[derive(Debug)]
pub(crate) struct Ctx {
    /// `"https"` or `"http"`.
    pub scheme: &'static str,
    pub port: u16,
    pub stats: Arc<Stats>,
}

/// The parts shared by [`HttpsServer`] and [`HttpServer`].
struct Core {
    bg: Background,
    stats: Arc<Stats>,
    scheme: &'static str,
}

impl Core {
    fn start(port: u16, tls: Option<TlsAcceptor>) -> io::Result<Core> {
        let listener = bind_loopback(port)?;
        let port = listener.local_addr()?.port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let stats = Arc::new(Stats::default());
        let ctx = Arc::new(Ctx {
            scheme,
            port,
            stats: stats.clone(),
        });
        let name = format!("mpnet-testkit-{scheme}-{port}");
        let bg = Background::spawn(&name, listener, move |listener| {
            accept_loop(listener, move |tcp, peer| {
                ctx.stats.connections.fetch_add(1, Ordering::SeqCst);
                let ctx = ctx.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => serve_connection(tcp, peer, ctx).await,
                        Some(acceptor) => {
                            let handshake =
                                tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
                            if let Ok(Ok(stream)) = handshake {
                                serve_connection(stream, peer, ctx).await;
                            }
                        }
                    }
                });
            })
        })?;
        Ok(Core { bg, stats, scheme })
    }

    fn url(&self, host: &str, path: &str) -> String {
        self.url_with(self.scheme, host, path)
    }

    /// The same URL with `wss`/`ws` for `https`/`http`.
    fn ws_url(&self, host: &str, path: &str) -> String {
        let scheme = if self.scheme == "https" { "wss" } else { "ws" };
        self.url_with(scheme, host, path)
    }

    fn url_with(&self, scheme: &str, host: &str, path: &str) -> String {
        format!(
            "{}://{}:{}/{}",
            scheme,
            host,
            self.bg.addr().port(),
            path.trim_start_matches('/')
        )
    }
}

/// Serves HTTP/1.1 (keep-alive on) on one accepted connection.
async fn serve_connection<IO>(io: IO, peer: SocketAddr, ctx: Arc<Ctx>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let heads: Heads = Arc::new(Mutex::new(Default::default()));
    let tapped = Tap::new(io, heads.clone());
    let service = service_fn(move |req| {
        let head = heads.lock().ok().and_then(|mut q| q.pop_front());
        let ctx = ctx.clone();
        async move {
            ctx.stats.requests.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Infallible>(routes::handle(ctx, peer, head, req).await)
        }
    });
    // with_upgrades: the WebSocket endpoints take the connection over.
    let _ = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(tapped), service)
        .with_upgrades()
        .await;
}

/// The httpbin-like test server over TLS, listening on `127.0.0.1` only.
///
/// It runs on its own thread (a tokio runtime with 2 workers) from
/// [`HttpsServer::start`] until [`HttpsServer::shutdown`] or drop, which
/// close the listener and every connection before returning. It speaks
/// HTTP/1.1 with keep-alive (ALPN `http/1.1`), TLS 1.2 and 1.3. The
/// endpoints are listed in the crate documentation.
pub struct HttpsServer {
    core: Core,
    ca: TestCa,
    leaf: Leaf,
}

impl std::fmt::Debug for HttpsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsServer")
            .field("addr", &self.addr())
            .field("leaf", &self.leaf)
            .finish_non_exhaustive()
    }
}

impl HttpsServer {
    /// Starts a server on an ephemeral loopback port presenting `ca`'s
    /// valid loopback leaf.
    ///
    /// # Panics
    /// If no loopback port can be bound or no thread started.
    pub fn start(ca: &TestCa) -> HttpsServer {
        Self::start_with(ca, LeafKind::Valid)
    }

    /// Starts a server on an ephemeral loopback port presenting the leaf of
    /// `kind` from `ca` (an expired, wrong-host or untrusted one for
    /// certificate-failure tests).
    ///
    /// # Panics
    /// As [`HttpsServer::start`].
    pub fn start_with(ca: &TestCa, kind: LeafKind) -> HttpsServer {
        Self::bind(0, ca, ca.leaf_for(kind)).expect("start the loopback HTTPS test server")
    }

    /// Starts a server on `127.0.0.1:port` (0: ephemeral) presenting
    /// `leaf`; fails if the port cannot be bound.
    pub fn bind(port: u16, ca: &TestCa, leaf: Leaf) -> io::Result<HttpsServer> {
        let acceptor = TlsAcceptor::from(leaf.server_config(true));
        Ok(HttpsServer {
            core: Core::start(port, Some(acceptor))?,
            ca: ca.clone(),
            leaf,
        })
    }

    /// `https://127.0.0.1:PORT/{path}` (a leading `/` in `path` is
    /// optional; `path` may carry a query).
    pub fn url(&self, path: &str) -> String {
        self.core.url("127.0.0.1", path)
    }

    /// `https://localhost:PORT/{path}`, for tests that need a host name.
    pub fn localhost_url(&self, path: &str) -> String {
        self.core.url("localhost", path)
    }

    /// `wss://127.0.0.1:PORT/{path}`, for the WebSocket endpoints (`/ws`,
    /// `/ws/close?code=N&reason=R`; see the crate documentation).
    pub fn ws_url(&self, path: &str) -> String {
        self.core.ws_url("127.0.0.1", path)
    }

    /// `wss://localhost:PORT/{path}`.
    pub fn localhost_ws_url(&self, path: &str) -> String {
        self.core.ws_url("localhost", path)
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.core.bg.addr().port()
    }

    /// The listening address (always `127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.core.bg.addr()
    }

    /// The CA the server was started with (trust it to trust the server,
    /// unless the leaf is [`LeafKind::Untrusted`]).
    pub fn ca(&self) -> &TestCa {
        &self.ca
    }

    /// The leaf certificate the server presents.
    pub fn leaf(&self) -> &Leaf {
        &self.leaf
    }

    /// How many TCP connections the server has accepted so far (counted at
    /// accept, before the TLS handshake, so failed handshakes count too).
    pub fn connections_accepted(&self) -> u64 {
        self.core.stats.connections.load(Ordering::SeqCst)
    }

    /// How many HTTP requests reached the handlers so far.
    pub fn requests_served(&self) -> u64 {
        self.core.stats.requests.load(Ordering::SeqCst)
    }

    /// Stops the server: closes the listener and every open connection,
    /// then returns. Calling it again does nothing.
    pub fn shutdown(&mut self) {
        self.core.bg.stop();
    }
}

/// The same server as [`HttpsServer`] over plain TCP, for the
/// insecure-loopback (`http://`) tests; listening on `127.0.0.1` only.
pub struct HttpServer {
    core: Core,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("addr", &self.addr())
            .finish_non_exhaustive()
    }
}

impl HttpServer {
    /// Starts a server on an ephemeral loopback port.
    ///
    /// # Panics
    /// If no loopback port can be bound or no thread started.
    pub fn start() -> HttpServer {
        Self::bind(0).expect("start the loopback HTTP test server")
    }

    /// Starts a server on `127.0.0.1:port` (0: ephemeral); fails if the
    /// port cannot be bound.
    pub fn bind(port: u16) -> io::Result<HttpServer> {
        Ok(HttpServer {
            core: Core::start(port, None)?,
        })
    }

    /// `http://127.0.0.1:PORT/{path}` (leading `/` optional).
    pub fn url(&self, path: &str) -> String {
        self.core.url("127.0.0.1", path)
    }

    /// `http://localhost:PORT/{path}`.
    pub fn localhost_url(&self, path: &str) -> String {
        self.core.url("localhost", path)
    }

    /// `ws://127.0.0.1:PORT/{path}`, for the WebSocket endpoints.
    pub fn ws_url(&self, path: &str) -> String {
        self.core.ws_url("127.0.0.1", path)
    }

    /// `ws://localhost:PORT/{path}`.
    pub fn localhost_ws_url(&self, path: &str) -> String {
        self.core.ws_url("localhost", path)
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.core.bg.addr().port()
    }

    /// The listening address (always `127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.core.bg.addr()
    }

    /// How many TCP connections the server has accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.core.stats.connections.load(Ordering::SeqCst)
    }

    /// How many HTTP requests reached the handlers so far.
    pub fn requests_served(&self) -> u64 {
        self.core.stats.requests.load(Ordering::SeqCst)
    }

    /// Stops the server: closes the listener and every open connection,
    /// then returns. Calling it again does nothing.
    pub fn shutdown(&mut self) {
        self.core.bg.stop();
    }
}

/// Entry point for `mpnet serve`: the HTTPS test server on
/// `127.0.0.1:port` (0: ephemeral) with `ca`'s valid loopback leaf. Fails
/// when the port cannot be bound (e.g. in use).
pub fn serve_https(port: u16, ca: &TestCa) -> io::Result<HttpsServer> {
    HttpsServer::bind(port, ca, ca.leaf())
}

/// Entry point for `mpnet serve --insecure`-style use: the plain HTTP test
/// server on `127.0.0.1:port` (0: ephemeral).
pub fn serve_http(port: u16) -> io::Result<HttpServer> {
    HttpServer::bind(port)
}
