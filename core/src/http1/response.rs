//! Parsing a response head (RFC 9112 §4-§5) with `httparse`, and the
//! look-ups the rest of the crate needs: a header by name, the values of a
//! repeated field, a token in a comma list, and the header object a
//! mini-program sees (SPEC §4).

use std::fmt;

use super::ProtocolError;
use crate::span::Span;
use crate::JsHeaders;

/// A parsed response head. Names keep the server's spelling and order.
///
/// The reason phrase and every field's name and value sit back to back in
/// one buffer, each known by its span: a head costs two allocations (the
/// buffer and the span list) however many fields it has, and
/// [`into_js_headers`](Self::into_js_headers) can usually hand both on as
/// they are.
#[derive(Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code, 100-999.
    pub status: u16,
    /// `HTTP_10` or `HTTP_11`.
    pub version: http::Version,
    /// The reason phrase, then each field's name and value, in order.
    /// Equal heads have equal buffers: every constructor packs the same way.
    buf: Vec<u8>,
    /// The reason phrase in `buf`.
    reason: Span,
    /// Each field's name (ASCII, as httparse checked it, or a `&str` given
    /// to [`new`](Self::new)) and value in `buf`, in the server's order.
    fields: Vec<(Span, Span)>,
}

impl ResponseHead {
    /// A head of `fields` in the given order, e.g. for tests. A `reason`
    /// holding non-ASCII characters is dropped, as the parser does.
    ///
    /// ```
    /// use mpnet_core::http1::ResponseHead;
    /// let head = ResponseHead::new(404, "Not Found", http::Version::HTTP_11, [("X-A", "1")]);
    /// assert_eq!(head.reason(), "Not Found");
    /// assert_eq!(head.fields().collect::<Vec<_>>(), vec![("X-A", &b"1"[..])]);
    /// ```
    ///
    /// # Panics
    ///
    /// If the reason, names and values together take more than about
    /// 1.4 GiB (so that the header object fits in 4 GiB).
    pub fn new<N, V>(
        status: u16,
        reason: &str,
        version: http::Version,
        fields: impl IntoIterator<Item = (N, V)>,
    ) -> Self
    where
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        let reason = if reason.is_ascii() { reason } else { "" };
        let fields: Vec<(N, V)> = fields.into_iter().collect();
        let fields = fields.iter().map(|(n, v)| (n.as_ref(), v.as_ref()));
        match ResponseHead::pack(status, version, reason, fields, &mut HeadBuffers::new()) {
            Some(head) => head,
            None => panic!("mpnet_core::http1::ResponseHead::new: head over 4 GiB"),
        }
    }

    /// Copies `reason` and `fields` into one buffer; `None` if the fields'
    /// header object could pass the 4 GiB a span addresses (see
    /// [`worst_js_size`]). The buffer and the span list are taken from
    /// `spare` (cleared; grown to the exact size only when too small), so
    /// a head parsed into recycled buffers allocates nothing.
    fn pack<'a>(
        status: u16,
        version: http::Version,
        reason: &str,
        fields: impl ExactSizeIterator<Item = (&'a str, &'a [u8])> + Clone,
        spare: &mut HeadBuffers,
    ) -> Option<Self> {
        let size = fields.clone().try_fold(reason.len(), |n, (name, value)| {
            n.checked_add(name.len())?.checked_add(value.len())
        })?;
        u32::try_from(worst_js_size(size, fields.len())?).ok()?;
        let HeadBuffers {
            mut buf,
            fields: mut spans,
        } = std::mem::take(spare);
        buf.clear();
        buf.reserve_exact(size);
        spans.clear();
        spans.reserve_exact(fields.len());
        let reason = Span::push(&mut buf, reason.as_bytes())?;
        for (name, value) in fields {
            let name = Span::push(&mut buf, name.as_bytes())?;
            spans.push((name, Span::push(&mut buf, value)?));
        }
        Some(ResponseHead {
            status,
            version,
            buf,
            reason,
            fields: spans,
        })
    }

    /// The reason phrase (empty if absent, or if it held non-ASCII bytes).
    pub fn reason(&self) -> &str {
        std::str::from_utf8(self.reason.bytes(&self.buf)).unwrap_or_default()
    }

    /// Every header field as `(name, value)`, in the server's spelling and
    /// order.
    pub fn fields(
        &self,
    ) -> impl ExactSizeIterator<Item = (&str, &[u8])> + DoubleEndedIterator + '_ {
        self.fields.iter().map(|&(name, value)| {
            let name = std::str::from_utf8(name.bytes(&self.buf)).unwrap_or_default();
            (name, value.bytes(&self.buf))
        })
    }

    /// The values of every field named `name` (ASCII case-insensitive), in
    /// the server's order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| n.bytes(&self.buf).eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.bytes(&self.buf))
    }

    /// The value of the first field named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| n.bytes(&self.buf).eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.bytes(&self.buf))
    }

    /// Whether any field named `name` holds `token` as an element of its
    /// comma-separated list (both ASCII case-insensitive), e.g.
    /// `has_token("connection", "close")`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers_named(name)
            .flat_map(list_elements)
            .any(|e| e.eq_ignore_ascii_case(token.as_bytes()))
    }

    /// Whether this is an informational (1xx) head.
    pub fn is_informational(&self) -> bool {
        (100..200).contains(&self.status)
    }

    /// The header object of SPEC §4: the server's names (spelling of the
    /// first occurrence), one entry per name in first-occurrence order,
    /// repeated fields joined with `", "`, values as lossy UTF-8.
    ///
    /// ```
    /// use mpnet_core::http1::ResponseHead;
    /// let head = ResponseHead::new(
    ///     200,
    ///     "OK",
    ///     http::Version::HTTP_11,
    ///     [("Set-Cookie", "a=1"), ("Content-Type", "text/plain"), ("set-cookie", "b=2")],
    /// );
    /// assert_eq!(
    ///     Vec::from(head.js_headers()),
    ///     vec![
    ///         ("Set-Cookie".to_string(), "a=1, b=2".to_string()),
    ///         ("Content-Type".to_string(), "text/plain".to_string()),
    ///     ]
    /// );
    /// ```
    pub fn js_headers(&self) -> JsHeaders {
        JsHeaders::from_packed_ref(&self.buf, &self.fields)
    }

    /// [`js_headers`](Self::js_headers), taking the head apart: when its
    /// names are distinct and its bytes UTF-8 (the usual case), the head's
    /// buffer and span list become the object as they are, without
    /// allocating or copying.
    ///
    /// ```
    /// use mpnet_core::http1::ResponseHead;
    /// let head = ResponseHead::new(
    ///     200,
    ///     "OK",
    ///     http::Version::HTTP_11,
    ///     [("Set-Cookie", &b"a=1"[..]), ("X", &[0xff][..]), ("set-cookie", &b"b=2"[..])],
    /// );
    /// assert_eq!(head.js_headers(), head.clone().into_js_headers());
    /// ```
    pub fn into_js_headers(self) -> JsHeaders {
        JsHeaders::from_packed(self.buf, self.fields)
    }

    /// Takes the head apart into its buffers, for the next head to be
    /// parsed into (see [`HeadBuffers`]); buffers over
    /// [`KEPT_RESPONSE_HEAD_MAX`] are dropped.
    pub fn into_buffers(self) -> HeadBuffers {
        HeadBuffers::bounded(self.buf, self.fields)
    }
}

