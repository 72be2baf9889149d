//! The result of `my.request` (SPEC §4): status classification, `dataType`
//! decoding, and the JSON shape `{ data, status, headers }`.

use base64::Engine as _;
use bytes::Bytes;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::options::DataType;
use super::profile::Profile;
use crate::http1::{ContentDecoder, ProtocolError, ResponseHead};
use crate::{Error, ErrorKind, HttpErrorResponse, JsHeaders};

/// The decoded `data` of a successful response.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseData {
    /// `dataType: json`: the parsed body (`""` for an empty body).
    Json(serde_json::Value),
    /// `dataType: text`.
    Text(String),
    /// `dataType: base64`: standard base64 with padding.
    Base64(String),
    /// `dataType: arraybuffer`: the raw bytes (base64 with `isBuffer: true`
    /// in JSON, SPEC §8).
    ArrayBuffer(Bytes),
}

/// A successful `my.request` result.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The HTTP status (200-299 or 304).
    pub status: u16,
    /// Response headers: the server's names, repeated fields joined with `, `.
    pub headers: JsHeaders,
    /// The body, decoded per `dataType`.
    pub data: ResponseData,
    /// When each phase ended (filled in by the transport; not part of the
    /// JSON shape).
    pub profile: Profile,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }
}

impl Serialize for Response {
    /// `{ "data", "status", "headers" }`, plus `"isBuffer": true` for
    /// arraybuffer data (SPEC §8).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match &self.data {
            ResponseData::Json(v) => map.serialize_entry("data", v)?,
            ResponseData::Text(s) | ResponseData::Base64(s) => map.serialize_entry("data", s)?,
            ResponseData::ArrayBuffer(b) => {
                let text = base64::engine::general_purpose::STANDARD.encode(b);
                map.serialize_entry("data", &text)?;
                map.serialize_entry("isBuffer", &true)?;
            }
        }
        map.serialize_entry("status", &self.status)?;
        map.serialize_entry("headers", &self.headers)?;
        map.end()
    }
}

/// Decodes a body per `dataType` (SPEC §4): json parses (empty gives `""`, a
/// UTF-8 BOM is skipped, not JSON is error 14), text needs valid UTF-8
/// (else 14), base64 encodes, arraybuffer passes the bytes.
pub fn decode_data(data_type: DataType, body: Vec<u8>) -> Result<ResponseData, Error> {
    match data_type {
        DataType::Json => {
            let text = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&body);
            if text.is_empty() {
                return Ok(ResponseData::Json(serde_json::Value::String(String::new())));
            }
            serde_json::from_slice(text)
                .map(ResponseData::Json)
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Decode,
                        format!("dataType json: the response body is not JSON ({e})"),
                    )
                })
        }
        DataType::Text => String::from_utf8(body)
            .map(ResponseData::Text)
            .map_err(|e| {
                Error::new(
                    ErrorKind::Decode,
                    format!(
                        "dataType text: the response body is not valid UTF-8 (at byte {})",
                        e.utf8_error().valid_up_to()
                    ),
                )
            }),
        DataType::Base64 => Ok(ResponseData::Base64(
            base64::engine::general_purpose::STANDARD.encode(&body),
        )),
        DataType::ArrayBuffer => Ok(ResponseData::ArrayBuffer(Bytes::from(body))),
    }
}

/// Whether a final status is a success for `my.request` (SPEC §4: 200-299
/// and 304).
pub fn is_success(status: u16) -> bool {
    (200..300).contains(&status) || status == 304
}

/// Turns a final response into the result of `my.request` (SPEC §4):
/// 200-299 and 304 succeed with decoded data; 429 is error 20; any other
/// status is error 19 carrying status, headers and the body as text.
pub fn classify(head: ResponseHead, body: Vec<u8>, data_type: DataType) -> Result<Response, Error> {
    let status = head.status;
    if is_success(status) {
        let data = decode_data(data_type, body)?;
        return Ok(Response {
            status,
            headers: head.into_js_headers(),
            data,
            profile: Profile::default(),
        });
    }
    let (kind, message) = if status == 429 {
        (
            ErrorKind::Throttled,
            format!("HTTP {status}: the server throttled the request"),
        )
    } else {
        (
            ErrorKind::HttpStatus,
            format!("HTTP error {status} {}", head.reason()),
        )
    };
    Err(Error::new(kind, message).with_response(HttpErrorResponse {
        status,
        headers: head.into_js_headers(),
        data: String::from_utf8_lossy(&body).into_owned(),
    }))
}

/// Collects a response body in memory: decodes its Content-Encoding and
/// refuses more than `Limits::max_body_bytes` after decoding (SPEC §4,
/// error 19).
#[derive(Debug)]
pub struct BodyCollector {
    decoder: ContentDecoder,
    buf: Vec<u8>,
}

impl BodyCollector {
    /// A collector for the body of `head`, at most `max_bytes` after
    /// decoding. A Content-Length over the limit on an unencoded body fails
    /// at once.
    pub fn new(head: &ResponseHead, max_bytes: u64) -> Result<Self, Error> {
        let encoding = head.header("content-encoding");
        let declared = head
            .header("content-length")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let identity = encoding.is_none_or(|e| e.trim_ascii().eq_ignore_ascii_case(b"identity"));
        if let Some(len) = declared.filter(|_| identity) {
            if len > max_bytes {
                return Err(ProtocolError::BodyTooLarge { max: max_bytes }.into());
            }
        }
        // Reserve what the head promises, within the limit and 1 MiB.
        let reserve = declared.unwrap_or(0).min(max_bytes).min(1 << 20) as usize;
        Ok(BodyCollector {
            decoder: ContentDecoder::new(encoding, max_bytes),
            buf: Vec::with_capacity(reserve),
        })
    }

    /// Adds body bytes as they arrive.
    pub fn push(&mut self, data: &[u8]) -> Result<(), Error> {
        self.decoder.push(data, &mut self.buf).map_err(Error::from)
    }

    /// The whole decoded body.
    pub fn finish(mut self) -> Result<Vec<u8>, Error> {
        self.decoder.finish(&mut self.buf)?;
        Ok(self.buf)
    }
}
