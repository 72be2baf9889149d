//! WSS echo (issue 8): over one WSS connection, send a message, wait for
//! its echo, repeat until the budget is spent; messages per second. 64 B
//! text and 64 KiB binary messages, against tokio-tungstenite 0.28 and
//! fastwebsockets 0.10, echoed by the bench server's `/ws` (fastwebsockets'
//! server half on the 2-worker hyper server).
//!
//! | client | how it runs | its loop |
//! |---|---|---|
//! | mpnet-blocking | the socket's reader and writer threads | the message listener sends the next message |
//! | mpnet-smol | a `smol::Executor` run by the bench thread (`Client::with_executor`) | the same listener |
//! | tokio-tungstenite | a current-thread tokio runtime, over a tokio-rustls stream the bench opens | `send(msg)` then `next()` |
//! | fastwebsockets | the same, its client handshake over hyper 1 | `write_frame` + `flush`, then `read_frame` |
//!
//! mpnet's API is the mini-program's: events reach listeners, and the
//! listener of one echo sends the next message — the way an app answers
//! messages. The bench thread starts the chain, and waits for the listener
//! to say the budget is spent. A binary message goes out as bytes
//! (`SendOptions::binary`, a Rust host's form of `isBuffer: true`; shared,
//! not copied, per send), and comes in as the bytes (`MessageData::Binary`).
//!
//! Every client uses rustls with the *ring* provider, trusts only the test
//! CA and offers no ALPN; mpnet with its own cipher order (AES-128-GCM
//! first), the peers with rustls' defaults, as their users would have.
//!
//! Client CPU: the on-CPU time (`/proc/self/task/*/schedstat`) of every
//! thread of the process but the server's (`bench-server*`), so mpnet-
//! blocking's socket threads are counted with the bench thread; the other
//! clients run on the bench thread alone.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use mpnet_core::task::Callbacks;
use mpnet_core::ws::listeners::{CloseListener, MessageListener};
use mpnet_core::ws::{CloseOptions, ConnectOptions, MessageData, SendOptions};

use super::{row, take_turns, Ctx, Measure};
use crate::clients;
use crate::report::Series;
use crate::server::Server;

/// How long a run may take past its budget before it counts as failed (a
/// lost echo must not hang the suite).
const GRACE: Duration = Duration::from_secs(10);

/// Echoes exchanged before the timed runs.
const WARM: u64 = 50;

const TARGET_TT: &str = "≥ 1.2x tokio-tungstenite";
const TARGET_FWS: &str = "≥ 1.0x fastwebsockets";

/// One message size of the scenario.
#[derive(Clone, Copy)]
struct Shape {
    len: usize,
    text: bool,
    what: &'static str,
}

const SHAPES: [Shape; 2] = [
    Shape {
        len: 64,
        text: true,
        what: "WSS echo 64 B text, 1 connection",
    },
    Shape {
        len: 64 * 1024,
        text: false,
        what: "WSS echo 64 KiB binary, 1 connection",
    },
];

impl Shape {
    /// The payload: ASCII letters, so it is text and binary alike.
    fn payload(&self) -> Vec<u8> {
        (0..self.len).map(|i| b'a' + (i % 26) as u8).collect()
    }
}

/// On-CPU time of every thread of this process but the server's.
fn client_cpu() -> Duration {
    super::process_cpu(false)
}

/// Per-client logs of client CPU µs per message.
struct CpuLogs(Vec<RefCell<Vec<f64>>>);

impl CpuLogs {
    fn new(n: usize) -> Self {
        CpuLogs((0..n).map(|_| RefCell::default()).collect())
    }

    /// Runs `f` (which returns messages exchanged and the time they took),
    /// logs client `i`'s CPU per message, returns messages per second.
    fn measure(
        &self,
        i: usize,
        f: impl FnOnce() -> Result<(u64, Duration), String>,
    ) -> Result<f64, String> {
        let cpu = client_cpu();
        let (n, elapsed) = f()?;
        let used = client_cpu().saturating_sub(cpu);
        if n == 0 {
            return Err("no echo within the budget".into());
        }
        if let Some(log) = self.0.get(i) {
            log.borrow_mut().push(used.as_secs_f64() * 1e6 / n as f64);
        }
        Ok(n as f64 / elapsed.as_secs_f64())
    }

    fn series(&self, i: usize, like: &Series) -> Series {
        super::logged_series(&self.0, i, like)
    }
}

// ----- mpnet: the listener sends the next message -----