/// The most bytes a kept response-head buffer, or its span list, may take
/// between requests (16 KiB: every head but those with very large
/// headers). [`HeadBuffers`] drops a larger one instead of keeping it, so
/// that one big response does not pin its memory for all later calls.
pub const KEPT_RESPONSE_HEAD_MAX: usize = 16 * 1024;

/// The two buffers a [`ResponseHead`] is packed into (its bytes and its
/// span list), kept empty between heads so the next head can be parsed
/// into them without allocating: see
/// [`Exchange::try_response_in`](super::Exchange::try_response_in). The
/// same two buffers become the header object of a response
/// ([`ResponseHead::into_js_headers`]) and come back from it
/// ([`HeadBuffers::from_js_headers`]).
///
/// Never holds a buffer over [`KEPT_RESPONSE_HEAD_MAX`] bytes.
///
/// ```
/// use mpnet_core::http1::{Exchange, HeadBuffers, RequestHead};
/// use mpnet_core::Limits;
///
/// let headers = http::HeaderMap::new();
/// let head = RequestHead {
///     method: &http::Method::GET,
///     target: "/",
///     host: "example.com",
///     headers: &headers,
///     body_len: None,
/// };
/// let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
/// let mut spare = HeadBuffers::new();
/// let mut recv = Exchange::new(&head, &Limits::default()).request_sent();
/// let (_, first) = recv.try_response_in(wire, &mut spare).unwrap();
/// let first = first.unwrap();
/// assert_eq!(first.status, 200);
///
/// // The next exchange's head goes into the first one's buffers.
/// spare = first.into_buffers();
/// let capacity = spare.capacity();
/// let mut recv = Exchange::new(&head, &Limits::default()).request_sent();
/// let (_, second) = recv.try_response_in(wire, &mut spare).unwrap();
/// assert_eq!(second.unwrap().into_buffers().capacity(), capacity);
/// ```
#[derive(Debug, Default)]
pub struct HeadBuffers {
    /// Empty; its capacity is what is kept.
    buf: Vec<u8>,
    /// Empty; its capacity is what is kept.
    fields: Vec<(Span, Span)>,
}

