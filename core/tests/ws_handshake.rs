//! The opening handshake of `connectSocket` (SPEC §7): URL and policy codes,
//! the request bytes, and a table of responses.

use mpnet_core::ws::handshake::accept_key;
use mpnet_core::ws::{ClientHandshake, ConnectOptions};
use mpnet_core::{Api, AppContext};
use proptest::prelude::*;

const KEY: [u8; 16] = *b"the sample nonce";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn ctx() -> AppContext {
    AppContext::builder("2021000000000000", "1.0.0")
        .whitelist(["https://api.example.com", "https://*.chat.example"])
        .unwrap()
        .user_agent(None)
        .build()
        .unwrap()
}

fn loopback_ctx() -> AppContext {
    AppContext::builder("app", "1")
        .allow_any_origin()
        .allow_insecure_loopback(true)
        .build()
        .unwrap()
}

fn code(ctx: &AppContext, opts: &ConnectOptions) -> u32 {
    match ClientHandshake::new(ctx, opts, KEY) {
        Ok(hs) => panic!("{} was accepted", hs.target()),
        Err(e) => e.code(Api::Socket),
    }
}

#[test]
fn url_cases_give_spec_7_codes() {
    let ctx = ctx();
    let cases: &[(&str, u32)] = &[
        ("", 3),
        ("   ", 3),
        ("not a url", 4),
        ("wss://", 4),
        ("wss://user:pw@api.example.com/", 4),
        ("wss://api.example.com/a\nb", 4),
        ("wss://a..b/", 4),
        ("https://api.example.com/ws", 5),
        ("http://api.example.com/ws", 5),
        ("ftp://api.example.com/ws", 5),
        ("ws://api.example.com/ws", 8),
        ("ws://127.0.0.1:8080/ws", 8),
        ("wss://evil.example.com/ws", 13),
        ("wss://api.example.com:8443/ws", 13),
        ("wss://chat.example/ws", 13),
    ];
    for (url, want) in cases {
        assert_eq!(code(&ctx, &ConnectOptions::new(*url)), *want, "{url:?}");
    }
    for url in [
        "wss://api.example.com/ws",
        "wss://API.example.com./ws#frag",
        "wss://eu.chat.example/ws",
    ] {
        assert!(
            ClientHandshake::new(&ctx, &ConnectOptions::new(url), KEY).is_ok(),
            "{url}"
        );
    }
    // The development switch: ws:// to loopback only.
    let dev = loopback_ctx();
    assert!(ClientHandshake::new(&dev, &ConnectOptions::new("ws://127.0.0.1:9001/"), KEY).is_ok());
    assert!(ClientHandshake::new(&dev, &ConnectOptions::new("ws://localhost/"), KEY).is_ok());
    assert_eq!(code(&dev, &ConnectOptions::new("ws://example.com/")), 8);
}

#[test]
fn data_is_appended_as_a_query() {
    let ctx = ctx();
    let target = |opts: ConnectOptions| {
        ClientHandshake::new(&ctx, &opts, KEY)
            .unwrap()
            .target()
            .request_target()
    };
    let base = "wss://api.example.com/ws?v=1#top";
    assert_eq!(
        target(
            ConnectOptions::new(base)
                .data(serde_json::json!({"b": "x y", "1": 1.0, "a": [1, "é"]}))
        ),
        "/ws?v=1&1=1&b=x%20y&a=%5B1%2C%22%C3%A9%22%5D"
    );
    assert_eq!(
        target(ConnectOptions::new(base).text_data("k='v'")),
        "/ws?v=1&k='v'"
    );
    assert_eq!(target(ConnectOptions::new(base).text_data("")), "/ws?v=1");
    assert_eq!(
        target(ConnectOptions::new("wss://api.example.com/ws").data(serde_json::json!({}))),
        "/ws"
    );
    assert_eq!(
        code(&ctx, &ConnectOptions::new(base).data(serde_json::json!(5))),
        2
    );
    assert_eq!(code(&ctx, &ConnectOptions::new(base).text_data("%zz")), 4);
}

