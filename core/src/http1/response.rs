//! Parsing a response head (RFC 9112 §4-§5) with `httparse`, and the
//! look-ups the rest of the crate needs: a header by name, the values of a
//! repeated field, a token in a comma list, and the header object a
//! mini-program sees (SPEC §4).

use std::borrow::Cow;

use super::ProtocolError;

/// A parsed response head. Names keep the server's spelling and order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code, 100-999.
    pub status: u16,
    /// The reason phrase (empty if absent, or if it held non-ASCII bytes).
    pub reason: String,
    /// `HTTP_10` or `HTTP_11`.
    pub version: http::Version,
    /// Every header field, in the server's spelling and order.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl ResponseHead {
    /// The value of the first field named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The values of every field named `name` (ASCII case-insensitive), in
    /// the server's order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
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
    /// let head = ResponseHead {
    ///     status: 200,
    ///     reason: "OK".into(),
    ///     version: http::Version::HTTP_11,
    ///     headers: vec![
    ///         ("Set-Cookie".into(), b"a=1".to_vec()),
    ///         ("Content-Type".into(), b"text/plain".to_vec()),
    ///         ("set-cookie".into(), b"b=2".to_vec()),
    ///     ],
    /// };
    /// assert_eq!(
    ///     head.js_headers(),
    ///     vec![
    ///         ("Set-Cookie".to_string(), "a=1, b=2".to_string()),
    ///         ("Content-Type".to_string(), "text/plain".to_string()),
    ///     ]
    /// );
    /// ```
    pub fn js_headers(&self) -> Vec<(String, String)> {
        join_js_fields(
            self.headers.len(),
            self.headers
                .iter()
                .map(|(name, value)| (name.as_str(), String::from_utf8_lossy(value))),
        )
    }

    /// [`js_headers`](Self::js_headers), taking the head apart: names are
    /// moved and UTF-8 values reused as they are, so a head whose field
    /// names are all distinct costs one allocation (the list).
    ///
    /// ```
    /// use mpnet_core::http1::ResponseHead;
    /// let head = ResponseHead {
    ///     status: 200,
    ///     reason: "OK".into(),
    ///     version: http::Version::HTTP_11,
    ///     headers: vec![
    ///         ("Set-Cookie".into(), b"a=1".to_vec()),
    ///         ("X".into(), vec![0xff]),
    ///         ("set-cookie".into(), b"b=2".to_vec()),
    ///     ],
    /// };
    /// assert_eq!(head.js_headers(), head.clone().into_js_headers());
    /// ```
    pub fn into_js_headers(self) -> Vec<(String, String)> {
        join_js_fields(
            self.headers.len(),
            self.headers.into_iter().map(|(name, value)| {
                let value = match String::from_utf8(value) {
                    Ok(v) => v,
                    Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
                };
                (name, Cow::Owned(value))
            }),
        )
    }
}

/// The JavaScript header object of a head's fields, in order: repeated
/// names (ASCII case-insensitive) joined with `", "` under the first
/// spelling. A linear scan: heads have few fields, and it needs no map and
/// no lower-cased copies of the names.
fn join_js_fields<'a, N: AsRef<str> + Into<String>>(
    len: usize,
    fields: impl Iterator<Item = (N, Cow<'a, str>)>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(len);
    for (name, value) in fields {
        match out
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_ref()))
        {
            Some((_, joined)) => {
                joined.push_str(", ");
                joined.push_str(&value);
            }
            None => out.push((name.into(), value.into_owned())),
        }
    }
    out
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
            let head = ResponseHead {
                status,
                reason: parsed.reason.unwrap_or_default().to_owned(),
                version,
                headers: parsed
                    .headers
                    .iter()
                    .map(|h| (h.name.to_owned(), h.value.to_vec()))
                    .collect(),
            };
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
                assert_eq!(head.reason, "Not Found");
                assert_eq!(head.version, http::Version::HTTP_10);
                assert_eq!(head.header("a"), Some(&b"1"[..]));
                assert_eq!(head.header("B"), Some(&b"2"[..]));
            }
            other => panic!("{other:?}"),
        }
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
