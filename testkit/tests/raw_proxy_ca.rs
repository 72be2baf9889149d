//! The test CA, the scripted raw server and the CONNECT proxy.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{agent_with, json, raw_exchange, raw_tls_exchange};
use mpnet_testkit::{
    refused_port, HttpsServer, ProxyMode, ProxyServer, RawServer, Step, TestCa, LOOPBACK_NAMES,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls_pki_types::{ServerName, UnixTime};

#[test]
fn ca_verifies_its_leaf_and_rejects_the_bad_ones() {
    let ca = TestCa::new();
    let verifier = WebPkiServerVerifier::builder_with_provider(
        ca.root_store().into(),
        mpnet_testkit::crypto_provider(),
    )
    .build()
    .unwrap();
    let now = UnixTime::now();
    let check = |leaf: &mpnet_testkit::Leaf, host: &str| {
        let name = ServerName::try_from(host.to_owned()).unwrap();
        verifier.verify_server_cert(&leaf.cert_der(), &[], &name, &[], now)
    };
    for host in LOOPBACK_NAMES {
        check(&ca.leaf(), host).unwrap();
    }
    assert_eq!(ca.leaf().cert_der(), ca.leaf().cert_der(), "leaf is cached");
    assert!(check(&ca.leaf(), "example.com").is_err());
    assert!(check(&ca.wrong_host_leaf(), "localhost").is_err());
    check(&ca.wrong_host_leaf(), "wrong.example").unwrap();
    let expired = check(&ca.expired_leaf(), "localhost").unwrap_err();
    assert!(format!("{expired:?}").contains("Expired"), "{expired:?}");
    assert!(check(&ca.untrusted_leaf(), "localhost").is_err());
    // The untrusted CA trusts its own leaf.
    let other = ca.untrusted_ca();
    let v2 = WebPkiServerVerifier::builder_with_provider(
        other.root_store().into(),
        mpnet_testkit::crypto_provider(),
    )
    .build()
    .unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    v2.verify_server_cert(&ca.untrusted_leaf().cert_der(), &[], &name, &[], now)
        .unwrap();

    // PEM, DER and the file agree.
    let pem = ca.cert_pem();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let dir = std::env::temp_dir().join(format!("mpnet-testkit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ca.pem");
    ca.write_pem(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), pem);
    let cert = ureq::tls::Certificate::from_pem(pem.as_bytes()).unwrap();
    assert_eq!(cert.der(), ca.cert_der().as_ref());
    std::fs::remove_dir_all(&dir).unwrap();
    // Another CA is another key.
    assert_ne!(TestCa::new().cert_der(), ca.cert_der());
}

#[test]
fn raw_server_sends_exactly_the_script() {
    let reply: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello";
    let s = RawServer::start(vec![Step::read_head(), Step::write(reply), Step::Close]);
    let request = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(raw_exchange(s.port(), request), reply);
    assert_eq!(s.received(0).unwrap(), request);
    assert_eq!(s.connections_accepted(), 1);
    assert!(s.url("/x").starts_with("http://127.0.0.1:"));
}

#[test]
fn raw_server_reads_whole_requests_and_runs_per_connection_scripts() {
    let s = RawServer::builder()
        .per_connection(vec![
            vec![
                Step::read_request(),
                Step::write("A1"),
                Step::read_request(),
                Step::write("A2"),
            ],
            vec![Step::read_bytes(3), Step::write("B"), Step::Reset],
        ])
        .start();
    let two = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
                GET / HTTP/1.1\r\nContent-Length: 2\r\n\r\nxy";
    assert_eq!(raw_exchange(s.port(), two), b"A1A2");
    assert_eq!(s.received(0).unwrap(), two);
    // Connection 2 and later run the second script.
    for _ in 0..2 {
        let mut c = TcpStream::connect(("127.0.0.1", s.port())).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"abc").unwrap();
        let mut buf = [0u8; 1];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"B");
        let mut rest = Vec::new();
        let r = c.read_to_end(&mut rest);
        assert!(
            matches!(&r, Err(e) if e.kind() == ErrorKind::ConnectionReset) || rest.is_empty(),
            "{r:?}"
        );
    }
    assert_eq!(s.connections_accepted(), 3);
}

