//! The `multipart/form-data` body of `my.uploadFile` (SPEC §5), streamed:
//! its exact length is known before the first byte, and the file's bytes
//! are never held by the core.
//!
//! ```text
//!  preamble  ┌ --B\r\nContent-Disposition: form-data; name="k1"\r\n\r\nv1\r\n   (each formData field,
//!            │ --B\r\nContent-Disposition: form-data; name="k2"\r\n\r\nv2\r\n    JS property order)
//!            └ --B\r\nContent-Disposition: form-data; name="{fileName}"; filename="{base name}"\r\n
//!              Content-Type: {type}\r\n\r\n
//!  file        exactly file_len bytes, read by the transport
//!  epilogue    \r\n--B--\r\n
//! ```
//!
//! - Values are printed as SPEC §4 prints query values
//!   ([`js::write_query_value`]): strings as they are, numbers as
//!   JavaScript prints them, nested objects and arrays as `JSON.stringify`.
//!   They are sent byte for byte (no line-break normalisation).
//! - Field names and the file name are escaped as the HTML standard's
//!   multipart/form-data encoding does: `"` → `%22`, CR → `%0D`, LF →
//!   `%0A`; other characters (UTF-8 included) are sent as they are. No name
//!   can end its quoted string or its header line.
//! - The boundary is `----mpnetFormBoundary` and 32 hex digits of the
//!   caller's 16 random bytes. It never occurs in any name, value, file name
//!   or content type: if the random choice does, the next candidate
//!   (the 128-bit number plus one) is taken, deterministically. The file's
//!   own bytes are not searched (they are never in memory); with 128 random
//!   bits a collision there is as unlikely as in every other client.

use std::fmt::Write as _;

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::{js, Error, ErrorKind};

/// The fixed start of every boundary.
pub const BOUNDARY_PREFIX: &str = "----mpnetFormBoundary";

/// The content type of a file without a known extension (SPEC §5).
pub const DEFAULT_FILE_TYPE: &str = "application/octet-stream";

/// Content types for file extensions (lower case).
const EXTENSION_TYPES: &[(&str, &str)] = &[
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("png", "image/png"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("bmp", "image/bmp"),
    ("svg", "image/svg+xml"),
    ("heic", "image/heic"),
    ("ico", "image/x-icon"),
    ("mp4", "video/mp4"),
    ("m4v", "video/mp4"),
    ("mov", "video/quicktime"),
    ("webm", "video/webm"),
    ("avi", "video/x-msvideo"),
    ("mp3", "audio/mpeg"),
    ("wav", "audio/wav"),
    ("aac", "audio/aac"),
    ("m4a", "audio/mp4"),
    ("ogg", "audio/ogg"),
    ("amr", "audio/amr"),
    ("txt", "text/plain"),
    ("csv", "text/csv"),
    ("json", "application/json"),
    ("pdf", "application/pdf"),
    ("zip", "application/zip"),
];

/// The content type of the file part, from `file_name`'s extension, ASCII
/// case-insensitive (`jpg`/`jpeg` → `image/jpeg`, `png`, `gif`, `webp`,
/// `bmp`, `svg`, `mp4`, `mov` → `video/quicktime`, `mp3` → `audio/mpeg`,
/// `wav`, `aac`, `m4a` → `audio/mp4`, `txt`, `json`, `pdf`, `zip`, ...);
/// anything else, or no extension, is `application/octet-stream` (SPEC §5,
/// whatever the `fileType`).
///
/// ```
/// use mpnet_core::transfer::file_content_type;
/// assert_eq!(file_content_type("IMG_1.JPG"), "image/jpeg");
/// assert_eq!(file_content_type("clip.mov"), "video/quicktime");
/// assert_eq!(file_content_type("photo.raw"), "application/octet-stream");
/// assert_eq!(file_content_type("README"), "application/octet-stream");
/// ```
pub fn file_content_type(file_name: &str) -> &'static str {
    let Some((stem, ext)) = file_name.rsplit_once('.') else {
        return DEFAULT_FILE_TYPE;
    };
    if stem.is_empty() {
        return DEFAULT_FILE_TYPE;
    }
    EXTENSION_TYPES
        .iter()
        .find(|(e, _)| e.eq_ignore_ascii_case(ext))
        .map_or(DEFAULT_FILE_TYPE, |(_, t)| t)
}

