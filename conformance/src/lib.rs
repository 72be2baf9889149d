//! The conformance table: one list of `my.request` cases (options in,
//! expected result out) that every transport runs unchanged, so the
//! transports cannot drift apart. Every error code of SPEC §4 is produced
//! for real here, against loopback servers from `mpnet-testkit`.
//!
//! A transport's test implements [`Transport`] and calls [`run_all`] (see
//! `transport-blocking/tests/conformance.rs`); the same goes for the
//! [`transfer`] and [`socket`] tables, the [`httpbin`] interop and the
//! WebSocket [`peers`].
#![forbid(unsafe_code)]

pub mod httpbin;
pub mod peers;
pub mod socket;
pub mod transfer;

use std::any::Any;
use std::time::{Duration, Instant};

use base64::Engine as _;
use mpnet_core::request::{DataType, Method, RequestOptions, Response, ResponseData};
use mpnet_core::{Api, AppContext, Error, Limits};
use mpnet_testkit::{
    pseudo_random_bytes, refused_port, HttpServer, HttpsServer, LeafKind, ProxyMode, ProxyServer,
    RawServer, Step, TestCa, DEFAULT_SEED,
};

/// Something that happens while a request is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Nothing.
    None,
    /// `RequestTask.abort()` after this long.
    AbortAfter(Duration),
    /// The request's page goes away after this long.
    PageGoneAfter(Duration),
}

/// What a transport must offer to run the table.
pub trait Transport: Sync {
    /// The transport's name, for reports.
    fn name(&self) -> &'static str;
    /// Runs `my.request` with a client made for `ctx` (a fresh client per
    /// case unless the case reuses `client_key`) and applies `control`.
    fn request(
        &self,
        ctx: &AppContext,
        opts: RequestOptions,
        control: Control,
    ) -> Result<Response, Error>;
    /// Runs several requests one after another on ONE client for `ctx`.
    fn request_many(
        &self,
        ctx: &AppContext,
        opts: Vec<RequestOptions>,
    ) -> Vec<Result<Response, Error>>;
    /// Runs `opts` in order with `request_into` on ONE client for `ctx`,
    /// every call into the same `out` (so each reuses the buffers the one
    /// before left); `each` sees the index, each call's result and `out`
    /// right after it.
    fn request_into_many(
        &self,
        ctx: &AppContext,
        opts: &[RequestOptions],
        out: &mut Response,
        each: &mut EachResult<'_>,
    );
}

/// What [`Transport::request_into_many`] calls after each call: its index,
/// its result, and the `out` it wrote.
pub type EachResult<'a> = dyn FnMut(usize, Result<(), Error>, &Response) + 'a;

/// The servers a case may use; made once per run.
pub struct Env {
    /// The test CA every valid server certificate comes from.
    pub ca: TestCa,
    /// The httpbin-like HTTPS server.
    pub https: HttpsServer,
    /// The same endpoints over plain HTTP (for the loopback switch).
    pub http: HttpServer,
}

impl Env {
    /// Starts the servers.
    pub fn start() -> Env {
        let ca = TestCa::new();
        let https = HttpsServer::start(&ca);
        let http = HttpServer::start();
        Env { ca, https, http }
    }

    /// An app context trusting the test CA (and no web PKI roots), any origin.
    pub fn ctx(&self) -> AppContext {
        self.builder().allow_any_origin().build().expect("context")
    }

    /// [`ctx`](Self::ctx) with the loopback switch on (plain http/ws to
    /// 127.0.0.1 allowed).
    pub fn ctx_loopback(&self) -> AppContext {
        self.builder()
            .allow_any_origin()
            .allow_insecure_loopback(true)
            .build()
            .expect("context")
    }

    /// A context builder with the test CA trusted.
    pub fn builder(&self) -> mpnet_core::AppContextBuilder {
        AppContext::builder("2021000000000000", "1.0.0")
            .add_roots_pem(&self.ca.cert_pem())
            .expect("test CA")
            .use_web_pki_roots(false)
    }
}

/// A case's inputs; `keep` holds servers alive for the case's duration.
pub struct Setup {
    ctx: AppContext,
    opts: RequestOptions,
    control: Control,
    keep: Vec<Box<dyn Any>>,
}

impl Setup {
    fn new(ctx: AppContext, opts: RequestOptions) -> Setup {
        Setup {
            ctx,
            opts,
            control: Control::None,
            keep: Vec::new(),
        }
    }
    fn control(mut self, control: Control) -> Setup {
        self.control = control;
        self
    }
    fn keep(mut self, thing: impl Any) -> Setup {
        self.keep.push(Box::new(thing));
        self
    }
}

/// What a case expects.
pub enum Expect {
    /// Success with this status; then `check` must hold.
    Ok(u16, fn(&Response) -> Result<(), String>),
    /// Failure with this `my.request` code; then `check` must hold.
    Err(u32, fn(&Error) -> Result<(), String>),
}

/// One row of the table.
pub struct Case {
    /// What the row shows.
    pub name: &'static str,
    /// Builds the inputs.
    pub setup: fn(&Env) -> Setup,
    /// The expected result.
    pub expect: Expect,
    /// The longest the call may take.
    pub within: Duration,
}

fn no_check<T>(_: &T) -> Result<(), String> {
    Ok(())
}

