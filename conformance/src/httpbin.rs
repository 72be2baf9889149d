//! Interop with a server nobody here wrote: the real httpbin (Python, under
//! gunicorn) served over TLS with a test CA on loopback. `scripts/test`
//! installs it in a venv under `target/peers/py`.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use mpnet_core::request::{DataType, Method, RequestOptions, ResponseData};
use mpnet_core::{Api, AppContext};
use mpnet_testkit::TestCa;

use crate::{Control, Transport};

/// A running httpbin over TLS on 127.0.0.1.
pub struct Httpbin {
    child: Child,
    port: u16,
    ca: TestCa,
    _dir: PathBuf,
}

/// Where `scripts/test` puts the venv with httpbin and gunicorn.
pub fn venv() -> PathBuf {
    std::env::var_os("MPNET_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/peers"))
        .join("py")
}

impl Httpbin {
    /// Starts httpbin, or returns `None` (with a message) when the venv is
    /// missing. With `CI` set a missing venv is a failure.
    pub fn start() -> Option<Httpbin> {
        let gunicorn = venv().join("bin/gunicorn");
        if !gunicorn.exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{} is missing but CI is set: run scripts/test, which installs httpbin",
                gunicorn.display()
            );
            eprintln!(
                "SKIPPED httpbin interop: {} is missing (scripts/test installs it)",
                gunicorn.display()
            );
            return None;
        }
        let ca = TestCa::new();
        let leaf = ca.leaf();
        let dir =
            std::env::temp_dir().join(format!("mpnet-httpbin-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, leaf.cert_pem()).expect("write cert");
        std::fs::write(&key, leaf.key_pem()).expect("write key");
        let port = free_port();
        let child = Command::new(&gunicorn)
            .args([
                "-b",
                &format!("127.0.0.1:{port}"),
                "-w",
                "2",
                "--threads",
                "4",
                "--log-level",
                "warning",
            ])
            .arg("--certfile")
            .arg(&cert)
            .arg("--keyfile")
            .arg(&key)
            .arg("httpbin:app")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start gunicorn");
        let httpbin = Httpbin {
            child,
            port,
            ca,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "httpbin did not start listening in 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(httpbin)
    }

    /// `https://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// A context trusting the test CA, whitelisting this server.
    pub fn ctx(&self) -> AppContext {
        AppContext::builder("2021000000000000", "1.0.0")
            .add_roots_pem(&self.ca.cert_pem())
            .expect("CA")
            .use_web_pki_roots(false)
            .whitelist([format!("https://127.0.0.1:{}", self.port)])
            .expect("whitelist")
            .build()
            .expect("ctx")
    }
}

impl Drop for Httpbin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn json(r: &mpnet_core::request::Response) -> &serde_json::Value {
    match &r.data {
        ResponseData::Json(v) => v,
        other => panic!("expected json, got {other:?}"),
    }
}

/// The interop cases of issue 3 against real httpbin, on `transport`.
pub fn run_interop<T: Transport>(transport: &T) {
    let Some(hb) = Httpbin::start() else { return };
    let ctx = hb.ctx();
    let run = |opts: RequestOptions| transport.request(&ctx, opts, Control::None);
    let name = transport.name();

    // The seed's own example.
    let r = run(RequestOptions::new(hb.url("/post"))
        .method(Method::Post)
        .json(serde_json::json!({"from": "支付宝", "production": "AlipayJSAPI"}))
        .data_type(DataType::Json))
    .unwrap_or_else(|e| panic!("[{name}] seed POST: {e}"));
    assert_eq!(r.status, 200);
    let v = json(&r);
    assert_eq!(
        v["json"],
        serde_json::json!({"from": "支付宝", "production": "AlipayJSAPI"})
    );
    assert_eq!(v["headers"]["Content-Type"], "application/json");
    assert_eq!(
        v["headers"]["Referer"],
        "https://urlhost/2021000000000000/1.0.0/page-frame.html"
    );

    // GET with a query from data.
    let r = run(RequestOptions::new(hb.url("/get?x=1"))
        .json(serde_json::json!({"q": "a b", "n": 2, "cn": "中文"})))
    .unwrap();
    assert_eq!(
        json(&r)["args"],
        serde_json::json!({"x": "1", "q": "a b", "n": "2", "cn": "中文"}),
        "[{name}]"
    );

    // Form POST.
    let r = run(RequestOptions::new(hb.url("/post"))
        .method(Method::Post)
        .header("content-type", "application/x-www-form-urlencoded")
        .json(serde_json::json!({"a": "1", "b": "x&y"})))
    .unwrap();
    assert_eq!(
        json(&r)["form"],
        serde_json::json!({"a": "1", "b": "x&y"}),
        "[{name}]"
    );

    // PUT and DELETE.
    let r = run(RequestOptions::new(hb.url("/put"))
        .method(Method::Put)
        .json(serde_json::json!({"k": [1, 2]})))
    .unwrap();
    assert_eq!(json(&r)["json"], serde_json::json!({"k": [1, 2]}));
    let r = run(RequestOptions::new(hb.url("/delete")).method(Method::Delete)).unwrap();
    assert_eq!(r.status, 200);

    // Status codes.
    for (status, code) in [(404, 19), (500, 19), (503, 19), (429, 20)] {
        let e = run(RequestOptions::new(hb.url(&format!("/status/{status}")))).unwrap_err();
        assert_eq!(e.code(Api::Request), code, "[{name}] status {status}");
        assert_eq!(e.response().map(|r| r.status), Some(status));
    }
    let r = run(RequestOptions::new(hb.url("/status/204"))).unwrap();
    assert_eq!((r.status, &r.data), (204, &ResponseData::Json("".into())));

    // Timeout against /delay.
    let started = Instant::now();
    let e = run(RequestOptions::new(hb.url("/delay/3")).timeout(Duration::from_millis(800)))
        .unwrap_err();
    assert_eq!(e.code(Api::Request), 13, "[{name}] delay");
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "[{name}] timeout took {:?}",
        started.elapsed()
    );

    // gzip and deflate.
    let r = run(RequestOptions::new(hb.url("/gzip"))).unwrap();
    assert_eq!(json(&r)["gzipped"], true);
    let r = run(RequestOptions::new(hb.url("/deflate"))).unwrap();
    assert_eq!(json(&r)["deflated"], true);

    // /bytes as base64 and arraybuffer: the same seed gives the same bytes.
    let b64 =
        run(RequestOptions::new(hb.url("/bytes/1000?seed=7")).data_type(DataType::Base64)).unwrap();
    let raw =
        run(RequestOptions::new(hb.url("/bytes/1000?seed=7")).data_type(DataType::ArrayBuffer))
            .unwrap();
    let (ResponseData::Base64(text), ResponseData::ArrayBuffer(bytes)) = (&b64.data, &raw.data)
    else {
        panic!("[{name}] wrong data kinds");
    };
    assert_eq!(bytes.len(), 1000);
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(bytes),
        *text
    );

    // Redirects: relative, absolute, redirect-to.
    let r = run(RequestOptions::new(hb.url("/redirect/3"))).unwrap();
    assert_eq!(r.profile.redirects, 3);
    let r = run(RequestOptions::new(hb.url("/absolute-redirect/2"))).unwrap();
    assert!(json(&r)["url"]
        .as_str()
        .is_some_and(|u| u.ends_with("/get")));
    let e = run(RequestOptions::new(
        hb.url("/redirect-to?url=https%3A%2F%2Fexample.com%2F"),
    ))
    .unwrap_err();
    assert_eq!(
        e.code(Api::Request),
        11,
        "[{name}] redirect off the whitelist"
    );
    let e = run(RequestOptions::new(hb.url("/redirect/11"))).unwrap_err();
    assert_eq!(e.code(Api::Request), 19, "[{name}] too many redirects");

    // HTML with dataType json.
    let e = run(RequestOptions::new(hb.url("/html"))).unwrap_err();
    assert_eq!(e.code(Api::Request), 14);
}