/// Appends `name` escaped for a quoted `name=`/`filename=` parameter, as
/// the HTML standard's multipart/form-data encoding does: `"` → `%22`,
/// CR → `%0D`, LF → `%0A`; everything else as it is.
///
/// ```
/// let mut out = String::new();
/// mpnet_core::transfer::multipart::escape_name("a\"b\r\nc", &mut out);
/// assert_eq!(out, "a%22b%0D%0Ac");
/// ```
pub fn escape_name(name: &str, out: &mut String) {
    for c in name.chars() {
        match c {
            '"' => out.push_str("%22"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
}

/// The whole multipart body of one upload, planned: the bytes before the
/// file, the file's length, the bytes after it, and their exact sum.
///
/// ```
/// use mpnet_core::transfer::MultipartPlan;
/// let form = serde_json::json!({"user": "alice", "n": 1.0});
/// let form = form.as_object().unwrap();
/// let plan = MultipartPlan::new(form, "file", "a.txt", "text/plain", 5, [0xab; 16]).unwrap();
/// let mut body = plan.preamble().to_vec();
/// body.extend_from_slice(b"hello");
/// body.extend_from_slice(plan.epilogue());
/// assert_eq!(body.len() as u64, plan.content_length());
/// let b = plan.boundary();
/// assert_eq!(b, "----mpnetFormBoundaryabababababababababababababababab");
/// assert_eq!(
///     String::from_utf8(body).unwrap(),
///     format!(
///         "--{b}\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nalice\r\n\
///          --{b}\r\nContent-Disposition: form-data; name=\"n\"\r\n\r\n1\r\n\
///          --{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
///          Content-Type: text/plain\r\n\r\nhello\r\n--{b}--\r\n"
///     )
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartPlan {
    boundary: String,
    preamble: Bytes,
    epilogue: Bytes,
    file_len: u64,
    content_length: u64,
}

impl MultipartPlan {
    /// Plans the body: every `form_data` field in JavaScript property order
    /// ([`js::ordered_entries`]), then one file part named `field_name` with
    /// `filename="{file_name}"` (the base name of `filePath`) and
    /// `content_type`, whose `file_len` bytes the transport streams.
    ///
    /// Errors: `content_type` empty or holding a byte outside visible ASCII
    /// and space: error 2; a total length over `u64::MAX`: upload failed
    /// (12).
    pub fn new(
        form_data: &Map<String, Value>,
        field_name: &str,
        file_name: &str,
        content_type: &str,
        file_len: u64,
        boundary_random: [u8; 16],
    ) -> Result<Self, Error> {
        if content_type.is_empty() || !content_type.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(Error::invalid(format!(
                "file content type {content_type:?} is not a valid header value"
            )));
        }
        // Every text that goes into the body besides the boundary itself.
        let mut fields: Vec<(String, String)> = Vec::with_capacity(form_data.len());
        for (key, value) in js::ordered_entries(form_data) {
            let mut name = String::with_capacity(key.len());
            escape_name(key, &mut name);
            let mut text = String::new();
            js::write_query_value(value, &mut text);
            fields.push((name, text));
        }
        let mut field = String::with_capacity(field_name.len());
        escape_name(field_name, &mut field);
        let mut filename = String::with_capacity(file_name.len());
        escape_name(file_name, &mut filename);

        let texts = fields
            .iter()
            .flat_map(|(n, v)| [n.as_str(), v.as_str()])
            .chain([field.as_str(), filename.as_str(), content_type]);
        let boundary = choose_boundary(texts, u128::from_be_bytes(boundary_random))?;

        let mut pre = String::new();
        for (name, value) in &fields {
            let _ = write!(
                pre,
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            );
        }
        let _ = write!(
            pre,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; \
             filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
        );
        let epilogue = format!("\r\n--{boundary}--\r\n");
        let content_length = (pre.len() as u64)
            .checked_add(file_len)
            .and_then(|n| n.checked_add(epilogue.len() as u64))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Unknown,
                    format!("a file of {file_len} bytes is too large to upload"),
                )
            })?;
        Ok(MultipartPlan {
            boundary,
            preamble: Bytes::from(pre),
            epilogue: Bytes::from(epilogue),
            file_len,
            content_length,
        })
    }

    /// The boundary (without the leading `--`).
    pub fn boundary(&self) -> &str {
        &self.boundary
    }

    /// The request's `Content-Type`: `multipart/form-data; boundary=...`.
    pub fn content_type_header(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The exact body length: preamble + file + epilogue.
    pub fn content_length(&self) -> u64 {
        self.content_length
    }

    /// Every byte before the file's: the formData parts and the file part's
    /// header.
    pub fn preamble(&self) -> &[u8] {
        &self.preamble
    }

    /// How many file bytes the transport sends after the preamble.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Every byte after the file's: `\r\n--{boundary}--\r\n`.
    pub fn epilogue(&self) -> &[u8] {
        &self.epilogue
    }

    /// A cursor over the body from its first byte.
    pub fn cursor(&self) -> BodyCursor {
        BodyCursor {
            preamble: self.preamble.clone(),
            epilogue: self.epilogue.clone(),
            file_len: self.file_len,
            pos: 0,
        }
    }
}

