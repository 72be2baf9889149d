//! `my.downloadFile` (SPEC §6) as data: the prepared `GET`, the flow across
//! redirects with its deadline, where the file goes, and the result.
//!
//! ```text
//!  DownloadFlow::new(ctx, opts, now)   url (2), not https (20), domain policy (13),
//!        │                             headers (2), no temp folder (12)
//!  ┌─► request().exchange(limits) ── GET, no body, no Accept-Encoding
//!  │   on_head(ctx, head)
//!  │     ├─ DownloadStep::Redirect { drain } ── 301/302/303/307/308 with Location;
//!  └─────┘   the hop is checked like the first URL (20, 13); more than
//!            Limits::max_redirects: 12
//!        ├─ DownloadStep::Save(save) ── 200-299: save.paths(unique) → (temp, final);
//!        │   stream the body into temp, save.progress() → events;
//!        │   rename temp → final; finish(final)
//!        └─ Err ── any other status: 12, with status and headers
//! ```
//!
//! The file holds the body exactly as the server sent it: no
//! `Accept-Encoding` is sent by default and a `Content-Encoding` is not
//! decoded. The deadline ([`DownloadOptions::timeout`], default 60 s)
//! covers the whole call, first byte sent to last byte received. On any
//! failure the transport deletes the temporary file (SPEC §6: nothing is
//! left behind).

use std::path::{Path, PathBuf};
use std::time::Instant;

use http::header::{AUTHORIZATION, COOKIE};
use http::HeaderMap;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::options::DownloadOptions;
use super::progress::Progress;
use super::sandbox;
use crate::http1::{Exchange, RequestHead, ResponseHead};
use crate::request::flow::REDIRECT_DRAIN_LIMIT;
use crate::target::{Target, UrlError};
use crate::{headers, Api, AppContext, Error, ErrorKind, HttpErrorResponse, Limits};

/// How many bytes of a download mpnet-smol gathers before one `write` to
/// the file (on its blocking pool): fewer system calls and hand-offs than a
/// write per socket read, and memory that does not grow with the file.
///
/// A decimal megabyte, not 1 MiB, on purpose: with 1 MiB writes every write
/// starts on a 1 MiB-aligned file offset, and Linux (6.x, ext4 with large
/// folios) fills the range with large page-cache folios. Those come from
/// the page allocator's high-order free blocks, which a VM whose balloon
/// reports free pages (`virtio_balloon` free page reporting) has handed
/// back to the host, so their first touch is a host page fault per page.
/// Writes that start off those boundaries get smaller folios, mostly from
/// recently freed pages. On the bench VM a 1 GiB file written in 1 MiB
/// writes ran at 450–500 MB/s (2.2 s of CPU), in 1,000,000-byte writes at
/// 1,700–2,800 MB/s (0.4–0.6 s), and mpnet-smol's downloads went from
/// about 0.5x to 1.5x curl. See BENCHMARKS.md, "Downloads and the VM's
/// memory balloon". (mpnet-blocking's buffered writer already writes at
/// uneven offsets.)
pub const FILE_WRITE_BATCH: usize = 1_000_000;

/// The statuses that redirect.
const REDIRECT_STATUSES: [u16; 5] = [301, 302, 303, 307, 308];

/// `my.downloadFile` speaks `https` only (SPEC §6: "20 the URL is not
/// HTTPS"): any other scheme, not only `http`, is reported as
/// [`ErrorKind::Insecure`] (20) rather than as an unsupported scheme.
fn not_https(e: Error) -> Error {
    if e.kind() == ErrorKind::UnsupportedScheme {
        Error::new(
            ErrorKind::Insecure,
            format!("downloadFile needs an https:// URL: {}", e.message()),
        )
    } else {
        e
    }
}

/// Checks that a download may reach `target` (SPEC §3, §6).
fn check(ctx: &AppContext, target: &Target) -> Result<(), Error> {
    ctx.check_target(target, Api::Download).map_err(not_https)
}

/// One download request ready to send: `GET`, where, headers.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedDownload {
    method: http::Method,
    target: Target,
    headers: HeaderMap,
}

impl PreparedDownload {
    /// Checks `opts` in `ctx`, in this order: the URL (empty, unparseable,
    /// too long: 2), its scheme (`http` other than to loopback with the
    /// development switch, or any scheme not `https`: 20), the domain
    /// policy (13), the headers (2) and the query's percent-encoding (2).
    /// No `Accept-Encoding` is added (a caller's is sent as given).
    pub fn new(ctx: &AppContext, opts: &DownloadOptions) -> Result<Self, Error> {
        let target = ctx
            .parse_target(&opts.url)
            .map_err(|e| not_https(e.into()))?;
        check(ctx, &target)?;
        let headers = headers::build(ctx, &opts.header, None)?;
        target.check_query()?;
        Ok(Self::assemble(target, headers))
    }

