//! Typed `my.request` options (SPEC §4) with a builder. The JSON bridge
//! ([`crate::bridge`]) parses the JavaScript shape into this type.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::Error;

/// Default `timeout` of `my.request` (SPEC §4).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(30_000);

/// The methods `my.request` supports (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Method {
    /// `GET` (the default): data goes into the query string.
    #[default]
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
}

impl Method {
    /// The method's name, upper case.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }

    /// The `http` crate's method.
    pub fn to_http(self) -> http::Method {
        match self {
            Method::Get => http::Method::GET,
            Method::Post => http::Method::POST,
            Method::Put => http::Method::PUT,
            Method::Delete => http::Method::DELETE,
        }
    }
}

impl FromStr for Method {
    type Err = Error;
    /// Case-insensitive (SPEC §4); anything else is error 2.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_uppercase().as_str() {
            "GET" => Ok(Method::Get),
            "POST" => Ok(Method::Post),
            "PUT" => Ok(Method::Put),
            "DELETE" => Ok(Method::Delete),
            _ => Err(Error::invalid(format!(
                "method {s:?} is not supported: use GET, POST, PUT or DELETE"
            ))),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the response body is decoded (SPEC §4 `dataType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DataType {
    /// Parse as JSON (the default); an empty body gives `""`.
    #[default]
    Json,
    /// UTF-8 text.
    Text,
    /// Standard base64 of the bytes, with padding.
    Base64,
    /// The raw bytes.
    ArrayBuffer,
}

impl DataType {
    /// The option's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Json => "json",
            DataType::Text => "text",
            DataType::Base64 => "base64",
            DataType::ArrayBuffer => "arraybuffer",
        }
    }
}

impl FromStr for DataType {
    type Err = Error;
    /// `json`, `text`, `base64`, `arraybuffer`, ASCII case-insensitive;
    /// anything else is error 2.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(DataType::Json),
            "text" => Ok(DataType::Text),
            "base64" => Ok(DataType::Base64),
            "arraybuffer" => Ok(DataType::ArrayBuffer),
            _ => Err(Error::invalid(format!(
                "dataType {s:?} is not supported: use json, text, base64 or arraybuffer"
            ))),
        }
    }
}

/// The `data` option (SPEC §4).
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// An object or array (or any JSON value) from `JSON.parse`, in property
    /// order. Shared: a document sent many times is encoded from the same
    /// value, never copied (`.json(value)` takes a `Value` or an `Arc`).
    Json(Arc<serde_json::Value>),
    /// A string, sent as it is.
    Text(String),
    /// Bytes (an `ArrayBuffer`), sent as they are.
    Bytes(Bytes),
}

/// The options of one `my.request` call.
///
/// ```
/// use mpnet_core::request::{DataType, Method, RequestOptions};
/// let opts = RequestOptions::new("https://httpbin.org/post")
///     .method(Method::Post)
///     .json(serde_json::json!({"from": "支付宝", "production": "AlipayJSAPI"}))
///     .data_type(DataType::Json);
/// assert_eq!(opts.method, Method::Post);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RequestOptions {
    /// The URL (required).
    pub url: String,
    /// Request headers, in order. `content-type` defaults to
    /// `application/json` when none is given (SPEC §4).
    pub headers: Vec<(String, String)>,
    /// The method (default GET).
    pub method: Method,
    /// The data, if any.
    pub data: Option<Data>,
    /// The whole request's timeout (default 30 s).
    pub timeout: Duration,
    /// How to decode the response (default json).
    pub data_type: DataType,
}

impl RequestOptions {
    /// Options for a GET of `url` with every default.
    pub fn new(url: impl Into<String>) -> Self {
        RequestOptions {
            url: url.into(),
            headers: Vec::new(),
            method: Method::Get,
            data: None,
            timeout: DEFAULT_TIMEOUT,
            data_type: DataType::Json,
        }
    }
    /// Sets the method.
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }
    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    /// Sets object/array data: a `serde_json::Value`, or an
    /// `Arc<serde_json::Value>` to send one document many times without
    /// copying it.
    pub fn json(mut self, value: impl Into<Arc<serde_json::Value>>) -> Self {
        self.data = Some(Data::Json(value.into()));
        self
    }
    /// Sets string data.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.data = Some(Data::Text(text.into()));
        self
    }
    /// Sets binary data.
    pub fn bytes(mut self, bytes: impl Into<Bytes>) -> Self {
        self.data = Some(Data::Bytes(bytes.into()));
        self
    }
    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Sets the dataType.
    pub fn data_type(mut self, data_type: DataType) -> Self {
        self.data_type = data_type;
        self
    }
}