fn json(r: &Response) -> Result<&serde_json::Value, String> {
    match &r.data {
        ResponseData::Json(v) => Ok(v),
        other => Err(format!("expected json data, got {other:?}")),
    }
}

fn ensure(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

fn raw(script: Vec<Step>) -> RawServer {
    RawServer::start(script)
}

fn raw_tls(env: &Env, script: Vec<Step>) -> RawServer {
    RawServer::start_tls(env.ca.leaf(), script)
}

const SEC: Duration = Duration::from_secs(1);

/// The table.
pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "seed example: POST JSON to /post, dataType json",
            setup: |env| {
                Setup::new(
                    env.ctx(),
                    RequestOptions::new(env.https.url("/post"))
                        .method(Method::Post)
                        .json(serde_json::json!({"from": "支付宝", "production": "AlipayJSAPI"}))
                        .data_type(DataType::Json),
                )
            },
            expect: Expect::Ok(200, |r| {
                let v = json(r)?;
                ensure(
                    v["json"] == serde_json::json!({"from": "支付宝", "production": "AlipayJSAPI"}),
                    || format!("echoed json {}", v["json"]),
                )?;
                ensure(
                    v["headers"]["referer"]
                        == "https://urlhost/2021000000000000/1.0.0/page-frame.html"
                        || v["headers"]["Referer"]
                            == "https://urlhost/2021000000000000/1.0.0/page-frame.html",
                    || format!("referer in {}", v["headers"]),
                )
            }),
            within: 5 * SEC,
        },
        Case {
            name: "GET with data becomes the query string",
            setup: |env| {
                Setup::new(
                    env.ctx(),
                    RequestOptions::new(env.https.url("/get?x=1"))
                        .json(serde_json::json!({"q": "a b&c", "n": 1.5, "cn": "中文"})),
                )
            },
            expect: Expect::Ok(200, |r| {
                let v = json(r)?;
                ensure(
                    v["args"]
                        == serde_json::json!({"x": "1", "q": "a b&c", "n": "1.5", "cn": "中文"}),
                    || format!("args {}", v["args"]),
                )
            }),
            within: 5 * SEC,
        },
        Case {
            name: "form POST sends a query-string body",
            setup: |env| {
                Setup::new(
                    env.ctx(),
                    RequestOptions::new(env.https.url("/post"))
                        .method(Method::Post)
                        .header("Content-Type", "application/x-www-form-urlencoded")
                        .json(serde_json::json!({"a": "1", "b": "x y"})),
                )
            },
            expect: Expect::Ok(200, |r| {
                let v = json(r)?;
                ensure(
                    v["form"] == serde_json::json!({"a": "1", "b": "x y"}),
                    || format!("form {}", v["form"]),
                )
            }),
            within: 5 * SEC,
        },
        Case {
            name: "PUT and DELETE",
            setup: |env| {
                Setup::new(
                    env.ctx(),
                    RequestOptions::new(env.https.url("/put"))
                        .method(Method::Put)
                        .text("hello"),
                )
            },
            expect: Expect::Ok(200, |r| {
                let v = json(r)?;
                ensure(v["data"] == "hello", || format!("data {}", v["data"]))
            }),
            within: 5 * SEC,
        },
        Case {
            name: "DELETE",
            setup: |env| {
                Setup::new(
                    env.ctx(),
                    RequestOptions::new(env.https.url("/delete")).method(Method::Delete),
                )
            },
            expect: Expect::Ok(200, |_| Ok(())),
            within: 5 * SEC,
        },
        Case {
            name: "dataType text",
            setup: |env| {
                Setup::new(
                    env.ctx(),
                    RequestOptions::new(env.https.url("/html")).data_type(DataType::Text),
                )
            },
            expect: Expect::Ok(200, |r| match &r.data {
                ResponseData::Text(t) => ensure(t.contains("<html"), || "not html".into()),
                other => Err(format!("{other:?}")),
            }),
            within: 5 * SEC,
        },
        Case {
            name: "dataType base64 of /bytes/100",
            setup: |env| {
                Setup::new(
                    env.ctx(),
                    RequestOptions::new(env.https.url("/bytes/100")).data_type(DataType::Base64),
                )
            },
            expect: Expect::Ok(200, |r| {
                let want = base64::engine::general_purpose::STANDARD
                    .encode(pseudo_random_bytes(DEFAULT_SEED, 100));
                ensure(r.data == ResponseData::Base64(want), || {
                    "base64 differs".into()
                })
            }),
            within: 5 * SEC,
        },
        Case {
            name: "dataType arraybuffer of chunked /stream-bytes/70000",
            setup: |env| {
                Setup::new(
                    env.ctx(),
                    RequestOptions::new(env.https.url("/stream-bytes/70000"))
                        .data_type(DataType::ArrayBuffer),
                )
            },
            expect: Expect::Ok(200, |r| {
                let want = pseudo_random_bytes(DEFAULT_SEED, 70000);
                ensure(r.data == ResponseData::ArrayBuffer(want.into()), || {
                    "bytes differ".into()
                })
            }),
            within: 5 * SEC,
        },
        Case {
            name: "gzip body is decoded",
            setup: |env| Setup::new(env.ctx(), RequestOptions::new(env.https.url("/gzip"))),
            expect: Expect::Ok(200, |r| {
                ensure(json(r)?["gzipped"] == true, || "not gzipped".into())
            }),
            within: 5 * SEC,
        },
        Case {
            name: "deflate body is decoded",
            setup: |env| Setup::new(env.ctx(), RequestOptions::new(env.https.url("/deflate"))),
            expect: Expect::Ok(200, |r| {
                ensure(json(r)?["deflated"] == true, || "not deflated".into())
            }),
            within: 5 * SEC,
        },
        Case {
            name: "redirects are followed (3 hops)",
            setup: |env| Setup::new(env.ctx(), RequestOptions::new(env.https.url("/redirect/3"))),
            expect: Expect::Ok(200, |r| {
                ensure(r.profile.redirects == 3, || {
                    format!("{} redirects", r.profile.redirects)
                })
            }),
            within: 5 * SEC,
        },
        Case {
            name: "303 after POST becomes GET",
            setup: |env| {
                Setup::new(
                    env.ctx(),
                    RequestOptions::new(env.https.url("/redirect-to?url=/get&status_code=303"))
                        .method(Method::Post)
                        .text("x"),
                )
            },
            expect: Expect::Ok(200, |r| {
                ensure(
                    json(r)?["url"]
                        .as_str()
                        .is_some_and(|u| u.ends_with("/get")),
                    || "not /get".into(),
                )
            }),
            within: 5 * SEC,
        },
        Case {
            name: "307 keeps method and body",
            setup: |env| {
                Setup::new(
                    env.ctx(),
                    RequestOptions::new(env.https.url("/redirect-to?url=/post&status_code=307"))
                        .method(Method::Post)
                        .text("kept"),
                )
            },
            expect: Expect::Ok(200, |r| {
                ensure(json(r)?["data"] == "kept", || "body lost".into())
            }),
            within: 5 * SEC,
        },
        Case {
            name: "more than 10 redirects is 19",
            setup: |env| {
                Setup::new(
                    env.ctx(),
                    RequestOptions::new(env.https.url("/redirect/11")),
                )
            },
            expect: Expect::Err(19, no_check),
            within: 5 * SEC,
        },
        Case {
            name: "redirect off the whitelist is 11",
            setup: |env| {
                let entry = format!("https://127.0.0.1:{}", env.https.port());
                let ctx = env
                    .builder()
                    .whitelist([entry])
                    .expect("entry")
                    .build()
                    .expect("ctx");
                Setup::new(
                    ctx,
                    RequestOptions::new(env.https.url("/redirect-to?url=https://localhost/get")),
                )
            },
            expect: Expect::Err(11, no_check),
            within: 5 * SEC,
        },
        Case {
            name: "redirect to plain http is 11",
            setup: |env| {
                let target = env.http.url("/get");
                Setup::new(
                    env.ctx(),
                    RequestOptions::new(env.https.url(&format!("/redirect-to?url={target}"))),
                )
            },
            expect: Expect::Err(11, no_check),
            within: 5 * SEC,
        },
        Case {
            name: "origin not whitelisted is 11",
            setup: |env| {
                let ctx = env
                    .builder()
                    .whitelist(["https://api.example.com"])
                    .expect("entry")
                    .build()
                    .expect("ctx");
                Setup::new(ctx, RequestOptions::new(env.https.url("/get")))
            },
            expect: Expect::Err(11, no_check),
            within: SEC,
        },
        Case {
            name: "plain http without the loopback switch is 11",
            setup: |env| Setup::new(env.ctx(), RequestOptions::new(env.http.url("/get"))),
            expect: Expect::Err(11, no_check),
            within: SEC,
        },
        Case {
            name: "plain http to loopback with the switch works",
            setup: |env| {
                Setup::new(
                    env.ctx_loopback(),
                    RequestOptions::new(env.http.url("/get")),
                )
            },
            expect: Expect::Ok(200, no_check),
            within: 5 * SEC,
        },
        Case {
            // RFC 6761 §6.3: the name is this machine without a resolver
            // (this machine's resolver knows no `*.localhost`).
            name: "plain http to a *.localhost name with the switch reaches loopback",
            setup: |env| {
                let url = format!("http://app.localhost:{}/get", env.http.port());
                Setup::new(env.ctx_loopback(), RequestOptions::new(url))
            },
            expect: Expect::Ok(200, no_check),
            within: 5 * SEC,
        },
        Case {
            name: "bad header is 2",
            setup: |env| {
                Setup::new(
                    env.ctx(),
                    RequestOptions::new(env.https.url("/get")).header("x-a", "1\r\nx-b: 2"),
                )
            },
            expect: Expect::Err(2, no_check),
            within: SEC,
        },
        Case {
            name: "malformed percent-encoding in the query is 15",
            setup: |env| {
                Setup::new(
                    env.ctx(),
                    RequestOptions::new(env.https.url("/get?q=%E4%B8")),
                )
            },
            expect: Expect::Err(15, no_check),
            within: SEC,
        },
        Case {
            name: "refused port is 12",
            setup: |env| {
                Setup::new(
                    env.ctx(),
                    RequestOptions::new(format!("https://127.0.0.1:{}/get", refused_port())),
                )
            },
            expect: Expect::Err(12, no_check),
            within: 5 * SEC,
        },
        Case {
            name: "server stops mid-body is 12",
            setup: |env| {
                Setup::new(
                    env.ctx(),
                    RequestOptions::new(env.https.url("/drop-mid-body")),
                )
            },
            expect: Expect::Err(12, no_check),
            within: 5 * SEC,
        },
        Case {
            name: "connection closed before any response is 12",
            setup: |env| {
                let server = raw_tls(env, vec![Step::read_head(), Step::Close]);
                let url = server.url("/x");
                Setup::new(env.ctx(), RequestOptions::new(url)).keep(server)
            },
            expect: Expect::Err(12, no_check),
            within: 5 * SEC,
        },
        Case {
            name: "stalled server is 13 within 1.5 x timeout",
            setup: |env| {
                let server = raw_tls(env, vec![Step::read_head(), Step::Hang]);
                let url = server.url("/x");
                Setup::new(
                    env.ctx(),
                    RequestOptions::new(url).timeout(Duration::from_millis(800)),
                )
                .keep(server)
            },
            expect: Expect::Err(13, no_check),
            within: Duration::from_millis(1200),
        },
        Case {
            name: "server that never finishes TLS is 13",
            setup: |env| {
                let server = raw(vec![Step::Hang]);
                let url = format!("https://127.0.0.1:{}/x", server.port());
                Setup::new(
                    env.ctx(),
                    RequestOptions::new(url).timeout(Duration::from_millis(600)),
                )
                .keep(server)
            },
            expect: Expect::Err(13, no_check),
            within: Duration::from_millis(900),
        },
        Case {
            name: "/delay longer than the timeout is 13",
            setup: |env| {
                Setup::new(
                    env.ctx(),
                    RequestOptions::new(env.https.url("/delay/3"))
                        .timeout(Duration::from_millis(700)),
                )
            },
            expect: Expect::Err(13, no_check),
            within: Duration::from_millis(1050),
        },
        Case {
            name: "a timeout past what the clock holds never passes: 200, no panic",
            setup: |env| {
                Setup::new(
                    env.ctx(),
                    RequestOptions::new(env.https.url("/get")).timeout(Duration::MAX),
                )
            },
            expect: Expect::Ok(200, |_| Ok(())),
            within: 5 * SEC,
        },
        Case {
            name: "untrusted certificate is 19",
            setup: |env| {
                let server = HttpsServer::start_with(&env.ca, LeafKind::Untrusted);
                let url = server.url("/get");
                Setup::new(env.ctx(), RequestOptions::new(url)).keep(server)
            },
            expect: Expect::Err(19, no_check),
            within: 5 * SEC,
        },
        Case {
            name: "certificate for another host is 19",
            setup: |env| {
                let server = HttpsServer::start_with(&env.ca, LeafKind::WrongHost);
                let url = server.url("/get");
                Setup::new(env.ctx(), RequestOptions::new(url)).keep(server)
            },
            expect: Expect::Err(19, no_check),
            within: 5 * SEC,
        },
        Case {
            name: "expired certificate is 19",
            setup: |env| {
                let server = HttpsServer::start_with(&env.ca, LeafKind::Expired);
                let url = server.url("/get");
                Setup::new(env.ctx(), RequestOptions::new(url)).keep(server)
            },
            expect: Expect::Err(19, no_check),
            within: 5 * SEC,
        },
        Case {
            name: "404 is 19 with status, headers and data",
            setup: |env| Setup::new(env.ctx(), RequestOptions::new(env.https.url("/nope"))),
            expect: Expect::Err(19, |e| {
                let r = e.response().ok_or("no response attached")?;
                ensure(r.status == 404 && !r.headers.is_empty(), || {
                    format!("{r:?}")
                })
            }),
            within: 5 * SEC,
        },
        Case {
            name: "500 is 19",
            setup: |env| Setup::new(env.ctx(), RequestOptions::new(env.https.url("/status/500"))),
            expect: Expect::Err(19, |e| {
                ensure(e.response().is_some_and(|r| r.status == 500), || {
                    "status".into()
                })
            }),
            within: 5 * SEC,
        },
        Case {
            name: "429 is 20",
            setup: |env| Setup::new(env.ctx(), RequestOptions::new(env.https.url("/status/429"))),
            expect: Expect::Err(20, |e| {
                ensure(e.response().is_some_and(|r| r.status == 429), || {
                    "status".into()
                })
            }),
            within: 5 * SEC,
        },
        Case {
            name: "abort is 20 at once",
            setup: |env| {
                Setup::new(env.ctx(), RequestOptions::new(env.https.url("/delay/3")))
                    .control(Control::AbortAfter(Duration::from_millis(200)))
            },
            expect: Expect::Err(20, no_check),
            within: Duration::from_millis(1500),
        },
        Case {
            name: "page gone is 1",
            setup: |env| {
                Setup::new(env.ctx(), RequestOptions::new(env.https.url("/delay/3")))
                    .control(Control::PageGoneAfter(Duration::from_millis(200)))
            },
            expect: Expect::Err(1, no_check),
            within: Duration::from_millis(1500),
        },
        Case {
            name: "proxy refused is 23",
            setup: |env| {
                let proxy = mpnet_core::Proxy::new(&format!("http://127.0.0.1:{}", refused_port()))
                    .expect("proxy");
                let ctx = env
                    .builder()
                    .allow_any_origin()
                    .proxy(Some(proxy))
                    .build()
                    .expect("ctx");
                Setup::new(ctx, RequestOptions::new(env.https.url("/get")))
            },
            expect: Expect::Err(23, no_check),
            within: 5 * SEC,
        },
        Case {
            name: "proxy answering 407 is 23",
            setup: |env| {
                let server = ProxyServer::start(ProxyMode::Deny407);
                let proxy = mpnet_core::Proxy::new(&server.url()).expect("proxy");
                let ctx = env
                    .builder()
                    .allow_any_origin()
                    .proxy(Some(proxy))
                    .build()
                    .expect("ctx");
                Setup::new(ctx, RequestOptions::new(env.https.url("/get"))).keep(server)
            },
            expect: Expect::Err(23, no_check),
            within: 5 * SEC,
        },
        Case {
            name: "through a tunnelling proxy works",
            setup: |env| {
                let server = ProxyServer::start(ProxyMode::Tunnel);
                let proxy = mpnet_core::Proxy::new(&server.url()).expect("proxy");
                let ctx = env
                    .builder()
                    .allow_any_origin()
                    .proxy(Some(proxy))
                    .build()
                    .expect("ctx");
                Setup::new(ctx, RequestOptions::new(env.https.url("/get?via=proxy"))).keep(server)
            },
            expect: Expect::Ok(200, |r| {
                ensure(json(r)?["args"]["via"] == "proxy", || "args".into())
            }),
            within: 5 * SEC,
        },
        Case {
            name: "HTML with dataType json is 14",
            setup: |env| Setup::new(env.ctx(), RequestOptions::new(env.https.url("/html"))),
            expect: Expect::Err(14, no_check),
            within: 5 * SEC,
        },
        Case {
            name: "invalid UTF-8 with dataType text is 14",
            setup: |env| {
                Setup::new(
                    env.ctx(),
                    RequestOptions::new(env.https.url("/invalid-utf8")).data_type(DataType::Text),
                )
            },
            expect: Expect::Err(14, no_check),
            within: 5 * SEC,
        },
        Case {
            name: "bad status line is 19",
            setup: |env| broken(env, b"HTTP/1.1 2x0 OK\r\ncontent-length: 0\r\n\r\n"),
            expect: Expect::Err(19, no_check),
            within: 5 * SEC,
        },
        Case {
            name: "conflicting Content-Length is 19",
            setup: |env| {
                broken(
                    env,
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nabc",
                )
            },
            expect: Expect::Err(19, no_check),
            within: 5 * SEC,
        },
        Case {
            name: "bad chunk size is 19",
            setup: |env| {
                broken(
                    env,
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
                )
            },
            expect: Expect::Err(19, no_check),
            within: 5 * SEC,
        },
        Case {
            name: "response head over the limit is 19",
            setup: |env| {
                let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
                for i in 0..3000 {
                    head.extend_from_slice(
                        format!("x-filler-{i}: {}\r\n", "v".repeat(20)).as_bytes(),
                    );
                }
                head.extend_from_slice(b"content-length: 0\r\n\r\n");
                let server = raw_tls(env, vec![Step::read_head(), Step::Write(head), Step::Hang]);
                let url = server.url("/x");
                Setup::new(env.ctx(), RequestOptions::new(url)).keep(server)
            },
            expect: Expect::Err(19, no_check),
            within: 5 * SEC,
        },
        Case {
            name: "body over the in-memory limit is 19",
            setup: |env| {
                let mut limits = Limits::default();
                limits.max_body_bytes = 1000;
                let ctx = env
                    .builder()
                    .allow_any_origin()
                    .limits(limits)
                    .build()
                    .expect("ctx");
                Setup::new(
                    ctx,
                    RequestOptions::new(env.https.url("/stream-bytes/5000"))
                        .data_type(DataType::ArrayBuffer),
                )
            },
            expect: Expect::Err(19, no_check),
            within: 5 * SEC,
        },
        Case {
            name: "close-delimited body is read to EOF",
            setup: |env| {
                let server = raw_tls(
                    env,
                    vec![
                        Step::read_head(),
                        Step::write("HTTP/1.1 200 OK\r\n\r\n\"done\""),
                        Step::Close,
                    ],
                );
                let url = server.url("/x");
                Setup::new(env.ctx(), RequestOptions::new(url)).keep(server)
            },
            expect: Expect::Ok(200, |r| {
                ensure(r.data == ResponseData::Json("done".into()), || {
                    format!("{:?}", r.data)
                })
            }),
            within: 5 * SEC,
        },
        Case {
            name: "1xx heads are skipped; empty JSON body gives \"\"",
            setup: |env| {
                let server = raw_tls(
                    env,
                    vec![Step::read_head(), Step::write("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"), Step::Hang],
                );
                let url = server.url("/x");
                Setup::new(env.ctx(), RequestOptions::new(url)).keep(server)
            },
            expect: Expect::Ok(200, |r| {
                ensure(r.data == ResponseData::Json("".into()), || {
                    format!("{:?}", r.data)
                })
            }),
            within: 5 * SEC,
        },
    ]
}

