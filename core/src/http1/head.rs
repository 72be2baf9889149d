//! Writing the request head (RFC 9112 §3): request line, `host`, the
//! caller's headers, and the framing header the library owns.

use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::HeaderName;

/// The request head of one exchange, borrowed from the caller.
///
/// The caller has already validated everything here: `target` and `host`
/// come from a parsed [`crate::Target`] (no spaces, CR, LF), and the header
/// map only holds valid names and values (the `http` crate guarantees it).
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// The method.
    pub method: &'a http::Method,
    /// The request target in origin form, `/path?query` (no fragment).
    pub target: &'a str,
    /// The `Host` header value (`host` or `host:port`).
    pub host: &'a str,
    /// The caller's headers. `host`, `content-length`, `transfer-encoding`
    /// and `connection` are skipped: they are the library's to set (SPEC §4).
    pub headers: &'a http::HeaderMap,
    /// `Some(n)`: a body of exactly `n` bytes follows and `content-length: n`
    /// is sent (also for `n = 0`, as POST/PUT/DELETE without data need).
    /// `None`: no body and no `content-length`.
    pub body_len: Option<u64>,
}

/// Whether a caller's header is one the library sets itself.
fn is_library_header(name: &HeaderName) -> bool {
    name == HOST || name == CONTENT_LENGTH || name == TRANSFER_ENCODING || name == CONNECTION
}

impl RequestHead<'_> {
    /// Appends the encoded head to `out`:
    ///
    /// ```text
    /// METHOD target HTTP/1.1\r\n
    /// host: <host>\r\n
    /// <caller's headers, in the map's order, names in lower case>\r\n
    /// content-length: <n>\r\n          (only when body_len is Some)
    /// \r\n
    /// ```
    ///
    /// ```
    /// use mpnet_core::http1::RequestHead;
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("accept", "*/*".parse().unwrap());
    /// headers.insert("connection", "upgrade".parse().unwrap()); // skipped
    /// let head = RequestHead {
    ///     method: &http::Method::POST,
    ///     target: "/a?b=1",
    ///     host: "example.com",
    ///     headers: &headers,
    ///     body_len: Some(0),
    /// };
    /// let mut out = Vec::new();
    /// head.write_to(&mut out);
    /// assert_eq!(
    ///     out,
    ///     b"POST /a?b=1 HTTP/1.1\r\nhost: example.com\r\naccept: */*\r\ncontent-length: 0\r\n\r\n"
    /// );
    /// ```
    pub fn write_to(&self, out: &mut Vec<u8>) {
        debug_assert!(
            !self.target.bytes().any(|b| b <= b' ' || b == 0x7f),
            "request target must not hold spaces or control bytes"
        );
        debug_assert!(
            !self.host.bytes().any(|b| b <= b' ' || b == 0x7f),
            "host must not hold spaces or control bytes"
        );
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        out.extend_from_slice(self.host.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in self.headers.iter() {
            if is_library_header(name) {
                continue;
            }
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if let Some(n) = self.body_len {
            out.extend_from_slice(b"content-length: ");
            write_decimal(n, out);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends `n` in decimal, without allocating.
fn write_decimal(mut n: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20]; // u64::MAX has 20 digits
    let mut start = digits.len();
    loop {
        start -= 1;
        // `n % 10 < 10`, so the cast cannot truncate.
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal() {
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            let mut out = Vec::new();
            write_decimal(n, &mut out);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn no_body_no_length_and_library_headers_skipped() {
        let mut headers = http::HeaderMap::new();
        headers.insert("Host", "evil.example".parse().unwrap());
        headers.insert("Content-Length", "99".parse().unwrap());
        headers.insert("Transfer-Encoding", "chunked".parse().unwrap());
        headers.append("x-a", "1".parse().unwrap());
        headers.append("x-a", "2".parse().unwrap());
        let head = RequestHead {
            method: &http::Method::GET,
            target: "/",
            host: "h:8443",
            headers: &headers,
            body_len: None,
        };
        let mut out = Vec::new();
        head.write_to(&mut out);
        assert_eq!(
            out,
            b"GET / HTTP/1.1\r\nhost: h:8443\r\nx-a: 1\r\nx-a: 2\r\n\r\n"
        );
    }
}
