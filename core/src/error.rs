//! The error type every API returns, and the one table that maps it to the
//! mini-program error codes of SPEC §4-§7.
//!
//! Each layer of the core has its own precise error (`url::UrlError`,
//! `policy::PolicyError`, `http1::ProtocolError`, ...). They all convert into
//! [`Error`], which carries an [`ErrorKind`] (what went wrong, independent of
//! the API) and a message for people. The numeric code a mini-program sees
//! depends on the API that failed (a timeout is 13 for `my.request` but 12 for
//! `my.uploadFile`), so it is derived in exactly one place:
//! [`ErrorKind::code`].

use std::fmt;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::JsHeaders;

/// Which mini-program API an error is reported through; selects the code
/// table of SPEC §4 (request), §5 (upload), §6 (download) or §7 (socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// `my.request` (SPEC §4).
    Request,
    /// `my.uploadFile` (SPEC §5).
    Upload,
    /// `my.downloadFile` (SPEC §6).
    Download,
    /// `my.connectSocket` and the socket calls (SPEC §7).
    Socket,
}

/// What went wrong, independent of the API that reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The page that started the call went away (SPEC §3 pages).
    PageGone,
    /// Bad options: missing or malformed field, wrong JSON type, invalid
    /// header, data that cannot be encoded.
    InvalidOptions,
    /// The URL is empty (socket code 3; options error elsewhere).
    EmptyUrl,
    /// The URL cannot be parsed (socket code 4; options error elsewhere).
    InvalidUrl,
    /// The URL's scheme is not one this API speaks at all (socket code 5).
    UnsupportedScheme,
    /// The URL's query holds malformed percent-encoding (request code 15).
    MalformedQuery,
    /// The origin is not allowed by the domain policy.
    NotAllowed,
    /// A plain `http`/`ws` URL where only HTTPS/WSS is allowed.
    Insecure,
    /// DNS failure, refused or reset connection, connection closed early.
    Network,
    /// The deadline passed.
    Timeout,
    /// TLS failed: certificate not trusted, expired, for another host.
    Tls,
    /// The peer broke HTTP/1.1 framing or exceeded a client limit.
    Protocol,
    /// More than the allowed number of redirects.
    TooManyRedirects,
    /// The server answered with a status of 400-599 (other than 429).
    HttpStatus,
    /// The server throttled the request (HTTP 429).
    Throttled,
    /// The caller aborted the task.
    Aborted,
    /// The configured proxy failed.
    Proxy,
    /// The response could not be decoded as the requested dataType.
    Decode,
    /// The file to upload does not exist or is not a regular file.
    FileNotFound,
    /// A path outside the app's readable area.
    FileAccess,
    /// Writing the downloaded file failed (disk full, permissions).
    FileWrite,
    /// A socket connect was superseded by a newer one before it opened.
    Superseded,
    /// Too many sockets are open or connecting at once.
    TooManySockets,
    /// The WebSocket handshake response is invalid.
    Handshake,
    /// A subprotocol was requested and the response names none.
    NoSubprotocol,
    /// Send or close while no socket is open.
    NotConnected,
    /// Sending failed (broken connection, data not valid base64).
    SendFailed,
    /// A message exceeded the size limit.
    MessageTooLarge,
    /// Anything not covered above.
    Unknown,
}

impl ErrorKind {
    /// The mini-program error code for this kind of failure in `api`.
    ///
    /// This is the single classification table of SPEC §4 (request), §5
    /// (upload), §6 (download) and §7 (socket).
    pub fn code(self, api: Api) -> u32 {
        use Api::*;
        use ErrorKind::*;
        match (api, self) {
            // SPEC §4, my.request.
            (Request, PageGone) => 1,
            (Request, InvalidOptions | EmptyUrl | InvalidUrl) => 2,
            (Request, UnsupportedScheme | NotAllowed | Insecure) => 11,
            (Request, Network) => 12,
            (Request, Timeout) => 13,
            (Request, Decode) => 14,
            (Request, MalformedQuery) => 15,
            (Request, HttpStatus | Tls | Protocol | TooManyRedirects) => 19,
            (Request, Aborted | Throttled) => 20,
            (Request, Proxy) => 23,
            (Request, _) => 12,

            // SPEC §5, my.uploadFile.
            (Upload, PageGone) => 1,
            (Upload, InvalidOptions | EmptyUrl | InvalidUrl | MalformedQuery) => 2,
            (Upload, FileNotFound) => 11,
            (Upload, NotAllowed | Insecure | UnsupportedScheme | FileAccess) => 13,
            (Upload, _) => 12,

            // SPEC §6, my.downloadFile.
            (Download, PageGone) => 1,
            (Download, InvalidOptions | EmptyUrl | InvalidUrl | MalformedQuery) => 2,
            (Download, NotAllowed | UnsupportedScheme | FileAccess) => 13,
            (Download, Insecure) => 20,
            (Download, _) => 12,

            // SPEC §7, sockets.
            (Socket, Superseded | TooManySockets | InvalidOptions) => 2,
            (Socket, EmptyUrl) => 3,
            (Socket, InvalidUrl | MalformedQuery) => 4,
            (Socket, UnsupportedScheme) => 5,
            (Socket, Timeout) => 6,
            (Socket, Tls) => 7,
            (Socket, Handshake | Insecure) => 8,
            (Socket, NoSubprotocol) => 9,
            (Socket, NotConnected) => 10,
            (Socket, SendFailed) => 11,
            (Socket, MessageTooLarge) => 12,
            (Socket, NotAllowed) => 13,
            (Socket, _) => 1,
        }
    }
}