fn broken(env: &Env, response: &'static [u8]) -> Setup {
    let server = raw_tls(
        env,
        vec![Step::read_head(), Step::write(response), Step::Hang],
    );
    let url = server.url("/x");
    Setup::new(env.ctx(), RequestOptions::new(url)).keep(server)
}

/// Runs every case against `transport` and panics with the list of
/// failures, if any. Also checks keep-alive reuse on one client.
pub fn run_all<T: Transport>(transport: &T) {
    let env = Env::start();
    let mut failures = Vec::new();
    for case in cases() {
        let setup = (case.setup)(&env);
        let started = Instant::now();
        let result = transport.request(&setup.ctx, setup.opts.clone(), setup.control);
        let elapsed = started.elapsed();
        drop(setup.keep);
        let verdict = match (&case.expect, &result) {
            (Expect::Ok(status, check), Ok(r)) => ensure(r.status == *status, || {
                format!("status {} instead of {status}", r.status)
            })
            .and_then(|()| check(r)),
            (Expect::Err(code, check), Err(e)) => {
                let got = e.code(Api::Request);
                ensure(got == *code, || {
                    format!("error {got} ({}) instead of {code}", e.message())
                })
                .and_then(|()| check(e))
            }
            (Expect::Ok(..), Err(e)) => Err(format!(
                "failed with {} ({})",
                e.code(Api::Request),
                e.message()
            )),
            (Expect::Err(code, _), Ok(r)) => Err(format!(
                "succeeded with {} instead of error {code}",
                r.status
            )),
        };
        let verdict = verdict.and_then(|()| {
            ensure(elapsed <= case.within, || {
                format!("took {elapsed:?}, more than {:?}", case.within)
            })
        });
        println!(
            "[{}] {:<60} {}",
            transport.name(),
            case.name,
            if verdict.is_ok() { "ok" } else { "FAILED" }
        );
        if let Err(why) = verdict {
            failures.push(format!("{}: {why}", case.name));
        }
    }
    if let Err(why) = keep_alive_reuse(transport, &env) {
        failures.push(format!("keep-alive reuse: {why}"));
    }
    if let Err(why) = closed_while_idle(transport, &env) {
        failures.push(format!("connection closed while idle: {why}"));
    }
    if let Err(why) = tls_closed_while_idle(transport, &env) {
        failures.push(format!("TLS session closed while idle: {why}"));
    }
    if let Err(why) = shorter_timeout_on_reused_connection(transport, &env) {
        failures.push(format!("shorter timeout on a reused connection: {why}"));
    }
    assert!(
        failures.is_empty(),
        "[{}] {} conformance failures:\n{}",
        transport.name(),
        failures.len(),
        failures.join("\n")
    );
}

