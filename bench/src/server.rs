//! The loopback HTTPS server every client talks to: hyper 1 over
//! tokio-rustls on a multi-threaded tokio runtime (2 workers), with the
//! certificate of an [`mpnet_testkit::TestCa`] leaf. It is none of the
//! clients under test, and it does as little as it can per request.
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /1k` | 1024 bytes, `application/octet-stream` |
//! | `POST /echo-json` | reads the body, answers [`json_1k`] (1024 bytes of JSON) |
//! | `GET /bytes/N` | N bytes streamed from one static buffer, with `Content-Length` |
//! | `POST /upload` | reads and discards the body, answers `{"length":N}` |
//! | `GET /ws` (WebSocket upgrade) | `101`, then echoes every text and binary frame as it came |
//! | anything else | 404 |
//!
//! The WebSocket side is fastwebsockets' server half (hyper's upgrade,
//! unmasked server frames, pings answered, the close handshake): one of
//! the fastest Rust servers, and not the client code of any row. The
//! `101` answers RFC 6455 §4.2.2: `Sec-WebSocket-Accept` from the key, and
//! the first subprotocol the client offered, if it offered any (a client
//! that asks for one must get one back, SPEC §7 code 9).
//!
//! Listens on 127.0.0.1 only; stops (listener and connections) on drop.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::thread::JoinHandle;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mpnet_testkit::TestCa;
use tokio::sync::oneshot;

/// Size of each frame of a `/bytes/N` body.
const STREAM_CHUNK: usize = 128 * 1024;

static ZEROS: [u8; STREAM_CHUNK] = [b'x'; STREAM_CHUNK];

/// Largest `/bytes/N` served (64 GiB).
const MAX_STREAM: u64 = 64 << 30;

/// The 1 KiB JSON document: what `/echo-json` answers and what the JSON
/// scenario posts. Exactly 1024 bytes, a realistic mix of objects, arrays,
/// strings, integers, floats and booleans.
pub fn json_1k() -> &'static Bytes {
    static DOC: OnceLock<Bytes> = OnceLock::new();
    DOC.get_or_init(|| {
        let items: Vec<serde_json::Value> = (1..=8)
            .map(|i| {
                serde_json::json!({
                    "id": i,
                    "name": format!("item-{i}"),
                    "price": f64::from(i) * 1.25,
                    "tags": ["alpha", "beta"],
                    "inStock": i % 2 == 0,
                })
            })
            .collect();
        let mut doc = serde_json::json!({
            "from": "支付宝",
            "production": "AlipayJSAPI",
            "items": items,
            "pad": "",
        });
        let len = serde_json::to_vec(&doc).map(|v| v.len()).unwrap_or(0);
        let pad = 1024usize.saturating_sub(len);
        doc["pad"] = serde_json::Value::String("p".repeat(pad));
        Bytes::from(serde_json::to_vec(&doc).unwrap_or_default())
    })
}

/// A response body: a whole buffer, or `left` bytes streamed from a static
/// buffer.
pub enum ServerBody {
    /// One frame.
    Full(Option<Bytes>),
    /// Streamed in `STREAM_CHUNK` frames.
    Stream {
        /// Bytes still to send.
        left: u64,
    },
}

impl Body for ServerBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ServerBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ServerBody::Stream { left } => {
                if *left == 0 {
                    return Poll::Ready(None);
                }
                let n = usize::try_from(*left).map_or(STREAM_CHUNK, |l| l.min(STREAM_CHUNK));
                *left -= n as u64;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&ZEROS[..n])))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ServerBody::Full(b) => b.is_none(),
            ServerBody::Stream { left } => *left == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ServerBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ServerBody::Stream { left } => SizeHint::with_exact(*left),
        }
    }
}

fn one_k() -> &'static Bytes {
    static ONE_K: OnceLock<Bytes> = OnceLock::new();
    ONE_K.get_or_init(|| Bytes::from_static(&ZEROS[..1024]))
}

fn answer(status: StatusCode, content_type: &str, body: ServerBody) -> Response<ServerBody> {
    let len = match &body {
        ServerBody::Full(b) => b.as_ref().map_or(0, |b| b.len() as u64),
        ServerBody::Stream { left } => *left,
    };
    let mut res = Response::new(body);
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_str(content_type)
            .unwrap_or(http::HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
    res
}

/// Reads a request body to its end; returns its length.
async fn drain(mut body: Incoming) -> u64 {
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Some(d) = f.data_ref() {
                    n += d.len() as u64;
                }
            }
            Err(_) => break,
        }
    }
    n
}

/// The first subprotocol a WebSocket upgrade request offers, if any.
fn first_subprotocol(req: &Request<Incoming>) -> Option<http::HeaderValue> {
    req.headers()
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|p| !p.is_empty())
        .and_then(|p| http::HeaderValue::from_str(p).ok())
}

/// Answers a WebSocket upgrade on `/ws` with `101` and spawns the echo.
fn upgrade_ws(mut req: Request<Incoming>) -> Response<ServerBody> {
    if !fastwebsockets::upgrade::is_upgrade_request(&req) {
        return answer(
            StatusCode::BAD_REQUEST,
            "text/plain",
            ServerBody::Full(Some(Bytes::from_static(b"not a WebSocket upgrade"))),
        );
    }
    let protocol = first_subprotocol(&req);
    let (upgraded, fut) = match fastwebsockets::upgrade::upgrade(&mut req) {
        Ok(u) => u,
        Err(e) => {
            return answer(
                StatusCode::BAD_REQUEST,
                "text/plain",
                ServerBody::Full(Some(Bytes::from(e.to_string()))),
            )
        }
    };
    tokio::spawn(async move {
        if let Ok(ws) = fut.await {
            let _ = ws_echo(ws).await;
        }
    });
    let (parts, _) = upgraded.into_parts();
    let mut res = Response::from_parts(parts, ServerBody::Full(None));
    if let Some(p) = protocol {
        res.headers_mut()
            .insert(http::header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    res
}

/// Echoes every text, binary and continuation frame as it came (so a
/// fragmented message comes back fragmented the same way), until the
/// client closes. Pings are answered and the close is replied to by
/// fastwebsockets itself. Each write is flushed: tokio-rustls may keep the
/// tail of a large write in its buffer otherwise.
async fn ws_echo(
    mut ws: fastwebsockets::WebSocket<TokioIo<hyper::upgrade::Upgraded>>,
) -> Result<(), fastwebsockets::WebSocketError> {
    use fastwebsockets::OpCode;
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => break,
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                // The same frame, unmasked (the payload already is; the
                // frame read still carries the client's mask key).
                let echo = fastwebsockets::Frame::new(frame.fin, frame.opcode, None, frame.payload);
                ws.write_frame(echo).await?;
                ws.flush().await?;
            }
            OpCode::Ping | OpCode::Pong => {}
        }
    }
    // The close reply was written by read_frame.
    ws.flush().await
}

async fn handle(req: Request<Incoming>) -> Result<Response<ServerBody>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let res = match (&method, path.as_str()) {
        (&Method::GET, "/ws") => upgrade_ws(req),
        (&Method::GET, "/1k") => answer(
            StatusCode::OK,
            "application/octet-stream",
            ServerBody::Full(Some(one_k().clone())),
        ),
        (&Method::POST, "/echo-json") => {
            drain(req.into_body()).await;
            answer(
                StatusCode::OK,
                "application/json",
                ServerBody::Full(Some(json_1k().clone())),
            )
        }
        (&Method::POST, "/upload") => {
            let n = drain(req.into_body()).await;
            answer(
                StatusCode::OK,
                "application/json",
                ServerBody::Full(Some(Bytes::from(format!("{{\"length\":{n}}}")))),
            )
        }
        (&Method::GET, p) if p.starts_with("/bytes/") => {
            match p["/bytes/".len()..].parse::<u64>() {
                Ok(n) if n <= MAX_STREAM => answer(
                    StatusCode::OK,
                    "application/octet-stream",
                    ServerBody::Stream { left: n },
                ),
                _ => answer(
                    StatusCode::BAD_REQUEST,
                    "text/plain",
                    ServerBody::Full(Some(Bytes::from_static(b"bad size"))),
                ),
            }
        }
        _ => answer(
            StatusCode::NOT_FOUND,
            "text/plain",
            ServerBody::Full(Some(Bytes::from_static(b"not found"))),
        ),
    };
    Ok(res)
}

/// The running server. Dropping it stops it.
pub struct Server {
    addr: SocketAddr,
    /// The same endpoints over plain HTTP (for the allocation row that
    /// shows mpnet's own code apart from TLS).
    plain_addr: SocketAddr,
    ca: TestCa,
    server_config: Arc<rustls::ServerConfig>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    accepted: Arc<AtomicU64>,
}

impl Server {
    /// Starts the server on 127.0.0.1 with a fresh [`TestCa`]'s leaf.
    pub fn start() -> io::Result<Server> {
        let ca = TestCa::new();
        let server_config = ca.leaf().server_config(true);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bench-server")
            .enable_all()
            .build()?;
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let plain = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let plain_addr = plain.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config.clone());
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let accepted = Arc::new(AtomicU64::new(0));
        let counter = accepted.clone();
        let thread = std::thread::Builder::new()
            .name("bench-server-main".into())
            .spawn(move || {
                rt.block_on(async move {
                    loop {
                        let (accepted, secure) = tokio::select! {
                            _ = &mut stop_rx => break,
                            a = listener.accept() => (a, true),
                            a = plain.accept() => (a, false),
                        };
                        let Ok((tcp, _)) = accepted else { continue };
                        counter.fetch_add(1, Ordering::Relaxed);
                        let _ = tcp.set_nodelay(true);
                        let acceptor = secure.then(|| acceptor.clone());
                        tokio::spawn(async move {
                            match acceptor {
                                None => serve(tcp).await,
                                Some(acceptor) => {
                                    if let Ok(tls) = acceptor.accept(tcp).await {
                                        serve(tls).await;
                                    }
                                }
                            }
                        });
                    }
                });
                // Dropping the runtime ends every connection task.
                drop(rt);
            })?;
        Ok(Server {
            addr,
            plain_addr,
            ca,
            server_config,
            stop: Some(stop_tx),
            thread: Some(thread),
            accepted,
        })
    }

    /// `https://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    /// `http://127.0.0.1:PLAIN_PORT` + `path`: the same endpoints without
    /// TLS.
    pub fn plain_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.plain_addr.port())
    }

    /// `wss://127.0.0.1:PORT/ws`, the WebSocket echo.
    pub fn ws_url(&self) -> String {
        format!("wss://127.0.0.1:{}/ws", self.addr.port())
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `https://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        self.url("")
    }

    /// The CA that issued the server's certificate.
    pub fn ca(&self) -> &TestCa {
        &self.ca
    }

    /// Connections accepted so far (to tell keep-alive from reconnecting).
    pub fn connections(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// The server's rustls configuration (for the in-memory handshake).
    pub fn server_config(&self) -> &Arc<rustls::ServerConfig> {
        &self.server_config
    }
}

/// Serves one keep-alive HTTP/1.1 connection over `io` (TLS or plain),
/// upgrades allowed (the `/ws` echo).
async fn serve<I>(io: I)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service_fn(handle))
        .with_upgrades()
        .await;
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
