//! The JSON bridge of SPEC §8: options arrive as the JSON a JavaScript host
//! passes (camelCase names, unknown keys ignored); a field of the wrong type
//! is error 2. Results and errors serialise to the JavaScript shapes (their
//! `Serialize` impls live beside the result types).
//!
//! Text that is not a JSON object at all is a [`BridgeError::Syntax`] (a
//! usage error for the `mpnet` command); everything else that is wrong is a
//! [`BridgeError::Options`] carrying the mini-program error.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::request::{Data, DataType, Method, RequestOptions};
use crate::Error;

/// Why options JSON was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeError {
    /// Not a JSON object.
    Syntax(String),
    /// A JSON object whose fields are wrong (error 2 and friends).
    Options(Error),
}

impl std::fmt::Display for BridgeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BridgeError::Syntax(m) => write!(f, "options are not a JSON object: {m}"),
            BridgeError::Options(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for BridgeError {}

impl From<Error> for BridgeError {
    fn from(e: Error) -> Self {
        BridgeError::Options(e)
    }
}

/// Parses `text` as a JSON object, keeping property order.
///
/// A string holding a lone surrogate escape (`"\ud800"`) is valid for
/// `JSON.parse` but cannot be encoded (SPEC §4): that is error 2, not a
/// syntax error.
pub fn parse_object(text: &str) -> Result<Map<String, Value>, BridgeError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(BridgeError::Syntax(format!(
            "expected an object, got {}",
            type_name(&other)
        ))),
        Err(e) => {
            if has_lone_surrogate_escape(text) {
                Err(BridgeError::Options(Error::invalid(
                    "a string holds a lone UTF-16 surrogate, which cannot be encoded",
                )))
            } else {
                Err(BridgeError::Syntax(e.to_string()))
            }
        }
    }
}

/// Whether some `\uXXXX` escape in `text` is a surrogate without its pair.
fn has_lone_surrogate_escape(text: &str) -> bool {
    let b = text.as_bytes();
    let hex_at = |i: usize| -> Option<u16> {
        let s = b.get(i..i + 4)?;
        u16::from_str_radix(std::str::from_utf8(s).ok()?, 16).ok()
    };
    let mut i = 0;
    let mut pending_high = false;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'u') {
            if let Some(u) = hex_at(i + 2) {
                let is_high = (0xD800..0xDC00).contains(&u);
                let is_low = (0xDC00..0xE000).contains(&u);
                if pending_high && !is_low {
                    return true;
                }
                if is_low && !pending_high {
                    return true;
                }
                pending_high = is_high;
                i += 6;
                continue;
            }
        }
        if pending_high {
            return true;
        }
        // Skip the escaped character so `\\u` is not read as an escape.
        i += if b[i] == b'\\' { 2 } else { 1 };
    }
    pending_high
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Typed access to the fields of an options object; wrong types are error 2.
/// `null` counts as absent.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a>(pub &'a Map<String, Value>);

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// A string field.
    pub fn string(&self, key: &str) -> Result<Option<&'a str>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(Error::invalid(format!(
                "{key} must be a string, got {}",
                type_name(other)
            ))),
        }
    }

    /// A required string field (missing is error 2; an empty string is
    /// returned as it is).
    pub fn required_string(&self, key: &str) -> Result<&'a str, Error> {
        self.string(key)?
            .ok_or_else(|| Error::invalid(format!("{key} is required")))
    }

    /// A boolean field.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(Error::invalid(format!(
                "{key} must be a boolean, got {}",
                type_name(other)
            ))),
        }
    }

    /// An object of string to string (headers, formData values are checked
    /// elsewhere). The first present key of `keys` is used.
    pub fn string_map(&self, keys: &[&str]) -> Result<Vec<(String, String)>, Error> {
        let Some((key, value)) = keys.iter().find_map(|k| self.get(k).map(|v| (*k, v))) else {
            return Ok(Vec::new());
        };
        let Value::Object(map) = value else {
            return Err(Error::invalid(format!(
                "{key} must be an object, got {}",
                type_name(value)
            )));
        };
        map.iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(Error::invalid(format!(
                    "{key}[{k:?}] must be a string, got {}",
                    type_name(other)
                ))),
            })
            .collect()
    }

    /// A timeout in milliseconds: a finite number >= 0. `0` and absent give
    /// `default`.
    pub fn timeout(&self, key: &str, default: Duration) -> Result<Duration, Error> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Number(n)) => {
                let ms = n.as_f64().unwrap_or(f64::NAN);
                if !ms.is_finite() || ms < 0.0 {
                    return Err(Error::invalid(format!(
                        "{key} must be a number of milliseconds >= 0, got {n}"
                    )));
                }
                if ms == 0.0 {
                    return Ok(default);
                }
                Duration::try_from_secs_f64(ms / 1000.0)
                    .map_err(|_| Error::invalid(format!("{key} {n} is too large")))
            }
            Some(other) => Err(Error::invalid(format!(
                "{key} must be a number, got {}",
                type_name(other)
            ))),
        }
    }

    /// The `data` field with its `isBuffer` companion (SPEC §8): an object or
    /// array, a string, or with `isBuffer: true` a base64 string of bytes
    /// (anything else beside `isBuffer: true` is error 2).
    pub fn data(&self, key: &str) -> Result<Option<Data>, Error> {
        let is_buffer = self.bool("isBuffer")?.unwrap_or(false);
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if is_buffer => base64::engine::general_purpose::STANDARD
                .decode(s)
                .map(|b| Some(Data::Bytes(Bytes::from(b))))
                .map_err(|e| {
                    Error::invalid(format!(
                        "{key} is not valid base64 ({e}) but isBuffer is true"
                    ))
                }),
            Some(Value::String(s)) => Ok(Some(Data::Text(s.clone()))),
            Some(other) if is_buffer => Err(Error::invalid(format!(
                "{key} must be a base64 string when isBuffer is true, got {}",
                type_name(other)
            ))),
            Some(v @ (Value::Object(_) | Value::Array(_))) => {
                Ok(Some(Data::Json(std::sync::Arc::new(v.clone()))))
            }
            Some(other) => Err(Error::invalid(format!(
                "{key} must be an object, an array or a string, got {}",
                type_name(other)
            ))),
        }
    }
}