impl HeadBuffers {
    /// No buffers (nothing allocated): the first head parsed into them
    /// allocates as [`Exchange::try_response`](super::Exchange::try_response)
    /// does.
    pub fn new() -> Self {
        HeadBuffers::default()
    }

    /// The buffers of a header object (from a previous response), for the
    /// next head; buffers over [`KEPT_RESPONSE_HEAD_MAX`] are dropped.
    pub fn from_js_headers(headers: JsHeaders) -> Self {
        let (text, fields) = headers.into_parts();
        HeadBuffers::bounded(text.into_bytes(), fields)
    }

    /// The capacities kept: bytes of the head buffer, and fields of the
    /// span list.
    pub fn capacity(&self) -> (usize, usize) {
        (self.buf.capacity(), self.fields.capacity())
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.capacity() == (0, 0)
    }

    /// Keeps `buf` and `fields`, emptied, unless over the bound.
    fn bounded(mut buf: Vec<u8>, mut fields: Vec<(Span, Span)>) -> Self {
        if buf.capacity() > KEPT_RESPONSE_HEAD_MAX {
            buf = Vec::new();
        }
        if fields
            .capacity()
            .saturating_mul(std::mem::size_of::<(Span, Span)>())
            > KEPT_RESPONSE_HEAD_MAX
        {
            fields = Vec::new();
        }
        buf.clear();
        fields.clear();
        HeadBuffers { buf, fields }
    }

    /// Takes the buffers of `head` when none are kept (a skipped 1xx head
    /// or a redirect's head hands its buffers on to the next one).
    pub fn refill(&mut self, head: ResponseHead) {
        if self.is_empty() {
            *self = head.into_buffers();
        }
    }
}

/// The most bytes the header object of `count` fields of `size` bytes in
/// all can take: lossy UTF-8 makes at most three bytes of one (an invalid
/// byte becomes U+FFFD), and joining adds `", "` per field. Bounding it
/// here is what lets [`JsHeaders`] spans never overflow; a parsed head
/// reaches the bound only past 1.4 GiB, since each field line takes at
/// least one byte more than its name and value.
fn worst_js_size(size: usize, count: usize) -> Option<usize> {
    size.checked_mul(3)?.checked_add(count.checked_mul(2)?)
}

/// Status line and fields, values as lossy UTF-8.
impl fmt::Debug for ResponseHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Fields<'a>(&'a ResponseHead);
        impl fmt::Debug for Fields<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(
                        self.0
                            .fields()
                            .map(|(n, v)| (n, String::from_utf8_lossy(v))),
                    )
                    .finish()
            }
        }
        f.debug_struct("ResponseHead")
            .field("status", &self.status)
            .field("reason", &self.reason())
            .field("version", &self.version)
            .field("fields", &Fields(self))
            .finish()
    }
}

/// The elements of a comma-separated header list, trimmed of optional
/// whitespace, empty elements dropped (RFC 9110 §5.6.1).
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// `value` without leading and trailing spaces and tabs.
pub(crate) fn trim_ows(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    value.get(start..end).unwrap_or_default()
}

