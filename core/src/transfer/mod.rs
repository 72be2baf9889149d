//! `my.uploadFile` and `my.downloadFile` (SPEC §5, §6) without I/O: options,
//! the file sandbox's lexical checks, the streaming multipart encoder,
//! progress accounting, the prepared requests and the result shapes.
//!
//! The core opens no file and draws no random number (SPEC §2): the
//! transport stats and reads the file, canonicalises paths, creates and
//! renames the download's files, and passes in the random bytes of the
//! multipart boundary and the unique number of a download's file name.
//!
//! | module | job |
//! |---|---|
//! | [`options`] | `UploadOptions`, `DownloadOptions`, their builders and JSON bridge (SPEC §5, §6, §8) |
//! | [`sandbox`] | where an upload's `filePath` may be; file errors 11 and 13; a download's file names |
//! | [`multipart`] | the `multipart/form-data` body: exact length first, then bytes in order |
//! | [`progress`] | `onProgressUpdate` events: integer percent, rate-limited, ending at 100 |
//! | [`upload`] | `PreparedUpload`: URL, policy, headers, body plan; `UploadResponse` |
//! | [`download`] | `PreparedDownload`, `DownloadFlow` (redirects, deadline); `DownloadResponse` |
//!
//! An upload, as a transport drives it:
//!
//! ```text
//!  UploadRequest::new(ctx, opts) ── url (2), scheme/policy (13), headers (2), filePath (2, 13)
//!        │  transport: canonicalize(path()), sandbox::check_canonical (13),
//!        │  metadata: regular file? (11), its length
//!        ▼
//!  prepare(file_len, random) ─► PreparedUpload ── exchange(): the head, then
//!        │                      body(): UploadBody { next() / advance(n) → progress }
//!        ▼
//!  response head ── headers_received(head) (onHeadersReceived), body_collector(head)
//!        ▼
//!  finish(head, body) ─► UploadResponse {data, statusCode, header} | error 12
//! ```
//!
//! A download:
//!
//! ```text
//!  DownloadFlow::new(ctx, opts, now) ── url (2), https (20), policy (13), headers (2), temp dir (12)
//!   ┌─► request().exchange() ── GET, no body
//!   │   on_head(ctx, head) ── DownloadStep::Redirect (hop checked again: 20, 13)
//!   └──────────────┘          DownloadStep::Save(save): save.paths(unique) → temp, final;
//!                             stream the body to temp, save.progress() events;
//!                             rename temp → final; finish(final) → {apFilePath}
//! ```

pub mod download;
pub mod multipart;
pub mod options;
pub mod progress;
pub mod sandbox;
pub mod upload;

pub use download::{DownloadFlow, DownloadResponse, DownloadStep, PreparedDownload, Save};
pub use multipart::{file_content_type, BodyCursor, MultipartPlan, Segment};
pub use options::{
    download_options, download_options_from, upload_options, upload_options_from, DownloadOptions,
    FileType, UploadOptions, DEFAULT_DOWNLOAD_TIMEOUT, UPLOAD_TIMEOUT,
};
pub use progress::{Progress, ProgressEvent};
pub use upload::{HeadersReceived, PreparedUpload, UploadBody, UploadRequest, UploadResponse};
