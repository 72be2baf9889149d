//! WebSocket interop with peers nobody here wrote (issue 9): Python
//! `websockets` and node `ws`, serving WSS on loopback with a leaf from the
//! test CA. `scripts/peers` installs them under `target/peers`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mpnet_core::ws::{CloseOptions, ConnectOptions, SendOptions};
use mpnet_core::Limits;
use mpnet_testkit::{LeafKind, TestCa};
use serde_json::Value;

use crate::socket::{new_log, SocketTransport};

/// Which peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerKind {
    /// Python `websockets`.
    Python,
    /// node `ws`.
    Node,
}

/// A running peer server.
pub struct WsPeer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

fn peers_dir() -> PathBuf {
    crate::httpbin::venv()
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("peers")
        .join(name)
}

impl WsPeer {
    /// Starts `kind` with a leaf of `ca` of the given kind, or `None` (with
    /// a message) when the peer is not installed; with `CI` set a missing
    /// peer is a failure.
    pub fn start(kind: PeerKind, ca: &TestCa, leaf: LeafKind) -> Option<WsPeer> {
        let peers = peers_dir();
        let (program, args, installed): (PathBuf, Vec<PathBuf>, bool) = match kind {
            PeerKind::Python => {
                let py = peers.join("py/bin/python");
                let ok = Command::new(&py)
                    .args(["-c", "import websockets"])
                    .output()
                    .is_ok_and(|o| o.status.success());
                (py, vec![script("py_ws_server.py")], ok)
            }
            PeerKind::Node => {
                let ok = peers.join("node/node_modules/ws").exists();
                (PathBuf::from("node"), vec![script("node_ws_server.js")], ok)
            }
        };
        if !installed {
            assert!(
                std::env::var_os("CI").is_none(),
                "the {kind:?} WebSocket peer is missing but CI is set: run scripts/peers"
            );
            eprintln!(
                "SKIPPED {kind:?} WebSocket interop: not installed (scripts/peers installs it)"
            );
            return None;
        }
        let leaf = ca.leaf_for(leaf);
        let dir = std::env::temp_dir().join(format!(
            "mpnet-wspeer-{}-{:?}-{}",
            std::process::id(),
            kind,
            unique()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("cert.pem"), leaf.cert_pem()).expect("cert");
        std::fs::write(dir.join("key.pem"), leaf.key_pem()).expect("key");
        let mut child = Command::new(program)
            .args(args)
            .arg("--cert")
            .arg(dir.join("cert.pem"))
            .arg("--key")
            .arg(dir.join("key.pem"))
            .args(["--port", "0", "--exit-on-eof"])
            .env("NODE_PATH", peers.join("node/node_modules"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the peer");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the peer's port line");
        let v: Value = serde_json::from_str(line.trim())
            .unwrap_or_else(|e| panic!("{kind:?} peer said {line:?}: {e}"));
        let port = v["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .expect("a port");
        Some(WsPeer { child, port, dir })
    }

    /// `wss://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("wss://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for WsPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn wait(log: &crate::socket::Log, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let end = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let l = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if pred(&l) || std::time::Instant::now() > end {
            return l;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn messages(l: &[Value]) -> Vec<&Value> {
    l.iter().filter(|v| v["event"] == "message").collect()
}

fn closed(l: &[Value]) -> bool {
    l.iter().any(|v| v["event"] == "close")
}

/// Runs the interop cases against both peers on `t`.
pub fn run_ws_interop<T: SocketTransport>(t: &T) {
    let ca = TestCa::new();
    let ctx = mpnet_core::AppContext::builder("2021000000000000", "1.0.0")
        .add_roots_pem(&ca.cert_pem())
        .expect("CA")
        .use_web_pki_roots(false)
        .allow_any_origin()
        .build()
        .expect("ctx");
    for kind in [PeerKind::Python, PeerKind::Node] {
        let Some(peer) = WsPeer::start(kind, &ca, LeafKind::Valid) else {
            continue;
        };
        let tag = format!("[{} vs {kind:?}]", t.name());

        // Echo of text (CJK and emoji) and binary.
        let log = new_log();
        let c = t.client(&ctx, log.clone());
        t.connect(&c, ConnectOptions::new(peer.url("/echo")))
            .unwrap_or_else(|e| panic!("{tag} connect: {e}"));
        t.send(&c, &SendOptions::text("中文 😀 echo"))
            .expect("send");
        t.send(&c, &SendOptions::base64("AP8BAgM=")).expect("send");
        let l = wait(&log, |l| messages(l).len() == 2);
        let m = messages(&l);
        assert_eq!(m.len(), 2, "{tag} echo: {l:?}");
        assert_eq!(
            (m[0]["data"].as_str(), m[0]["isBuffer"].as_bool()),
            (Some("中文 😀 echo"), Some(false)),
            "{tag}"
        );
        assert_eq!(
            (m[1]["data"].as_str(), m[1]["isBuffer"].as_bool()),
            (Some("AP8BAgM="), Some(true)),
            "{tag}"
        );
        t.close(&c, &CloseOptions::default()).expect("close");
        let l = wait(&log, closed);
        crate::socket::check_order(&l).unwrap_or_else(|e| panic!("{tag} {e}"));

        // Fragmented messages from the server, text and binary.
        for (path, want, is_buffer) in [
            ("/fragmented", "frag-1 中文 😀 end".to_string(), false),
            ("/fragmented?binary=1", base64_of_0_to_255(), true),
        ] {
            let log = new_log();
            let c = t.client(&ctx, log.clone());
            t.connect(&c, ConnectOptions::new(peer.url(path)))
                .unwrap_or_else(|e| panic!("{tag} {path}: {e}"));
            let l = wait(&log, |l| !messages(l).is_empty());
            let m = messages(&l);
            assert_eq!(
                m.first().and_then(|m| m["data"].as_str()),
                Some(want.as_str()),
                "{tag} {path}"
            );
            assert_eq!(m[0]["isBuffer"].as_bool(), Some(is_buffer), "{tag} {path}");
            let _ = t.close(&c, &CloseOptions::default());
            wait(&log, closed);
        }

        // Server-initiated close with code and reason.
        let log = new_log();
        let c = t.client(&ctx, log.clone());
        t.connect(
            &c,
            ConnectOptions::new(peer.url("/close?code=4001&reason=bye")),
        )
        .expect("connect");
        t.send(&c, &SendOptions::text("hi")).expect("send");
        let l = wait(&log, closed);
        let close = l
            .iter()
            .find(|v| v["event"] == "close")
            .unwrap_or_else(|| panic!("{tag} no close: {l:?}"));
        assert_eq!(
            (close["code"].as_u64(), close["reason"].as_str()),
            (Some(4001), Some("bye")),
            "{tag}"
        );
        crate::socket::check_order(&l).unwrap_or_else(|e| panic!("{tag} {e}"));

        // Pings are answered: the peer says so once our pong arrives.
        let log = new_log();
        let c = t.client(&ctx, log.clone());
        t.connect(&c, ConnectOptions::new(peer.url("/ping")))
            .expect("connect");
        let l = wait(&log, |l| !messages(l).is_empty());
        assert_eq!(
            messages(&l).first().and_then(|m| m["data"].as_str()),
            Some("pong:ping-1"),
            "{tag} ping"
        );
        let _ = t.close(&c, &CloseOptions::default());
        wait(&log, closed);

        // A 1 MiB message.
        let log = new_log();
        let c = t.client(&ctx, log.clone());
        t.connect(&c, ConnectOptions::new(peer.url("/big")))
            .expect("connect");
        let l = wait(&log, |l| !messages(l).is_empty());
        assert_eq!(
            messages(&l)
                .first()
                .and_then(|m| m["data"].as_str())
                .map(str::len),
            Some(1 << 20),
            "{tag} 1 MiB"
        );
        let _ = t.close(&c, &CloseOptions::default());
        wait(&log, closed);

        // A message over the limit: error 12, close 1009.
        let mut limits = Limits::default();
        limits.max_message_bytes = 64 * 1024;
        let small = mpnet_core::AppContext::builder("2021000000000000", "1.0.0")
            .add_roots_pem(&ca.cert_pem())
            .expect("CA")
            .use_web_pki_roots(false)
            .allow_any_origin()
            .limits(limits)
            .build()
            .expect("ctx");
        let log = new_log();
        let c = t.client(&small, log.clone());
        t.connect(&c, ConnectOptions::new(peer.url("/big")))
            .expect("connect");
        let l = wait(&log, closed);
        let err = l
            .iter()
            .find(|v| v["event"] == "error")
            .unwrap_or_else(|| panic!("{tag} no error: {l:?}"));
        assert_eq!(err["error"], 12, "{tag}");
        let close = l.iter().find(|v| v["event"] == "close").expect("close");
        assert_eq!(close["code"], 1009, "{tag}");

        // Handshake refused with 403: 8. No subprotocol chosen: 9.
        let c = t.client(&ctx, new_log());
        let e = t
            .connect(&c, ConnectOptions::new(peer.url("/forbidden")))
            .expect_err("403 must fail");
        assert_eq!(e.code(mpnet_core::Api::Socket), 8, "{tag} 403");
        let e = t
            .connect(
                &c,
                ConnectOptions::new(peer.url("/subprotocol")).protocol("chat"),
            )
            .expect_err("must fail");
        assert_eq!(e.code(mpnet_core::Api::Socket), 9, "{tag} subprotocol");
        // A protocol the peer does choose works.
        t.connect(&c, ConnectOptions::new(peer.url("/echo")).protocol("chat"))
            .unwrap_or_else(|e| panic!("{tag} chat: {e}"));
        let _ = t.close(&c, &CloseOptions::default());
        drop(peer);

        // An untrusted certificate: 7.
        let Some(untrusted) = WsPeer::start(kind, &ca, LeafKind::Untrusted) else {
            continue;
        };
        let c = t.client(&ctx, new_log());
        let e = t
            .connect(&c, ConnectOptions::new(untrusted.url("/echo")))
            .expect_err("untrusted must fail");
        assert_eq!(e.code(mpnet_core::Api::Socket), 7, "{tag} untrusted");
        println!("{tag} interop ok");
    }
}

fn base64_of_0_to_255() -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = (0..=255u8).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