/// Where the listener reports the end of a run: messages echoed, or why it
/// failed.
type Done = Box<dyn Fn(Result<u64, String>) + Send>;

/// What the message listener needs to keep the echo chain going.
struct Chain {
    /// Sends one message (the socket task's `send`).
    send: Box<dyn Fn() -> Result<(), String> + Send + Sync>,
    expect_len: usize,
    expect_text: bool,
    /// Until when the listener sends the next message, and at most how many.
    until: Mutex<(Instant, u64)>,
    count: AtomicU64,
    /// Where the listener reports the end of a run (or a failure).
    done: Mutex<Option<Done>>,
}

impl Chain {
    /// A chain for messages of `shape`, each sent by `send`.
    fn new(shape: Shape, send: Box<dyn Fn() -> Result<(), String> + Send + Sync>) -> Arc<Self> {
        Arc::new(Chain {
            send,
            expect_len: shape.len,
            expect_text: shape.text,
            until: Mutex::new((Instant::now(), 0)),
            count: AtomicU64::new(0),
            done: Mutex::new(None),
        })
    }

    /// The socket listeners that drive `chain`: each echo sends the next
    /// message; a close ends the run. They hold the chain weakly (the chain
    /// holds the task, whose listener lists hold them).
    fn listeners(chain: &Arc<Self>) -> (Arc<MessageListener>, Arc<CloseListener>) {
        let weak = Arc::downgrade(chain);
        let on_message = Arc::new(move |m: &MessageData| {
            if let Some(chain) = weak.upgrade() {
                chain.on_message(m);
            }
        });
        let weak = Arc::downgrade(chain);
        let on_close = Arc::new(move |code: u16, reason: &str| {
            if let Some(chain) = weak.upgrade() {
                chain.finish(Err(format!("socket closed: {code} {reason}")));
            }
        });
        (on_message, on_close)
    }

    fn finish(&self, r: Result<u64, String>) {
        if let Some(done) = self.done.lock().unwrap_or_else(|p| p.into_inner()).take() {
            done(r);
        }
    }

    /// The message listener.
    fn on_message(&self, data: &MessageData) {
        let ok = match data {
            MessageData::Text(t) => self.expect_text && t.len() == self.expect_len,
            MessageData::Binary(b) => !self.expect_text && b.len() == self.expect_len,
        };
        if !ok {
            return self.finish(Err(format!(
                "unexpected echo of {} bytes",
                data.js_data().len()
            )));
        }
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        let (until, max) = *self.until.lock().unwrap_or_else(|p| p.into_inner());
        if n >= max || Instant::now() >= until {
            return self.finish(Ok(n));
        }
        if let Err(e) = (self.send)() {
            self.finish(Err(e));
        }
    }

    /// Arms a run: `max` messages or until `until`; `done` gets the count.
    fn arm(&self, until: Instant, max: u64, done: Done) {
        *self.until.lock().unwrap_or_else(|p| p.into_inner()) = (until, max);
        self.count.store(0, Ordering::Relaxed);
        *self.done.lock().unwrap_or_else(|p| p.into_inner()) = Some(done);
    }
}

/// The `sendSocketMessage` options of one message of `shape`.
fn send_options(shape: Shape, payload: &[u8]) -> SendOptions {
    if shape.text {
        SendOptions::text(String::from_utf8_lossy(payload).into_owned())
    } else {
        SendOptions::binary(bytes::Bytes::copy_from_slice(payload))
    }
}

fn connect_options(server: &Server) -> ConnectOptions {
    ConnectOptions::new(server.ws_url())
        .multiple(true)
        .timeout(Duration::from_secs(10))
}

/// An mpnet-blocking socket to the echo, with its chain.
struct BlockingEcho {
    task: mpnet_blocking::SocketTask,
    chain: Arc<Chain>,
    _client: mpnet_blocking::Client,
}

impl BlockingEcho {
    fn open(c: &Ctx<'_>, shape: Shape, payload: &[u8]) -> Result<Self, String> {
        let client = clients::mpnet_blocking(c.server, clients::mpnet_pool(), 64, &c.dir)?;
        let task = client.connect_socket(connect_options(c.server), Callbacks::new());
        task.wait_connected().map_err(|e| e.to_string())?;
        let opts = send_options(shape, payload);
        let sender = task.clone();
        let chain = Chain::new(
            shape,
            Box::new(move || sender.send(&opts).map_err(|e| e.to_string())),
        );
        let (on_message, on_close) = Chain::listeners(&chain);
        task.on_message(on_message);
        task.on_close(on_close);
        let echo = BlockingEcho {
            task,
            chain,
            _client: client,
        };
        echo.run(Duration::from_secs(60), WARM)?;
        Ok(echo)
    }

