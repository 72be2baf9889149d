//! The HTTP `CONNECT` tunnel through a proxy (SPEC §4: every proxy failure
//! is error 23): the request to write and the reading of the proxy's answer.

use crate::target::Target;
use crate::{Error, ErrorKind};

/// Largest proxy answer head accepted.
pub const MAX_CONNECT_RESPONSE_BYTES: usize = 16 * 1024;

/// The `CONNECT host:port` request for a tunnel to `target`.
pub fn connect_request(target: &Target) -> Vec<u8> {
    let authority = format!("{}:{}", target.host(), target.port());
    format!("CONNECT {authority} HTTP/1.1\r\nhost: {authority}\r\n\r\n").into_bytes()
}

/// Reads the proxy's answer from `input`: `Ok(None)` needs more bytes;
/// `Ok(Some(n))` the tunnel is open and the head took `n` bytes; a non-2xx
/// answer or a malformed one is error 23.
pub fn read_connect_response(input: &[u8]) -> Result<Option<usize>, Error> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(input) {
        Ok(httparse::Status::Complete(n)) => {
            let code = resp.code.unwrap_or(0);
            if (200..300).contains(&code) {
                Ok(Some(n))
            } else {
                Err(proxy_error(format!(
                    "the proxy answered CONNECT with {code} {}",
                    resp.reason.unwrap_or("")
                )))
            }
        }
        Ok(httparse::Status::Partial) if input.len() > MAX_CONNECT_RESPONSE_BYTES => Err(
            proxy_error("the proxy's answer to CONNECT is too large".to_string()),
        ),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(proxy_error(format!(
            "the proxy's answer to CONNECT is malformed: {e}"
        ))),
    }
}

/// An error 23 with `message`.
pub fn proxy_error(message: String) -> Error {
    Error::new(ErrorKind::Proxy, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;

    #[test]
    fn connect_request_names_host_and_port() {
        let t = Target::parse("https://a.example/x?y", &Limits::default()).unwrap();
        assert_eq!(
            connect_request(&t),
            b"CONNECT a.example:443 HTTP/1.1\r\nhost: a.example:443\r\n\r\n"
        );
    }

    #[test]
    fn answers() {
        assert_eq!(
            read_connect_response(b"HTTP/1.1 200 Connection established\r\n\r\n"),
            Ok(Some(39))
        );
        assert_eq!(read_connect_response(b"HTTP/1.1 200 OK\r\n"), Ok(None));
        let e = read_connect_response(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
            .unwrap_err();
        assert_eq!(e.code(crate::Api::Request), 23);
        let e = read_connect_response(b"garbage\r\n\r\n").unwrap_err();
        assert_eq!(e.code(crate::Api::Request), 23);
    }
}