/// The result of one attempt to parse a head.
#[derive(Debug)]
pub(crate) enum HeadParse {
    /// The input holds no complete head yet.
    Partial,
    /// A complete head of `len` bytes.
    Complete {
        /// Bytes of input the head took, final blank line included.
        len: usize,
        /// The head.
        head: ResponseHead,
    },
}

/// Parses one response head from the start of `input`.
///
/// `budget` is how many bytes the head may take (at most
/// `limit`, less when 1xx heads came first); `limit` is what
/// `HeadTooLarge` reports. Never looks at more than `budget + 1` bytes, so
/// the answer is the same however `input` was split.
///
/// The head is packed into `spare`'s buffers (see [`HeadBuffers`]).
pub(crate) fn parse_head(
    input: &[u8],
    budget: usize,
    limit: usize,
    max_count: usize,
    spare: &mut HeadBuffers,
) -> Result<HeadParse, ProtocolError> {
    let window = input.get(..budget.saturating_add(1)).unwrap_or(input);
    // A header line takes at least 3 bytes (`a:\n`), so the window cannot
    // hold more fields than this; the slice is only as long as it must be
    // for httparse to report more than `max_count`.
    let room = max_count.min(window.len() / 3 + 1);
    // Most heads fit in a small array on the stack; only a head with more
    // fields than that is parsed again with a heap array of `room` slots.
    let mut stack = [httparse::EMPTY_HEADER; STACK_FIELDS];
    if room <= STACK_FIELDS {
        return parse_with(window, &mut stack[..room], budget, limit, max_count, spare);
    }
    match parse_with(window, &mut stack, budget, limit, max_count, spare) {
        Err(ProtocolError::TooManyHeaders { .. }) => {
            let mut fields = vec![httparse::EMPTY_HEADER; room];
            parse_with(window, &mut fields, budget, limit, max_count, spare)
        }
        other => other,
    }
}

/// Header slots parsed on the stack before falling back to the heap.
const STACK_FIELDS: usize = 32;

fn parse_with<'b>(
    window: &'b [u8],
    fields: &mut [httparse::Header<'b>],
    budget: usize,
    limit: usize,
    max_count: usize,
    spare: &mut HeadBuffers,
) -> Result<HeadParse, ProtocolError> {
    let mut parsed = httparse::Response::new(fields);
    match parsed.parse(window) {
        Ok(httparse::Status::Partial) if window.len() > budget => {
            Err(ProtocolError::HeadTooLarge { max: limit })
        }
        Ok(httparse::Status::Partial) => Ok(HeadParse::Partial),
        Ok(httparse::Status::Complete(len)) if len > budget => {
            Err(ProtocolError::HeadTooLarge { max: limit })
        }
        Ok(httparse::Status::Complete(len)) => {
            let version = match parsed.version {
                Some(0) => http::Version::HTTP_10,
                Some(1) => http::Version::HTTP_11,
                _ => return Err(ProtocolError::BadStatusLine),
            };
            let status = match parsed.code {
                Some(code) if code >= 100 => code,
                _ => return Err(ProtocolError::BadStatusLine),
            };
            // One copy of the reason and fields into one buffer. A head
            // over 1.4 GiB cannot be packed: past any sane limit.
            let fields = parsed.headers.iter().map(|h| (h.name, h.value));
            let reason = parsed.reason.unwrap_or_default();
            let head = ResponseHead::pack(status, version, reason, fields, spare)
                .ok_or(ProtocolError::HeadTooLarge { max: limit })?;
            Ok(HeadParse::Complete { len, head })
        }
        Err(httparse::Error::TooManyHeaders) => {
            Err(ProtocolError::TooManyHeaders { max: max_count })
        }
        Err(httparse::Error::HeaderName | httparse::Error::HeaderValue) => {
            Err(ProtocolError::BadHeader)
        }
        Err(httparse::Error::NewLine) if !bad_leading_newline(window) => {
            Err(ProtocolError::BadHeader)
        }
        Err(_) => Err(ProtocolError::BadStatusLine),
    }
}

