//! The options of `connectSocket`, `sendSocketMessage` and `closeSocket`
//! (SPEC §7), typed and from the JSON bridge (SPEC §8: camelCase names,
//! unknown keys ignored, a wrong type is error 2).
//!
//! ```text
//!  JSON text --parse_object--> Map --*_options_from--> ConnectOptions / SendOptions / CloseOptions
//!                                                         |
//!  Rust callers build the same types with the builders ---+
//! ```
//!
//! Parsing only checks types. What the values mean is checked where they are
//! used: the URL, `data` and headers by
//! [`ClientHandshake::new`](super::ClientHandshake::new), the close code and
//! reason by [`Connection::close`](super::Connection::close), base64 data by
//! [`Connection::send`](super::Connection::send).

use bytes::Bytes;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::bridge::{parse_object, BridgeError, Fields};
use crate::Error;

/// The connect timeout when none is given (SPEC §7: 30 s, error 6).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The options of one `connectSocket` call.
///
/// ```
/// use std::time::Duration;
/// use mpnet_core::ws::ConnectOptions;
/// let opts = ConnectOptions::new("wss://echo.example.com/ws")
///     .data(serde_json::json!({"room": 1}))
///     .header("X-Token", "abc")
///     .protocol("chat")
///     .timeout(Duration::from_secs(5))
///     .multiple(true);
/// assert_eq!(opts.protocols, vec!["chat".to_string()]);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// The `ws://`/`wss://` URL.
    pub url: String,
    /// Appended to the URL as a query string (SPEC §4 rules): an object or
    /// array becomes `k=v&...`, a string is appended as it is. Other JSON
    /// values are refused (error 2) when the handshake is built.
    pub data: Option<Value>,
    /// Request headers, in order (`header` in JSON).
    pub header: Vec<(String, String)>,
    /// Subprotocols for `Sec-WebSocket-Protocol` (an extension).
    pub protocols: Vec<String>,
    /// How long the connect (TCP, TLS and handshake) may take (default 30 s).
    pub timeout: Duration,
    /// `true`: a separate `SocketTask`; `false`: the app's one socket.
    pub multiple: bool,
}

impl ConnectOptions {
    /// Options for `url` with every default.
    pub fn new(url: impl Into<String>) -> Self {
        ConnectOptions {
            url: url.into(),
            data: None,
            header: Vec::new(),
            protocols: Vec::new(),
            timeout: DEFAULT_CONNECT_TIMEOUT,
            multiple: false,
        }
    }
    /// Sets `data` (an object or array; a JSON string is appended as it is).
    pub fn data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
    /// Sets `data` to a string appended to the query as it is.
    pub fn text_data(mut self, text: impl Into<String>) -> Self {
        self.data = Some(Value::String(text.into()));
        self
    }
    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.header.push((name.into(), value.into()));
        self
    }
    /// Adds one subprotocol.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocols.push(protocol.into());
        self
    }
    /// Sets the subprotocols.
    pub fn protocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }
    /// Sets the connect timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Asks for a separate `SocketTask` (`multiple: true`).
    pub fn multiple(mut self, multiple: bool) -> Self {
        self.multiple = multiple;
        self
    }
}

/// What one `sendSocketMessage` / `SocketTask.send` call sends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendData {
    /// A text message (`isBuffer` false).
    Text(String),
    /// A binary message given as the mini-program gives it: the base64 of
    /// the bytes (`isBuffer` true; invalid base64 is error 11).
    Base64(String),
    /// A binary message given as bytes (a Rust host's own form of
    /// `isBuffer: true`; nothing to decode, nothing copied before framing).
    Binary(Bytes),
}

/// The options of one `sendSocketMessage` / `SocketTask.send` call.
///
/// ```
/// use mpnet_core::ws::{SendData, SendOptions};
/// assert!(!SendOptions::text("hi").is_buffer());
/// assert!(SendOptions::base64("AAE=").is_buffer());
/// let b = SendOptions::binary(vec![0u8, 1]);
/// assert_eq!(b.data, SendData::Binary(vec![0u8, 1].into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendOptions {
    /// The message.
    pub data: SendData,
}