/// The first boundary from `start` on (adding one each time) that occurs in
/// none of `texts`. Each position of the texts can hold at most one
/// candidate (they all have the same length and differ), so at most `total
/// length + 1` candidates are tried.
fn choose_boundary<'a>(
    texts: impl Iterator<Item = &'a str> + Clone,
    start: u128,
) -> Result<String, Error> {
    let total: usize = texts.clone().map(str::len).sum();
    let mut candidate = start;
    for _ in 0..=total {
        let boundary = format!("{BOUNDARY_PREFIX}{candidate:032x}");
        if !texts.clone().any(|t| t.contains(&boundary)) {
            return Ok(boundary);
        }
        candidate = candidate.wrapping_add(1);
    }
    // Unreachable by the counting argument above; an error, not a panic.
    Err(Error::new(
        ErrorKind::Unknown,
        "no multipart boundary avoids the form data",
    ))
}

/// What comes next in the body, from a [`BodyCursor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Write (a prefix of) these bytes, then [`BodyCursor::advance`] by the
    /// number written.
    Bytes(Bytes),
    /// Send file bytes: the next ones start at `offset` in the file and
    /// `len` remain. Read at most `len`, write them, and advance by the
    /// number written. A file that ends early is an upload failure
    /// ([`super::sandbox::read_error`]); bytes past `len` are never sent.
    File {
        /// Where in the file the next byte is.
        offset: u64,
        /// How many file bytes are left to send.
        len: u64,
    },
    /// The whole body has been sent.
    Done,
}

/// Where the transport is in a multipart body. Owns cheap copies of the
/// fixed bytes, so it can live apart from the [`MultipartPlan`].
///
/// ```
/// use mpnet_core::transfer::{MultipartPlan, Segment};
/// let plan = MultipartPlan::new(&Default::default(), "f", "a", "text/plain", 3, [0; 16]).unwrap();
/// let mut cur = plan.cursor();
/// let mut body = Vec::new();
/// loop {
///     match cur.segment() {
///         Segment::Bytes(b) => { body.extend_from_slice(&b[..1]); cur.advance(1); }
///         Segment::File { offset, len } => {
///             let n = len.min(2) as usize;
///             body.extend_from_slice(&b"xyz"[offset as usize..][..n]);
///             cur.advance(n as u64);
///         }
///         Segment::Done => break,
///     }
/// }
/// assert_eq!(body.len() as u64, plan.content_length());
/// assert!(body.windows(5).any(|w| w == b"\r\nxyz"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyCursor {
    preamble: Bytes,
    epilogue: Bytes,
    file_len: u64,
    pos: u64,
}