/// `request_into` against `request` (SPEC §4 results are the same however
/// they are built): a series of calls on one client, once with `request`
/// and once with `request_into` into one reused `out`, must give the same
/// status, headers (but `date`, which may tick between the two), data and
/// profile shape (which phases happened, reuse, redirects), and the same
/// errors; the body buffer of an unshared response is reused by the next
/// call of the same size. Panics with the list of differences, if any.
pub fn run_request_into<T: Transport>(transport: &T) {
    let env = Env::start();
    let mut failures = Vec::new();
    if let Err(why) = request_into_matches_request(transport, &env) {
        failures.push(why);
    }
    if let Err(why) = request_into_reuses_the_body_buffer(transport, &env) {
        failures.push(why);
    }
    assert!(
        failures.is_empty(),
        "[{}] request_into:\n{}",
        transport.name(),
        failures.join("\n")
    );
}

/// Every header but `date`, which may tick between two calls.
fn all_but_date(headers: &mpnet_core::JsHeaders) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

/// What of a response both ways must share (see [`run_request_into`]).
fn comparable(r: &Response) -> impl PartialEq + std::fmt::Debug {
    let headers = all_but_date(&r.headers);
    let p = r.profile;
    let phases = [
        p.dns,
        p.connect,
        p.tls,
        p.request_sent,
        p.first_byte,
        p.done,
    ]
    .map(|d| d.is_some());
    (
        r.status,
        headers,
        r.data.clone(),
        phases,
        p.reused,
        p.redirects,
    )
}