    fn assemble(target: Target, headers: HeaderMap) -> Self {
        PreparedDownload {
            method: http::Method::GET,
            target,
            headers,
        }
    }

    /// Where the request goes.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The headers (without `host`, which the head writer adds).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The head of this request for the HTTP/1.1 exchange (no body).
    pub fn head(&self) -> RequestHead<'_> {
        RequestHead {
            method: &self.method,
            target: self.target.request_target_str(),
            host: self.target.host_header_str(),
            headers: &self.headers,
            body_len: None,
        }
    }

    /// Starts the HTTP/1.1 exchange for this request.
    pub fn exchange(&self, limits: &Limits) -> Exchange<crate::http1::state::SendRequest> {
        Exchange::new(&self.head(), limits)
    }

    /// The request for a redirect hop to `next`: still `GET`;
    /// `Authorization` and `Cookie` are dropped when the origin changes.
    fn redirected(&self, next: Target) -> PreparedDownload {
        let mut headers = self.headers.clone();
        let same_origin = next.scheme() == self.target.scheme()
            && next.host() == self.target.host()
            && next.port() == self.target.port();
        if !same_origin {
            headers.remove(AUTHORIZATION);
            headers.remove(COOKIE);
        }
        Self::assemble(next, headers)
    }
}

/// What the transport does after a response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadStep {
    /// Follow a redirect: discard this response's body (read it to the end
    /// when `drain` is true, else close the connection), then send
    /// [`DownloadFlow::request`] again.
    Redirect {
        /// Whether the body is small enough to read and discard.
        drain: bool,
    },
    /// Save the body: see [`Save`].
    Save(Save),
}

/// Where and how a successful response's body is saved (SPEC §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Save {
    temp_dir: PathBuf,
    original_path: String,
    final_path: String,
    content_type: Option<String>,
    content_length: Option<u64>,
}

impl Save {
    /// `(temp, final)` paths for this body inside the app's temporary
    /// folder ([`sandbox::download_paths`]). The extension comes from the
    /// URL the caller gave, else from the URL after redirects, else from the
    /// `Content-Type`. `unique` must differ between downloads in flight.
    pub fn paths(&self, unique: u64) -> (PathBuf, PathBuf) {
        let url_path = if sandbox::url_extension(&self.original_path).is_some() {
            &self.original_path
        } else {
            &self.final_path
        };
        sandbox::download_paths(
            &self.temp_dir,
            url_path,
            self.content_type.as_deref(),
            unique,
        )
    }

    /// The app's temporary folder.
    pub fn temp_dir(&self) -> &Path {
        &self.temp_dir
    }

    /// The response's `Content-Type`, if any.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The response's `Content-Length`, if it had one (a single decimal
    /// number).
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// Progress for this body: towards `Content-Length`, or unknown (0)
    /// without one (SPEC §6). Count the body bytes written to the file;
    /// call [`Progress::finish`] once the body is complete.
    pub fn progress(&self) -> Progress {
        Progress::new(self.content_length.unwrap_or(0))
    }
}

/// A successful download (SPEC §6): `{ apFilePath }`.
///
/// ```
/// let r = mpnet_core::transfer::DownloadResponse { ap_file_path: "/tmp/app/mpnet-1.jpg".into() };
/// assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"apFilePath":"/tmp/app/mpnet-1.jpg"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadResponse {
    /// The saved file, inside the app's temporary folder.
    pub ap_file_path: PathBuf,
}

impl Serialize for DownloadResponse {
    /// A path that is not valid Unicode is written with U+FFFD in place of
    /// the bad bytes.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("apFilePath", &self.ap_file_path.to_string_lossy())?;
        map.end()
    }
}

/// A `my.downloadFile` in progress. See the module docs.
#[derive(Debug, Clone)]
pub struct DownloadFlow {
    current: PreparedDownload,
    original_path: String,
    temp_dir: PathBuf,
    deadline: crate::deadline::Deadline,
    redirects: u32,
}

impl DownloadFlow {
    /// Checks `opts` ([`PreparedDownload::new`]) and that the app context
    /// has a temporary folder (else 12); the deadline is `now +
    /// opts.timeout`.
    pub fn new(ctx: &AppContext, opts: &DownloadOptions, now: Instant) -> Result<Self, Error> {
        let current = PreparedDownload::new(ctx, opts)?;
        let Some(temp_dir) = ctx.temp_dir() else {
            return Err(Error::new(
                ErrorKind::FileWrite,
                "the app context has no temporary folder for downloads",
            ));
        };
        Ok(DownloadFlow {
            original_path: current.target().path().to_string(),
            current,
            temp_dir: temp_dir.clone(),
            deadline: crate::deadline::Deadline::new("download", now, opts.timeout),
            redirects: 0,
        })
    }

