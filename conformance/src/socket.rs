//! The conformance table of the socket API (SPEC §7), run unchanged by every
//! transport: every socket code 1-13 produced for real, the event order
//! (open, messages, at most one error, exactly one close), the one-socket
//! rule, `SocketTask`s, and a soak of 10,000 messages each way.
//!
//! Events are logged as the JSON lines of SPEC §9 (`{"event": "open"}`,
//! ...), so the same checks read every transport's log.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mpnet_core::ws::{CloseOptions, ConnectOptions, MessageData, SendOptions};
use mpnet_core::{Api, AppContext, Error, Limits};
use mpnet_testkit::{HttpsServer, LeafKind, RawServer, Step};
use serde_json::{json, Value};

use crate::Env;

/// A TLS application-data record of the right shape that no session can
/// decrypt (written past the server's session by the kit's raw steps).
const BAD_RECORD: &[u8] = b"\x17\x03\x03\x00\x20not a record, only 32 bytes!!!!!";

/// An event log shared with a transport's listeners.
pub type Log = Arc<Mutex<Vec<Value>>>;

/// A new, empty log.
pub fn new_log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

fn push(log: &Log, v: Value) {
    log.lock().unwrap_or_else(|p| p.into_inner()).push(v);
}

/// Logs an open event.
pub fn log_open(log: &Log) {
    push(log, json!({"event": "open"}));
}
/// Logs a message event.
pub fn log_message(log: &Log, data: &MessageData) {
    push(
        log,
        json!({"event": "message", "data": data.js_data(), "isBuffer": data.is_buffer()}),
    );
}
/// Logs an error event.
pub fn log_error(log: &Log, e: &Error) {
    push(
        log,
        json!({"event": "error", "error": e.code(Api::Socket), "errorMessage": e.message()}),
    );
}
/// Logs a close event.
pub fn log_close(log: &Log, code: u16, reason: &str) {
    push(
        log,
        json!({"event": "close", "code": code, "reason": reason}),
    );
}

/// One socket handle of a transport (the app socket or a task).
pub trait SocketHandle: Send + Sync {
    /// `send`.
    fn send(&self, opts: &SendOptions) -> Result<(), Error>;
    /// `close`.
    fn close(&self, opts: &CloseOptions) -> Result<(), Error>;
}