    /// One run: messages echoed and the time they took.
    fn run(&self, budget: Duration, max: u64) -> Result<(u64, Duration), String> {
        let (tx, rx) = mpsc::channel();
        let start = Instant::now();
        self.chain.arm(
            start + budget,
            max,
            Box::new(move |r| {
                let _ = tx.send((r, Instant::now()));
            }),
        );
        (self.chain.send)()?;
        let (r, end) = rx
            .recv_timeout(budget + GRACE)
            .map_err(|_| "no echo for too long".to_string())?;
        Ok((r?, end - start))
    }
}

impl Drop for BlockingEcho {
    fn drop(&mut self) {
        self.task.off_message(None);
        self.task.off_close(None);
        let _ = self.task.close(&CloseOptions::default());
    }
}

/// An mpnet-smol socket to the echo on an executor the bench thread runs.
#[cfg(feature = "smol")]
struct SmolEcho {
    task: mpnet_smol::SocketTask,
    chain: Arc<Chain>,
    ex: Arc<smol::Executor<'static>>,
    _client: mpnet_smol::Client,
}

#[cfg(feature = "smol")]
impl SmolEcho {
    fn open(c: &Ctx<'_>, shape: Shape, payload: &[u8]) -> Result<Self, String> {
        let ex = Arc::new(smol::Executor::new());
        let client = clients::mpnet_smol(c.server, clients::mpnet_pool(), 64, &c.dir)?
            .with_executor(ex.clone());
        let task = client.connect_socket(connect_options(c.server), Callbacks::new());
        smol::block_on(ex.run(task.connected())).map_err(|e| e.to_string())?;
        let opts = send_options(shape, payload);
        let sender = task.clone();
        let chain = Chain::new(
            shape,
            Box::new(move || sender.send(&opts).map_err(|e| e.to_string())),
        );
        let (on_message, on_close) = Chain::listeners(&chain);
        task.on_message(on_message);
        task.on_close(on_close);
        let echo = SmolEcho {
            task,
            chain,
            ex,
            _client: client,
        };
        echo.run(Duration::from_secs(60), WARM)?;
        Ok(echo)
    }

    fn run(&self, budget: Duration, max: u64) -> Result<(u64, Duration), String> {
        let (tx, rx) = smol::channel::bounded(1);
        let start = Instant::now();
        self.chain.arm(
            start + budget,
            max,
            Box::new(move |r| {
                let _ = tx.try_send((r, Instant::now()));
            }),
        );
        // The time limit is a watchdog thread, not a timer of the
        // executor: a pending timer would make async-io re-arm its timerfd
        // at every wait, a cost of the bench rather than of mpnet.
        let watchdog = Arc::downgrade(&self.chain);
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let guard = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = stop_rx.recv_timeout(budget + GRACE) {
                if let Some(chain) = watchdog.upgrade() {
                    chain.finish(Err("no echo for too long".into()));
                }
            }
        });
        let chain = self.chain.clone();
        let r = smol::block_on(self.ex.run(async move {
            (chain.send)()?;
            let (r, end) = rx.recv().await.map_err(|e| e.to_string())?;
            Ok((r?, end - start))
        }));
        drop(stop_tx);
        let _ = guard.join();
        r
    }
}

#[cfg(feature = "smol")]
impl Drop for SmolEcho {
    fn drop(&mut self) {
        self.task.off_message(None);
        self.task.off_close(None);
        let _ = self.task.close(&CloseOptions::default());
        // Let the close handshake run a little on this thread.
        smol::block_on(self.ex.run(smol::Timer::after(Duration::from_millis(50))));
    }
}

// ----- the peers: a tokio-rustls stream of our own -----

type TlsStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// TCP (no Nagle, as mpnet sets) and TLS to the server, rustls + ring
/// defaults, trusting only the test CA, no ALPN.
async fn tls_connect(server: &Server) -> Result<TlsStream, String> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(server.ca().client_config());
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").map_err(|e| e.to_string())?;
    connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())
}

/// Runs `looped` (echoes until the budget) with a time limit.
async fn limited(
    budget: Duration,
    looped: impl std::future::Future<Output = Result<(u64, Duration), String>>,
) -> Result<(u64, Duration), String> {
    tokio::time::timeout(budget + GRACE, looped)
        .await
        .map_err(|_| "no echo for too long".to_string())?
}