#[test]
fn bad_headers_and_protocols_are_error_2() {
    let ctx = ctx();
    let url = "wss://api.example.com/ws";
    assert_eq!(
        code(&ctx, &ConnectOptions::new(url).header("X-A", "1\r\nX-B: 2")),
        2
    );
    assert_eq!(code(&ctx, &ConnectOptions::new(url).header("X A", "1")), 2);
    for p in ["", "a b", "a,b", "chat\u{e9}", "a/b"] {
        assert_eq!(
            code(&ctx, &ConnectOptions::new(url).protocol(p)),
            2,
            "{p:?}"
        );
    }
}

/// The request's header lines as (lower-case name, value).
fn request_headers(request: &[u8]) -> (String, Vec<(String, String)>) {
    let mut slots = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut slots);
    let status = req.parse(request).unwrap();
    assert_eq!(status, httparse::Status::Complete(request.len()));
    assert_eq!(req.method, Some("GET"));
    assert_eq!(req.version, Some(1));
    let path = req.path.unwrap().to_string();
    let headers = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8(h.value.to_vec()).unwrap(),
            )
        })
        .collect();
    (path, headers)
}

#[test]
fn the_request_carries_the_library_headers_once() {
    let ctx = ctx();
    let opts = ConnectOptions::new("wss://api.example.com/chat")
        .header("Sec-WebSocket-Key", "evil")
        .header("sec-websocket-version", "8")
        .header("Sec-WebSocket-Extensions", "permessage-deflate")
        .header("Sec-WebSocket-Accept", "x")
        .header("Upgrade", "h2c")
        .header("Connection", "close")
        .header("Host", "evil.com")
        .header("REFERER", "https://evil")
        .header("Sec-WebSocket-Protocol", "chat, superchat")
        .header("X-Token", " abc ")
        .protocol("v2.chat")
        .protocol("chat");
    let hs = ClientHandshake::new(&ctx, &opts, KEY).unwrap();
    assert_eq!(hs.key(), "dGhlIHNhbXBsZSBub25jZQ==");
    assert_eq!(hs.protocols(), ["v2.chat", "chat", "superchat"]);
    let (path, headers) = request_headers(hs.request());
    assert_eq!(path, "/chat");
    let want = [
        ("host", "api.example.com"),
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
        ("sec-websocket-protocol", "v2.chat, chat, superchat"),
        ("x-token", "abc"),
        (
            "referer",
            "https://urlhost/2021000000000000/1.0.0/page-frame.html",
        ),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    assert_eq!(headers, want);
    assert!(hs
        .request()
        .starts_with(b"GET /chat HTTP/1.1\r\nHost: api.example.com\r\n"));
}

#[test]
fn no_protocols_no_protocol_header_and_non_default_port_in_host() {
    let hs = ClientHandshake::new(
        &loopback_ctx(),
        &ConnectOptions::new("ws://127.0.0.1:9001/"),
        [0; 16],
    )
    .unwrap();
    let (_, headers) = request_headers(hs.request());
    assert!(!headers.iter().any(|(n, _)| n == "sec-websocket-protocol"));
    assert_eq!(
        headers[0],
        ("host".to_string(), "127.0.0.1:9001".to_string())
    );
    assert_eq!(hs.key(), "AAAAAAAAAAAAAAAAAAAAAA==");
    assert_eq!(hs.timeout(), std::time::Duration::from_secs(30));
    assert_eq!(hs.timeout_error().code(Api::Socket), 6);
    assert_eq!(hs.eof_error().code(Api::Socket), 1);
}

fn handshake(protocols: &[&str]) -> ClientHandshake {
    let opts = ConnectOptions::new("wss://api.example.com/ws").protocols(protocols.iter().copied());
    ClientHandshake::new(&ctx(), &opts, KEY).unwrap()
}

fn response(status_line: &str, headers: &[&str]) -> Vec<u8> {
    let mut out = format!("{status_line}\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

const OK: &str = "HTTP/1.1 101 Switching Protocols";
const UP: &str = "Upgrade: websocket";
const CONN: &str = "Connection: Upgrade";

/// What a response gives: `Ok(protocol)` or the socket error code.
fn outcome(hs: &ClientHandshake, wire: &[u8]) -> Result<Option<String>, u32> {
    match hs.try_response(wire) {
        Ok((n, Some(accepted))) => {
            assert_eq!(n, wire.len());
            Ok(accepted.protocol)
        }
        Ok((_, None)) => panic!("incomplete: {}", String::from_utf8_lossy(wire)),
        Err(e) => Err(e.code(Api::Socket)),
    }
}

#[test]
fn response_table() {
    assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), ACCEPT);
    let accept = format!("Sec-WebSocket-Accept: {ACCEPT}");
    let a = accept.as_str();
    type Case<'a> = (
        &'a [&'a str],
        &'a str,
        Vec<&'a str>,
        Result<Option<&'a str>, u32>,
    );
    let cases: Vec<Case> = vec![
        (&[], OK, vec![UP, CONN, a], Ok(None)),
        (
            &[],
            "HTTP/1.1 101 OK",
            vec!["upgrade: WebSocket", "connection: keep-alive, upgrade", a],
            Ok(None),
        ),
        (
            &[],
            "HTTP/1.1 101",
            vec![
                UP,
                CONN,
                "Sec-WebSocket-Accept:   s3pPLMBiTxaQ9kYGzzhZRbK+xOo=  ",
            ],
            Ok(None),
        ),
        (&[], "HTTP/1.1 200 OK", vec![UP, CONN, a], Err(8)),
        (
            &[],
            "HTTP/1.1 404 Not Found",
            vec!["Content-Length: 0"],
            Err(8),
        ),
        (
            &[],
            "HTTP/1.0 101 Switching Protocols",
            vec![UP, CONN, a],
            Err(8),
        ),
        (&[], OK, vec![CONN, a], Err(8)),
        (&[], OK, vec!["Upgrade: h2c", CONN, a], Err(8)),
        (&[], OK, vec![UP, a], Err(8)),
        (&[], OK, vec![UP, "Connection: keep-alive", a], Err(8)),
        (&[], OK, vec![UP, CONN], Err(8)),
        (
            &[],
            OK,
            vec![UP, CONN, "Sec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ=="],
            Err(8),
        ),
        (&[], OK, vec![UP, CONN, a, a], Err(8)),
        (
            &[],
            OK,
            vec![UP, CONN, a, "Sec-WebSocket-Extensions: permessage-deflate"],
            Err(8),
        ),
        (
            &[],
            OK,
            vec![UP, CONN, a, "Sec-WebSocket-Protocol: chat"],
            Err(8),
        ),
        (&["chat", "superchat"], OK, vec![UP, CONN, a], Err(9)),
        (
            &["chat", "superchat"],
            OK,
            vec![UP, CONN, a, "Sec-WebSocket-Protocol: superchat"],
            Ok(Some("superchat")),
        ),
        (
            &["chat", "superchat"],
            OK,
            vec![UP, CONN, a, "Sec-WebSocket-Protocol: Chat"],
            Err(8),
        ),
        (
            &["chat", "superchat"],
            OK,
            vec![UP, CONN, a, "Sec-WebSocket-Protocol: other"],
            Err(8),
        ),
        (
            &["chat", "superchat"],
            OK,
            vec![UP, CONN, a, "Sec-WebSocket-Protocol: chat, superchat"],
            Err(8),
        ),
        (&["chat"], "HTTP/1.1 400 Bad Request", vec![], Err(8)),
        (&[], "HTTP/1.1 abc", vec![UP], Err(8)),
        (&[], "ICY 200 OK", vec![], Err(8)),
        (&[], OK, vec!["Bad Header Name: x"], Err(8)),
    ];
    for (protocols, status, headers, want) in cases {
        let hs = handshake(protocols);
        let wire = response(status, &headers);
        let want = want.map(|p| p.map(str::to_string));
        assert_eq!(
            outcome(&hs, &wire),
            want,
            "{}",
            String::from_utf8_lossy(&wire)
        );
    }
}

