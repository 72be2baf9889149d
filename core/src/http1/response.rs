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
        match ResponseHead::pack(status, version, reason, fields) {
            Some(head) => head,
            None => panic!("mpnet_core::http1::ResponseHead::new: head over 4 GiB"),
        }
    }

    /// Copies `reason` and `fields` into one buffer sized exactly; `None`
    /// if the fields' header object could pass the 4 GiB a span addresses
    /// (see [`worst_js_size`]).
    fn pack<'a>(
        status: u16,
        version: http::Version,
        reason: &str,
        fields: impl ExactSizeIterator<Item = (&'a str, &'a [u8])> + Clone,
    ) -> Option<Self> {
        let size = fields.clone().try_fold(reason.len(), |n, (name, value)| {
            n.checked_add(name.len())?.checked_add(value.len())
        })?;
        u32::try_from(worst_js_size(size, fields.len())?).ok()?;
        let mut buf = Vec::with_capacity(size);
        let reason = Span::push(&mut buf, reason.as_bytes())?;
        let mut spans = Vec::with_capacity(fields.len());
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
pub(crate) fn parse_head(
    input: &[u8],
    budget: usize,
    limit: usize,
    max_count: usize,
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
        return parse_with(window, &mut stack[..room], budget, limit, max_count);
    }
    match parse_with(window, &mut stack, budget, limit, max_count) {
        Err(ProtocolError::TooManyHeaders { .. }) => {
            let mut fields = vec![httparse::EMPTY_HEADER; room];
            parse_with(window, &mut fields, budget, limit, max_count)
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
            let head =
                ResponseHead::pack(status, version, parsed.reason.unwrap_or_default(), fields)
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
        parse_head(input, 1024, 1024, 8)
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

    #[test]
    fn status_below_100_is_bad() {
        assert_eq!(
            parse(b"HTTP/1.1 099 X\r\n\r\n").unwrap_err(),
            ProtocolError::BadStatusLine
        );
    }
}
