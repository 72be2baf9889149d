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
///
/// [`Default`] is the empty response (status 0, no headers, empty text
/// data, an empty profile), allocating nothing: the `out` to start a
/// series of `request_into` calls with (see [`ResponseBuffers`]).
///
/// [`ResponseBuffers`]: super::ResponseBuffers
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

/// The empty response: status 0, no headers, `Text("")`, no profile.
impl Default for Response {
    fn default() -> Self {
        Response {
            status: 0,
            headers: JsHeaders::default(),
            data: ResponseData::Text(String::new()),
            profile: Profile::default(),
        }
    }
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
///
/// Text, base64 and arraybuffer data live in `body`'s own buffer (base64
/// is encoded over the bytes, growing the buffer to 4/3 of them), so a
/// body buffer with room allocates nothing here; json data is a new value.
/// (An arraybuffer whose length is less than the buffer's capacity costs
/// `bytes` one small allocation to share it.)
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
        DataType::Base64 => Ok(ResponseData::Base64(base64_in_place(body))),
        DataType::ArrayBuffer => Ok(ResponseData::ArrayBuffer(Bytes::from(body))),
    }
}

/// Standard base64 with padding (RFC 4648 §4, as SPEC §4 asks) of
/// `bytes`, written over `bytes` itself: the buffer grows to the encoded
/// length and each group of 3 bytes becomes 4 characters, from the last
/// group to the first (group `g` reads bytes `3g..3g+3` and writes
/// `4g..4g+4`; since `4g >= 3g`, a write never reaches the bytes of an
/// earlier group, which are still to be read).
fn base64_in_place(mut bytes: Vec<u8>) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let len = bytes.len();
    let groups = len.div_ceil(3);
    let Some(encoded) = groups.checked_mul(4) else {
        // Past any memory; kept total rather than panicking.
        return base64::engine::general_purpose::STANDARD.encode(&bytes);
    };
    bytes.resize(encoded, 0);
    let sym = |six: u32| ALPHABET.get((six & 63) as usize).copied().unwrap_or(b'=');
    for g in (0..groups).rev() {
        let at = |i: usize| {
            let i = 3 * g + i;
            if i < len {
                bytes.get(i).copied().unwrap_or(0)
            } else {
                0
            }
        };
        let (b0, b1, b2) = (at(0), at(1), at(2));
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        let present = len.saturating_sub(3 * g).min(3);
        let out = [
            sym(n >> 18),
            sym(n >> 12),
            if present > 1 { sym(n >> 6) } else { b'=' },
            if present > 2 { sym(n) } else { b'=' },
        ];
        if let Some(slot) = bytes.get_mut(4 * g..4 * g + 4) {
            slot.copy_from_slice(&out);
        }
    }
    // Only alphabet characters and `=` were written: this is text; the
    // lossy fallback keeps the function total.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
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
    let mut out = Response::default();
    classify_into(head, body, data_type, &mut out).map(|()| out)
}

/// [`classify`], writing a success into `out` (every field of it; the
/// profile is reset to empty). On an error `out` is left as it was. The
/// response is built in the head's and the body's buffers (see
/// [`decode_data`]), so with recycled buffers a success allocates nothing
/// here but json values.
pub fn classify_into(
    head: ResponseHead,
    body: Vec<u8>,
    data_type: DataType,
    out: &mut Response,
) -> Result<(), Error> {
    let status = head.status;
    if is_success(status) {
        let data = decode_data(data_type, body)?;
        *out = Response {
            status,
            headers: head.into_js_headers(),
            data,
            profile: Profile::default(),
        };
        return Ok(());
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
        Self::new_in(head, max_bytes, Vec::new())
    }

    /// [`new`](Self::new), collecting into `buf` (cleared first; its
    /// capacity kept, and grown only when the declared length needs more):
    /// a recycled body buffer with room makes collecting allocate nothing.
    pub fn new_in(head: &ResponseHead, max_bytes: u64, mut buf: Vec<u8>) -> Result<Self, Error> {
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
        buf.clear();
        buf.reserve_exact(reserve);
        Ok(BodyCollector {
            decoder: ContentDecoder::new(encoding, max_bytes),
            buf,
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn base64_in_place_pads_as_the_standard_engine() {
        for (input, expected) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"\xff\xfe\xfd\x00", "//79AA=="),
        ] {
            assert_eq!(base64_in_place(input.to_vec()), expected);
        }
    }

    proptest! {
        /// Encoding over the bytes gives what the base64 crate gives, and
        /// stays in the buffer when it has room.
        #[test]
        fn base64_in_place_matches_the_engine(
            bytes in prop::collection::vec(any::<u8>(), 0..200),
            room in any::<bool>(),
        ) {
            let expected = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let mut buf = bytes.clone();
            if room {
                buf.reserve(bytes.len() / 3 * 4 + 4);
            }
            let ptr = buf.as_ptr();
            let encoded = base64_in_place(buf);
            prop_assert_eq!(&encoded, &expected);
            if room {
                prop_assert_eq!(encoded.as_ptr(), ptr);
            }
        }
    }
}