#[test]
fn raw_server_over_tls_with_sleep_and_hang() {
    let ca = TestCa::new();
    let s = RawServer::start_tls(
        ca.leaf(),
        vec![
            Step::read_head(),
            Step::write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n"),
            Step::sleep_ms(50),
            Step::Close,
        ],
    );
    assert!(s.url("").starts_with("https://"));
    let out = raw_tls_exchange(&ca, s.port(), b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(
        out,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n"
    );

    let mut hang = RawServer::start(vec![Step::read_head(), Step::Hang]);
    let mut c = TcpStream::connect(("127.0.0.1", hang.port())).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    c.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 16];
    let e = c.read(&mut buf).unwrap_err();
    assert!(matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut
    ));
    assert_eq!(hang.connections_finished(), 0);
    // Shutdown closes the hanging connection.
    let t = Instant::now();
    hang.shutdown();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let r = c.read(&mut buf);
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[test]
fn refused_port_refuses() {
    let port = refused_port();
    let e = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn proxy_tunnels_to_loopback() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    let proxy = ProxyServer::start(ProxyMode::Tunnel);
    let a = agent_with(&ca, Some(&proxy.url()));
    for _ in 0..2 {
        let mut r = a.get(&server.url("/get?via=proxy")).call().unwrap();
        assert_eq!(json(&mut r)["args"]["via"], "proxy");
    }
    assert!(proxy.connect_requests() >= 1);
    assert_eq!(
        proxy.connect_targets()[0],
        format!("127.0.0.1:{}", server.port())
    );
    assert!(proxy.request_heads()[0].starts_with("CONNECT 127.0.0.1:"));

    // Non-loopback targets are refused without any outside traffic.
    let out = raw_exchange(
        proxy.port(),
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    );
    assert!(out.starts_with(b"HTTP/1.1 403"));
    // A refused target gives 502.
    let req = format!(
        "CONNECT 127.0.0.1:{0} HTTP/1.1\r\nHost: 127.0.0.1:{0}\r\n\r\n",
        refused_port()
    );
    assert!(raw_exchange(proxy.port(), req.as_bytes()).starts_with(b"HTTP/1.1 502"));
    // Not CONNECT: 405; garbage: 400.
    let out = raw_exchange(proxy.port(), b"GET http://127.0.0.1/ HTTP/1.1\r\n\r\n");
    assert!(out.starts_with(b"HTTP/1.1 405"));
    let out = raw_exchange(proxy.port(), b"CONNECT\r\n\r\n");
    assert!(out.starts_with(b"HTTP/1.1 400"));
}

#[test]
fn proxy_denies() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    for (mode, status) in [(ProxyMode::Deny407, "407"), (ProxyMode::Deny403, "403")] {
        let proxy = ProxyServer::start(mode);
        let req = format!(
            "CONNECT 127.0.0.1:{0} HTTP/1.1\r\nHost: 127.0.0.1:{0}\r\n\r\n",
            server.port()
        );
        let out = String::from_utf8(raw_exchange(proxy.port(), req.as_bytes())).unwrap();
        assert!(out.starts_with(&format!("HTTP/1.1 {status}")), "{out}");
        if mode == ProxyMode::Deny407 {
            assert!(out.contains("Proxy-Authenticate: Basic"));
        }
        assert!(agent_with(&ca, Some(&proxy.url()))
            .get(&server.url("/get"))
            .call()
            .is_err());
        assert!(proxy.connect_requests() >= 2);
    }
    assert_eq!(server.connections_accepted(), 0);
}
