//! Helpers shared by the test kit's own tests: a ureq agent that trusts the
//! test CA, and a raw blocking HTTP/1.1 client.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use mpnet_testkit::TestCa;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// A ureq agent trusting only `ca`, returning 4xx/5xx as responses and not
/// following redirects.
pub fn agent(ca: &TestCa) -> ureq::Agent {
    agent_with(ca, None)
}

/// As [`agent`], through `proxy` when given.
pub fn agent_with(ca: &TestCa, proxy: Option<&str>) -> ureq::Agent {
    let cert = Certificate::from_der(&ca.cert_der()).to_owned();
    ureq::Agent::config_builder()
        .tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::new_with_certs(&[cert]))
                .build(),
        )
        .proxy(proxy.map(|p| ureq::Proxy::new(p).expect("proxy url")))
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

/// Reads a whole response body (up to 64 MiB).
pub fn body(resp: &mut ureq::http::Response<ureq::Body>) -> Vec<u8> {
    resp.body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .expect("read body")
}

/// Reads a response body as JSON.
pub fn json(resp: &mut ureq::http::Response<ureq::Body>) -> serde_json::Value {
    serde_json::from_slice(&body(resp)).expect("JSON body")
}

/// Sends `request` over a new plain TCP connection to `port` and returns
/// everything read until the server closes (or 5 s pass).
pub fn raw_exchange(port: u16, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// The same over TLS, trusting `ca`, with SNI `localhost`.
pub fn raw_tls_exchange(ca: &TestCa, port: u16, request: &[u8]) -> Vec<u8> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::clone(&ca.client_config()), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    out
}

/// Splits a raw response into (head as text, body bytes).
pub fn split_response(raw: &[u8]) -> (String, Vec<u8>) {
    let i = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    (
        String::from_utf8_lossy(&raw[..i]).into_owned(),
        raw[i + 4..].to_vec(),
    )
}
