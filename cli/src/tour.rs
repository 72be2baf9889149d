//! `mpnet tour`: the seed's examples, run through the library against the
//! embedded loopback HTTPS/WSS server, each printed as the call and its
//! result. Exits 0 only if every step gave what the SPEC says.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mpnet_core::bridge;
use mpnet_core::request::{Response, ResponseData};
use mpnet_core::task::Callbacks;
use mpnet_core::transfer::{self, ProgressEvent};
use mpnet_core::ws::listeners::SocketListeners;
use mpnet_core::ws::{self, MessageData};
use mpnet_core::{Api, AppContext, Error};
use mpnet_testkit::{serve_https, TestCa};
use serde_json::{json, Value};

use crate::net::Net;
use crate::Transport;

/// The outcome of one step: what it showed, and whether it is right.
type Step = Result<String, String>;

struct Tour {
    base: String,
    wss: String,
    ctx: AppContext,
    net: Net,
    dir: std::path::PathBuf,
    passed: usize,
    failed: Vec<String>,
    color: bool,
}

fn show<T: serde::Serialize>(v: &T) -> String {
    let mut s = serde_json::to_string(v).unwrap_or_default();
    if s.len() > 260 {
        let mut cut = 260;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str(" …");
    }
    s
}

fn js_err(e: &Error, api: Api) -> String {
    show(&e.to_js(api))
}