type Tungstenite = tokio_tungstenite::WebSocketStream<TlsStream>;

async fn tungstenite_open(server: &Server) -> Result<Tungstenite, String> {
    let tls = tls_connect(server).await?;
    let (ws, _) = tokio_tungstenite::client_async(server.ws_url(), tls)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// One echo with tokio-tungstenite: `send` (which flushes), then `next`.
async fn tungstenite_echo(
    ws: &mut Tungstenite,
    msg: &tokio_tungstenite::tungstenite::Message,
) -> Result<(), String> {
    use tokio_tungstenite::tungstenite::Message;
    ws.send(msg.clone()).await.map_err(|e| e.to_string())?;
    loop {
        let got = ws
            .next()
            .await
            .ok_or("the connection ended")?
            .map_err(|e| e.to_string())?;
        return match (&got, msg) {
            (Message::Text(a), Message::Text(b)) if a.len() == b.len() => Ok(()),
            (Message::Binary(a), Message::Binary(b)) if a.len() == b.len() => Ok(()),
            (Message::Ping(_) | Message::Pong(_), _) => continue,
            _ => Err(format!("unexpected echo {got:?}")),
        };
    }
}

type Fws = fastwebsockets::WebSocket<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>;

/// hyper's executor for fastwebsockets' client handshake: the connection
/// task on the current (single-thread) runtime.
struct SpawnLocal;

impl<Fut> hyper::rt::Executor<Fut> for SpawnLocal
where
    Fut: std::future::Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    fn execute(&self, fut: Fut) {
        tokio::spawn(fut);
    }
}