impl SendOptions {
    /// A text message.
    pub fn text(data: impl Into<String>) -> Self {
        SendOptions {
            data: SendData::Text(data.into()),
        }
    }
    /// A binary message given as base64.
    pub fn base64(data: impl Into<String>) -> Self {
        SendOptions {
            data: SendData::Base64(data.into()),
        }
    }
    /// A binary message given as bytes.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        SendOptions {
            data: SendData::Binary(data.into()),
        }
    }
    /// Whether the message is binary (`isBuffer`).
    pub fn is_buffer(&self) -> bool {
        !matches!(self.data, SendData::Text(_))
    }
}

/// The options of one `closeSocket` / `SocketTask.close` call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CloseOptions {
    /// The close code: 1000 or 3000-4999 (default 1000).
    pub code: Option<u16>,
    /// The close reason, at most 123 bytes of UTF-8 (default empty).
    pub reason: Option<String>,
}

impl CloseOptions {
    /// Close with `code` and `reason`.
    pub fn new(code: Option<u16>, reason: Option<String>) -> Self {
        CloseOptions { code, reason }
    }
}

/// Parses `connectSocket` options (SPEC §7, §8).
///
/// ```
/// let opts = mpnet_core::ws::options::connect_options(
///     r#"{"url": "wss://a.example/ws", "data": {"x": 1}, "header": {"X-A": "b"},
///         "protocols": ["chat"], "timeout": 5000, "multiple": true}"#,
/// )
/// .unwrap();
/// assert!(opts.multiple);
/// assert_eq!(opts.timeout, std::time::Duration::from_secs(5));
/// ```
pub fn connect_options(text: &str) -> Result<ConnectOptions, BridgeError> {
    let map = parse_object(text)?;
    Ok(connect_options_from(&map)?)
}

/// [`connect_options`] on an already parsed object.
///
/// - `url`: a string; absent or `null` reads as `""`, which the handshake
///   refuses with error 3 (url empty).
/// - `data`: an object, an array or a string (other types: error 2).
/// - `header` (or `headers` when `header` is absent): an object of strings.
/// - `protocols`: an array of strings, or one string.
/// - `timeout`: milliseconds, a finite number >= 0 (`0` means the default).
/// - `multiple`: a boolean.
pub fn connect_options_from(map: &Map<String, Value>) -> Result<ConnectOptions, Error> {
    let f = Fields(map);
    let mut opts = ConnectOptions::new(f.string("url")?.unwrap_or_default());
    opts.data = match map.get("data") {
        None | Some(Value::Null) => None,
        Some(v @ (Value::Object(_) | Value::Array(_) | Value::String(_))) => Some(v.clone()),
        Some(_) => {
            return Err(Error::invalid(
                "data must be an object, an array or a string",
            ))
        }
    };
    opts.header = f.string_map(&["header", "headers"])?;
    opts.protocols = match map.get("protocols") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(Error::invalid("protocols must be an array of strings")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(Error::invalid("protocols must be an array of strings")),
    };
    opts.timeout = f.timeout("timeout", DEFAULT_CONNECT_TIMEOUT)?;
    opts.multiple = f.bool("multiple")?.unwrap_or(false);
    Ok(opts)
}

/// Parses `sendSocketMessage` options: `data` (a string, required) and
/// `isBuffer` (a boolean, default false).
///
/// ```
/// let s = mpnet_core::ws::options::send_options(r#"{"data": "AAE=", "isBuffer": true}"#).unwrap();
/// assert!(s.is_buffer());
/// ```
pub fn send_options(text: &str) -> Result<SendOptions, BridgeError> {
    let map = parse_object(text)?;
    Ok(send_options_from(&map)?)
}

/// [`send_options`] on an already parsed object.
pub fn send_options_from(map: &Map<String, Value>) -> Result<SendOptions, Error> {
    let f = Fields(map);
    let data = f.required_string("data")?.to_string();
    Ok(if f.bool("isBuffer")?.unwrap_or(false) {
        SendOptions::base64(data)
    } else {
        SendOptions::text(data)
    })
}