/// The upload/download interop of issue 5 against real httpbin: a text and
/// a binary file with formData to `/post`, and `/bytes/N` downloads.
pub fn run_transfer_interop<T: crate::transfer::TransferTransport>(transport: &T) {
    use mpnet_core::transfer::{DownloadOptions, UploadOptions};
    let Some(hb) = Httpbin::start() else { return };
    let name = transport.name();
    let root = std::env::temp_dir().join(format!(
        "mpnet-hb-transfer-{}-{}",
        std::process::id(),
        unique()
    ));
    let files = root.join("files");
    let temp = root.join("temp");
    std::fs::create_dir_all(&files).expect("files");
    std::fs::create_dir_all(&temp).expect("temp");
    let ctx = AppContext::builder("2021000000000000", "1.0.0")
        .add_roots_pem(&hb.ca.cert_pem())
        .expect("CA")
        .use_web_pki_roots(false)
        .allow_any_origin()
        .read_dir(&files)
        .temp_dir(&temp)
        .build()
        .expect("ctx");
    let rec = || std::sync::Arc::new(std::sync::Mutex::new(crate::transfer::Seen::default()));

    // A text file with formData.
    std::fs::write(files.join("hello.txt"), "你好, httpbin\n").expect("write");
    let mut form = serde_json::Map::new();
    form.insert("from".into(), "支付宝".into());
    form.insert("n".into(), serde_json::json!(2));
    let r = transport
        .upload(
            &ctx,
            UploadOptions::new(hb.url("/post"), "hello.txt", "file").form_data(form),
            Control::None,
            rec(),
        )
        .unwrap_or_else(|e| panic!("[{name}] upload text: {e}"));
    assert_eq!(r.status_code, "200");
    let echo: serde_json::Value = serde_json::from_str(&r.data).expect("httpbin answers JSON");
    assert_eq!(
        echo["form"],
        serde_json::json!({"from": "支付宝", "n": "2"}),
        "[{name}]"
    );
    assert_eq!(echo["files"]["file"], "你好, httpbin\n", "[{name}]");

    // A binary file: httpbin echoes it as a data URL.
    let bytes = mpnet_testkit::pseudo_random_bytes(9, 50_000);
    std::fs::write(files.join("blob.bin"), &bytes).expect("write");
    let r = transport
        .upload(
            &ctx,
            UploadOptions::new(hb.url("/post"), "blob.bin", "blob"),
            Control::None,
            rec(),
        )
        .unwrap_or_else(|e| panic!("[{name}] upload binary: {e}"));
    let echo: serde_json::Value = serde_json::from_str(&r.data).expect("JSON");
    let url = echo["files"]["blob"].as_str().expect("file echoed");
    let b64 = url
        .rsplit_once("base64,")
        .map(|(_, b)| b)
        .expect("a data URL");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64"),
        bytes,
        "[{name}]"
    );

    // Downloads: /bytes/N twice with the same seed give the same file; 404
    // leaves nothing behind.
    let a = transport
        .download(
            &ctx,
            DownloadOptions::new(hb.url("/bytes/100000?seed=3")),
            Control::None,
            rec(),
        )
        .unwrap_or_else(|e| panic!("[{name}] download: {e}"));
    let b = transport
        .download(
            &ctx,
            DownloadOptions::new(hb.url("/bytes/100000?seed=3")),
            Control::None,
            rec(),
        )
        .unwrap_or_else(|e| panic!("[{name}] download: {e}"));
    let (fa, fb) = (
        std::fs::read(&a.ap_file_path).expect("a"),
        std::fs::read(&b.ap_file_path).expect("b"),
    );
    assert_eq!(fa.len(), 100_000);
    assert_eq!(fa, fb, "[{name}] same seed, same bytes");
    let before = std::fs::read_dir(&temp).map(|d| d.count()).unwrap_or(0);
    let e = transport
        .download(
            &ctx,
            DownloadOptions::new(hb.url("/status/404")),
            Control::None,
            rec(),
        )
        .unwrap_err();
    assert_eq!(e.code(Api::Download), 12);
    assert_eq!(
        std::fs::read_dir(&temp).map(|d| d.count()).unwrap_or(0),
        before,
        "[{name}] 404 left a file"
    );
    let _ = std::fs::remove_dir_all(&root);
}
