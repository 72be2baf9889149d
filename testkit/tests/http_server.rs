//! The httpbin-like server, checked with ureq and raw sockets.

mod common;

use std::io::Read;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{agent, body, json, raw_exchange, raw_tls_exchange, split_response};
use mpnet_testkit::{
    download_content, pseudo_random_bytes, HttpServer, HttpsServer, LeafKind, TestCa, DEFAULT_SEED,
};
use serde_json::json;
use sha2::{Digest, Sha256};

/// One CA and one HTTPS server shared by the read-only tests.
fn shared() -> &'static (TestCa, HttpsServer) {
    static S: OnceLock<(TestCa, HttpsServer)> = OnceLock::new();
    S.get_or_init(|| {
        let ca = TestCa::new();
        let server = HttpsServer::start(&ca);
        (ca, server)
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn get_echoes_args_headers_url_origin() {
    let (ca, s) = shared();
    let url = s.url("/get?a=1&a=2&b=x%20y");
    assert!(url.starts_with("https://127.0.0.1:"));
    let mut r = agent(ca)
        .get(&url)
        .header("X-Custom-Header", "Yes")
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v = json(&mut r);
    assert_eq!(v["args"], json!({"a": ["1", "2"], "b": "x y"}));
    // ureq sends names lower-cased (the http crate's HeaderMap); the server
    // echoes them as received.
    assert_eq!(v["headers"]["x-custom-header"], "Yes");
    assert_eq!(v["origin"], "127.0.0.1");
    assert_eq!(v["url"], url);
    // Only GET.
    let r = agent(ca).post(&s.url("get")).send("x").unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET");
}

#[test]
fn methods_echo_bodies() {
    let (ca, s) = shared();
    let a = agent(ca);
    let mut r = a
        .post(&s.url("/post?q=1"))
        .header("Content-Type", "application/json")
        .send(r#"{"k":[1,2]}"#)
        .unwrap();
    let v = json(&mut r);
    assert_eq!(v["data"], r#"{"k":[1,2]}"#);
    assert_eq!(v["json"], json!({"k": [1, 2]}));
    assert_eq!(v["args"], json!({"q": "1"}));

    let mut r = a
        .put(&s.url("/put"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send("a=1&b=%E4%B8%AD&a=3")
        .unwrap();
    let v = json(&mut r);
    assert_eq!(v["form"], json!({"a": ["1", "3"], "b": "中"}));
    assert_eq!(v["data"], "");

    let mut r = a.delete(&s.url("/delete")).call().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json(&mut r)["data"], "");
    assert_eq!(a.get(&s.url("/post")).call().unwrap().status(), 405);
    assert_eq!(a.get(&s.url("/put")).call().unwrap().status(), 405);
    assert_eq!(a.get(&s.url("/delete")).call().unwrap().status(), 405);

    let mut r = a
        .put(&s.url("/anything/x?z=9"))
        .send(&[0xff, 0x00][..])
        .unwrap();
    let v = json(&mut r);
    assert_eq!(v["method"], "PUT");
    assert_eq!(v["data"], "data:application/octet-stream;base64,/wA=");
    assert_eq!(v["json"], serde_json::Value::Null);
}

#[test]
fn status_codes() {
    let (ca, s) = shared();
    let a = agent(ca);
    for code in [200u16, 204, 404, 429, 500, 503] {
        let mut r = a.get(&s.url(&format!("/status/{code}"))).call().unwrap();
        assert_eq!(r.status().as_u16(), code);
        assert!(body(&mut r).is_empty());
    }
    for code in [301u16, 302, 303, 307, 308] {
        let r = a.get(&s.url(&format!("/status/{code}"))).call().unwrap();
        assert_eq!(r.status().as_u16(), code);
        assert_eq!(r.headers()["location"], "/get");
    }
    for bad in [
        "/status/99",
        "/status/600",
        "/status/x",
        "/bytes/x",
        "/delay/-1",
    ] {
        assert_eq!(a.get(&s.url(bad)).call().unwrap().status(), 400, "{bad}");
    }
    assert_eq!(a.get(&s.url("/nope")).call().unwrap().status(), 404);
}

#[test]
fn delay_waits() {
    let (ca, s) = shared();
    let t = Instant::now();
    let r = agent(ca).get(&s.url("/delay/0.3")).call().unwrap();
    assert_eq!(r.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
}

#[test]
fn bytes_are_deterministic() {
    let (ca, s) = shared();
    let a = agent(ca);
    let mut r = a.get(&s.url("/bytes/100000?seed=5")).call().unwrap();
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.headers()["content-length"], "100000");
    assert_eq!(body(&mut r), pseudo_random_bytes(5, 100_000));

    let mut r = a.get(&s.url("/stream-bytes/30000")).call().unwrap();
    assert!(r.headers().get("content-length").is_none());
    assert_eq!(r.headers()["transfer-encoding"], "chunked");
    assert_eq!(body(&mut r), pseudo_random_bytes(DEFAULT_SEED, 30_000));
}

#[test]
fn redirects() {
    let (ca, s) = shared();
    let a = agent(ca);
    let r = a.get(&s.url("/redirect/3")).call().unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/redirect/2");
    let r = a.get(&s.url("/redirect/1")).call().unwrap();
    assert_eq!(r.headers()["location"], "/get");
    let r = a.get(&s.url("/absolute-redirect/2")).call().unwrap();
    assert_eq!(r.headers()["location"], s.url("/absolute-redirect/1"));
    let r = a.get(&s.url("/absolute-redirect/1")).call().unwrap();
    assert_eq!(r.headers()["location"], s.url("/get"));
    let r = a
        .post(&s.url("/redirect-to?url=https%3A%2F%2Fexample.com%2Fx&status_code=307"))
        .send("")
        .unwrap();
    assert_eq!(r.status(), 307);
    assert_eq!(r.headers()["location"], "https://example.com/x");
    let r = a.get(&s.url("/redirect-to?url=/get")).call().unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(a.get(&s.url("/redirect-to")).call().unwrap().status(), 400);
    // A real client following them ends at /get.
    let follow = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[
                    ureq::tls::Certificate::from_der(&ca.cert_der()).to_owned(),
                ]))
                .build(),
        )
        .build()
        .new_agent();
    let mut r = follow.get(&s.url("/redirect/4")).call().unwrap();
    assert_eq!(json(&mut r)["url"], s.url("/get"));
}

#[test]
fn gzip_and_deflate() {
    let (ca, s) = shared();
    let a = agent(ca);
    let mut r = a.get(&s.url("/gzip")).call().unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let raw = body(&mut r);
    let mut text = String::new();
    flate2::read::GzDecoder::new(&raw[..])
        .read_to_string(&mut text)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["gzipped"], true);

    let mut r = a.get(&s.url("/deflate")).call().unwrap();
    assert_eq!(r.headers()["content-encoding"], "deflate");
    let raw = body(&mut r);
    let mut text = String::new();
    flate2::read::ZlibDecoder::new(&raw[..])
        .read_to_string(&mut text)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["deflated"], true);
}

