//! The client side of the WebSocket opening handshake (RFC 6455 §4.1) for
//! `connectSocket` (SPEC §7), with no I/O.
//!
//! ```text
//!  ClientHandshake::new(ctx, opts, key)   URL (3, 4, 5), ws:// while only WSS (8),
//!     |                                   domain policy (13), data -> query,
//!     |                                   headers (2), protocols (2)
//!     v
//!  request(): bytes to write
//!     |
//!     v
//!  try_response(input) --(0, None)--> need more: keep the bytes, read, call again
//!     |                  (eof_error() if the peer closes; timeout_error() at
//!     |                   the deadline, started + timeout())
//!     +--Err--> handshake failed: 8 (status, Upgrade, Connection, Accept,
//!     |                              extensions, unknown subprotocol), 9
//!     v
//!  (n, Some(Accepted))   input[n..] is the start of the frame stream:
//!                        hand it to Connection::handle_input
//! ```
//!
//! The caller passes the 16 random bytes of `Sec-WebSocket-Key` (SPEC §2:
//! the core draws no random numbers), so a test can fix them.

use std::time::{Duration, Instant};

use base64::Engine as _;
use http::HeaderMap;
use serde_json::Value;
use sha1::{Digest, Sha1};

use super::options::ConnectOptions;
use crate::http1::response::{list_elements, parse_head, trim_ows, HeadParse};
use crate::http1::ResponseHead;
use crate::target::Target;
use crate::{headers, js, Api, AppContext, Error, ErrorKind};

/// The GUID of RFC 6455 §1.3 that `Sec-WebSocket-Accept` hashes.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2):
/// base64 of SHA-1 of the key followed by the GUID.
///
/// ```
/// assert_eq!(
///     mpnet_core::ws::handshake::accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/// );
/// ```
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WS_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// A successful handshake: what the server chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The subprotocol the server selected, if any (always one of those
    /// requested).
    pub protocol: Option<String>,
    /// The `101` response head.
    pub head: ResponseHead,
}

/// One opening handshake. See the module docs.
///
/// ```
/// use mpnet_core::ws::{ClientHandshake, ConnectOptions};
/// use mpnet_core::AppContext;
///
/// let ctx = AppContext::builder("app", "1.0").allow_any_origin().build().unwrap();
/// let opts = ConnectOptions::new("wss://echo.example.com/ws").text_data("room=1");
/// let hs = ClientHandshake::new(&ctx, &opts, *b"the sample nonce").unwrap();
/// assert!(hs.request().starts_with(b"GET /ws?room=1 HTTP/1.1\r\nHost: echo.example.com\r\n"));
///
/// let response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
///     Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x02hi";
/// assert_eq!(hs.try_response(&response[..20]).unwrap(), (0, None)); // need more
/// let (n, accepted) = hs.try_response(response).unwrap();
/// assert_eq!(&response[n..], b"\x81\x02hi"); // the first frame, for the connection
/// assert_eq!(accepted.unwrap().protocol, None);
/// ```
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    target: Target,
    request: Vec<u8>,
    key: String,
    accept: String,
    protocols: Vec<String>,
    timeout: Duration,
    max_head_bytes: usize,
    max_head_count: usize,
}

impl ClientHandshake {
    /// Checks `opts` in `ctx` and writes the upgrade request, in this order
    /// (SPEC §7 codes): empty URL (3); unparseable URL (4); scheme not
    /// ws/wss (5); `ws://` while only WSS is allowed (8); origin not allowed
    /// (13); `data` appended as a query (SPEC §4 rules; a `data` that is not
    /// an object, array or string is 2, malformed percent-encoding in the
    /// final query is 4); headers (2); subprotocols that are not tokens (2).
    ///
    /// Headers: the caller's, cleaned as for `my.request` (Host, Connection,
    /// Referer and friends are the library's); every caller
    /// `Sec-WebSocket-*` header except `Sec-WebSocket-Protocol`, and
    /// `Upgrade`, are dropped: the library sets them. A caller's
    /// `Sec-WebSocket-Protocol` (a comma list) adds to `opts.protocols`;
    /// duplicates are sent once.
    pub fn new(
        ctx: &AppContext,
        opts: &ConnectOptions,
        key_bytes: [u8; 16],
    ) -> Result<Self, Error> {
        let mut target = ctx.parse_target(&opts.url)?;
        ctx.check_target(&target, Api::Socket)?;
        if let Some(data) = &opts.data {
            target.append_query(&query_text(data)?);
        }
        target.check_query()?;
        let map = headers::build(ctx, &opts.header, None)?;
        let mut protocols: Vec<String> = Vec::new();
        let header_protocols: Vec<String> = map
            .get_all("sec-websocket-protocol")
            .iter()
            .flat_map(|v| list_elements(v.as_bytes()))
            .map(|e| String::from_utf8_lossy(e).into_owned())
            .collect();
        for p in opts.protocols.iter().chain(header_protocols.iter()) {
            if !is_token(p) {
                return Err(Error::invalid(format!(
                    "protocol {p:?} is not a valid subprotocol name (an HTTP token)"
                )));
            }
            if !protocols.contains(p) {
                protocols.push(p.clone());
            }
        }
        let map = without_library_headers(map);
        let key = base64::engine::general_purpose::STANDARD.encode(key_bytes);
        let accept = accept_key(&key);
        let request = write_request(&target, &key, &protocols, &map);
        Ok(ClientHandshake {
            target,
            request,
            key,
            accept,
            protocols,
            timeout: opts.timeout,
            max_head_bytes: ctx.limits().max_header_bytes,
            max_head_count: ctx.limits().max_header_count,
        })
    }