/// What of an error both ways must share: all of it but the response's
/// `date` header, which may tick between the two calls.
fn comparable_error(e: &Error) -> impl PartialEq + std::fmt::Debug {
    let response = e
        .response()
        .map(|r| (r.status, all_but_date(&r.headers), r.data.clone()));
    (e.kind(), e.message().to_owned(), response)
}

fn request_into_matches_request<T: Transport>(transport: &T, env: &Env) -> Result<(), String> {
    // Repeated names to be joined, and bytes that are not UTF-8, in a head
    // that is smaller than the one before it in the series.
    let odd_head: &[u8] = b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Raw: caf\xe9 \xff\r\n\
set-cookie: b=2\r\nContent-Length: 5\r\n\r\nhello";
    let raw_server = raw_tls(
        env,
        vec![Step::read_request(), Step::write(odd_head), Step::Close],
    );
    let opts = vec![
        RequestOptions::new(env.https.url("/bytes/3000")).data_type(DataType::ArrayBuffer),
        RequestOptions::new(env.https.url("/bytes/100")).data_type(DataType::ArrayBuffer),
        RequestOptions::new(env.https.url("/stream-bytes/5000")).data_type(DataType::ArrayBuffer),
        RequestOptions::new(env.https.url("/encoding/utf8")).data_type(DataType::Text),
        RequestOptions::new(env.https.url("/bytes/64")).data_type(DataType::Base64),
        RequestOptions::new(env.https.url("/json")),
        RequestOptions::new(env.https.url("/status/404")).data_type(DataType::ArrayBuffer),
        RequestOptions::new(env.https.url("/status/429")),
        RequestOptions::new(env.https.url("/invalid-utf8")).data_type(DataType::Text),
        RequestOptions::new(env.https.url("/redirect/2")).data_type(DataType::Text),
        RequestOptions::new(
            env.https
                .url("/response-headers?X-A=1&x-a=2&Content-Type=text/plain"),
        )
        .data_type(DataType::Text),
        RequestOptions::new(raw_server.url("/odd")).data_type(DataType::ArrayBuffer),
        RequestOptions::new(env.https.url("/gzip")).data_type(DataType::Text),
    ];
    let ctx = env.ctx();
    // Each series runs on its own client: the raw server answers each of
    // their connections with its script.
    let expected = transport.request_many(&ctx, opts.clone());
    let mut diffs = Vec::new();
    let (mut calls, mut successes) = (0, 0);
    let mut out = Response::default();
    transport.request_into_many(&ctx, &opts, &mut out, &mut |i, got, out| {
        calls += 1;
        successes += usize::from(got.is_ok());
        let url = opts.get(i).map(|o| o.url.clone()).unwrap_or_default();
        let verdict = match (expected.get(i), got) {
            (Some(Ok(want)), Ok(())) => ensure(comparable(want) == comparable(out), || {
                format!(
                    "{:?}\n  request:      {:?}",
                    comparable(out),
                    comparable(want)
                )
            }),
            (Some(Err(want)), Err(got)) => {
                ensure(comparable_error(&got) == comparable_error(want), || {
                    format!("error {got:?}, request gave {want:?}")
                })
                .and_then(|()| {
                    ensure(*out == Response::default(), || {
                        format!("after an error `out` is not empty: {out:?}")
                    })
                })
            }
            (want, got) => Err(format!("{got:?}, request gave {want:?}")),
        };
        if let Err(why) = verdict {
            diffs.push(format!("call {i} ({url}): {why}"));
        }
    });
    drop(raw_server);
    // 10 successes and 3 errors (404, 429, invalid UTF-8 text), as planned.
    ensure((calls, successes) == (opts.len(), opts.len() - 3), || {
        format!(
            "{calls} calls, {successes} successes, for {} options",
            opts.len()
        )
    })?;
    ensure(diffs.is_empty(), || {
        format!("request_into differs from request:\n{}", diffs.join("\n"))
    })
}

