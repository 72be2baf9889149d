//! The WebSocket endpoints (`/ws`, `/ws/close`) of the test server, checked
//! with a tokio-tungstenite client over rustls trusting the kit's CA.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use mpnet_testkit::{HttpServer, HttpsServer, TestCa, MAX_WS_MESSAGE};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::Response;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::WebSocketStream;

/// One CA and one HTTPS server shared by the tests.
fn shared() -> &'static (TestCa, HttpsServer) {
    static S: OnceLock<(TestCa, HttpsServer)> = OnceLock::new();
    S.get_or_init(|| {
        let ca = TestCa::new();
        let server = HttpsServer::start(&ca);
        (ca, server)
    })
}

/// The client's settings: frames as large as the server's, so a message
/// over 16 MiB comes back as one frame.
fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_WS_MESSAGE))
        .max_frame_size(Some(MAX_WS_MESSAGE))
}

type Ws<S> = WebSocketStream<S>;

/// Connects to `url` (`wss://127.0.0.1:PORT/...`) trusting only `ca`,
/// offering `protocols` when given.
async fn connect_wss(
    ca: &TestCa,
    url: &str,
    protocols: Option<&str>,
) -> (
    Ws<tokio_rustls::client::TlsStream<TcpStream>>,
    Response<Option<Vec<u8>>>,
) {
    let mut req = url.into_client_request().expect("request");
    if let Some(p) = protocols {
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().unwrap());
    }
    let host = req.uri().host().expect("host").to_owned();
    let port = req.uri().port_u16().expect("port");
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.expect("tcp");
    let name = ServerName::try_from(host).expect("server name");
    let tls = TlsConnector::from(ca.client_config())
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the kit's CA");
    tokio_tungstenite::client_async_with_config(req, tls, Some(client_config()))
        .await
        .expect("WebSocket handshake")
}

/// Connects to a plain `ws://127.0.0.1:PORT/...` URL.
async fn connect_ws(url: &str) -> Ws<TcpStream> {
    let req = url.into_client_request().expect("request");
    let port = req.uri().port_u16().expect("port");
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.expect("tcp");
    tokio_tungstenite::client_async_with_config(req, tcp, Some(client_config()))
        .await
        .expect("WebSocket handshake")
        .0
}

/// The next message, within 10 s.
async fn next<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut Ws<S>) -> Option<Message> {
    tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a message within 10 s")
        .map(|r| r.expect("no WebSocket error"))
}

/// Sends `msg` and expects it back.
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut Ws<S>, msg: Message) {
    ws.send(msg.clone()).await.expect("send");
    assert_eq!(next(ws).await, Some(msg));
}

fn close_frame(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    }))
}

