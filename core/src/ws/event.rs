//! What a socket reports to the app (SPEC §7), and the JSON shapes of SPEC
//! §8 and §9.
//!
//! Per connection the order is fixed: `Open`, then any number of `Message`,
//! then at most one `Error`, then exactly one `Close`, then nothing. The
//! [`Connection`](super::Connection) guarantees it by construction.

use base64::Engine as _;
use bytes::Bytes;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::{Api, Error};

/// The data of one received (or sent) message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageData {
    /// A text message (valid UTF-8).
    Text(String),
    /// A binary message.
    Binary(Bytes),
}

impl MessageData {
    /// Whether this is binary (`isBuffer` in JSON).
    pub fn is_buffer(&self) -> bool {
        matches!(self, MessageData::Binary(_))
    }

    /// The `data` field as JSON carries it: the text, or standard base64
    /// (with padding) of the bytes (SPEC §8).
    pub fn js_data(&self) -> String {
        match self {
            MessageData::Text(s) => s.clone(),
            MessageData::Binary(b) => base64::engine::general_purpose::STANDARD.encode(b),
        }
    }
}

impl Serialize for MessageData {
    /// `{"data": "...", "isBuffer": false}`, or with `isBuffer: true` the
    /// bytes as base64 (SPEC §7, §8).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("data", &self.js_data())?;
        map.serialize_entry("isBuffer", &self.is_buffer())?;
        map.end()
    }
}

/// The payload of a close event: `{code, reason}` (SPEC §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CloseInfo {
    /// The close code (see [`SocketEvent::Close`] for which one).
    pub code: u16,
    /// The close reason.
    pub reason: String,
}

/// One socket event (SPEC §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketEvent {
    /// The socket is open (always first).
    Open,
    /// A complete message arrived.
    Message {
        /// Its data.
        data: MessageData,
    },
    /// The connection failed (at most once, always before `Close`). Its
    /// code is read with `Api::Socket`: 1 for a protocol violation or a
    /// broken connection, 12 for a message over the size limit.
    Error(Error),
    /// The connection is closed (exactly once, always last).
    ///
    /// `code`/`reason` are: the ones this end sent, when this end closed
    /// (`closeSocket`, a superseded socket: 1000) or failed the connection
    /// (1002, 1007, 1009); the peer's, when the peer closed first (1005
    /// when its close frame had no code); 1006 when the connection ended
    /// without any close frame.
    Close {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
}

impl SocketEvent {
    /// The event's name in SPEC §9 event lines: `open`, `message`, `error`,
    /// `close`.
    pub fn name(&self) -> &'static str {
        match self {
            SocketEvent::Open => "open",
            SocketEvent::Message { .. } => "message",
            SocketEvent::Error(_) => "error",
            SocketEvent::Close { .. } => "close",
        }
    }

    /// The argument a JavaScript listener receives: `{}` for open,
    /// `{data, isBuffer}` for message, `{error, errorMessage}` for error,
    /// `{code, reason}` for close.
    pub fn listener_payload(&self) -> serde_json::Value {
        let value = match self {
            SocketEvent::Open => Ok(serde_json::Value::Object(serde_json::Map::new())),
            SocketEvent::Message { data } => serde_json::to_value(data),
            SocketEvent::Error(e) => serde_json::to_value(e.to_js(Api::Socket)),
            SocketEvent::Close { code, reason } => serde_json::to_value(CloseInfo {
                code: *code,
                reason: reason.clone(),
            }),
        };
        // Serialising these plain maps into a `Value` cannot fail.
        value.unwrap_or(serde_json::Value::Null)
    }
}

impl Serialize for SocketEvent {
    /// The event line of SPEC §9: `{"event": "open"}`,
    /// `{"event": "message", "data": "...", "isBuffer": false}`,
    /// `{"event": "error", "error": N, "errorMessage": "..."}`,
    /// `{"event": "close", "code": N, "reason": "..."}`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("event", self.name())?;
        match self {
            SocketEvent::Open => {}
            SocketEvent::Message { data } => {
                map.serialize_entry("data", &data.js_data())?;
                map.serialize_entry("isBuffer", &data.is_buffer())?;
            }
            SocketEvent::Error(e) => {
                map.serialize_entry("error", &e.code(Api::Socket))?;
                map.serialize_entry("errorMessage", e.message())?;
            }
            SocketEvent::Close { code, reason } => {
                map.serialize_entry("code", code)?;
                map.serialize_entry("reason", reason)?;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn event_lines_follow_spec_9() {
        let cases = [
            (SocketEvent::Open, r#"{"event":"open"}"#),
            (
                SocketEvent::Message {
                    data: MessageData::Text("hi".into()),
                },
                r#"{"event":"message","data":"hi","isBuffer":false}"#,
            ),
            (
                SocketEvent::Message {
                    data: MessageData::Binary(Bytes::from_static(&[0, 1, 2])),
                },
                r#"{"event":"message","data":"AAEC","isBuffer":true}"#,
            ),
            (
                SocketEvent::Error(Error::new(ErrorKind::MessageTooLarge, "too big")),
                r#"{"event":"error","error":12,"errorMessage":"too big"}"#,
            ),
            (
                SocketEvent::Close {
                    code: 1000,
                    reason: "bye".into(),
                },
                r#"{"event":"close","code":1000,"reason":"bye"}"#,
            ),
        ];
        for (event, line) in cases {
            assert_eq!(serde_json::to_string(&event).unwrap(), line);
        }
    }

    #[test]
    fn listener_payloads_follow_spec_7() {
        let msg = SocketEvent::Message {
            data: MessageData::Binary(Bytes::from_static(b"\xff")),
        };
        assert_eq!(
            msg.listener_payload(),
            serde_json::json!({"data": "/w==", "isBuffer": true})
        );
        let close = SocketEvent::Close {
            code: 1006,
            reason: String::new(),
        };
        assert_eq!(
            close.listener_payload(),
            serde_json::json!({"code": 1006, "reason": ""})
        );
        assert_eq!(SocketEvent::Open.listener_payload(), serde_json::json!({}));
    }
}