/// Whether `input` starts with empty lines ending in a bare CR: the one
/// place before the status line where httparse reports `NewLine`. Anywhere
/// else a `NewLine` error is in the header section.
fn bad_leading_newline(input: &[u8]) -> bool {
    let mut rest = input;
    loop {
        match rest {
            [b'\r', b'\n', tail @ ..] | [b'\n', tail @ ..] => rest = tail,
            [b'\r', ..] => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Result<HeadParse, ProtocolError> {
        parse_head(input, 1024, 1024, 8, &mut HeadBuffers::new())
    }

    #[test]
    fn trims_and_splits_lists() {
        let v: Vec<&[u8]> = list_elements(b" close ,,\tkeep-alive, ").collect();
        assert_eq!(v, vec![&b"close"[..], &b"keep-alive"[..]]);
        assert_eq!(trim_ows(b"   "), b"");
    }

    #[test]
    fn complete_head() {
        let input = b"\r\nHTTP/1.0 404 Not Found\r\nA: 1\r\nb:2\r\n\r\nbody";
        match parse(input).unwrap() {
            HeadParse::Complete { len, head } => {
                assert_eq!(len, input.len() - 4);
                assert_eq!(head.status, 404);
                assert_eq!(head.reason(), "Not Found");
                assert_eq!(head.version, http::Version::HTTP_10);
                assert_eq!(head.header("a"), Some(&b"1"[..]));
                assert_eq!(head.header("B"), Some(&b"2"[..]));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parsed_fields_keep_order_spelling_and_raw_bytes() {
        let input =
            b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Raw: \xffz\r\nset-cookie: b=2\r\n\r\n";
        let HeadParse::Complete { head, .. } = parse(input).unwrap() else {
            panic!("incomplete");
        };
        let fields: Vec<(&str, &[u8])> = head.fields().collect();
        assert_eq!(
            fields,
            vec![
                ("Set-Cookie", &b"a=1"[..]),
                ("X-Raw", &b"\xffz"[..]),
                ("set-cookie", &b"b=2"[..]),
            ]
        );
        let values: Vec<&[u8]> = head.headers_named("SET-COOKIE").collect();
        assert_eq!(values, vec![&b"a=1"[..], &b"b=2"[..]]);
        let js = head.js_headers();
        assert_eq!(
            Vec::from(js.clone()),
            vec![
                ("Set-Cookie".to_string(), "a=1, b=2".to_string()),
                ("X-Raw".to_string(), "\u{fffd}z".to_string()),
            ]
        );
        assert_eq!(head.clone().into_js_headers(), js);
        assert_eq!(
            head,
            ResponseHead::new(200, "OK", http::Version::HTTP_11, fields)
        );
        assert_eq!(
            format!("{head:?}"),
            r#"ResponseHead { status: 200, reason: "OK", version: HTTP/1.1, fields: [("Set-Cookie", "a=1"), ("X-Raw", "�z"), ("set-cookie", "b=2")] }"#
        );
    }

    #[test]
    fn a_head_without_fields_or_reason() {
        let HeadParse::Complete { head, .. } = parse(b"HTTP/1.1 204\r\n\r\n").unwrap() else {
            panic!("incomplete");
        };
        assert_eq!(
            (head.status, head.reason(), head.fields().len()),
            (204, "", 0)
        );
        assert!(head.into_js_headers().is_empty());
        assert_eq!(
            ResponseHead::new(200, "caf\u{e9}", http::Version::HTTP_11, [("a", "b")]).reason(),
            ""
        );
    }

    #[test]
    fn newline_errors_are_classified() {
        assert_eq!(parse(b"\rX").unwrap_err(), ProtocolError::BadStatusLine);
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nA: 1\r\rB: 2\r\n\r\n").unwrap_err(),
            ProtocolError::BadHeader
        );
    }

    /// `input`'s head parsed into `spare`.
    fn parse_in(input: &[u8], spare: &mut HeadBuffers) -> ResponseHead {
        match parse_head(input, 1 << 16, 1 << 16, 64, spare) {
            Ok(HeadParse::Complete { head, .. }) => head,
            other => panic!("{other:?}"),
        }
    }

    /// A head with `n` fields of `size` value bytes each.
    fn big_head(n: usize, size: usize) -> Vec<u8> {
        let mut h = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..n {
            h.extend_from_slice(format!("X-{i}: {}\r\n", "v".repeat(size)).as_bytes());
        }
        h.extend_from_slice(b"\r\n");
        h
    }

    #[test]
    fn a_head_parsed_into_recycled_buffers_equals_a_fresh_one() {
        let heads: [&[u8]; 4] = [
            &big_head(20, 40),
            b"HTTP/1.1 404 Not Found\r\nSet-Cookie: a=1\r\nX-Raw: \xffz\r\nset-cookie: b=2\r\n\r\n",
            b"HTTP/1.0 204\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX: \xe4\xb8\xad\r\n\r\n",
        ];
        let mut spare = HeadBuffers::new();
        // Twice round: the second time every head goes into buffers the
        // previous (bigger or smaller) head left, or its own header object's.
        for round in 0..2 {
            for input in heads {
                let fresh = parse_in(input, &mut HeadBuffers::new());
                let recycled = parse_in(input, &mut spare);
                assert_eq!(recycled, fresh);
                assert_eq!(format!("{recycled:?}"), format!("{fresh:?}"));
                let js = fresh.js_headers();
                let recycled_js = recycled.into_js_headers();
                assert_eq!(recycled_js, js, "round {round}");
                assert_eq!(Vec::from(recycled_js.clone()), Vec::from(js));
                spare = HeadBuffers::from_js_headers(recycled_js);
            }
        }
    }

    #[test]
    fn a_head_that_fits_allocates_nothing_new() {
        let big = big_head(10, 30);
        let small = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";
        let mut spare = parse_in(&big, &mut HeadBuffers::new()).into_buffers();
        let kept = spare.capacity();
        let ptr = spare.buf.as_ptr();
        let head = parse_in(small, &mut spare);
        assert!(spare.is_empty(), "the head took the buffers");
        assert_eq!(head.buf.as_ptr(), ptr, "parsed into the kept buffer");
        assert_eq!(head.header("content-length"), Some(&b"3"[..]));
        let back = HeadBuffers::from_js_headers(head.into_js_headers());
        assert_eq!(back.capacity(), kept, "capacity kept, not shrunk");
        assert_eq!(back.buf.as_ptr(), ptr);
    }

    #[test]
    fn kept_head_buffers_are_bounded() {
        // Over 16 KiB of text: the head buffer is dropped, the span list
        // (a few fields) kept.
        let huge = big_head(4, 5000);
        let head = parse_in(&huge, &mut HeadBuffers::new());
        let kept = head.into_buffers();
        assert_eq!(kept.buf.capacity(), 0);
        assert!(kept.fields.capacity() >= 4);
        // More fields than 16 KiB of spans: the span list is dropped.
        let many = KEPT_RESPONSE_HEAD_MAX / std::mem::size_of::<(Span, Span)>() + 1;
        let mut spare = HeadBuffers::bounded(Vec::new(), Vec::with_capacity(many));
        assert!(spare.is_empty());
        spare = HeadBuffers::bounded(Vec::with_capacity(KEPT_RESPONSE_HEAD_MAX), Vec::new());
        assert_eq!(
            spare.capacity(),
            (KEPT_RESPONSE_HEAD_MAX, 0),
            "at the bound: kept"
        );
        // From a header object too.
        let js = parse_in(&huge, &mut HeadBuffers::new()).into_js_headers();
        assert_eq!(HeadBuffers::from_js_headers(js).capacity().0, 0);
        // A 1xx head hands its buffers back to `spare` only when it is empty.
        let mut spare = HeadBuffers::new();
        spare.refill(parse_in(
            b"HTTP/1.1 100 Continue\r\nA: b\r\n\r\n",
            &mut HeadBuffers::new(),
        ));
        assert!(!spare.is_empty());
        let before = spare.capacity();
        spare.refill(parse_in(&big_head(10, 30), &mut HeadBuffers::new()));
        assert_eq!(spare.capacity(), before);
    }

    #[test]
    fn status_below_100_is_bad() {
        assert_eq!(
            parse(b"HTTP/1.1 099 X\r\n\r\n").unwrap_err(),
            ProtocolError::BadStatusLine
        );
    }
}