/// A big then a small response of each kind (arraybuffer with a length,
/// chunked arraybuffer, text, base64): the small one is collected in the
/// big one's buffer, so its data lies at the same address (and a string
/// keeps the big one's capacity). Big before small, so that without reuse
/// the allocator is unlikely to hand the same block back by chance.
fn request_into_reuses_the_body_buffer<T: Transport>(
    transport: &T,
    env: &Env,
) -> Result<(), String> {
    let pad = "p".repeat(3000);
    let pairs = [
        (
            DataType::ArrayBuffer,
            "/bytes/4000".to_owned(),
            "/bytes/100".to_owned(),
        ),
        (
            DataType::ArrayBuffer,
            "/stream-bytes/6000".into(),
            "/stream-bytes/200".into(),
        ),
        (
            DataType::Text,
            format!("/response-headers?Pad={pad}"),
            "/response-headers?Pad=x".into(),
        ),
        (DataType::Base64, "/bytes/3000".into(), "/bytes/300".into()),
    ];
    let opts: Vec<RequestOptions> = pairs
        .iter()
        .flat_map(|(dt, big, small)| {
            [big, small].map(|p| RequestOptions::new(env.https.url(p)).data_type(*dt))
        })
        .collect();
    // Per call: the data's address, its length, and a string's capacity.
    type Seen = (usize, usize, Option<usize>);
    let mut seen: Vec<Result<Seen, String>> = Vec::new();
    let mut out = Response::default();
    transport.request_into_many(&env.ctx(), &opts, &mut out, &mut |_, got, out| {
        seen.push(match (got, &out.data) {
            (Err(e), _) => Err(format!("failed: {e}")),
            (Ok(()), ResponseData::ArrayBuffer(b)) => Ok((b.as_ptr() as usize, b.len(), None)),
            (Ok(()), ResponseData::Text(s) | ResponseData::Base64(s)) => {
                Ok((s.as_ptr() as usize, s.len(), Some(s.capacity())))
            }
            (Ok(()), other) => Err(format!("unexpected data {other:?}")),
        });
    });
    ensure(seen.len() == opts.len(), || {
        format!("{} results for {} calls", seen.len(), opts.len())
    })?;
    for (pair, (_, big, _)) in seen.chunks(2).zip(&pairs) {
        let big = big.get(..40).unwrap_or(big);
        let [Ok(first), Ok(second)] = pair else {
            return Err(format!("{big}: {pair:?}"));
        };
        ensure(second.1 < first.1, || {
            format!("{big}: {first:?} then {second:?}")
        })?;
        ensure(first.0 == second.0, || {
            format!(
                "{big}: the next call's data is at {:#x}, not in this one's buffer at {:#x}",
                second.0, first.0
            )
        })?;
        ensure(first.2 == second.2, || {
            format!("{big}: capacity {:?} then {:?}", first.2, second.2)
        })?;
    }
    Ok(())
}