    /// Where to connect: host, port, and (by the scheme) whether TLS is used.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The upgrade request bytes to write.
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// The `Sec-WebSocket-Key` sent (base64 of the caller's 16 bytes).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The subprotocols requested, in order.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// How long the whole connect may take, from the moment the transport
    /// starts it (TCP, TLS and this handshake); then [`timeout_error`](Self::timeout_error).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The connect's deadline when the transport starts it at `started`:
    /// [`timeout`](Self::timeout) later (never panics: see
    /// [`deadline::after`](crate::deadline::after)).
    pub fn deadline(&self, started: Instant) -> Instant {
        crate::deadline::after(started, self.timeout)
    }

    /// The error when the connect deadline passes (SPEC §7: 6).
    pub fn timeout_error(&self) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "connecting to {} took longer than {}",
                self.target,
                crate::deadline::Millis(self.timeout)
            ),
        )
    }

    /// The error for an I/O failure while `doing` a step of the connect:
    /// a timed-out socket call is the connect deadline (6), a TLS failure
    /// [`tls::socket_io_error`](crate::tls::socket_io_error) (7 for a
    /// certificate), anything else 1.
    pub fn io_error(&self, e: &std::io::Error, doing: &str) -> Error {
        if crate::failure::is_timeout(e) {
            self.timeout_error()
        } else {
            crate::tls::socket_io_error(e, doing)
        }
    }

    /// The error when the connection ends before a complete response: a
    /// network failure (SPEC §7: 1), not an invalid response.
    pub fn eof_error(&self) -> Error {
        Error::new(
            ErrorKind::Network,
            format!(
                "{} closed the connection before answering the WebSocket handshake",
                self.target
            ),
        )
    }

    /// Parses the response head at the start of `input` (the bytes read so
    /// far) and checks it.
    ///
    /// `Ok((0, None))`: need more input (keep `input`, append, call again).
    /// `Ok((n, Some(accepted)))`: the handshake succeeded; `input[n..]`
    /// belongs to the frame stream. Errors (SPEC §7): 8 for a malformed head
    /// or one over the header limits, a status other than 101 (the message
    /// names it), `Upgrade` without `websocket`, `Connection` without
    /// `upgrade`, a missing or wrong `Sec-WebSocket-Accept`, any
    /// `Sec-WebSocket-Extensions` (none are offered), or a subprotocol that
    /// was not requested; 9 when subprotocols were requested and the
    /// response names none. The answer does not depend on how `input` was
    /// split.
    pub fn try_response(&self, input: &[u8]) -> Result<(usize, Option<Accepted>), Error> {
        let parsed = parse_head(
            input,
            self.max_head_bytes,
            self.max_head_bytes,
            self.max_head_count,
            &mut crate::http1::HeadBuffers::new(),
        )
        .map_err(|e| handshake_error(format!("the response is not valid HTTP: {e}")))?;
        let (len, head) = match parsed {
            HeadParse::Partial => return Ok((0, None)),
            HeadParse::Complete { len, head } => (len, head),
        };
        let protocol = self.check(&head)?;
        Ok((len, Some(Accepted { protocol, head })))
    }

    /// [`try_response`](Self::try_response) for a transport that appends
    /// each read to `input`: `checked` (start at 0, keep between calls) is
    /// how much of `input` is known not to end the head. After the first
    /// call the head is parsed again only once the new bytes may end it
    /// (a blank line) or `input` is over the head limit, so a peer that
    /// answers a byte at a time costs linear, not quadratic, time. The
    /// first call always parses (a bad status line fails at once); a
    /// malformed line that comes later fails once the head ends.
    pub fn try_response_growing(
        &self,
        input: &[u8],
        checked: &mut usize,
    ) -> Result<(usize, Option<Accepted>), Error> {
        let from = checked.saturating_sub(3);
        let tail = input.get(from..).unwrap_or_default();
        if *checked > 0 && input.len() <= self.max_head_bytes && !may_end_head(tail) {
            *checked = input.len();
            return Ok((0, None));
        }
        let answer = self.try_response(input)?;
        *checked = input.len();
        Ok(answer)
    }

    /// The RFC 6455 §4.1 checks of a complete response head; returns the
    /// selected subprotocol.
    fn check(&self, head: &ResponseHead) -> Result<Option<String>, Error> {
        if head.status != 101 {
            return Err(handshake_error(format!(
                "the server answered HTTP {} {} instead of 101 Switching Protocols",
                head.status,
                head.reason()
            )));
        }
        if head.version != http::Version::HTTP_11 {
            return Err(handshake_error("the 101 response is not HTTP/1.1"));
        }
        if !head.has_token("upgrade", "websocket") {
            return Err(handshake_error(
                "the response's Upgrade header does not name websocket",
            ));
        }
        if !head.has_token("connection", "upgrade") {
            return Err(handshake_error(
                "the response's Connection header does not name upgrade",
            ));
        }
        let accepts: Vec<&[u8]> = head.headers_named("sec-websocket-accept").collect();
        match accepts.as_slice() {
            [one] if trim_ows(one) == self.accept.as_bytes() => {}
            [] => {
                return Err(handshake_error(
                    "the response has no Sec-WebSocket-Accept header",
                ))
            }
            _ => {
                return Err(handshake_error(format!(
                    "the response's Sec-WebSocket-Accept does not match the key (expected {})",
                    self.accept
                )))
            }
        }
        if head
            .headers_named("sec-websocket-extensions")
            .any(|v| list_elements(v).next().is_some())
        {
            return Err(handshake_error(
                "the server selected an extension, but none was offered",
            ));
        }
        let chosen: Vec<&[u8]> = head
            .headers_named("sec-websocket-protocol")
            .flat_map(list_elements)
            .collect();
        match chosen.as_slice() {
            [] if self.protocols.is_empty() => Ok(None),
            [] => Err(Error::new(
                ErrorKind::NoSubprotocol,
                format!(
                    "subprotocols {:?} were requested but the server selected none",
                    self.protocols
                ),
            )),
            [one] => match self.protocols.iter().find(|p| p.as_bytes() == *one) {
                Some(p) => Ok(Some(p.clone())),
                None => Err(handshake_error(format!(
                    "the server selected subprotocol {:?}, which was not requested",
                    String::from_utf8_lossy(one)
                ))),
            },
            _ => Err(handshake_error(
                "the server selected more than one subprotocol",
            )),
        }
    }
}