    /// The request to send now (changes after a redirect).
    pub fn request(&self) -> &PreparedDownload {
        &self.current
    }

    /// How many redirects have been followed.
    pub fn redirects(&self) -> u32 {
        self.redirects
    }

    /// When the whole call times out.
    pub fn poll_timeout(&self) -> Instant {
        self.deadline.at()
    }

    /// `Err` (the timeout error) once `now` has reached the deadline.
    pub fn handle_timeout(&self, now: Instant) -> Result<(), Error> {
        self.deadline.check(now)
    }

    /// The error for this call's timeout.
    pub fn timeout_error(&self) -> Error {
        self.deadline.error()
    }

    /// Decides what follows a final response head (SPEC §6): a redirect (a
    /// 301, 302, 303, 307 or 308 with `Location`, checked like the first
    /// URL: 20, 13; more than `Limits::max_redirects`: 12), saving the body
    /// (200-299), or an error (12, carrying status and headers; the body is
    /// not read).
    pub fn on_head(
        &mut self,
        ctx: &AppContext,
        head: &ResponseHead,
    ) -> Result<DownloadStep, Error> {
        let status = head.status;
        let location = head
            .header("location")
            .filter(|_| REDIRECT_STATUSES.contains(&status));
        if let Some(location) = location {
            self.follow(ctx, head, location)?;
            return Ok(DownloadStep::Redirect {
                drain: is_small_body(head),
            });
        }
        if !(200..300).contains(&status) {
            return Err(Error::new(
                ErrorKind::HttpStatus,
                format!("download failed: HTTP error {status} {}", head.reason()),
            )
            .with_response(HttpErrorResponse {
                status,
                headers: head.js_headers(),
                data: String::new(),
            }));
        }
        Ok(DownloadStep::Save(Save {
            temp_dir: self.temp_dir.clone(),
            original_path: self.original_path.clone(),
            final_path: self.current.target().path().to_string(),
            content_type: head
                .header("content-type")
                .map(|v| String::from_utf8_lossy(v).into_owned()),
            content_length: content_length(head),
        }))
    }

    fn follow(
        &mut self,
        ctx: &AppContext,
        head: &ResponseHead,
        location: &[u8],
    ) -> Result<(), Error> {
        let max = ctx.limits().max_redirects;
        if self.redirects >= max {
            return Err(Error::new(
                ErrorKind::TooManyRedirects,
                format!("more than {max} redirects"),
            ));
        }
        let location = std::str::from_utf8(location)
            .map_err(|_| Error::new(ErrorKind::Protocol, "redirect Location is not valid UTF-8"))?;
        let next = self
            .current
            .target()
            .join(location, ctx.limits())
            .map_err(|e| match e {
                UrlError::UnsupportedScheme(_) => Error::new(
                    ErrorKind::Insecure,
                    format!("redirect to {location:?}: downloadFile needs https://"),
                ),
                e => Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "redirect to an invalid Location {location:?} (HTTP {}): {e}",
                        head.status
                    ),
                ),
            })?;
        check(ctx, &next)
            .map_err(|e| Error::new(e.kind(), format!("redirect refused: {}", e.message())))?;
        self.current = self.current.redirected(next);
        self.redirects += 1;
        Ok(())
    }

    /// The result once the body is saved and renamed to `final_path`.
    pub fn finish(&self, final_path: PathBuf) -> DownloadResponse {
        DownloadResponse {
            ap_file_path: final_path,
        }
    }
}

/// A single decimal `Content-Length`, if the head has one.
fn content_length(head: &ResponseHead) -> Option<u64> {
    head.header("content-length")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// Whether a redirect's body is known to be small enough to drain.
fn is_small_body(head: &ResponseHead) -> bool {
    content_length(head).is_some_and(|n| n <= REDIRECT_DRAIN_LIMIT)
}

/// `DownloadTask.abort()` (an extension, SPEC §6): error 12.
pub fn aborted() -> Error {
    Error::new(ErrorKind::Aborted, "downloadFile aborted")
}

/// Creating, writing or renaming the downloaded file failed (disk full,
/// permissions; SPEC §6: 12).
pub fn write_error(path: &Path, err: &std::io::Error) -> Error {
    Error::new(
        ErrorKind::FileWrite,
        format!("writing {} failed: {err}", path.display()),
    )
}