impl Tour {
    fn step(&mut self, title: &str, call: &str, run: impl FnOnce(&Tour) -> Step) {
        outln!("\n== {title}");
        outln!("   {call}");
        let (mark, result) = match run(self) {
            Ok(shown) => {
                self.passed += 1;
                (
                    if self.color {
                        "\x1b[32m✓\x1b[0m"
                    } else {
                        "✓"
                    },
                    shown,
                )
            }
            Err(why) => {
                self.failed.push(title.to_string());
                (
                    if self.color {
                        "\x1b[31m✗\x1b[0m"
                    } else {
                        "✗"
                    },
                    why,
                )
            }
        };
        for line in result.lines() {
            outln!("   {line}");
        }
        outln!(
            "   {mark} {}",
            if self.failed.last().map(String::as_str) == Some(title) {
                "NOT as the SPEC says"
            } else {
                "as the SPEC says"
            }
        );
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn request_json(&self, options: &Value) -> Result<Response, Error> {
        let opts = bridge::request_options(&options.to_string()).map_err(|e| match e {
            bridge::BridgeError::Options(e) => e,
            other => Error::invalid(other.to_string()),
        })?;
        self.net.request(opts)
    }
}

fn expect_code(r: Result<Response, Error>, code: u32) -> Step {
    match r {
        Err(e) if e.code(Api::Request) == code => {
            Ok(format!("fail {}\ncomplete", js_err(&e, Api::Request)))
        }
        Err(e) => Err(format!(
            "fail {} — expected error {code}",
            js_err(&e, Api::Request)
        )),
        Ok(r) => Err(format!("success {} — expected error {code}", show(&r))),
    }
}

/// Runs the tour on `transports`; `Err` is a usage error.
pub fn run(transports: &[Transport]) -> Result<u8, String> {
    let ca = TestCa::new();
    let server =
        serve_https(0, &ca).map_err(|e| format!("cannot start the loopback server: {e}"))?;
    let dir = std::env::temp_dir().join(format!("mpnet-tour-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("files")).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir.join("temp")).map_err(|e| e.to_string())?;
    let mut all_ok = true;
    outln!("mpnet tour: the seed's examples against https://127.0.0.1:{} (a loopback server with a CA made just now)", server.port());
    for &transport in transports {
        let ctx = AppContext::builder("2021000000000000", "1.0.0")
            .add_roots_pem(&ca.cert_pem())
            .map_err(|e| e.to_string())?
            .use_web_pki_roots(false)
            .whitelist([format!("https://127.0.0.1:{}", server.port())])
            .map_err(|e| e.to_string())?
            .read_dir(dir.join("files"))
            .temp_dir(dir.join("temp"))
            .build()
            .map_err(|e| e.to_string())?;
        let mut tour = Tour {
            base: format!("https://127.0.0.1:{}", server.port()),
            wss: format!("wss://127.0.0.1:{}", server.port()),
            net: Net::new(transport, ctx.clone())?,
            ctx,
            dir: dir.clone(),
            passed: 0,
            failed: Vec::new(),
            color: std::io::stdout().is_terminal(),
        };
        outln!(
            "\n################ transport: {} ################",
            match transport {
                Transport::Blocking => "blocking (mpnet-blocking)",
                Transport::Smol => "smol (mpnet-smol)",
            }
        );
        steps(&mut tour);
        outln!(
            "\n{} transport: {} of {} steps as the SPEC says{}",
            match transport {
                Transport::Blocking => "blocking",
                Transport::Smol => "smol",
            },
            tour.passed,
            tour.passed + tour.failed.len(),
            if tour.failed.is_empty() {
                String::new()
            } else {
                format!("; NOT: {}", tour.failed.join(", "))
            }
        );
        all_ok &= tour.failed.is_empty();
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(if all_ok { 0 } else { 1 })
}

fn steps(t: &mut Tour) {
    let post = json!({"url": t.url("/post"), "method": "POST", "data": {"from": "支付宝", "production": "AlipayJSAPI"}, "dataType": "json"});
    t.step("my.request: the seed's example (POST JSON)", &format!("my.request({post})"), |t| {
        let r = t.request_json(&post).map_err(|e| js_err(&e, Api::Request))?;
        let ResponseData::Json(v) = &r.data else { return Err("data is not JSON".into()) };
        if r.status != 200 || v["json"] != json!({"from": "支付宝", "production": "AlipayJSAPI"}) {
            return Err(format!("success {}", show(&r)));
        }
        Ok(format!("success {}\ncomplete", show(&json!({"status": r.status, "data.json": v["json"], "data.headers.referer": v["headers"]["referer"]}))))
    });

    let get = json!({"url": t.url("/get?x=1"), "data": {"q": "a b&c", "n": 1.5, "cn": "中文"}});
    t.step(
        "my.request: GET with data (a query string, JavaScript's encoding)",
        &format!("my.request({get})"),
        |t| {
            let r = t.request_json(&get).map_err(|e| js_err(&e, Api::Request))?;
            let ResponseData::Json(v) = &r.data else {
                return Err("data is not JSON".into());
            };
            if v["args"] != json!({"x": "1", "q": "a b&c", "n": "1.5", "cn": "中文"}) {
                return Err(format!("args {}", v["args"]));
            }
            Ok(format!(
                "success {}",
                show(&json!({"status": r.status, "data.url": v["url"], "data.args": v["args"]}))
            ))
        },
    );

    for (data_type, path) in [
        ("text", "/html"),
        ("base64", "/bytes/12"),
        ("arraybuffer", "/bytes/12"),
        ("json", "/json"),
    ] {
        let opts = json!({"url": t.url(path), "dataType": data_type});
        t.step(
            &format!("my.request: dataType {data_type}"),
            &format!("my.request({opts})"),
            |t| {
                let r = t
                    .request_json(&opts)
                    .map_err(|e| js_err(&e, Api::Request))?;
                let ok = matches!(
                    (data_type, &r.data),
                    ("text", ResponseData::Text(_))
                        | ("base64", ResponseData::Base64(_))
                        | ("arraybuffer", ResponseData::ArrayBuffer(_))
                        | ("json", ResponseData::Json(_))
                );
                let shown = format!("success {}", show(&r));
                if ok {
                    Ok(shown)
                } else {
                    Err(shown)
                }
            },
        );
    }

    let slow = json!({"url": t.url("/delay/5")});
    t.step(
        "RequestTask.abort(): fail with 20, then complete, at once",
        &format!("const task = my.request({slow}); task.abort()"),
        |t| {
            let log = Arc::new(Mutex::new(Vec::new()));
            let (f, c) = (log.clone(), log.clone());
            let opts = bridge::request_options(&slow.to_string()).map_err(|e| e.to_string())?;
            let task = t.net.spawn_request(
                opts,
                Callbacks::new()
                    .fail(move |e| {
                        f.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(format!("fail {}", js_err(e, Api::Request)))
                    })
                    .complete(move |_| {
                        c.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push("complete".to_string())
                    }),
            );
            std::thread::sleep(Duration::from_millis(100));
            let started = Instant::now();
            task.abort();
            let result = task.wait();
            let took = started.elapsed();
            let lines = log.lock().unwrap_or_else(|p| p.into_inner()).join("\n");
            match result {
                Err(e) if e.code(Api::Request) == 20 && took < Duration::from_secs(1) => Ok(lines),
                _ => Err(lines),
            }
        },
    );

    let e404 = json!({"url": t.url("/status/404")});
    t.step(
        "an HTTP error: 404 is error 19",
        &format!("my.request({e404})"),
        |t| expect_code(t.request_json(&e404), 19),
    );
    let slow = json!({"url": t.url("/delay/3"), "timeout": 500});
    t.step("a timeout: error 13", &format!("my.request({slow})"), |t| {
        expect_code(t.request_json(&slow), 13)
    });
    let off = json!({"url": "https://not-whitelisted.example/get"});
    t.step(
        "the domain whitelist: error 11",
        &format!("my.request({off})"),
        |t| expect_code(t.request_json(&off), 11),
    );

    let upload = json!({"url": t.url("/upload"), "fileType": "image", "fileName": "file", "filePath": "photo.png", "formData": {"from": "支付宝"}});
    t.step("my.uploadFile with onProgressUpdate", &format!("const task = my.uploadFile({upload}); task.onProgressUpdate(...)"), |t| {
        let bytes = mpnet_testkit::pseudo_random_bytes(7, 2 << 20);
        std::fs::write(t.dir.join("files/photo.png"), &bytes).map_err(|e| e.to_string())?;
        let opts = transfer::upload_options(&upload.to_string()).map_err(|e| e.to_string())?;
        let events: Arc<Mutex<Vec<ProgressEvent>>> = Arc::default();
        let ev = events.clone();
        let bar = progress_bar();
        let b = bar.clone();
        let task = t
            .net
            .spawn_upload(
                opts,
                Callbacks::new().progress(move |e| {
                    ev.lock().unwrap_or_else(|p| p.into_inner()).push(*e);
                    if let Some(b) = &b {
                        b.set_length(e.total_bytes_expected_to_write);
                        b.set_position(e.total_bytes_written);
                    }
                }),
            )
            .map_err(|e| e.to_string())?;
        let r = task.wait();
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        let r = r.map_err(|e| js_err(&e, Api::Upload))?;
        let events = events.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let last = events.last().copied().ok_or("no progress event")?;
        let echo: Value = serde_json::from_str(&r.data).map_err(|e| e.to_string())?;
        let shown = format!(
            "progress: {} events, last {}\nsuccess {}",
            events.len(),
            show(&last),
            show(&json!({"statusCode": r.status_code, "data.form": echo["form"], "data.files.file.size": echo["files"]["file"]["size"]}))
        );
        if r.status_code == "200" && last.progress == 100 && echo["files"]["file"]["size"] == bytes.len() {
            Ok(shown)
        } else {
            Err(shown)
        }
    });

    let download =
        json!({"url": t.url("/download/TB1x669SXXXXXbdaFXXXXXXXXXX-520-280.jpg?size=30000")});
    t.step(
        "my.downloadFile: the seed's example",
        &format!("my.downloadFile({download})"),
        |t| {
            let opts =
                transfer::download_options(&download.to_string()).map_err(|e| e.to_string())?;
            let r = t
                .net
                .spawn_download(opts, Callbacks::new())
                .map_err(|e| e.to_string())?
                .wait();
            let r = r.map_err(|e| js_err(&e, Api::Download))?;
            let size = std::fs::metadata(&r.ap_file_path)
                .map(|m| m.len())
                .unwrap_or(0);
            let shown = format!("success {}\n(the file holds {size} bytes)", show(&r));
            if size == 30000 {
                Ok(shown)
            } else {
                Err(shown)
            }
        },
    );

    let connect = json!({"url": format!("{}/ws", t.wss), "data": {}, "header": {"content-type": "application/json"}});
    t.step(
        "my.connectSocket: open, send text and binary, receive, close",
        &format!("my.connectSocket({connect}); my.onSocketOpen/Message/Close; my.sendSocketMessage; my.closeSocket()"),
        |t| socket_step(t, &connect),
    );
    let _ = &t.ctx;
}

fn socket_step(t: &Tour, connect: &Value) -> Step {
    let opts = ws::options::connect_options(&connect.to_string()).map_err(|e| e.to_string())?;
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut listeners = SocketListeners::default();
    let (a, b, c, d) = (log.clone(), log.clone(), log.clone(), log.clone());
    listeners.open.on(Arc::new(move || {
        a.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push("onSocketOpen".into())
    }));
    listeners.message.on(Arc::new(move |m: &MessageData| {
        b.lock().unwrap_or_else(|p| p.into_inner()).push(format!(
            "onSocketMessage {}",
            json!({"data": m.js_data(), "isBuffer": m.is_buffer()})
        ))
    }));
    listeners.error.on(Arc::new(move |e: &Error| {
        c.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("onSocketError {}", js_err(e, Api::Socket)))
    }));
    listeners.close.on(Arc::new(move |code, reason: &str| {
        d.lock().unwrap_or_else(|p| p.into_inner()).push(format!(
            "onSocketClose {}",
            json!({"code": code, "reason": reason})
        ))
    }));
    let socket = t.net.connect_socket(opts, Callbacks::new(), listeners)?;
    socket
        .wait_connected()
        .map_err(|e| format!("fail {}", js_err(&e, Api::Socket)))?;
    let sent = [
        ws::SendOptions::text("你好, mpnet"),
        ws::SendOptions::base64("AAECAw=="),
    ];
    for s in &sent {
        socket.send(s).map_err(|e| js_err(&e, Api::Socket))?;
    }
    let wait = |n: usize| {
        let end = Instant::now() + Duration::from_secs(5);
        while log.lock().unwrap_or_else(|p| p.into_inner()).len() < n && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait(3);
    socket
        .close(&ws::CloseOptions::default())
        .map_err(|e| js_err(&e, Api::Socket))?;
    wait(4);
    let lines = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let want = [
        "onSocketOpen".to_string(),
        format!(
            "onSocketMessage {}",
            json!({"data": "你好, mpnet", "isBuffer": false})
        ),
        format!(
            "onSocketMessage {}",
            json!({"data": "AAECAw==", "isBuffer": true})
        ),
        format!("onSocketClose {}", json!({"code": 1000, "reason": ""})),
    ];
    let shown = lines.join("\n");
    if lines == want {
        Ok(shown)
    } else {
        Err(shown)
    }
}

fn progress_bar() -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template("   {bar:40} {bytes}/{total_bytes}")
    {
        bar.set_style(style);
    }
    Some(bar)
}
