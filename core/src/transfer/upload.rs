//! `my.uploadFile` (SPEC §5) as data: the checked request, the prepared
//! `POST multipart/form-data` with its exact length, the body cursor with
//! progress, and the result.
//!
//! ```text
//!  UploadRequest::new(ctx, opts)      url (2), scheme and domain policy (13),
//!        │                            headers (2), fileName/filePath empty (2),
//!        │                            filePath outside the read folders (13)
//!        │   transport: canonicalize(path()) and the folders;
//!        │   sandbox::check_canonical (13); a regular file? (11); its length
//!        ▼
//!  prepare(file_len, random) ──► PreparedUpload
//!        exchange(limits): the head (content-length = the whole body)
//!        body(): UploadBody ── segment() / advance(n) → Option<ProgressEvent>
//!        response head: headers_received(head), body_collector(head, limits)
//!        finish(head, body) ──► UploadResponse { data, statusCode, header }
//!                               or error 12 (status 400-599)
//! ```
//!
//! The whole upload has [`UPLOAD_TIMEOUT`] (30 s, SPEC §5); the transport
//! runs that timer and reports [`timed_out`]. Redirects are not followed:
//! the body is a file streamed once, so a 3xx answer is the result.

use std::path::{Path, PathBuf};

use http::header::{HeaderValue, CONTENT_TYPE};
use http::HeaderMap;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::multipart::{file_content_type, MultipartPlan, Segment};
use super::options::{UploadOptions, UPLOAD_TIMEOUT};
use super::progress::{Progress, ProgressEvent};
use super::sandbox;
use crate::http1::{Exchange, RequestHead, ResponseHead};
use crate::request::BodyCollector;
use crate::target::Target;
use crate::{headers, Api, AppContext, Error, ErrorKind, HttpErrorResponse, JsHeaders, Limits};

/// An upload whose options, URL, headers and file path have been checked;
/// the transport now checks the file itself and calls
/// [`prepare`](Self::prepare) with its length.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadRequest {
    target: Target,
    headers: HeaderMap,
    path: PathBuf,
    field_name: String,
    base_name: String,
    form_data: Map<String, Value>,
}

impl UploadRequest {
    /// Checks `opts` in `ctx`, in this order: the URL (empty, unparseable,
    /// too long: 2), its scheme and the domain policy (13; plain `http` only
    /// to loopback with the development switch), the headers (2), the
    /// query's percent-encoding (2), an empty `fileName` or `filePath` (2),
    /// and `filePath` against the readable folders
    /// ([`sandbox::readable_dirs`], [`sandbox::resolve_upload_path`]: 13).
    pub fn new(ctx: &AppContext, opts: &UploadOptions) -> Result<Self, Error> {
        let target = ctx.parse_target(&opts.url)?;
        ctx.check_target(&target, Api::Upload)?;
        let headers = headers::build(ctx, &opts.header, None)?;
        target.check_query()?;
        if opts.file_name.is_empty() {
            return Err(Error::invalid(
                "fileName (the form field of the file) is empty",
            ));
        }
        if opts.file_path.is_empty() {
            return Err(Error::invalid("filePath is empty"));
        }
        let path = sandbox::resolve_upload_path(&sandbox::readable_dirs(ctx), &opts.file_path)?;
        let base_name = path
            .file_name()
            .map_or_else(|| "file".to_string(), |n| n.to_string_lossy().into_owned());
        Ok(UploadRequest {
            target,
            headers,
            path,
            field_name: opts.file_name.clone(),
            base_name,
            form_data: opts.form_data.clone(),
        })
    }

    /// Where the request goes.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The file to send, resolved lexically inside the readable folders.
    /// The transport canonicalises it, calls [`sandbox::check_canonical`],
    /// checks that it is a regular file ([`sandbox::not_found`],
    /// [`sandbox::not_a_file`], [`sandbox::open_error`]) and reads it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file part's `filename`: the base name of `filePath` (a symbolic
    /// link's own name, not its target's).
    pub fn base_name(&self) -> &str {
        &self.base_name
    }