#[test]
fn response_headers_and_static_pages() {
    let (ca, s) = shared();
    let a = agent(ca);
    let mut r = a
        .get(&s.url("/response-headers?X-Rep=1&X-Rep=2&Set-Cookie=a%3Db"))
        .call()
        .unwrap();
    let reps: Vec<_> = r.headers().get_all("x-rep").iter().collect();
    assert_eq!(reps, ["1", "2"]);
    assert_eq!(r.headers()["set-cookie"], "a=b");
    let v = json(&mut r);
    assert_eq!(v["X-Rep"], json!(["1", "2"]));
    assert_eq!(
        a.get(&s.url("/response-headers?bad%20name=1"))
            .call()
            .unwrap()
            .status(),
        400
    );

    let mut r = a.get(&s.url("/html")).call().unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(String::from_utf8(body(&mut r))
        .unwrap()
        .contains("Moby-Dick"));
    let mut r = a.get(&s.url("/json")).call().unwrap();
    assert_eq!(json(&mut r)["slideshow"]["title"], "Sample Slide Show");
    let mut r = a.get(&s.url("/encoding/utf8")).call().unwrap();
    assert!(String::from_utf8(body(&mut r)).unwrap().contains("中文"));
    let mut r = a.get(&s.url("/invalid-utf8")).call().unwrap();
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert!(String::from_utf8(body(&mut r)).is_err());

    let mut r = a
        .get(&s.url("/cookies"))
        .header("Cookie", "a=1; b=two")
        .call()
        .unwrap();
    assert_eq!(json(&mut r), json!({"cookies": {"a": "1", "b": "two"}}));
    let r = a.get(&s.url("/cookies/set?k=v")).call().unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["set-cookie"], "k=v; Path=/");
}