/// Parses `closeSocket` options: `code` (an integer 0-65535; whether it may
/// be sent is checked on close) and `reason` (a string), both optional.
///
/// ```
/// let c = mpnet_core::ws::options::close_options(r#"{"code": 4000, "reason": "bye"}"#).unwrap();
/// assert_eq!((c.code, c.reason.as_deref()), (Some(4000), Some("bye")));
/// ```
pub fn close_options(text: &str) -> Result<CloseOptions, BridgeError> {
    let map = parse_object(text)?;
    Ok(close_options_from(&map)?)
}

/// [`close_options`] on an already parsed object.
pub fn close_options_from(map: &Map<String, Value>) -> Result<CloseOptions, Error> {
    let f = Fields(map);
    let code = match map.get("code") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => {
            let code = n
                .as_u64()
                .or_else(|| {
                    // 1000.0 is the integer 1000 in JavaScript.
                    n.as_f64()
                        .filter(|v| v.fract() == 0.0 && *v >= 0.0)
                        .map(|v| v as u64)
                })
                .and_then(|v| u16::try_from(v).ok());
            Some(code.ok_or_else(|| {
                Error::invalid(format!("code must be an integer from 0 to 65535, got {n}"))
            })?)
        }
        Some(_) => return Err(Error::invalid("code must be a number")),
    };
    Ok(CloseOptions {
        code,
        reason: f.string("reason")?.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Api;

    fn options_code<T: std::fmt::Debug>(r: Result<T, BridgeError>) -> u32 {
        match r {
            Err(BridgeError::Options(e)) => e.code(Api::Socket),
            other => panic!("expected an options error, got {other:?}"),
        }
    }

    #[test]
    fn connect_fields_are_read() {
        let o = connect_options(
            r#"{"url":"wss://a/ws","data":"x=1","headers":{"A":"b"},"protocols":"chat","timeout":0,"complete":null}"#,
        )
        .unwrap();
        assert_eq!(o.url, "wss://a/ws");
        assert_eq!(o.data, Some(Value::String("x=1".into())));
        assert_eq!(o.header, vec![("A".to_string(), "b".to_string())]);
        assert_eq!(o.protocols, vec!["chat".to_string()]);
        assert_eq!(o.timeout, DEFAULT_CONNECT_TIMEOUT);
        assert!(!o.multiple);
        let o = connect_options(r#"{}"#).unwrap();
        assert_eq!(o.url, "");
    }

    #[test]
    fn wrong_types_are_error_2() {
        for text in [
            r#"{"url": 1}"#,
            r#"{"url": "wss://a", "data": 1}"#,
            r#"{"url": "wss://a", "data": true}"#,
            r#"{"url": "wss://a", "header": []}"#,
            r#"{"url": "wss://a", "header": {"a": 1}}"#,
            r#"{"url": "wss://a", "protocols": 1}"#,
            r#"{"url": "wss://a", "protocols": ["a", 1]}"#,
            r#"{"url": "wss://a", "timeout": -5}"#,
            r#"{"url": "wss://a", "multiple": "yes"}"#,
        ] {
            assert_eq!(options_code(connect_options(text)), 2, "{text}");
        }
        for text in [r#"{}"#, r#"{"data": 1}"#, r#"{"data": "a", "isBuffer": 1}"#] {
            assert_eq!(options_code(send_options(text)), 2, "{text}");
        }
        for text in [
            r#"{"code": "1000"}"#,
            r#"{"code": 1000.5}"#,
            r#"{"code": -1}"#,
            r#"{"code": 70000}"#,
            r#"{"reason": 5}"#,
        ] {
            assert_eq!(options_code(close_options(text)), 2, "{text}");
        }
    }

    #[test]
    fn close_code_accepts_integral_floats() {
        let c = close_options(r#"{"code": 1000.0}"#).unwrap();
        assert_eq!(c.code, Some(1000));
        assert_eq!(close_options("{}").unwrap(), CloseOptions::default());
    }
}
