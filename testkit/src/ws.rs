//! The WebSocket endpoints of the test server (`/ws`, `/ws/close`): the
//! opening handshake is answered here (RFC 6455 §4.2), then hyper hands
//! over the connection ([`hyper::upgrade::on`]) and tokio-tungstenite runs
//! the frames on it as the server.
//!
//! | endpoint | behaviour |
//! |---|---|
//! | `/ws` | echoes every text and binary message; answers a close with a close (same code) |
//! | `/ws/close?code=N&reason=R` | echoes nothing: after the client's first message closes with code N (default 1000) and reason R (default empty); `&immediate=1`: right after the handshake |
//!
//! On both, `?protocol=none` answers without `Sec-WebSocket-Protocol` even
//! when the client asks for some (for the missing-subprotocol check);
//! otherwise the first protocol the client offers is selected. Messages and
//! frames up to [`MAX_WS_MESSAGE`] are accepted; pings are answered.
//! A request to these paths that is not a valid WebSocket upgrade gets
//! 400 (426 with `Sec-WebSocket-Version: 13` for another version).

use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use bytes::Bytes;

use crate::routes::{error as plain_error, full, Body};

/// Largest message (and frame) the WebSocket endpoints accept: 64 MiB, so a
/// client can have a message over its own 16 MiB limit echoed back.
pub const MAX_WS_MESSAGE: usize = 64 * 1024 * 1024;

/// Longest close reason in bytes (a control frame holds 125, 2 are the code).
const MAX_REASON: usize = 123;

/// What the connection does once open.
#[derive(Debug, Clone)]
enum Mode {
    Echo,
    Close {
        code: u16,
        reason: String,
        immediate: bool,
    },
}

/// Whether `path` is one of the WebSocket endpoints.
pub(crate) fn is_ws_path(path: &str) -> bool {
    path == "/ws" || path == "/ws/close"
}

/// The query of `req` as decoded pairs.
fn query(req: &http::Request<Incoming>) -> Vec<(String, String)> {
    let q = req.uri().query().unwrap_or("");
    url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn arg<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Whether the comma-separated header `name` holds `token` (any case).
fn has_token(req: &http::Request<Incoming>, name: header::HeaderName, token: &str) -> bool {
    req.headers().get_all(name).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

/// Answers a request to a WebSocket endpoint: 101 and a spawned task that
/// runs the connection, or a 4xx.
pub(crate) fn handle(mut req: http::Request<Incoming>) -> Response<Body> {
    let q = query(&req);
    let mode = if req.uri().path() == "/ws/close" {
        let code = match arg(&q, "code").map(str::parse::<u16>) {
            None => 1000,
            Some(Ok(c)) if (1000..=4999).contains(&c) => c,
            Some(_) => return plain_error(StatusCode::BAD_REQUEST, "code must be 1000..=4999"),
        };
        let reason = arg(&q, "reason").unwrap_or("").to_owned();
        if reason.len() > MAX_REASON {
            return plain_error(StatusCode::BAD_REQUEST, "reason is over 123 bytes");
        }
        Mode::Close {
            code,
            reason,
            immediate: arg(&q, "immediate") == Some("1"),
        }
    } else {
        Mode::Echo
    };

    if req.method() != Method::GET
        || !has_token(&req, header::CONNECTION, "upgrade")
        || !has_token(&req, header::UPGRADE, "websocket")
    {
        return plain_error(StatusCode::BAD_REQUEST, "not a WebSocket upgrade request");
    }
    if req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        let mut r = plain_error(
            StatusCode::UPGRADE_REQUIRED,
            "Sec-WebSocket-Version must be 13",
        );
        r.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return r;
    }
    let key = match req.headers().get(header::SEC_WEBSOCKET_KEY) {
        Some(k)
            if base64::engine::general_purpose::STANDARD
                .decode(k.as_bytes())
                .is_ok_and(|b| b.len() == 16) =>
        {
            k.as_bytes().to_vec()
        }
        _ => return plain_error(StatusCode::BAD_REQUEST, "bad or missing Sec-WebSocket-Key"),
    };
    let protocol = if arg(&q, "protocol") == Some("none") {
        None
    } else {
        req.headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .find(|p| !p.is_empty())
            .and_then(|p| HeaderValue::from_str(p).ok())
    };

    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let config = WebSocketConfig::default()
                .max_message_size(Some(MAX_WS_MESSAGE))
                .max_frame_size(Some(MAX_WS_MESSAGE));
            let ws = WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Server,
                Some(config),
            )
            .await;
            run(ws, mode).await;
        }
    });

    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(&key)) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(p) = protocol {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    resp
}

/// Runs one open connection until it ends.
async fn run<S>(mut ws: WebSocketStream<S>, mode: Mode)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let close_with = |code: u16, reason: &str| {
        Message::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: reason.to_owned().into(),
        }))
    };
    if let Mode::Close {
        code,
        ref reason,
        immediate: true,
    } = mode
    {
        if ws.send(close_with(code, reason)).await.is_err() {
            return;
        }
    }
    let mut closing = matches!(
        mode,
        Mode::Close {
            immediate: true,
            ..
        }
    );
    // Reading also flushes what tungstenite queued (pongs, the close reply)
    // and ends (None or an error) once the close handshake is over.
    while let Some(msg) = ws.next().await {
        let msg = match msg {
            Ok(m) => m,
            Err(_) => break,
        };
        if closing || !(msg.is_text() || msg.is_binary()) {
            continue;
        }
        let reply = match &mode {
            Mode::Echo => msg,
            Mode::Close { code, reason, .. } => {
                closing = true;
                close_with(*code, reason)
            }
        };
        if ws.send(reply).await.is_err() {
            break;
        }
    }
}