/// Every result a 200, or which one was not.
fn all_200(results: &[Result<Response, Error>]) -> Result<(), String> {
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(r) if r.status == 200 => {}
            Ok(r) => return Err(format!("request {i}: status {}", r.status)),
            Err(e) => return Err(format!("request {i} failed: {e}")),
        }
    }
    Ok(())
}

/// A server that closes each keep-alive connection right after its answer
/// (without `Connection: close`): every request still succeeds. A GET
/// reuses the closed connection without probing it (idle < 1 s,
/// `pool::must_probe`), fails before any response byte and is sent again
/// on a fresh connection; a POST probes the pooled connection first, finds
/// it closed and opens a fresh one. Three connections in all. Between the
/// calls, a 0.2 s request to another server lets the FIN arrive.
fn closed_while_idle<T: Transport>(transport: &T, env: &Env) -> Result<(), String> {
    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
    let server = raw(vec![Step::read_request(), Step::write(answer), Step::Close]);
    let pause = || RequestOptions::new(env.http.url("/delay/0.2"));
    let opts = vec![
        RequestOptions::new(server.url("/first")),
        pause(),
        RequestOptions::new(server.url("/get-again")),
        pause(),
        RequestOptions::new(server.url("/post"))
            .method(Method::Post)
            .text("x"),
    ];
    all_200(&transport.request_many(&env.ctx_loopback(), opts))?;
    ensure(server.connections_accepted() == 3, || {
        format!(
            "{} connections for 3 requests, each closed after its answer (3 expected)",
            server.connections_accepted()
        )
    })
}