/// What a transport must offer to run the socket table.
pub trait SocketTransport: Sync {
    /// The transport's client.
    type Client: Send + Sync;
    /// The transport's name, for reports.
    fn name(&self) -> &'static str;
    /// A client for `ctx` whose app-level listeners (`onSocketOpen` &co.)
    /// log into `log`.
    fn client(&self, ctx: &AppContext, log: Log) -> Self::Client;
    /// `connectSocket` for the app socket; returns once it succeeded or
    /// failed.
    fn connect(&self, client: &Self::Client, opts: ConnectOptions) -> Result<(), Error>;
    /// `connectSocket` for the app socket without waiting; the connect's
    /// result is logged as `{"event": "success"}` or `{"event": "fail",
    /// "error": N}` into `log`.
    fn connect_nowait(&self, client: &Self::Client, opts: ConnectOptions, log: Log);
    /// `sendSocketMessage` on the app socket.
    fn send(&self, client: &Self::Client, opts: &SendOptions) -> Result<(), Error>;
    /// `closeSocket` on the app socket.
    fn close(&self, client: &Self::Client, opts: &CloseOptions) -> Result<(), Error>;
    /// Adds an app-level message listener to `client` that answers every
    /// message with the text `answer` on the app socket, from inside the
    /// listener (an app replying to what it gets). The listener holds the
    /// client only until the socket closes.
    fn answer_messages(&self, client: &Self::Client, answer: &'static str);
    /// Adds an app-level message listener to `client` that panics (an app
    /// bug the socket must survive without hanging).
    fn panic_on_messages(&self, client: &Self::Client);
    /// `connectSocket({multiple: true})`: a task whose own listeners log
    /// into `log`; returns once it succeeded or failed.
    fn task(
        &self,
        client: &Self::Client,
        opts: ConnectOptions,
        log: Log,
    ) -> Result<Box<dyn SocketHandle>, Error>;
}

fn events(log: &Log) -> Vec<Value> {
    log.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Waits until `pred` holds for the log (or `limit` passes).
fn wait_for(log: &Log, limit: Duration, pred: impl Fn(&[Value]) -> bool) -> Result<(), String> {
    let end = Instant::now() + limit;
    loop {
        if pred(&events(log)) {
            return Ok(());
        }
        if Instant::now() > end {
            return Err(format!("timed out waiting; log: {}", short(&events(log))));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn short(log: &[Value]) -> String {
    let text: Vec<String> = log
        .iter()
        .take(12)
        .map(|v| {
            let mut s = v.to_string();
            s.truncate(120);
            s
        })
        .collect();
    text.join(" ")
}

fn closed(log: &[Value]) -> bool {
    log.iter().any(|v| v["event"] == "close")
}

/// The SPEC §7 order for one connection's events: open, messages, at most
/// one error, exactly one close, nothing after.
pub fn check_order(log: &[Value]) -> Result<(), String> {
    let kinds: Vec<&str> = log
        .iter()
        .filter_map(|v| v["event"].as_str())
        .filter(|k| matches!(*k, "open" | "message" | "error" | "close"))
        .collect();
    if kinds.first() != Some(&"open") {
        return Err(format!("first event is not open: {kinds:?}"));
    }
    let mut seen_error = false;
    let mut seen_close = false;
    for k in &kinds[1..] {
        if seen_close {
            return Err(format!("an event after close: {kinds:?}"));
        }
        match *k {
            "open" => return Err("open twice".into()),
            "message" if seen_error => return Err("a message after the error".into()),
            "error" if seen_error => return Err("two errors".into()),
            "error" => seen_error = true,
            "close" => seen_close = true,
            _ => {}
        }
    }
    if seen_close {
        Ok(())
    } else {
        Err(format!("no close event: {kinds:?}"))
    }
}

fn expect_fail(r: Result<(), Error>, want: u32) -> Result<(), String> {
    match r {
        Ok(()) => Err(format!("succeeded instead of failing with {want}")),
        Err(e) if e.code(Api::Socket) == want => Ok(()),
        Err(e) => Err(format!(
            "failed with {} ({}) instead of {want}",
            e.code(Api::Socket),
            e.message()
        )),
    }
}

/// The echo server's WSS URL.
fn echo(env: &Env) -> String {
    env.https.url("/ws").replacen("https://", "wss://", 1)
}

type CaseFn<T> = fn(&T, &Env) -> Result<(), String>;

/// Runs every socket case against `t` and panics with the failures.
pub fn run_all<T: SocketTransport>(t: &T) {
    let env = Env::start();
    let cases: Vec<(&str, CaseFn<T>)> = vec![
        (
            "echo text (CJK, emoji) and binary (base64, and bytes), then close 1000",
            |t, env| {
                let log = new_log();
                let c = t.client(&env.ctx(), log.clone());
                t.connect(&c, ConnectOptions::new(echo(env)))
                    .map_err(|e| e.to_string())?;
                t.send(&c, &SendOptions::text("你好, 世界 🌏"))
                    .map_err(|e| e.to_string())?;
                t.send(&c, &SendOptions::base64("AAEC/w=="))
                    .map_err(|e| e.to_string())?;
                // The same bytes as a Rust host gives them (no base64).
                t.send(&c, &SendOptions::binary(vec![0u8, 1, 2, 255]))
                    .map_err(|e| e.to_string())?;
                wait_for(&log, Duration::from_secs(5), |l| {
                    l.iter().filter(|v| v["event"] == "message").count() == 3
                })?;
                t.close(&c, &CloseOptions::default())
                    .map_err(|e| e.to_string())?;
                wait_for(&log, Duration::from_secs(5), closed)?;
                let l = events(&log);
                check_order(&l)?;
                let msgs: Vec<&Value> = l.iter().filter(|v| v["event"] == "message").collect();
                ensure(
                    msgs[0]["data"] == "你好, 世界 🌏" && msgs[0]["isBuffer"] == false,
                    &format!("{}", msgs[0]),
                )?;
                ensure(
                    msgs[1]["data"] == "AAEC/w==" && msgs[1]["isBuffer"] == true,
                    &format!("{}", msgs[1]),
                )?;
                ensure(
                    msgs[2]["data"] == "AAEC/w==" && msgs[2]["isBuffer"] == true,
                    &format!("{}", msgs[2]),
                )?;
                let close = l.iter().find(|v| v["event"] == "close").ok_or("no close")?;
                ensure(close["code"] == 1000, &format!("{close}"))
            },
        ),
        (
            "server-initiated close carries its code and reason",
            |t, env| {
                let log = new_log();
                let c = t.client(&env.ctx(), log.clone());
                let url = env
                    .https
                    .url("/ws/close?code=4001&reason=bye")
                    .replacen("https://", "wss://", 1);
                t.connect(&c, ConnectOptions::new(url))
                    .map_err(|e| e.to_string())?;
                t.send(&c, &SendOptions::text("hi"))
                    .map_err(|e| e.to_string())?;
                wait_for(&log, Duration::from_secs(5), closed)?;
                let l = events(&log);
                check_order(&l)?;
                let close = l.iter().find(|v| v["event"] == "close").ok_or("no close")?;
                ensure(
                    close["code"] == 4001 && close["reason"] == "bye",
                    &format!("{close}"),
                )
            },
        ),
        ("a 1 MiB message round trip", |t, env| {
            let log = new_log();
            let c = t.client(&env.ctx(), log.clone());
            t.connect(&c, ConnectOptions::new(echo(env)))
                .map_err(|e| e.to_string())?;
            let big = "x".repeat(1 << 20);
            t.send(&c, &SendOptions::text(big.clone()))
                .map_err(|e| e.to_string())?;
            wait_for(&log, Duration::from_secs(10), |l| {
                l.iter().any(|v| v["event"] == "message")
            })?;
            let l = events(&log);
            let m = l
                .iter()
                .find(|v| v["event"] == "message")
                .ok_or("no message")?;
            ensure(
                m["data"].as_str().map(str::len) == Some(1 << 20),
                "size differs",
            )?;
            t.close(&c, &CloseOptions::default())
                .map_err(|e| e.to_string())
        }),
        (
            "a message over the size limit: error 12, close 1009",
            |t, env| {
                let log = new_log();
                let mut limits = Limits::default();
                limits.max_message_bytes = 1000;
                let ctx = env
                    .builder()
                    .allow_any_origin()
                    .limits(limits)
                    .build()
                    .map_err(|e| e.to_string())?;
                let c = t.client(&ctx, log.clone());
                t.connect(&c, ConnectOptions::new(echo(env)))
                    .map_err(|e| e.to_string())?;
                t.send(&c, &SendOptions::text("y".repeat(5000)))
                    .map_err(|e| e.to_string())?;
                expect_error_then_close(&log, 12, 1009)
            },
        ),
        ("send and close with no socket: 10", |t, env| {
            let c = t.client(&env.ctx(), new_log());
            expect_fail(t.send(&c, &SendOptions::text("x")), 10)?;
            expect_fail(t.close(&c, &CloseOptions::default()), 10)
        }),
        (
            "send after the socket closed: 10; bad base64: 11",
            |t, env| {
                let log = new_log();
                let c = t.client(&env.ctx(), log.clone());
                t.connect(&c, ConnectOptions::new(echo(env)))
                    .map_err(|e| e.to_string())?;
                expect_fail(t.send(&c, &SendOptions::base64("%%%not base64")), 11)?;
                t.close(&c, &CloseOptions::new(Some(4000), Some("done".into())))
                    .map_err(|e| e.to_string())?;
                wait_for(&log, Duration::from_secs(5), closed)?;
                expect_fail(t.send(&c, &SendOptions::text("late")), 10)
            },
        ),
        (
            "url codes: empty 3, unparseable 4, scheme 5, ws:// while only WSS 8, not allowed 13",
            |t, env| {
                let c = t.client(&env.ctx(), new_log());
                expect_fail(t.connect(&c, ConnectOptions::new("")), 3)?;
                expect_fail(t.connect(&c, ConnectOptions::new("not a url")), 4)?;
                expect_fail(t.connect(&c, ConnectOptions::new(env.https.url("/ws"))), 5)?;
                expect_fail(t.connect(&c, ConnectOptions::new("ws://127.0.0.1:1/ws")), 8)?;
                let ctx = env
                    .builder()
                    .whitelist(["https://api.example.com"])
                    .map_err(|e| e.to_string())?
                    .build()
                    .map_err(|e| e.to_string())?;
                let c = t.client(&ctx, new_log());
                expect_fail(t.connect(&c, ConnectOptions::new(echo(env))), 13)
            },
        ),
        (
            "frames sent with the handshake response come first, whole (ws and wss)",
            |t, env| {
                // 40 KiB then "after", in the 101's own write: under TLS the
                // first read holds more plaintext than the handshake's read
                // buffer takes, so the rest waits in the session, and no
                // later socket read comes to push it out.
                let big = "a".repeat(40 * 1024);
                let mut frames = server_text_frame(&big);
                frames.extend(server_text_frame("after"));
                let script = || {
                    vec![
                        Step::AcceptWebSocket(frames.clone()),
                        // The client's close frame, then the answer.
                        Step::read_bytes(6),
                        Step::write([0x88, 0x02, 0x03, 0xe8]),
                        Step::Close,
                    ]
                };
                on_ws_and_wss(env, script, |url, _| {
                    let log = new_log();
                    let c = t.client(&env.ctx_loopback(), log.clone());
                    t.connect(&c, ConnectOptions::new(url))
                        .map_err(|e| e.to_string())?;
                    wait_for(&log, Duration::from_secs(5), |l| {
                        l.iter().filter(|v| v["event"] == "message").count() == 2
                    })?;
                    let msgs: Vec<Value> = events(&log)
                        .into_iter()
                        .filter(|v| v["event"] == "message")
                        .collect();
                    ensure(
                        msgs[0]["data"] == big.as_str() && msgs[1]["data"] == "after",
                        "messages out of order or cut",
                    )?;
                    t.close(&c, &CloseOptions::default())
                        .map_err(|e| e.to_string())?;
                    wait_for(&log, Duration::from_secs(5), closed)
                })
            },
        ),
        (
            "a server that drips its bytes cannot stretch the connect timeout (6)",
            |t, env| {
                // Every byte of the server's TLS flight 20 ms apart: the
                // handshake alone would take tens of seconds.
                let proxy = drip_proxy(env.https.addr(), Duration::from_millis(20));
                expect_connect_timeout(
                    t,
                    env,
                    format!("wss://127.0.0.1:{proxy}/ws"),
                    Duration::from_millis(700),
                    Duration::from_millis(1500),
                )
            },
        ),
        (
            "a close frame with the handshake response: close 1000, then the TCP connection ends",
            |t, env| {
                let script = || {
                    vec![
                        Step::AcceptWebSocket(vec![0x88, 0x02, 0x03, 0xe8]),
                        // Ends (the server closes too) when the client does.
                        Step::read_bytes(1 << 20),
                    ]
                };
                on_ws_and_wss(env, script, |url, server| {
                    let log = new_log();
                    let c = t.client(&env.ctx_loopback(), log.clone());
                    t.connect(&c, ConnectOptions::new(url))
                        .map_err(|e| e.to_string())?;
                    wait_for(&log, Duration::from_secs(5), closed)?;
                    let close = events(&log)
                        .into_iter()
                        .find(|v| v["event"] == "close")
                        .ok_or("no close")?;
                    ensure(close["code"] == 1000, &format!("{close}"))?;
                    let until = Instant::now() + Duration::from_secs(3);
                    while server.connections_finished() < 1 && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    ensure(
                        server.connections_finished() == 1,
                        "the client kept the TCP connection open",
                    )
                })
            },
        ),
        (
            "a record that does not decrypt on an open wss socket: error 1 (7 is for certificates), close 1006",
            |t, env| {
                // After the 101, an application-data record of garbage
                // written past the server's TLS session.
                let server = RawServer::start_tls(
                    env.ca.leaf(),
                    vec![
                        Step::AcceptWebSocket(Vec::new()),
                        Step::WriteRaw(BAD_RECORD.to_vec()),
                        Step::read_bytes(1 << 20),
                    ],
                );
                let log = new_log();
                let c = t.client(&env.ctx_loopback(), log.clone());
                t.connect(
                    &c,
                    ConnectOptions::new(format!("wss://127.0.0.1:{}/ws", server.port())),
                )
                .map_err(|e| e.to_string())?;
                expect_error_then_close(&log, 1, 1006)
            },
        ),
        (
            "messages before a record that does not decrypt, read at once while the app answers each: all delivered, then error 1, close 1006",
            |t, env| {
                // Three messages, each its own record, and a record that
                // does not decrypt, in one write: the client reads them
                // together, and its answer to the first makes the TLS
                // session take in the rest (SPEC §7: events in order;
                // nothing received whole is lost).
                let server = RawServer::start_tls(
                    env.ca.leaf(),
                    vec![
                        Step::AcceptWebSocket(Vec::new()),
                        Step::sleep_ms(100),
                        Step::WriteSealedThenRaw {
                            sealed: ["one", "two", "three"]
                                .iter()
                                .map(|t| [&[0x81, t.len() as u8][..], t.as_bytes()].concat())
                                .collect(),
                            raw: BAD_RECORD.to_vec(),
                        },
                        Step::read_bytes(1 << 20),
                    ],
                );
                let log = new_log();
                let c = t.client(&env.ctx_loopback(), log.clone());
                t.answer_messages(&c, "thanks");
                t.connect(
                    &c,
                    ConnectOptions::new(format!("wss://127.0.0.1:{}/ws", server.port())),
                )
                .map_err(|e| e.to_string())?;
                expect_error_then_close(&log, 1, 1006)?;
                let texts: Vec<Value> = events(&log)
                    .iter()
                    .filter(|v| v["event"] == "message")
                    .map(|v| v["data"].clone())
                    .collect();
                ensure(
                    texts == [json!("one"), json!("two"), json!("three")],
                    &format!("messages: {texts:?}"),
                )
            },
        ),
        (
            "a message listener that panics ends the socket: error 1, close 1006, nothing hangs",
            |t, env| {
                let log = new_log();
                let c = t.client(&env.ctx(), log.clone());
                t.panic_on_messages(&c);
                t.connect(&c, ConnectOptions::new(echo(env)))
                    .map_err(|e| e.to_string())?;
                t.send(&c, &SendOptions::text("boom"))
                    .map_err(|e| e.to_string())?;
                expect_error_then_close(&log, 1, 1006)?;
                // The app socket is free again: a new connect opens.
                t.connect(&c, ConnectOptions::new(echo(env)))
                    .map_err(|e| format!("the next socket: {e}"))
            },
        ),
        ("connection refused: 1 (unknown failure)", |t, env| {
            let c = t.client(&env.ctx(), new_log());
            let url = format!("wss://127.0.0.1:{}/ws", mpnet_testkit::refused_port());
            expect_fail(t.connect(&c, ConnectOptions::new(url)), 1)
        }),
        ("untrusted certificate: 7", |t, env| {
            let server = HttpsServer::start_with(&env.ca, LeafKind::Untrusted);
            let c = t.client(&env.ctx(), new_log());
            let url = server.url("/ws").replacen("https://", "wss://", 1);
            expect_fail(t.connect(&c, ConnectOptions::new(url)), 7)
        }),
        ("connect timeout: 6", |t, env| {
            let server = RawServer::start(vec![Step::Hang]);
            expect_connect_timeout(
                t,
                env,
                format!("wss://127.0.0.1:{}/ws", server.port()),
                Duration::from_millis(500),
                Duration::from_millis(900),
            )
        }),
        (
            "a connect timeout past what the clock holds never passes: open, no panic",
            |t, env| {
                let log = new_log();
                let c = t.client(&env.ctx(), log.clone());
                t.connect(&c, ConnectOptions::new(echo(env)).timeout(Duration::MAX))
                    .map_err(|e| e.to_string())?;
                t.send(&c, &SendOptions::text("alive"))
                    .map_err(|e| e.to_string())?;
                wait_for(&log, Duration::from_secs(5), |l| {
                    l.iter().any(|v| v["event"] == "message")
                })?;
                t.close(&c, &CloseOptions::default())
                    .map_err(|e| e.to_string())
            },
        ),
        ("handshake answered 403: 8", |t, env| {
            let server = RawServer::start_tls(
                env.ca.leaf(),
                vec![
                    Step::read_head(),
                    Step::write("HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n"),
                    Step::Hang,
                ],
            );
            let c = t.client(&env.ctx(), new_log());
            let url = format!("wss://127.0.0.1:{}/ws", server.port());
            expect_fail(t.connect(&c, ConnectOptions::new(url)), 8)
        }),
        (
            "subprotocol requested, none in the response: 9",
            |t, env| {
                let c = t.client(&env.ctx(), new_log());
                // The kit's echo answers without Sec-WebSocket-Protocol here.
                let url = format!("{}?protocol=none", echo(env));
                expect_fail(t.connect(&c, ConnectOptions::new(url).protocol("chat")), 9)?;
                // When the server names the protocol, the connect succeeds.
                t.connect(&c, ConnectOptions::new(echo(env)).protocol("chat"))
                    .map_err(|e| e.to_string())?;
                t.close(&c, &CloseOptions::default())
                    .map_err(|e| e.to_string())
            },
        ),
        (
            "a new connectSocket closes the old socket first (1000), then opens",
            |t, env| {
                let log = new_log();
                let c = t.client(&env.ctx(), log.clone());
                t.connect(&c, ConnectOptions::new(echo(env)))
                    .map_err(|e| e.to_string())?;
                t.send(&c, &SendOptions::text("first"))
                    .map_err(|e| e.to_string())?;
                wait_for(&log, Duration::from_secs(5), |l| {
                    l.iter().any(|v| v["event"] == "message")
                })?;
                t.connect(&c, ConnectOptions::new(echo(env)))
                    .map_err(|e| e.to_string())?;
                t.send(&c, &SendOptions::text("second"))
                    .map_err(|e| e.to_string())?;
                wait_for(&log, Duration::from_secs(5), |l| {
                    l.iter().filter(|v| v["event"] == "message").count() == 2
                })?;
                t.close(&c, &CloseOptions::default())
                    .map_err(|e| e.to_string())?;
                wait_for(&log, Duration::from_secs(5), |l| {
                    l.iter().filter(|v| v["event"] == "close").count() == 2
                })?;
                let kinds: Vec<String> = events(&log)
                    .iter()
                    .filter_map(|v| v["event"].as_str().map(String::from))
                    .collect();
                ensure(
                    kinds == ["open", "message", "close", "open", "message", "close"],
                    &format!("{kinds:?}"),
                )?;
                let first_close = events(&log)
                    .into_iter()
                    .find(|v| v["event"] == "close")
                    .ok_or("no close")?;
                ensure(first_close["code"] == 1000, &format!("{first_close}"))
            },
        ),
        (
            "a connectSocket that cannot start (bad URL) leaves the open socket alone",
            |t, env| {
                let log = new_log();
                let c = t.client(&env.ctx(), log.clone());
                t.connect(&c, ConnectOptions::new(echo(env)))
                    .map_err(|e| e.to_string())?;
                expect_fail(t.connect(&c, ConnectOptions::new("")), 3)?;
                t.send(&c, &SendOptions::text("still here"))
                    .map_err(|e| e.to_string())?;
                wait_for(&log, Duration::from_secs(5), |l| {
                    l.iter().any(|v| v["event"] == "message")
                })?;
                t.close(&c, &CloseOptions::default())
                    .map_err(|e| e.to_string())?;
                wait_for(&log, Duration::from_secs(5), closed)?;
                check_order(&events(&log))
            },
        ),
        (
            "a connect still in progress when superseded fails with 2",
            |t, env| {
                let hang = RawServer::start(vec![Step::Hang]);
                let log = new_log();
                let c = t.client(&env.ctx(), log.clone());
                let first = new_log();
                t.connect_nowait(
                    &c,
                    ConnectOptions::new(format!("wss://127.0.0.1:{}/ws", hang.port()))
                        .timeout(Duration::from_secs(20)),
                    first.clone(),
                );
                std::thread::sleep(Duration::from_millis(100));
                t.connect(&c, ConnectOptions::new(echo(env)))
                    .map_err(|e| e.to_string())?;
                wait_for(&first, Duration::from_secs(5), |l| !l.is_empty())?;
                let f = events(&first);
                ensure(
                    f[0]["event"] == "fail" && f[0]["error"] == 2,
                    &format!("{}", f[0]),
                )?;
                t.send(&c, &SendOptions::text("alive"))
                    .map_err(|e| e.to_string())?;
                wait_for(&log, Duration::from_secs(5), |l| {
                    l.iter().any(|v| v["event"] == "message")
                })
            },
        ),
        (
            "SocketTasks: at most 5 at once, independent of the app socket",
            |t, env| {
                let app_log = new_log();
                let c = t.client(&env.ctx(), app_log.clone());
                t.connect(&c, ConnectOptions::new(echo(env)))
                    .map_err(|e| e.to_string())?;
                let mut tasks = Vec::new();
                let mut logs = Vec::new();
                for _ in 0..5 {
                    let log = new_log();
                    tasks.push(
                        t.task(
                            &c,
                            ConnectOptions::new(echo(env)).multiple(true),
                            log.clone(),
                        )
                        .map_err(|e| e.to_string())?,
                    );
                    logs.push(log);
                }
                let sixth = t.task(&c, ConnectOptions::new(echo(env)).multiple(true), new_log());
                expect_fail(sixth.map(|_| ()), 2)?;
                for (i, task) in tasks.iter().enumerate() {
                    task.send(&SendOptions::text(format!("task {i}")))
                        .map_err(|e| e.to_string())?;
                }
                for (i, log) in logs.iter().enumerate() {
                    wait_for(log, Duration::from_secs(5), |l| {
                        l.iter().any(|v| v["event"] == "message")
                    })?;
                    let m = events(log)
                        .into_iter()
                        .find(|v| v["event"] == "message")
                        .ok_or("no message")?;
                    ensure(
                        m["data"] == format!("task {i}"),
                        &format!("task {i} got {m}"),
                    )?;
                }
                // The app socket saw none of the tasks' events.
                ensure(
                    events(&app_log).iter().all(|v| v["event"] == "open"),
                    &short(&events(&app_log)),
                )?;
                tasks[0]
                    .close(&CloseOptions::default())
                    .map_err(|e| e.to_string())?;
                wait_for(&logs[0], Duration::from_secs(5), closed)?;
                // A slot is free again.
                let again = t
                    .task(&c, ConnectOptions::new(echo(env)).multiple(true), new_log())
                    .map_err(|e| e.to_string())?;
                again
                    .close(&CloseOptions::default())
                    .map_err(|e| e.to_string())?;
                for task in &tasks[1..] {
                    task.close(&CloseOptions::default())
                        .map_err(|e| e.to_string())?;
                }
                for log in &logs {
                    wait_for(log, Duration::from_secs(5), closed)?;
                    check_order(&events(log))?;
                }
                t.close(&c, &CloseOptions::default())
                    .map_err(|e| e.to_string())
            },
        ),
        (
            "soak: 10,000 messages each way, in order, exactly one close",
            |t, env| {
                let log = new_log();
                let c = t.client(&env.ctx(), log.clone());
                t.connect(&c, ConnectOptions::new(echo(env)))
                    .map_err(|e| e.to_string())?;
                let n = 10_000;
                for i in 0..n {
                    t.send(&c, &SendOptions::text(format!("m{i}")))
                        .map_err(|e| format!("send {i}: {e}"))?;
                }
                wait_for(&log, Duration::from_secs(60), |l| {
                    l.iter().filter(|v| v["event"] == "message").count() == n
                })?;
                t.close(&c, &CloseOptions::default())
                    .map_err(|e| e.to_string())?;
                wait_for(&log, Duration::from_secs(5), closed)?;
                std::thread::sleep(Duration::from_millis(100));
                let l = events(&log);
                check_order(&l)?;
                ensure(
                    l.iter().filter(|v| v["event"] == "close").count() == 1,
                    "close count",
                )?;
                for (i, m) in l.iter().filter(|v| v["event"] == "message").enumerate() {
                    ensure(
                        m["data"] == format!("m{i}"),
                        &format!("message {i} is {}", m["data"]),
                    )?;
                }
                Ok(())
            },
        ),
    ];
    let mut failures = Vec::new();
    for (name, case) in cases {
        let verdict = case(t, &env);
        println!(
            "[{}] {:<78} {}",
            t.name(),
            name,
            if verdict.is_ok() { "ok" } else { "FAILED" }
        );
        if let Err(why) = verdict {
            failures.push(format!("{name}: {why}"));
        }
    }
    assert!(
        failures.is_empty(),
        "[{}] {} socket failures:\n{}",
        t.name(),
        failures.len(),
        failures.join("\n")
    );
}

/// Connects to `url` with a `timeout` and expects it to fail with 6 in
/// less than `within`.
fn expect_connect_timeout<T: SocketTransport>(
    t: &T,
    env: &Env,
    url: String,
    timeout: Duration,
    within: Duration,
) -> Result<(), String> {
    let c = t.client(&env.ctx(), new_log());
    let started = Instant::now();
    expect_fail(t.connect(&c, ConnectOptions::new(url).timeout(timeout)), 6)?;
    ensure(
        started.elapsed() < within,
        &format!("took {:?}", started.elapsed()),
    )
}

/// Waits for the socket in `log` to close, then checks the events' order,
/// the error event's code (`error`) and the close code (`close`).
fn expect_error_then_close(log: &Log, error: u64, close: u64) -> Result<(), String> {
    wait_for(log, Duration::from_secs(5), closed)?;
    let l = events(log);
    check_order(&l)?;
    let err = l
        .iter()
        .find(|v| v["event"] == "error")
        .ok_or("no error event")?;
    ensure(err["error"] == error, &format!("{err}"))?;
    let closing = l.iter().find(|v| v["event"] == "close").ok_or("no close")?;
    ensure(closing["code"] == close, &format!("{closing}"))
}

/// Runs `check` on a raw server at `ws://` and one at `wss://` (the test
/// CA's leaf), each connection running `script`; an error names the URL.
fn on_ws_and_wss(
    env: &Env,
    script: impl Fn() -> Vec<Step>,
    mut check: impl FnMut(&str, &RawServer) -> Result<(), String>,
) -> Result<(), String> {
    let plain = RawServer::start(script());
    let tls = RawServer::start_tls(env.ca.leaf(), script());
    for (url, server) in [
        (format!("ws://127.0.0.1:{}/ws", plain.port()), &plain),
        (format!("wss://127.0.0.1:{}/ws", tls.port()), &tls),
    ] {
        check(&url, server).map_err(|e| format!("{url}: {e}"))?;
    }
    Ok(())
}

/// A loopback TCP proxy to `target` for one connection: the client's bytes
/// go on at once, the server's one byte at a time, `gap` apart. Returns the
/// proxy's port; its threads end when either side closes.
fn drip_proxy(target: std::net::SocketAddr, gap: Duration) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let port = listener.local_addr().expect("proxy address").port();
    std::thread::spawn(move || {
        let Ok((mut client, _)) = listener.accept() else {
            return;
        };
        let Ok(mut server) = std::net::TcpStream::connect(target) else {
            return;
        };
        if let (Ok(mut from_client), Ok(mut to_server)) = (client.try_clone(), server.try_clone()) {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from_client, &mut to_server);
                let _ = to_server.shutdown(std::net::Shutdown::Write);
            });
        }
        let mut byte = [0u8; 1];
        while let Ok(1) = server.read(&mut byte) {
            if client.write_all(&byte).is_err() {
                break;
            }
            std::thread::sleep(gap);
        }
        let _ = client.shutdown(std::net::Shutdown::Both);
    });
    port
}

/// An unmasked (server) text frame holding `text`, FIN set.
fn server_text_frame(text: &str) -> Vec<u8> {
    let len = text.len();
    let mut f = vec![0x81];
    if len < 126 {
        f.push(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        f.push(126);
        f.extend_from_slice(&short.to_be_bytes());
    } else {
        f.push(127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
    f.extend_from_slice(text.as_bytes());
    f
}

fn ensure(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what.to_string())
    }
}