    /// Plans the body for a file of `file_len` bytes (its length when it
    /// was opened) with a boundary from `boundary_random` (16 random bytes
    /// the transport draws). The file part's content type comes from the
    /// base name's extension ([`file_content_type`]).
    pub fn prepare(
        &self,
        file_len: u64,
        boundary_random: [u8; 16],
    ) -> Result<PreparedUpload, Error> {
        let plan = MultipartPlan::new(
            &self.form_data,
            &self.field_name,
            &self.base_name,
            file_content_type(&self.base_name),
            file_len,
            boundary_random,
        )?;
        let mut headers = self.headers.clone();
        let content_type = HeaderValue::from_str(&plan.content_type_header()).map_err(|_| {
            Error::new(
                ErrorKind::Unknown,
                "the multipart content type is not a header value",
            )
        })?;
        // A caller's content-type would not name our boundary: ours wins.
        headers.insert(CONTENT_TYPE, content_type);
        Ok(PreparedUpload {
            method: http::Method::POST,
            target: self.target.clone(),
            headers,
            plan,
        })
    }
}

/// One upload ready to send: `POST`, where, headers with the multipart
/// content type, and the body plan with its exact length.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedUpload {
    method: http::Method,
    target: Target,
    headers: HeaderMap,
    plan: MultipartPlan,
}

impl PreparedUpload {
    /// [`UploadRequest::new`] then [`UploadRequest::prepare`]: every check
    /// that needs no file, and the plan for a file of `file_len` bytes.
    /// Transports should use the two steps, to check the file in between.
    pub fn new(
        ctx: &AppContext,
        opts: &UploadOptions,
        file_len: u64,
        boundary_random: [u8; 16],
    ) -> Result<Self, Error> {
        UploadRequest::new(ctx, opts)?.prepare(file_len, boundary_random)
    }

    /// Where the request goes.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The headers (without `host` and `content-length`, which the head
    /// writer adds).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body plan.
    pub fn plan(&self) -> &MultipartPlan {
        &self.plan
    }

    /// The exact body length, sent as `content-length` (SPEC §5), and the
    /// progress events' `totalBytesExpectedToWrite`.
    pub fn content_length(&self) -> u64 {
        self.plan.content_length()
    }

    /// The head of this request for the HTTP/1.1 exchange.
    pub fn head(&self) -> RequestHead<'_> {
        RequestHead {
            method: &self.method,
            target: self.target.request_target_str(),
            host: self.target.host_header_str(),
            headers: &self.headers,
            body_len: Some(self.plan.content_length()),
        }
    }

    /// Starts the HTTP/1.1 exchange: write [`Exchange::head`], then the
    /// body from [`body`](Self::body), then read the response.
    pub fn exchange(&self, limits: &Limits) -> Exchange<crate::http1::state::SendRequest> {
        Exchange::new(&self.head(), limits)
    }

    /// The body from its first byte, with progress towards
    /// [`content_length`](Self::content_length).
    pub fn body(&self) -> UploadBody {
        UploadBody {
            cursor: self.plan.cursor(),
            progress: Progress::new(self.plan.content_length()),
        }
    }

    /// The `onHeadersReceived` event for the response head (SPEC §5).
    pub fn headers_received(&self, head: &ResponseHead) -> HeadersReceived {
        HeadersReceived {
            header: head.js_headers(),
        }
    }

    /// A collector for the response body: decoded per `Content-Encoding`, at
    /// most `limits.max_body_bytes` (more: upload failed, 12).
    pub fn body_collector(
        &self,
        head: &ResponseHead,
        limits: &Limits,
    ) -> Result<BodyCollector, Error> {
        BodyCollector::new(head, limits.max_body_bytes)
    }

    /// The result from the response head and its whole body (SPEC §5):
    /// a status below 400 is success, `data` the body as text (invalid
    /// UTF-8 replaced with U+FFFD) and `statusCode` a string; 400 and above
    /// is [`ErrorKind::HttpStatus`] (12) carrying status, headers and the
    /// body as text.
    pub fn finish(&self, head: &ResponseHead, body: Vec<u8>) -> Result<UploadResponse, Error> {
        let header = head.js_headers();
        let data = String::from_utf8(body)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        if head.status >= 400 {
            return Err(Error::new(
                ErrorKind::HttpStatus,
                format!(
                    "upload failed: HTTP error {} {}",
                    head.status,
                    head.reason()
                ),
            )
            .with_response(HttpErrorResponse {
                status: head.status,
                headers: header,
                data,
            }));
        }
        Ok(UploadResponse {
            data,
            status_code: head.status.to_string(),
            header,
        })
    }
}