async fn fws_open(server: &Server) -> Result<Fws, String> {
    let tls = tls_connect(server).await?;
    let req = http::Request::builder()
        .method("GET")
        .uri("/ws")
        .header(http::header::HOST, format!("127.0.0.1:{}", server.port()))
        .header(http::header::UPGRADE, "websocket")
        .header(http::header::CONNECTION, "upgrade")
        .header(
            http::header::SEC_WEBSOCKET_KEY,
            fastwebsockets::handshake::generate_key(),
        )
        .header(http::header::SEC_WEBSOCKET_VERSION, "13")
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let (ws, _) = fastwebsockets::handshake::client(&SpawnLocal, req, tls)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// One echo with fastwebsockets: write the frame (masked by the library)
/// and flush, then read frames until the echo. The server never fragments.
async fn fws_echo(ws: &mut Fws, payload: &[u8], text: bool) -> Result<(), String> {
    use fastwebsockets::{Frame, OpCode, Payload};
    let frame = if text {
        Frame::text(Payload::Borrowed(payload))
    } else {
        Frame::binary(Payload::Borrowed(payload))
    };
    ws.write_frame(frame).await.map_err(|e| e.to_string())?;
    ws.flush().await.map_err(|e| e.to_string())?;
    loop {
        let got = ws.read_frame().await.map_err(|e| e.to_string())?;
        let want = if text { OpCode::Text } else { OpCode::Binary };
        match got.opcode {
            OpCode::Ping | OpCode::Pong => continue,
            op if op == want && got.fin && got.payload.len() == payload.len() => return Ok(()),
            op => {
                return Err(format!(
                    "unexpected echo {op:?} of {} bytes",
                    got.payload.len()
                ))
            }
        }
    }
}

// ----- the scenario -----

fn run_shape(c: &Ctx<'_>, shape: Shape) -> Result<(), String> {
    let cfg = c.config;
    let payload = shape.payload();
    let cpu = CpuLogs::new(4);
    let rt = clients::tokio_current_thread()?;

    let blocking = BlockingEcho::open(c, shape, &payload);
    #[cfg(feature = "smol")]
    let smol_echo = SmolEcho::open(c, shape, &payload);

    let tt_msg = if shape.text {
        tokio_tungstenite::tungstenite::Message::text(
            String::from_utf8_lossy(&payload).into_owned(),
        )
    } else {
        tokio_tungstenite::tungstenite::Message::binary(Bytes::from(payload.clone()))
    };
    let tt = rt.block_on(async {
        let mut ws = tungstenite_open(c.server).await?;
        for _ in 0..WARM {
            tungstenite_echo(&mut ws, &tt_msg).await?;
        }
        Ok::<_, String>(ws)
    });
    let tt = RefCell::new(tt);
    let fws = rt.block_on(async {
        let mut ws = fws_open(c.server).await?;
        for _ in 0..WARM {
            fws_echo(&mut ws, &payload, shape.text).await?;
        }
        Ok::<_, String>(ws)
    });
    let fws = RefCell::new(fws);

    let mut clients: Vec<(String, Measure<'_>)> = Vec::new();
    clients.push((
        "mpnet-blocking".into(),
        Box::new(|| {
            let echo = blocking.as_ref().map_err(Clone::clone)?;
            cpu.measure(0, || echo.run(cfg.budget, cfg.max_requests))
        }),
    ));
    #[cfg(feature = "smol")]
    clients.push((
        "mpnet-smol".into(),
        Box::new(|| {
            let echo = smol_echo.as_ref().map_err(Clone::clone)?;
            cpu.measure(1, || echo.run(cfg.budget, cfg.max_requests))
        }),
    ));
    clients.push((
        "tokio-tungstenite 0.28".into(),
        Box::new(|| {
            let mut guard = tt.borrow_mut();
            let ws = guard.as_mut().map_err(|e| e.clone())?;
            cpu.measure(2, || {
                rt.block_on(limited(cfg.budget, async {
                    let start = Instant::now();
                    let mut n = 0u64;
                    while n < cfg.max_requests && start.elapsed() < cfg.budget {
                        tungstenite_echo(ws, &tt_msg).await?;
                        n += 1;
                    }
                    Ok((n, start.elapsed()))
                }))
            })
        }),
    ));
    clients.push((
        "fastwebsockets 0.10".into(),
        Box::new(|| {
            let mut guard = fws.borrow_mut();
            let ws = guard.as_mut().map_err(|e| e.clone())?;
            cpu.measure(3, || {
                rt.block_on(limited(cfg.budget, async {
                    let start = Instant::now();
                    let mut n = 0u64;
                    while n < cfg.max_requests && start.elapsed() < cfg.budget {
                        fws_echo(ws, &payload, shape.text).await?;
                        n += 1;
                    }
                    Ok((n, start.elapsed()))
                }))
            })
        }),
    ));
    let mut s = take_turns(cfg.runs, clients).into_iter();
    let blocking_s = s.next().unwrap_or_default();
    #[cfg(feature = "smol")]
    let smol_s = s.next().unwrap_or_default();
    #[cfg(not(feature = "smol"))]
    let smol_s = super::skipped("mpnet-smol", "built without the smol feature");
    let (tt_s, fws_s) = (s.next().unwrap_or_default(), s.next().unwrap_or_default());

    let what = shape.what;
    let r = c.report;
    r.row(row(
        what,
        "msg/s",
        blocking_s.clone(),
        Some(tt_s.clone()),
        true,
        TARGET_TT,
    ));
    r.row(row(
        what,
        "msg/s",
        blocking_s.clone(),
        Some(fws_s.clone()),
        true,
        TARGET_FWS,
    ));
    r.row(row(
        what,
        "msg/s",
        smol_s.clone(),
        Some(tt_s.clone()),
        true,
        TARGET_TT,
    ));
    r.row(row(
        what,
        "msg/s",
        smol_s.clone(),
        Some(fws_s.clone()),
        true,
        TARGET_FWS,
    ));
    let cpu_unit = "client CPU µs/msg";
    r.row(row(
        what,
        cpu_unit,
        cpu.series(0, &blocking_s),
        Some(cpu.series(2, &tt_s)),
        false,
        "info",
    ));
    r.row(row(
        what,
        cpu_unit,
        cpu.series(1, &smol_s),
        Some(cpu.series(3, &fws_s)),
        false,
        "info",
    ));
    // Close the peers' connections politely before the next shape.
    let (mut tt, mut fws) = (tt.into_inner(), fws.into_inner());
    rt.block_on(async {
        if let Ok(ws) = tt.as_mut() {
            let _ = ws.close(None).await;
        }
        if let Ok(ws) = fws.as_mut() {
            let _ = ws
                .write_frame(fastwebsockets::Frame::close(1000, b""))
                .await;
            let _ = ws.flush().await;
        }
    });
    Ok(())
}

/// Both message sizes; for profiling one size alone,
/// `MPNET_BENCH_WSS_LEN=BYTES` runs only that one.
pub(crate) fn wss_echo(c: &Ctx<'_>) -> Result<(), String> {
    let only: Option<usize> = std::env::var("MPNET_BENCH_WSS_LEN")
        .ok()
        .and_then(|v| v.parse().ok());
    for shape in SHAPES {
        if only.is_none_or(|len| len == shape.len) {
            run_shape(c, shape)?;
        }
    }
    Ok(())
}