#[test]
fn the_status_is_in_the_message() {
    let hs = handshake(&[]);
    let err = hs
        .try_response(&response("HTTP/1.1 403 Forbidden", &[]))
        .unwrap_err();
    assert!(err.message().contains("403"), "{}", err.message());
}

#[test]
fn an_oversized_head_is_error_8() {
    let hs = handshake(&[]);
    let mut wire = response(OK, &[UP, CONN]);
    wire.truncate(wire.len() - 2);
    while wire.len() < 70 * 1024 {
        wire.extend_from_slice(
            b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        );
    }
    let err = hs.try_response(&wire).unwrap_err();
    assert_eq!(err.code(Api::Socket), 8);
}

proptest! {
    /// The response split anywhere: need-more until the head is complete,
    /// then the same answer; bytes after the head are left for the frames.
    #[test]
    fn response_split_anywhere(cut in 0usize..400, extra in proptest::collection::vec(any::<u8>(), 0..20)) {
        let hs = handshake(&["chat"]);
        let accept = format!("Sec-WebSocket-Accept: {ACCEPT}");
        let head = response(OK, &[UP, CONN, &accept, "Sec-WebSocket-Protocol: chat"]);
        let mut wire = head.clone();
        wire.extend_from_slice(&extra);
        let cut = cut % (wire.len() + 1);
        let first = hs.try_response(&wire[..cut]).unwrap();
        if cut < head.len() {
            prop_assert_eq!(first, (0, None));
        }
        let (n, accepted) = hs.try_response(&wire).unwrap();
        prop_assert_eq!(n, head.len());
        prop_assert_eq!(accepted.unwrap().protocol, Some("chat".to_string()));
        prop_assert_eq!(&wire[n..], &extra[..]);
    }
}