#[test]
fn headers_keep_their_spelling_and_order() {
    let server = HttpServer::start();
    let raw = raw_exchange(
        server.port(),
        b"GET /headers HTTP/1.1\r\nHost: h.test\r\nX-MiXeD-CaSe: 1\r\nx-rep: a\r\nX-Rep: b\r\nConnection: close\r\n\r\n",
    );
    let (head, body) = split_response(&raw);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let names: Vec<&String> = v["headers"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["Host", "X-MiXeD-CaSe", "x-rep", "Connection"]);
    assert_eq!(v["headers"]["x-rep"], "a, b");
}

#[test]
fn keep_alive_reuses_one_connection() {
    let ca = TestCa::new();
    let s = HttpsServer::start(&ca);
    let a = agent(&ca);
    for i in 0..3 {
        let mut r = a.get(&s.url(&format!("/get?i={i}"))).call().unwrap();
        assert_eq!(json(&mut r)["args"]["i"], i.to_string());
    }
    assert_eq!(s.connections_accepted(), 1);
    assert_eq!(s.requests_served(), 3);
    // A second agent opens a second connection.
    agent(&ca).get(&s.url("/get")).call().unwrap();
    assert_eq!(s.connections_accepted(), 2);
}

fn multipart(boundary: &str, fields: &[(&str, &str)], file: (&str, &str, &str, &[u8])) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in fields {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    let (name, filename, ctype, content) = file;
    b.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {ctype}\r\n\r\n"
        )
        .as_bytes(),
    );
    b.extend_from_slice(content);
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    b
}

#[test]
fn upload_reports_form_and_file_digest() {
    let (ca, s) = shared();
    let content = pseudo_random_bytes(9, 3 * 1024 * 1024 + 7);
    let boundary = "----mpnetBoundary7MA4YWxkTrZu0gW";
    let body_bytes = multipart(
        boundary,
        &[("user", "test"), ("n", "1"), ("n", "2")],
        ("file", "photo.png", "image/png", &content),
    );
    let len = body_bytes.len();
    let mut r = agent(ca)
        .post(&s.url("/upload"))
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .send(&body_bytes[..])
        .unwrap();
    assert_eq!(r.status(), 200);
    let v = json(&mut r);
    assert_eq!(v["form"], json!({"user": "test", "n": ["1", "2"]}));
    assert_eq!(
        v["files"]["file"],
        json!({
            "filename": "photo.png",
            "contentType": "image/png",
            "size": content.len(),
            "sha256": hex(&Sha256::digest(&content)),
        })
    );
    assert_eq!(v["contentLength"], len);

    // Streamed with chunked transfer coding: same answer.
    let mut reader = &body_bytes[..];
    let mut r = agent(ca)
        .post(&s.url("/upload"))
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .send(ureq::SendBody::from_reader(&mut reader))
        .unwrap();
    let v = json(&mut r);
    assert_eq!(v["files"]["file"]["size"], content.len());
    assert_eq!(v["contentLength"], serde_json::Value::Null);

    // Not multipart, or broken multipart: 400. Wrong method: 405.
    let a = agent(ca);
    let r = a.post(&s.url("/upload")).send("x").unwrap();
    assert_eq!(r.status(), 400);
    let r = a
        .post(&s.url("/upload"))
        .header("Content-Type", "multipart/form-data; boundary=zz")
        .send("--zz\r\nbroken")
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(a.get(&s.url("/upload")).call().unwrap().status(), 405);
}

