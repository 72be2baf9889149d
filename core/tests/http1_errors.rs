//! Broken responses, each with the `ProtocolError` it gives, fed whole and
//! byte by byte (the answer must not depend on the split); and the table of
//! connection-reuse verdicts.

use mpnet_core::http1::{
    AfterHead, CloseReason, ConnectionReuse, Exchange, ProtocolError, RequestHead, ResponseHead,
};
use mpnet_core::{ErrorKind, Limits};

/// Runs one exchange for `method` over `wire` in pieces of `step` bytes
/// (0: all at once), EOF after the last byte. Returns the status and body.
fn run(
    method: &http::Method,
    wire: &[u8],
    step: usize,
    limits: &Limits,
) -> Result<(u16, Vec<u8>, ConnectionReuse), ProtocolError> {
    let step = if step == 0 { wire.len().max(1) } else { step };
    let mut pieces = wire.chunks(step);
    let mut buf = Vec::new();
    let headers = http::HeaderMap::new();
    let request = RequestHead {
        method,
        target: "/",
        host: "example.com",
        headers: &headers,
        body_len: None,
    };
    let mut recv = Exchange::new(&request, limits).request_sent();
    let head = loop {
        match recv.try_response(&buf)? {
            (n, Some(head)) => {
                buf.drain(..n);
                break head;
            }
            (0, None) => match pieces.next() {
                Some(p) => buf.extend_from_slice(p),
                None => return Err(recv.handle_eof()),
            },
            (n, None) => drop(buf.drain(..n)),
        }
    };
    let mut reader = match recv.into_body(&head)? {
        AfterHead::Done(done) => return Ok((head.status, Vec::new(), done.reuse)),
        AfterHead::Body(reader) => reader,
    };
    let mut body = Vec::new();
    while !reader.is_finished() {
        let chunk = reader.read(&buf)?;
        body.extend_from_slice(&buf[chunk.data.clone()]);
        buf.drain(..chunk.consumed);
        if chunk.need_more() && !reader.is_finished() {
            match pieces.next() {
                Some(p) => buf.extend_from_slice(p),
                None => reader.handle_eof()?,
            }
        }
    }
    Ok((head.status, body, reader.finish().reuse))
}

fn get(
    wire: &[u8],
    step: usize,
    limits: &Limits,
) -> Result<(u16, Vec<u8>, ConnectionReuse), ProtocolError> {
    run(&http::Method::GET, wire, step, limits)
}