/// The same over TLS when the server ends the *session* after its answer
/// (`close_notify`) but leaves the socket open and answers nothing more:
/// a GET on the pooled connection sees the session's end before any
/// response byte and is sent again on a fresh connection; a POST's probe
/// finds the `close_notify` (in the socket, or already read into the TLS
/// session with the answer) and opens a fresh one. Three connections.
fn tls_closed_while_idle<T: Transport>(transport: &T, env: &Env) -> Result<(), String> {
    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
    let server = raw_tls(
        env,
        vec![
            Step::read_request(),
            Step::write(answer),
            Step::CloseNotify,
            Step::Hang,
        ],
    );
    let pause = || RequestOptions::new(env.http.url("/delay/0.2"));
    let opts = vec![
        RequestOptions::new(server.url("/first")).timeout(Duration::from_secs(5)),
        pause(),
        RequestOptions::new(server.url("/get-again")).timeout(Duration::from_secs(5)),
        pause(),
        RequestOptions::new(server.url("/post"))
            .method(Method::Post)
            .text("x")
            .timeout(Duration::from_secs(5)),
    ];
    all_200(&transport.request_many(&env.ctx_loopback(), opts))?;
    ensure(server.connections_accepted() == 3, || {
        format!(
            "{} connections for 3 requests, each session closed after its answer (3 expected)",
            server.connections_accepted()
        )
    })
}

/// A request with a short timeout on a connection that served one with
/// the default 30 s: its own deadline holds (error 13 after ~0.3 s), not
/// the earlier call's.
fn shorter_timeout_on_reused_connection<T: Transport>(
    transport: &T,
    env: &Env,
) -> Result<(), String> {
    let server = HttpsServer::start(&env.ca);
    let opts = vec![
        RequestOptions::new(server.url("/get")),
        RequestOptions::new(server.url("/delay/3")).timeout(Duration::from_millis(300)),
    ];
    let started = Instant::now();
    let results = transport.request_many(&env.ctx(), opts);
    let elapsed = started.elapsed();
    match results.as_slice() {
        [Ok(_), Err(e)] if e.code(Api::Request) == 13 => {}
        [Ok(_), Err(e)] => {
            return Err(format!(
                "error {} ({}) instead of 13",
                e.code(Api::Request),
                e.message()
            ))
        }
        [first, second] => {
            return Err(format!(
                "first {:?}, second {:?}",
                first.as_ref().map(|r| r.status),
                second.as_ref().map(|r| r.status)
            ))
        }
        _ => return Err(format!("{} results for 2 requests", results.len())),
    }
    ensure(server.connections_accepted() == 1, || {
        format!(
            "{} connections (the second request should reuse the first's)",
            server.connections_accepted()
        )
    })?;
    ensure(elapsed < Duration::from_millis(2500), || {
        format!("took {elapsed:?}: the 300 ms timeout did not hold")
    })
}

/// Ten requests on one client use one connection.
fn keep_alive_reuse<T: Transport>(transport: &T, env: &Env) -> Result<(), String> {
    let server = HttpsServer::start(&env.ca);
    let opts = (0..10)
        .map(|i| RequestOptions::new(server.url(&format!("/get?i={i}"))))
        .collect();
    let results = transport.request_many(&env.ctx(), opts);
    for r in &results {
        if let Err(e) = r {
            return Err(format!("request failed: {e}"));
        }
    }
    ensure(server.connections_accepted() == 1, || {
        format!(
            "{} connections for 10 requests",
            server.connections_accepted()
        )
    })
}