#[test]
fn post_multipart_echoes_like_httpbin() {
    let (ca, s) = shared();
    let boundary = "b0undary";
    let body_bytes = multipart(
        boundary,
        &[("a", "1")],
        ("f", "a.txt", "text/plain", b"hello"),
    );
    let mut r = agent(ca)
        .post(&s.url("/post"))
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .send(&body_bytes[..])
        .unwrap();
    let v = json(&mut r);
    assert_eq!(v["form"], json!({"a": "1"}));
    assert_eq!(v["files"], json!({"f": "hello"}));
}

#[test]
fn downloads() {
    let (ca, s) = shared();
    let a = agent(ca);
    let mut r = a
        .get(&s.url("/download/photo.png?size=5000"))
        .call()
        .unwrap();
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.headers()["content-length"], "5000");
    assert_eq!(body(&mut r), download_content("photo.png", 5000));

    let mut r = a.get(&s.url("/download/notes.txt")).call().unwrap();
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    let text = body(&mut r);
    assert_eq!(text.len(), 10 * 1024);
    assert!(text.starts_with(b"mpnet-testkit download notes.txt\n"));

    let mut r = a
        .get(&s.url("/download/a%20b.bin?size=70000&chunked=1&type=video/mp4"))
        .call()
        .unwrap();
    assert!(r.headers().get("content-length").is_none());
    assert_eq!(r.headers()["content-type"], "video/mp4");
    assert_eq!(body(&mut r), download_content("a b.bin", 70000));

    let t = Instant::now();
    let mut r = a
        .get(&s.url("/download/x.bin?size=300&chunk_size=100&chunk_delay_ms=100"))
        .call()
        .unwrap();
    assert_eq!(body(&mut r).len(), 300);
    assert!(t.elapsed() >= Duration::from_millis(200));
}

#[test]
fn drop_mid_body_closes_short() {
    let ca = TestCa::new();
    let s = HttpsServer::start(&ca);
    let raw = raw_tls_exchange(
        &ca,
        s.port(),
        b"GET /drop-mid-body HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    let (head, body) = split_response(&raw);
    assert!(head.contains("content-length: 1000"), "{head}");
    assert_eq!(body.len(), 100);
}

#[test]
fn bad_requests_get_400_and_the_server_survives() {
    let server = HttpServer::start();
    let raw = raw_exchange(server.port(), b"GET /get HTTP/1.1\r\nBad Header\r\n\r\n");
    assert!(
        raw.starts_with(b"HTTP/1.1 400"),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
    let raw = raw_exchange(server.port(), b"\x16\x03\x01garbage\r\n\r\n");
    assert!(raw.is_empty() || raw.starts_with(b"HTTP/1.1 400"));
    let raw = raw_exchange(
        server.port(),
        b"GET /get?x=%zz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    let (head, body) = split_response(&raw);
    assert!(head.starts_with("HTTP/1.1 200"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["args"]["x"], "%zz");
}

#[test]
fn plain_http_server_and_shutdown() {
    let mut server = HttpServer::start();
    let url = server.url("get");
    assert!(url.starts_with("http://127.0.0.1:"));
    let mut r = ureq::get(&url).call().unwrap();
    assert_eq!(json(&mut r)["url"], url);
    let port = server.port();
    server.shutdown();
    server.shutdown();
    let err = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn bad_leaves_fail_verification() {
    let ca = TestCa::new();
    for kind in [LeafKind::Expired, LeafKind::WrongHost, LeafKind::Untrusted] {
        let s = HttpsServer::start_with(&ca, kind);
        let err = agent(&ca).get(&s.url("/get")).call().unwrap_err();
        assert!(
            matches!(err, ureq::Error::Rustls(_) | ureq::Error::Io(_)),
            "{kind:?}: {err}"
        );
        assert_eq!(s.requests_served(), 0);
    }
    // The valid one works by name too.
    let s = HttpsServer::start(&ca);
    let r = agent(&ca).get(&s.localhost_url("/get")).call().unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn serve_entry_points() {
    let ca = TestCa::new();
    let s = mpnet_testkit::serve_https(0, &ca).unwrap();
    assert_eq!(s.ca().cert_der(), ca.cert_der());
    // The port is taken now: binding it again fails.
    assert!(mpnet_testkit::serve_https(s.port(), &ca).is_err());
    let h = mpnet_testkit::serve_http(0).unwrap();
    assert_ne!(h.port(), s.port());
}