/// Reads until the server's close frame; returns it and checks the stream
/// ends after it.
async fn expect_close<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut Ws<S>) -> (u16, String) {
    let got = loop {
        match next(ws).await {
            Some(Message::Close(Some(f))) => break (u16::from(f.code), f.reason.to_string()),
            Some(Message::Close(None)) => break (1005, String::new()),
            Some(Message::Ping(_) | Message::Pong(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    // tungstenite answers the close while reading; then the stream ends.
    assert!(
        tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("the stream ends")
            .is_none_or(|r| r.is_err()),
        "nothing after the close"
    );
    got
}

#[tokio::test]
async fn wss_echoes_text_binary_large_and_answers_close() {
    let (ca, s) = shared();
    let url = s.ws_url("/ws");
    assert!(
        url.starts_with("wss://127.0.0.1:") && url.ends_with("/ws"),
        "{url}"
    );
    let (mut ws, resp) = connect_wss(ca, &url, None).await;
    assert_eq!(resp.status(), 101);
    assert!(resp.headers().get("sec-websocket-protocol").is_none());

    echo(&mut ws, Message::text("hello")).await;
    echo(&mut ws, Message::text("中文 ✓ 😀 emoji")).await;
    echo(&mut ws, Message::text("")).await;
    echo(&mut ws, Message::binary(vec![0u8, 1, 2, 0xff, 0xfe])).await;
    // Over the 16 MiB default limit of mpnet's client, in one frame.
    let big: Vec<u8> = (0..17 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    echo(&mut ws, Message::binary(big)).await;

    // Pings are answered with the same payload.
    ws.send(Message::Ping(Bytes::from_static(b"p-1")))
        .await
        .unwrap();
    assert_eq!(
        next(&mut ws).await,
        Some(Message::Pong(Bytes::from_static(b"p-1")))
    );

    // A close is answered with a close carrying the same code.
    ws.send(close_frame(1000, "done")).await.unwrap();
    let (code, _) = expect_close(&mut ws).await;
    assert_eq!(code, 1000);
}

#[tokio::test]
async fn wss_close_endpoint_closes_after_first_message() {
    let (ca, s) = shared();
    let (mut ws, _) = connect_wss(ca, &s.ws_url("/ws/close?code=4001&reason=bye"), None).await;
    ws.send(Message::text("first")).await.unwrap();
    assert_eq!(expect_close(&mut ws).await, (4001, "bye".to_owned()));

    // Percent-encoded reasons, binary first message, default code.
    let (mut ws, _) = connect_wss(ca, &s.ws_url("/ws/close?reason=%E4%B8%AD%20x"), None).await;
    ws.send(Message::binary(vec![1u8])).await.unwrap();
    assert_eq!(expect_close(&mut ws).await, (1000, "中 x".to_owned()));
}

#[tokio::test]
async fn wss_close_endpoint_immediate() {
    let (ca, s) = shared();
    let (mut ws, _) = connect_wss(
        ca,
        &s.ws_url("/ws/close?code=4003&reason=now&immediate=1"),
        None,
    )
    .await;
    assert_eq!(expect_close(&mut ws).await, (4003, "now".to_owned()));
}

#[tokio::test]
async fn subprotocol_selected_or_withheld() {
    let (ca, s) = shared();
    let (mut ws, resp) = connect_wss(ca, &s.ws_url("/ws"), Some("chat, superchat")).await;
    assert_eq!(resp.headers()["sec-websocket-protocol"], "chat");
    echo(&mut ws, Message::text("x")).await;
    ws.close(None).await.unwrap();

    // ?protocol=none: no Sec-WebSocket-Protocol although one was asked for
    // (tungstenite's client itself then fails the handshake, as mpnet must: 9).
    let req = {
        let mut r = s.ws_url("/ws?protocol=none").into_client_request().unwrap();
        r.headers_mut()
            .insert("Sec-WebSocket-Protocol", "chat".parse().unwrap());
        r
    };
    let tcp = TcpStream::connect(s.addr()).await.unwrap();
    let tls = TlsConnector::from(ca.client_config())
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let err = tokio_tungstenite::client_async(req, tls)
        .await
        .expect_err("no subprotocol in the answer");
    assert!(
        err.to_string().to_lowercase().contains("subprotocol"),
        "{err}"
    );
}

#[tokio::test]
async fn plain_ws_on_the_http_server() {
    let s = HttpServer::start();
    let url = s.ws_url("/ws");
    assert!(url.starts_with("ws://127.0.0.1:"), "{url}");
    let mut ws = connect_ws(&url).await;
    echo(&mut ws, Message::text("plain ✓")).await;
    echo(&mut ws, Message::binary(vec![9u8; 70_000])).await;
    ws.send(close_frame(4000, "bye")).await.unwrap();
    assert_eq!(expect_close(&mut ws).await.0, 4000);

    let mut ws = connect_ws(&s.ws_url("/ws/close?code=4001&reason=bye")).await;
    ws.send(Message::text("1")).await.unwrap();
    assert_eq!(expect_close(&mut ws).await, (4001, "bye".to_owned()));
    assert!(s.localhost_ws_url("ws").starts_with("ws://localhost:"));
}

#[test]
fn not_an_upgrade_gets_4xx() {
    let (ca, s) = shared();
    let a = common::agent(ca);
    // A plain GET.
    let r = a.get(&s.url("/ws")).call().unwrap();
    assert_eq!(r.status(), 400);
    // A bad code on /ws/close.
    let r = a.get(&s.url("/ws/close?code=999")).call().unwrap();
    assert_eq!(r.status(), 400);
    // Another WebSocket version.
    let r = a
        .get(&s.url("/ws"))
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "8")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .call()
        .unwrap();
    assert_eq!(r.status(), 426);
    assert_eq!(r.headers()["sec-websocket-version"], "13");
    // A key that is not 16 bytes of base64.
    let raw = common::raw_exchange(
        HttpServer::start().port(),
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: c2hvcnQ=\r\nConnection: close\r\n\r\n",
    );
    assert!(
        raw.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
}

#[test]
fn accept_key_is_rfc_6455_example() {
    // RFC 6455 §1.3: key "dGhlIHNhbXBsZSBub25jZQ==" -> "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".
    let s = HttpServer::start();
    let raw = common::raw_exchange(
        s.port(),
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n\
          \x88\x82\x00\x00\x00\x00\x03\xe8",
    );
    let (head, rest) = common::split_response(&raw);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("\r\nupgrade: websocket"), "{head}");
    assert!(lower.contains("\r\nconnection: upgrade"), "{head}");
    assert!(
        head.contains("\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "{head}"
    );
    // Our close (masked, 1000) is answered with an unmasked close 1000,
    // then the server closes the connection.
    assert_eq!(rest, b"\x88\x02\x03\xe8");
}