#[test]
fn broken_responses() {
    use ProtocolError::*;
    let mut small = Limits::default();
    small.max_header_bytes = 64;
    small.max_header_count = 2;
    small.max_chunk_line_bytes = 16;
    let dflt = Limits::default();
    let many_headers = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    let big_head = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "v".repeat(80));
    let long_1xx = format!(
        "HTTP/1.1 103 Early\r\nLink: {}\r\n\r\nHTTP/1.1 200 OK\r\nA: b\r\n\r\n",
        "l".repeat(20)
    );
    let cases: Vec<(&str, Vec<u8>, &Limits, ProtocolError)> = vec![
        ("garbage status line", b"HTPT/1.1 200 OK\r\n\r\n".to_vec(), &dflt, BadStatusLine),
        ("HTTP/2 status line", b"HTTP/2 200 OK\r\n\r\n".to_vec(), &dflt, BadStatusLine),
        ("four-digit status", b"HTTP/1.1 2000 OK\r\n\r\n".to_vec(), &dflt, BadStatusLine),
        ("non-numeric status", b"HTTP/1.1 abc OK\r\n\r\n".to_vec(), &dflt, BadStatusLine),
        ("status below 100", b"HTTP/1.1 042 OK\r\n\r\n".to_vec(), &dflt, BadStatusLine),
        ("bare CR before status", b"\rHTTP/1.1 200 OK\r\n\r\n".to_vec(), &dflt, BadStatusLine),
        ("header without colon", b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n".to_vec(), &dflt, BadHeader),
        ("space in header name", b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n".to_vec(), &dflt, BadHeader),
        ("obs-fold", b"HTTP/1.1 200 OK\r\nA: b\r\n  folded\r\n\r\n".to_vec(), &dflt, BadHeader),
        ("NUL in header value", b"HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n".to_vec(), &dflt, BadHeader),
        ("head too large", big_head.into_bytes(), &small, HeadTooLarge { max: 64 }),
        ("1xx heads count against the head limit", long_1xx.into_bytes(), &small, HeadTooLarge { max: 64 }),
        ("endless head", vec![b'x'; 200], &small, BadStatusLine),
        ("endless header line", [&b"HTTP/1.1 200 OK\r\nA: "[..], &[b'a'; 200]].concat(), &small, HeadTooLarge { max: 64 }),
        ("too many headers", many_headers.as_bytes().to_vec(), &small, TooManyHeaders { max: 2 }),
        ("conflicting Content-Length", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello".to_vec(), &dflt, BadContentLength),
        ("conflicting Content-Length list", b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello".to_vec(), &dflt, BadContentLength),
        ("non-numeric Content-Length", b"HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\nhello".to_vec(), &dflt, BadContentLength),
        ("negative Content-Length", b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello".to_vec(), &dflt, BadContentLength),
        ("overflowing Content-Length", b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n".to_vec(), &dflt, BadContentLength),
        ("TE gzip only", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello".to_vec(), &dflt, BadTransferEncoding),
        ("TE gzip, chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n".to_vec(), &dflt, BadTransferEncoding),
        ("TE with CL", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n".to_vec(), &dflt, BadTransferEncoding),
        ("chunk size zz", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(), &dflt, BadChunkSize),
        ("chunk size overflow", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n".to_vec(), &dflt, BadChunkSize),
        ("empty chunk size", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n".to_vec(), &dflt, BadChunkSize),
        ("chunk size line too long", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;aaaaaaaaaaaaaaaaaaaaaaaaa\r\nhello\r\n0\r\n\r\n".to_vec(), &small, ChunkLineTooLong { max: 16 }),
        ("trailers too long", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: bbbbbbbbb\r\nC: ddddddddd\r\n\r\n".to_vec(), &small, ChunkLineTooLong { max: 16 }),
        ("missing CRLF after chunk data", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n".to_vec(), &dflt, BadChunkEnd),
        ("chunk data longer than its size", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n".to_vec(), &dflt, BadChunkEnd),
        ("bare CR in trailer", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: b\rc\r\n\r\n".to_vec(), &dflt, BadTrailer),
        ("EOF before any byte", Vec::new(), &dflt, ClosedBeforeHead),
        ("EOF mid-head", b"HTTP/1.1 200 OK\r\nContent-Le".to_vec(), &dflt, ClosedBeforeHead),
        ("EOF after a 100 Continue", b"HTTP/1.1 100 Continue\r\n\r\n".to_vec(), &dflt, ClosedBeforeHead),
        ("EOF mid-body, Content-Length", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello".to_vec(), &dflt, ClosedMidBody),
        ("EOF mid-body, chunked data", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel".to_vec(), &dflt, ClosedMidBody),
        ("EOF mid-body, chunk size line", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n".to_vec(), &dflt, ClosedMidBody),
        ("EOF inside a trailer", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: b".to_vec(), &dflt, ClosedMidBody),
    ];
    for (name, wire, limits, want) in &cases {
        for step in [0, 1, 2, 3, 7] {
            assert_eq!(
                get(wire, step, limits),
                Err(want.clone()),
                "{name} (pieces of {step})"
            );
        }
    }
}

#[test]
fn errors_map_to_codes() {
    let net: mpnet_core::Error = ProtocolError::ClosedMidBody.into();
    assert_eq!(net.kind(), ErrorKind::Network);
    let proto: mpnet_core::Error = ProtocolError::BadChunkSize.into();
    assert_eq!(proto.kind(), ErrorKind::Protocol);
    assert!(!ProtocolError::HeadTooLarge { max: 9 }
        .to_string()
        .is_empty());
}

#[test]
fn tolerated_responses() {
    let ok = |wire: &[u8]| {
        for step in [0, 1, 5] {
            let got = get(wire, step, &Limits::default());
            assert!(got.is_ok(), "{:?}: {got:?}", String::from_utf8_lossy(wire));
        }
        get(wire, 0, &Limits::default()).unwrap()
    };
    // Equal Content-Lengths, several fields and lists.
    assert_eq!(
        ok(b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\ncontent-length: 5\r\n\r\nhello").1,
        b"hello"
    );
    // No reason phrase; leading empty line; bare LF line ends.
    assert_eq!(ok(b"\r\nHTTP/1.1 200\nContent-Length: 2\n\nhi").1, b"hi");
    // Server closes right after the last chunk: body complete, no reuse.
    let (_, body, reuse) =
        ok(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n");
    assert_eq!(body, b"hi");
    assert_eq!(reuse, ConnectionReuse::Close(CloseReason::PeerClosed));
    // 101 is final and has no body.
    let (status, body, reuse) =
        ok(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00");
    assert_eq!((status, body), (101, Vec::new()));
    assert_eq!(
        reuse,
        ConnectionReuse::Close(CloseReason::SwitchingProtocols)
    );
    // Several 1xx heads before the final one.
    assert_eq!(ok(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n").0, 201);
}

#[test]
fn head_request_has_no_body() {
    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nTransfer-Encoding: gzip\r\n\r\n";
    let got = run(&http::Method::HEAD, wire, 0, &Limits::default()).unwrap();
    assert_eq!(got, (200, Vec::new(), ConnectionReuse::KeepAlive));
}

#[test]
fn content_length_is_reported_not_refused() {
    let mut limits = Limits::default();
    limits.max_body_bytes = 10;
    let headers = http::HeaderMap::new();
    let request = RequestHead {
        method: &http::Method::GET,
        target: "/big",
        host: "h",
        headers: &headers,
        body_len: None,
    };
    let mut recv = Exchange::new(&request, &limits).request_sent();
    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n";
    let (n, head) = recv.try_response(wire).unwrap();
    assert_eq!(n, wire.len());
    match recv.into_body(&head.unwrap()).unwrap() {
        AfterHead::Body(body) => {
            assert_eq!(body.content_length(), Some(1_000_000_000_000));
            assert!(!body.is_finished());
            assert_eq!(
                body.finish().reuse,
                ConnectionReuse::Close(CloseReason::BodyNotFinished)
            );
        }
        AfterHead::Done(_) => panic!("a body follows"),
    }
}

/// (version, response Connection, request asked close, framing) → reuse.
#[test]
fn reuse_table() {
    use CloseReason::*;
    use ConnectionReuse::*;
    let cases: &[(&str, &str, bool, &str, ConnectionReuse)] = &[
        ("1.1", "", false, "Content-Length: 2\r\n\r\nhi", KeepAlive),
        (
            "1.1",
            "",
            false,
            "Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
            KeepAlive,
        ),
        ("1.1", "", false, "Content-Length: 0\r\n\r\n", KeepAlive),
        ("1.1", "", false, "\r\nhi", Close(CloseDelimited)),
        (
            "1.1",
            "Connection: close\r\n",
            false,
            "Content-Length: 2\r\n\r\nhi",
            Close(ConnectionClose),
        ),
        (
            "1.1",
            "Connection: Keep-Alive, CLOSE\r\n",
            false,
            "Content-Length: 2\r\n\r\nhi",
            Close(ConnectionClose),
        ),
        (
            "1.1",
            "Connection: keep-alive\r\n",
            false,
            "Content-Length: 2\r\n\r\nhi",
            KeepAlive,
        ),
        (
            "1.1",
            "",
            true,
            "Content-Length: 2\r\n\r\nhi",
            Close(ConnectionClose),
        ),
        (
            "1.0",
            "",
            false,
            "Content-Length: 2\r\n\r\nhi",
            Close(Http10),
        ),
        (
            "1.0",
            "Connection: keep-alive\r\n",
            false,
            "Content-Length: 2\r\n\r\nhi",
            Close(Http10),
        ),
        ("1.0", "", false, "\r\nhi", Close(Http10)),
    ];
    for (version, connection, client_close, rest, want) in cases {
        let wire = format!("HTTP/{version} 200 OK\r\n{connection}{rest}");
        let headers = http::HeaderMap::new();
        let request = RequestHead {
            method: &http::Method::GET,
            target: "/",
            host: "h",
            headers: &headers,
            body_len: None,
        };
        let mut send = Exchange::new(&request, &Limits::default());
        if *client_close {
            send.connection_close();
            send.connection_close();
            assert_eq!(
                send.head(),
                b"GET / HTTP/1.1\r\nhost: h\r\nconnection: close\r\n\r\n"
            );
        }
        let mut recv = send.request_sent();
        let (n, head) = recv.try_response(wire.as_bytes()).unwrap();
        let head: ResponseHead = head.unwrap();
        let rest = &wire.as_bytes()[n..];
        let reuse = match recv.into_body(&head).unwrap() {
            AfterHead::Done(done) => done.reuse,
            AfterHead::Body(mut body) => {
                let chunk = body.read(rest).unwrap();
                assert_eq!(&rest[chunk.data], b"hi");
                if !body.is_finished() {
                    body.handle_eof().unwrap();
                }
                body.finish().reuse
            }
        };
        assert_eq!(reuse, *want, "{wire:?}");
    }
}

#[test]
fn request_head_encoding() {
    let mut headers = http::HeaderMap::new();
    headers.insert("Content-Type", "application/json".parse().unwrap());
    headers.insert("HOST", "other".parse().unwrap());
    headers.insert("Connection", "keep-alive".parse().unwrap());
    for (method, body_len, tail) in [
        (http::Method::POST, Some(0), "content-length: 0\r\n\r\n"),
        (http::Method::PUT, Some(12), "content-length: 12\r\n\r\n"),
        (http::Method::GET, None, "\r\n"),
    ] {
        let request = RequestHead {
            method: &method,
            target: "/p?q=%20",
            host: "example.com:8443",
            headers: &headers,
            body_len,
        };
        let send = Exchange::new(&request, &Limits::default());
        assert_eq!(send.body_len(), body_len);
        let want = format!(
            "{method} /p?q=%20 HTTP/1.1\r\nhost: example.com:8443\r\ncontent-type: application/json\r\n{tail}"
        );
        assert_eq!(String::from_utf8_lossy(send.head()), want);
    }
}

/// A head encoded into a kept buffer is the same bytes as into a new one;
/// the buffer comes back empty with its capacity, and one grown past
/// `KEPT_HEAD_BUFFER_MAX` is not kept.
#[test]
fn head_buffer_is_reused_up_to_its_bound() {
    use mpnet_core::http1::KEPT_HEAD_BUFFER_MAX;
    let headers = http::HeaderMap::new();
    let small = RequestHead {
        method: &http::Method::GET,
        target: "/a",
        host: "example.com",
        headers: &headers,
        body_len: None,
    };
    let fresh = Exchange::new(&small, &Limits::default()).head().to_vec();
    let stale = b"left over from the last request".repeat(4);
    let send = Exchange::new_in(&small, &Limits::default(), stale);
    assert_eq!(send.head(), &fresh[..]);
    let (_recv, buf) = send.request_sent_keeping_buffer();
    assert!(buf.is_empty());
    assert!(buf.capacity() >= fresh.len());
    let kept_at = buf.as_ptr();
    // The next request encodes into the very same allocation.
    let send = Exchange::new_in(&small, &Limits::default(), buf);
    assert_eq!(send.head().as_ptr(), kept_at);
    assert_eq!(send.head(), &fresh[..]);

    let mut big = http::HeaderMap::new();
    big.insert("x-big", "v".repeat(KEPT_HEAD_BUFFER_MAX).parse().unwrap());
    let large = RequestHead {
        headers: &big,
        ..small
    };
    let (_, buf) = Exchange::new(&large, &Limits::default()).request_sent_keeping_buffer();
    assert_eq!(buf.capacity(), 0, "a buffer over the bound is dropped");
}

/// A small complete body rides in the head's buffer (one write); a large,
/// empty or mismatched one does not; `connection_close` still lands in the
/// head, before the blank line, with the attached body intact.
#[test]
fn small_bodies_are_attached_to_the_head() {
    use mpnet_core::http1::ATTACHED_BODY_MAX;
    let headers = http::HeaderMap::new();
    let post = |len: usize| RequestHead {
        method: &http::Method::POST,
        target: "/p",
        host: "h",
        headers: &headers,
        body_len: Some(len as u64),
    };
    let head_only = Exchange::new(&post(5), &Limits::default()).head().to_vec();

    let mut send = Exchange::new(&post(5), &Limits::default());
    assert!(send.attach_body(b"hello"));
    assert!(!send.attach_body(b"hello"), "attached once");
    assert_eq!(send.head(), [&head_only[..], b"hello"].concat());
    send.connection_close();
    assert_eq!(
        String::from_utf8_lossy(send.head()),
        "POST /p HTTP/1.1\r\nhost: h\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello"
    );

    let big = vec![b'x'; ATTACHED_BODY_MAX + 1];
    let mut send = Exchange::new(&post(big.len()), &Limits::default());
    assert!(!send.attach_body(&big), "over the bound");
    let mut send2 = Exchange::new(&post(ATTACHED_BODY_MAX), &Limits::default());
    assert!(send2.attach_body(&big[..ATTACHED_BODY_MAX]), "at the bound");
    assert!(
        !Exchange::new(&post(4), &Limits::default()).attach_body(b"hello"),
        "length differs"
    );
    assert!(
        !Exchange::new(&post(0), &Limits::default()).attach_body(b""),
        "nothing to attach"
    );
    send.connection_close();
    assert!(send.head().ends_with(b"connection: close\r\n\r\n"));
}

/// Transports move exchanges and decoders across threads and tasks.
#[test]
fn states_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Exchange<mpnet_core::http1::state::SendRequest>>();
    check::<Exchange<mpnet_core::http1::state::RecvResponse>>();
    check::<Exchange<mpnet_core::http1::state::RecvBody>>();
    check::<mpnet_core::http1::ContentDecoder>();
    check::<mpnet_core::http1::ChunkedDecoder>();
    check::<ProtocolError>();
}