impl BodyCursor {
    /// What to send next. An empty file gives no `File` segment.
    pub fn segment(&self) -> Segment {
        let pre = self.preamble.len() as u64;
        let file_end = pre.saturating_add(self.file_len);
        if self.pos < pre {
            Segment::Bytes(self.preamble.slice(to_usize(self.pos)..))
        } else if self.pos < file_end {
            Segment::File {
                offset: self.pos - pre,
                len: file_end - self.pos,
            }
        } else if self.pos < self.total() {
            Segment::Bytes(self.epilogue.slice(to_usize(self.pos - file_end)..))
        } else {
            Segment::Done
        }
    }

    /// Records that `n` bytes of the current [`segment`](Self::segment)
    /// were sent. More than the segment holds is clamped to it (the
    /// cursor never skips into the next segment); the number accepted is
    /// returned.
    pub fn advance(&mut self, n: u64) -> u64 {
        let left = match self.segment() {
            Segment::Bytes(b) => b.len() as u64,
            Segment::File { len, .. } => len,
            Segment::Done => 0,
        };
        let n = n.min(left);
        self.pos += n;
        n
    }

    /// Body bytes sent so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The whole body's length (the plan's `content_length`).
    pub fn total(&self) -> u64 {
        (self.preamble.len() as u64)
            .saturating_add(self.file_len)
            .saturating_add(self.epilogue.len() as u64)
    }

    /// Whether every byte has been sent.
    pub fn is_done(&self) -> bool {
        self.pos >= self.total()
    }
}

/// A position inside an in-memory buffer as an index (always fits: it is
/// below the buffer's length).
fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_avoids_the_form_data() {
        let random = [0x11; 16];
        let taken = format!("{BOUNDARY_PREFIX}{:032x}", u128::from_be_bytes(random));
        let next = format!("{BOUNDARY_PREFIX}{:032x}", u128::from_be_bytes(random) + 1);
        let form = serde_json::json!({ "a": format!("x{taken}y"), taken.clone(): next.clone() });
        let plan =
            MultipartPlan::new(form.as_object().unwrap(), "f", "n", "a/b", 0, random).unwrap();
        let third = format!("{BOUNDARY_PREFIX}{:032x}", u128::from_be_bytes(random) + 2);
        assert_eq!(plan.boundary(), third);
    }

    #[test]
    fn bad_content_type_is_refused() {
        for ct in ["", "text/plain\r\nX: y", "a\u{7f}", "é"] {
            let e = MultipartPlan::new(&Map::new(), "f", "n", ct, 0, [0; 16]).unwrap_err();
            assert_eq!(e.code(crate::Api::Upload), 2, "{ct:?}");
        }
    }

    #[test]
    fn huge_file_overflows_into_an_error() {
        let e = MultipartPlan::new(&Map::new(), "f", "n", "a/b", u64::MAX, [0; 16]).unwrap_err();
        assert_eq!(e.code(crate::Api::Upload), 12);
    }

    #[test]
    fn cursor_clamps_and_walks_every_segment() {
        let plan = MultipartPlan::new(&Map::new(), "f", "n", "a/b", 4, [0; 16]).unwrap();
        let mut cur = plan.cursor();
        let pre = plan.preamble().len() as u64;
        assert_eq!(cur.advance(u64::MAX), pre);
        assert_eq!(cur.segment(), Segment::File { offset: 0, len: 4 });
        assert_eq!(cur.advance(3), 3);
        assert_eq!(cur.segment(), Segment::File { offset: 3, len: 1 });
        assert_eq!(cur.advance(10), 1);
        assert_eq!(
            cur.segment(),
            Segment::Bytes(plan.epilogue().to_vec().into())
        );
        assert_eq!(cur.advance(u64::MAX), plan.epilogue().len() as u64);
        assert_eq!(cur.segment(), Segment::Done);
        assert!(cur.is_done());
        assert_eq!(cur.advance(1), 0);
        assert_eq!(cur.position(), plan.content_length());
    }
}