/// What an HTTP error response carried (SPEC §4: an HTTP error also carries
/// `status`, `headers` and `data` as text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpErrorResponse {
    /// The response status code.
    pub status: u16,
    /// Response headers as the JSON bridge shows them (server's names,
    /// repeated fields joined with `, `), in arrival order.
    pub headers: JsHeaders,
    /// The body as text (invalid UTF-8 replaced with U+FFFD).
    pub data: String,
}

/// An mpnet failure: a kind, a message for people, and for HTTP errors the
/// response that caused it.
///
/// ```
/// use mpnet_core::{Api, Error, ErrorKind};
/// let e = Error::new(ErrorKind::Timeout, "no response within 30000 ms");
/// assert_eq!(e.code(Api::Request), 13);
/// assert_eq!(e.code(Api::Upload), 12);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    response: Option<Box<HttpErrorResponse>>,
}

impl Error {
    /// An error of `kind` with a message saying what was wrong.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            response: None,
        }
    }

    /// Shorthand for an [`ErrorKind::InvalidOptions`] error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidOptions, message)
    }

    /// Attaches the HTTP response that caused this error.
    pub fn with_response(mut self, response: HttpErrorResponse) -> Self {
        self.response = Some(Box::new(response));
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP response that caused this error, if any.
    pub fn response(&self) -> Option<&HttpErrorResponse> {
        self.response.as_deref()
    }

    /// The mini-program error code when reported through `api`.
    pub fn code(&self, api: Api) -> u32 {
        self.kind.code(api)
    }

    /// A serialisable view of this error as `api` reports it:
    /// `{ "error": N, "errorMessage": "...", "status"?, "headers"?, "data"? }`.
    pub fn to_js(&self, api: Api) -> JsError<'_> {
        JsError { error: self, api }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// The JSON shape of an error (SPEC §4 and §8); made by [`Error::to_js`].
#[derive(Debug, Clone, Copy)]
pub struct JsError<'a> {
    error: &'a Error,
    api: Api,
}

impl Serialize for JsError<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let e = self.error;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("error", &e.code(self.api))?;
        map.serialize_entry("errorMessage", &e.message)?;
        if let Some(r) = &e.response {
            map.serialize_entry("status", &r.status)?;
            map.serialize_entry("headers", &r.headers)?;
            map.serialize_entry("data", &r.data)?;
        }
        map.end()
    }
}

/// Serialises `(name, value)` pairs as a JSON object in order.
pub(crate) struct HeaderObject<'a>(pub(crate) &'a [(String, String)]);

impl Serialize for HeaderObject<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_codes_follow_spec_4() {
        let cases = [
            (ErrorKind::PageGone, 1),
            (ErrorKind::InvalidOptions, 2),
            (ErrorKind::NotAllowed, 11),
            (ErrorKind::Insecure, 11),
            (ErrorKind::Network, 12),
            (ErrorKind::Timeout, 13),
            (ErrorKind::Decode, 14),
            (ErrorKind::MalformedQuery, 15),
            (ErrorKind::HttpStatus, 19),
            (ErrorKind::Tls, 19),
            (ErrorKind::Protocol, 19),
            (ErrorKind::TooManyRedirects, 19),
            (ErrorKind::Aborted, 20),
            (ErrorKind::Throttled, 20),
            (ErrorKind::Proxy, 23),
        ];
        for (kind, code) in cases {
            assert_eq!(kind.code(Api::Request), code, "{kind:?}");
        }
    }

    #[test]
    fn upload_and_download_codes_follow_spec_5_and_6() {
        assert_eq!(ErrorKind::FileNotFound.code(Api::Upload), 11);
        assert_eq!(ErrorKind::Timeout.code(Api::Upload), 12);
        assert_eq!(ErrorKind::Aborted.code(Api::Upload), 12);
        assert_eq!(ErrorKind::HttpStatus.code(Api::Upload), 12);
        assert_eq!(ErrorKind::NotAllowed.code(Api::Upload), 13);
        assert_eq!(ErrorKind::FileAccess.code(Api::Upload), 13);
        assert_eq!(ErrorKind::NotAllowed.code(Api::Download), 13);
        assert_eq!(ErrorKind::Insecure.code(Api::Download), 20);
        assert_eq!(ErrorKind::FileWrite.code(Api::Download), 12);
        assert_eq!(ErrorKind::Timeout.code(Api::Download), 12);
    }

    #[test]
    fn socket_codes_follow_spec_7() {
        let cases = [
            (ErrorKind::Unknown, 1),
            (ErrorKind::Superseded, 2),
            (ErrorKind::TooManySockets, 2),
            (ErrorKind::EmptyUrl, 3),
            (ErrorKind::InvalidUrl, 4),
            (ErrorKind::UnsupportedScheme, 5),
            (ErrorKind::Timeout, 6),
            (ErrorKind::Tls, 7),
            (ErrorKind::Handshake, 8),
            (ErrorKind::Insecure, 8),
            (ErrorKind::NoSubprotocol, 9),
            (ErrorKind::NotConnected, 10),
            (ErrorKind::SendFailed, 11),
            (ErrorKind::MessageTooLarge, 12),
            (ErrorKind::NotAllowed, 13),
        ];
        for (kind, code) in cases {
            assert_eq!(kind.code(Api::Socket), code, "{kind:?}");
        }
    }

    #[test]
    fn http_error_serialises_with_status_headers_and_text_data() {
        let e = Error::new(ErrorKind::HttpStatus, "HTTP 404").with_response(HttpErrorResponse {
            status: 404,
            headers: [("Content-Type", "text/plain")].into_iter().collect(),
            data: "nope".into(),
        });
        let json = serde_json::to_string(&e.to_js(Api::Request)).unwrap();
        assert_eq!(
            json,
            r#"{"error":19,"errorMessage":"HTTP 404","status":404,"headers":{"Content-Type":"text/plain"},"data":"nope"}"#
        );
    }
}