/// The body of an upload as the transport sends it: what to write next
/// and, as bytes go out, the progress events (SPEC §5).
///
/// ```text
///  loop match body.segment():
///    Segment::Bytes(b)            write some of b;        body.advance(n) → event?
///    Segment::File{offset, len}   read ≤ len file bytes;  write; advance(n) → event?
///                                 (the file ended early: sandbox::read_error, 12)
///    Segment::Done                break
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadBody {
    cursor: super::multipart::BodyCursor,
    progress: Progress,
}

impl UploadBody {
    /// What to send next.
    pub fn segment(&self) -> Segment {
        self.cursor.segment()
    }

    /// Records `n` bytes of the current segment as written (clamped to
    /// it); the progress event to report, if one is due. The event for the
    /// last byte is `progress: 100`.
    pub fn advance(&mut self, n: u64) -> Option<ProgressEvent> {
        let n = self.cursor.advance(n);
        self.progress.advance(n)
    }

    /// Body bytes written so far.
    pub fn position(&self) -> u64 {
        self.cursor.position()
    }

    /// The whole body's length.
    pub fn total(&self) -> u64 {
        self.cursor.total()
    }

    /// Whether every byte has been written.
    pub fn is_done(&self) -> bool {
        self.cursor.is_done()
    }
}

/// A successful upload (SPEC §5): `{ data, statusCode, header }`, with
/// `statusCode` a string, as the seed has it.
///
/// ```
/// let r = mpnet_core::transfer::UploadResponse {
///     data: "ok".into(),
///     status_code: "200".into(),
///     header: [("Content-Type", "text/plain")].into_iter().collect(),
/// };
/// assert_eq!(
///     serde_json::to_string(&r).unwrap(),
///     r#"{"data":"ok","statusCode":"200","header":{"Content-Type":"text/plain"}}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadResponse {
    /// The response body as text.
    pub data: String,
    /// The HTTP status, as a string.
    pub status_code: String,
    /// Response headers: the server's names, repeated fields joined with
    /// `, `, in arrival order.
    pub header: JsHeaders,
}

impl UploadResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header.get(name)
    }
}

impl Serialize for UploadResponse {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("data", &self.data)?;
        map.serialize_entry("statusCode", &self.status_code)?;
        map.serialize_entry("header", &self.header)?;
        map.end()
    }
}

/// The `UploadTask.onHeadersReceived` event (SPEC §5): `{ header }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadersReceived {
    /// Response headers as in [`UploadResponse::header`].
    pub header: JsHeaders,
}

impl Serialize for HeadersReceived {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("header", &self.header)?;
        map.end()
    }
}

/// `UploadTask.abort()` (SPEC §5): error 12 with an "aborted" message.
pub fn aborted() -> Error {
    Error::new(ErrorKind::Aborted, "uploadFile aborted")
}

/// The upload did not finish within [`UPLOAD_TIMEOUT`] (SPEC §5: 12).
pub fn timed_out() -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("upload timed out after {} ms", UPLOAD_TIMEOUT.as_millis()),
    )
}