proptest! {
    /// The response fed in pieces through `try_response_growing`, as a
    /// transport appends reads: the same answer as all at once, however
    /// it is cut (one byte at a time included).
    #[test]
    fn a_growing_response_gives_the_same_answer(
        cuts in proptest::collection::vec(1usize..40, 1..60),
        extra in proptest::collection::vec(any::<u8>(), 0..20),
    ) {
        let hs = handshake(&["chat"]);
        let accept = format!("Sec-WebSocket-Accept: {ACCEPT}");
        let head = response(OK, &[UP, CONN, &accept, "Sec-WebSocket-Protocol: chat"]);
        let mut wire = head.clone();
        wire.extend_from_slice(&extra);
        let (mut input, mut checked, mut at) = (Vec::new(), 0, 0);
        let mut cuts = cuts.into_iter().cycle();
        let (n, accepted) = loop {
            let step = cuts.next().unwrap_or(1);
            let end = (at + step).min(wire.len());
            input.extend_from_slice(&wire[at..end]);
            at = end;
            let (n, accepted) = hs.try_response_growing(&input, &mut checked).unwrap();
            if accepted.is_some() {
                break (n, accepted);
            }
            prop_assert!(at < wire.len() || input.len() < head.len(), "complete but not seen");
        };
        prop_assert_eq!(n, head.len());
        prop_assert_eq!(accepted.unwrap().protocol, Some("chat".to_string()));
    }
}

#[test]
fn a_growing_response_still_fails_a_bad_status_line_at_once_and_a_bad_head_at_its_end() {
    let hs = handshake(&[]);
    let mut checked = 0;
    assert!(hs
        .try_response_growing(b"HTTP/1.1 x\r\n", &mut checked)
        .is_err());
    let mut checked = 0;
    let mut input = b"HTTP/1.1 101 Switching Protocols\r\n".to_vec();
    assert_eq!(
        hs.try_response_growing(&input, &mut checked).unwrap(),
        (0, None)
    );
    input.extend_from_slice(b"bad header line\r\n");
    assert_eq!(
        hs.try_response_growing(&input, &mut checked).unwrap(),
        (0, None),
        "not parsed again before the head may end"
    );
    input.extend_from_slice(b"\r\n");
    assert!(hs.try_response_growing(&input, &mut checked).is_err());
}

#[test]
fn connect_io_errors_give_spec_7_codes() {
    use std::io::{Error as IoError, ErrorKind as IoKind};
    let hs = handshake(&[]);
    let code = |e: IoError| hs.io_error(&e, "reading the handshake").code(Api::Socket);
    // A socket call that timed out is the connect deadline.
    assert_eq!(code(IoError::from(IoKind::TimedOut)), 6);
    assert_eq!(code(IoError::from(IoKind::WouldBlock)), 6);
    // A certificate that is not valid is 7; any other TLS failure is 1.
    let cert = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
    assert_eq!(code(IoError::new(IoKind::InvalidData, cert)), 7);
    assert_eq!(
        code(IoError::new(
            IoKind::InvalidData,
            rustls::Error::DecryptError
        )),
        1
    );
    let reset = hs.io_error(
        &IoError::from(IoKind::ConnectionReset),
        "reading the handshake",
    );
    assert_eq!(reset.code(Api::Socket), 1);
    assert!(
        reset.message().starts_with("reading the handshake: "),
        "{}",
        reset.message()
    );
}