/// Parses the options of `my.request` (SPEC §4, §8). `headers` is read, or
/// `header` when `headers` is absent.
///
/// ```
/// let opts = mpnet_core::bridge::request_options(
///     r#"{"url": "https://httpbin.org/post", "method": "post", "data": {"a": 1}}"#,
/// ).unwrap();
/// assert_eq!(opts.method, mpnet_core::request::Method::Post);
/// ```
pub fn request_options(text: &str) -> Result<RequestOptions, BridgeError> {
    let map = parse_object(text)?;
    Ok(request_options_from(&map)?)
}

/// [`request_options`] on an already parsed object.
pub fn request_options_from(map: &Map<String, Value>) -> Result<RequestOptions, Error> {
    let f = Fields(map);
    let mut opts = RequestOptions::new(f.required_string("url")?);
    opts.headers = f.string_map(&["headers", "header"])?;
    if let Some(m) = f.string("method")? {
        opts.method = m.parse::<Method>()?;
    }
    opts.data = f.data("data")?;
    opts.timeout = f.timeout("timeout", crate::request::DEFAULT_TIMEOUT)?;
    if let Some(dt) = f.string("dataType")? {
        opts.data_type = dt.parse::<DataType>()?;
    }
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Api;

    fn code(text: &str) -> u32 {
        match request_options(text) {
            Err(BridgeError::Options(e)) => e.code(Api::Request),
            other => panic!("expected an options error for {text}, got {other:?}"),
        }
    }

    #[test]
    fn wrong_types_are_error_2() {
        for text in [
            r#"{}"#,
            r#"{"url": 5}"#,
            r#"{"url": "https://a", "headers": []}"#,
            r#"{"url": "https://a", "headers": {"a": 1}}"#,
            r#"{"url": "https://a", "method": "PATCH"}"#,
            r#"{"url": "https://a", "method": 1}"#,
            r#"{"url": "https://a", "dataType": "xml"}"#,
            r#"{"url": "https://a", "timeout": -1}"#,
            r#"{"url": "https://a", "timeout": "5"}"#,
            r#"{"url": "https://a", "data": 5}"#,
            r#"{"url": "https://a", "data": true}"#,
            r#"{"url": "https://a", "data": "%%%", "isBuffer": true}"#,
            r#"{"url": "https://a", "data": {"a": 1}, "isBuffer": true}"#,
            r#"{"url": "https://a", "data": [1], "isBuffer": true}"#,
            r#"{"url": "https://a", "data": {"k": "\ud800"}}"#,
            r#"{"url": "https://a", "data": "\udc00x"}"#,
        ] {
            assert_eq!(code(text), 2, "{text}");
        }
    }

    #[test]
    fn not_an_object_is_a_syntax_error() {
        for text in ["", "[]", "\"x\"", "{", "{\"url\": }"] {
            assert!(
                matches!(request_options(text), Err(BridgeError::Syntax(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn surrogate_pairs_are_fine() {
        let opts =
            request_options(r#"{"url": "https://a", "data": "\ud83d\ude00 \\ud800"}"#).unwrap();
        assert_eq!(opts.data, Some(Data::Text("😀 \\ud800".into())));
    }

    #[test]
    fn fields_are_read() {
        let opts = request_options(
            r#"{"url":"https://a/x","method":"put","header":{"X-A":"b"},"timeout":1500,"dataType":"TEXT","data":"AAE=","isBuffer":true,"success":null,"extra":1}"#,
        )
        .unwrap();
        assert_eq!(opts.method, Method::Put);
        assert_eq!(opts.headers, vec![("X-A".to_string(), "b".to_string())]);
        assert_eq!(opts.timeout, Duration::from_millis(1500));
        assert_eq!(opts.data_type, DataType::Text);
        assert_eq!(opts.data, Some(Data::Bytes(Bytes::from_static(&[0, 1]))));
    }

    #[test]
    fn headers_wins_over_header() {
        let opts = request_options(r#"{"url":"https://a","headers":{"a":"1"},"header":{"b":"2"}}"#)
            .unwrap();
        assert_eq!(opts.headers, vec![("a".to_string(), "1".to_string())]);
    }
}