/// A handshake error (SPEC §7: 8).
/// Whether `bytes` holds a blank line (`\n\n` or `\n\r\n`), which is
/// what ends an HTTP head.
fn may_end_head(bytes: &[u8]) -> bool {
    bytes.windows(2).enumerate().any(|(i, w)| {
        w[0] == b'\n' && (w[1] == b'\n' || (w[1] == b'\r' && bytes.get(i + 2) == Some(&b'\n')))
    })
}

fn handshake_error(message: impl Into<String>) -> Error {
    Error::new(
        ErrorKind::Handshake,
        format!("WebSocket handshake failed: {}", message.into()),
    )
}

/// The text `data` appends to the query (SPEC §4 rules).
fn query_text(data: &Value) -> Result<String, Error> {
    match data {
        Value::String(s) => Ok(s.clone()),
        Value::Object(_) | Value::Array(_) => Ok(js::to_query_string(data)),
        _ => Err(Error::invalid(
            "data must be an object, an array or a string",
        )),
    }
}

/// RFC 7230 `token` (RFC 6455 §4.1: each subprotocol is a token).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// The headers without the ones the handshake owns, in the same order
/// (`HeaderMap::remove` would reorder the rest).
fn without_library_headers(map: HeaderMap) -> HeaderMap {
    let mut kept = HeaderMap::with_capacity(map.len());
    for (name, value) in &map {
        if !(name.as_str().starts_with("sec-websocket-") || name.as_str() == "upgrade") {
            kept.append(name.clone(), value.clone());
        }
    }
    kept
}

/// The upgrade request (RFC 6455 §4.1).
fn write_request(target: &Target, key: &str, protocols: &[String], map: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(target.request_target_str().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(target.host_header_str().as_bytes());
    out.extend_from_slice(b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\r\nSec-WebSocket-Version: 13\r\n");
    if !protocols.is_empty() {
        out.extend_from_slice(b"Sec-WebSocket-Protocol: ");
        out.extend_from_slice(protocols.join(", ").as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in map {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}
