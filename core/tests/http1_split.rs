//! Split-anywhere property tests of the HTTP/1.1 exchange (SPEC §2): a
//! generated response fed in pieces cut at arbitrary points (the transport
//! keeps unconsumed bytes and appends the next piece) gives the same head,
//! the same body, the same connection verdict and the same leftover bytes as
//! feeding it all at once, and both match the model it was generated from.

use mpnet_core::http1::{
    AfterHead, ChunkedDecoder, Complete, ConnectionReuse, Exchange, ProtocolError, RequestHead,
    ResponseHead,
};
use mpnet_core::Limits;
use proptest::prelude::*;
use proptest::sample::Index;

/// How the generated body is framed on the wire.
#[derive(Debug, Clone)]
enum Framing {
    Length,
    /// Chunk sizes (cut points into the body), size-line spelling, an
    /// extension per chunk, trailer lines.
    Chunked {
        cuts: Vec<Index>,
        upper: bool,
        zeros: usize,
        exts: Vec<String>,
        trailers: Vec<(String, String)>,
    },
    CloseDelimited,
}

/// A generated response.
#[derive(Debug, Clone)]
struct Model {
    informational: Vec<(u16, Vec<(String, String)>)>,
    status: u16,
    http10: bool,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    framing: Framing,
    server_close: bool,
}

/// Bytes after the response that belong to the next one: never consumed.
const NEXT: &[u8] = b"HTTP/1.1 200 OK\r\n";

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,12}".prop_filter("library framing header", |n| {
        let n = n.to_ascii_lowercase();
        !matches!(
            n.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        )
    })
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    // Visible ASCII, inner spaces and tabs, obs-text bytes.
    prop::collection::vec(
        prop_oneof![
            8 => 0x21u8..=0x7e,
            1 => Just(b' '),
            1 => Just(b'\t'),
            1 => 0x80u8..=0xff,
        ],
        0..24,
    )
    .prop_map(|mut v| {
        // Leading and trailing whitespace is not part of a field value.
        while v.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            v.remove(0);
        }
        while v.last().is_some_and(|b| *b == b' ' || *b == b'\t') {
            v.pop();
        }
        v
    })
}

fn framing() -> impl Strategy<Value = Framing> {
    let ext = prop_oneof![
        Just(String::new()),
        "[a-z]{1,6}".prop_map(|n| format!(";{n}")),
        ("[a-z]{1,6}", "[a-z0-9]{0,6}").prop_map(|(n, v)| format!(" ; {n}={v}")),
        ("[a-z]{1,6}", "[ a-z;]{0,6}").prop_map(|(n, v)| format!(";{n}=\"{v}\"")),
    ];
    let chunked = (
        prop::collection::vec(any::<Index>(), 0..8),
        any::<bool>(),
        0usize..3,
        prop::collection::vec(ext, 9),
        prop::collection::vec(("[A-Za-z][a-z-]{0,8}", "[ -~]{0,16}"), 0..3),
    )
        .prop_map(|(cuts, upper, zeros, exts, trailers)| Framing::Chunked {
            cuts,
            upper,
            zeros,
            exts,
            trailers,
        });
    prop_oneof![
        Just(Framing::Length),
        chunked,
        Just(Framing::CloseDelimited)
    ]
}

fn model() -> impl Strategy<Value = Model> {
    let informational = prop::collection::vec(
        (
            prop::sample::select(vec![100u16, 102, 103, 199]),
            prop::collection::vec((token(), "[ -~]{0,10}"), 0..3),
        ),
        0..3,
    );
    let status = prop_oneof![
        prop::sample::select(vec![200u16, 201, 204, 206, 301, 304, 404, 500]),
        200u16..=599,
    ];
    (
        informational,
        status,
        any::<bool>(),
        prop::collection::vec((token(), value()), 0..8),
        prop::collection::vec(any::<u8>(), 0..400),
        framing(),
        any::<bool>(),
    )
        .prop_map(
            |(informational, status, http10, headers, body, framing, server_close)| Model {
                informational,
                status,
                http10,
                headers,
                body,
                framing,
                server_close,
            },
        )
}

impl Model {
    fn has_body(&self) -> bool {
        self.status != 204 && self.status != 304
    }

    /// The body the exchange should deliver.
    fn expected_body(&self) -> &[u8] {
        if self.has_body() {
            &self.body
        } else {
            b""
        }
    }

    /// The head the exchange should return.
    fn expected_head(&self) -> (u16, http::Version, Vec<(String, Vec<u8>)>) {
        let version = if self.http10 {
            http::Version::HTTP_10
        } else {
            http::Version::HTTP_11
        };
        (self.status, version, self.final_headers())
    }

    fn expected_reuse(&self) -> ConnectionReuse {
        use mpnet_core::http1::CloseReason::*;
        let close_delimited = self.has_body() && matches!(self.framing, Framing::CloseDelimited);
        if self.server_close {
            ConnectionReuse::Close(ConnectionClose)
        } else if self.http10 {
            ConnectionReuse::Close(Http10)
        } else if close_delimited {
            ConnectionReuse::Close(CloseDelimited)
        } else {
            ConnectionReuse::KeepAlive
        }
    }

    /// Whether the transport reaches EOF (the body ends at close).
    fn ends_at_eof(&self) -> bool {
        self.has_body() && matches!(self.framing, Framing::CloseDelimited)
    }

    fn final_headers(&self) -> Vec<(String, Vec<u8>)> {
        let mut headers = self.headers.clone();
        if self.server_close {
            headers.push(("Connection".into(), b"close".to_vec()));
        }
        if self.has_body() {
            match &self.framing {
                Framing::Length => {
                    headers.push(("Content-Length".into(), self.body.len().to_string().into()))
                }
                Framing::Chunked { .. } => {
                    headers.push(("Transfer-Encoding".into(), b"chunked".to_vec()))
                }
                Framing::CloseDelimited => {}
            }
        }
        headers
    }

    fn wire(&self) -> Vec<u8> {
        let mut w = Vec::new();
        let version = if self.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
        for (status, headers) in &self.informational {
            w.extend_from_slice(format!("{version} {status} Info\r\n").as_bytes());
            for (n, v) in headers {
                w.extend_from_slice(format!("{n}: {}\r\n", v.trim()).as_bytes());
            }
            w.extend_from_slice(b"\r\n");
        }
        w.extend_from_slice(format!("{version} {} Some Reason\r\n", self.status).as_bytes());
        for (n, v) in self.final_headers() {
            w.extend_from_slice(n.as_bytes());
            w.extend_from_slice(b": ");
            w.extend_from_slice(&v);
            w.extend_from_slice(b"\r\n");
        }
        w.extend_from_slice(b"\r\n");
        if !self.has_body() {
            w.extend_from_slice(NEXT);
            return w;
        }
        match &self.framing {
            Framing::Length => {
                w.extend_from_slice(&self.body);
                w.extend_from_slice(NEXT);
            }
            Framing::CloseDelimited => w.extend_from_slice(&self.body),
            Framing::Chunked {
                cuts,
                upper,
                zeros,
                exts,
                trailers,
            } => {
                w.extend_from_slice(&encode_chunked(
                    &self.body, cuts, *upper, *zeros, exts, trailers,
                ));
                w.extend_from_slice(NEXT);
            }
        }
        w
    }
}

/// Encodes `body` as chunks cut at `cuts`, with size-line variations,
/// extensions and trailers.
fn encode_chunked(
    body: &[u8],
    cuts: &[Index],
    upper: bool,
    zeros: usize,
    exts: &[String],
    trailers: &[(String, String)],
) -> Vec<u8> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(body.len() + 1)).collect();
    points.push(0);
    points.push(body.len());
    points.sort_unstable();
    points.dedup();
    let mut w = Vec::new();
    let mut exts = exts.iter().cycle();
    for pair in points.windows(2) {
        let chunk = &body[pair[0]..pair[1]];
        let size = if upper {
            format!("{:X}", chunk.len())
        } else {
            format!("{:x}", chunk.len())
        };
        w.extend_from_slice(
            format!("{}{size}{}\r\n", "0".repeat(zeros), exts.next().unwrap()).as_bytes(),
        );
        w.extend_from_slice(chunk);
        w.extend_from_slice(b"\r\n");
    }
    w.extend_from_slice(format!("0{}\r\n", exts.next().unwrap()).as_bytes());
    for (n, v) in trailers {
        w.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    w.extend_from_slice(b"\r\n");
    w
}

/// What a transport ends up with.
#[derive(Debug, PartialEq)]
struct Outcome {
    head: ResponseHead,
    body: Vec<u8>,
    complete: Complete,
    leftover: Vec<u8>,
}

/// Drives an exchange the way a transport does, the wire arriving in the
/// pieces `cuts` make; EOF after the last piece.
fn drive(wire: &[u8], cuts: &[usize], limits: &Limits) -> Result<Outcome, ProtocolError> {
    let mut points: Vec<usize> = cuts.iter().map(|&c| c.min(wire.len())).collect();
    points.push(0);
    points.push(wire.len());
    points.sort_unstable();
    points.dedup();
    let mut pieces = points.windows(2).map(|p| &wire[p[0]..p[1]]);
    let mut buf: Vec<u8> = Vec::new();

    let headers = http::HeaderMap::new();
    let request = RequestHead {
        method: &http::Method::GET,
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
            (n, None) => {
                buf.drain(..n);
            }
        }
    };
    let mut reader = match recv.into_body(&head)? {
        AfterHead::Done(complete) => {
            buf.extend(pieces.flatten());
            return Ok(Outcome {
                head,
                body: Vec::new(),
                complete,
                leftover: buf,
            });
        }
        AfterHead::Body(reader) => reader,
    };
    let mut body = Vec::new();
    while !reader.is_finished() {
        let chunk = reader.read(&buf)?;
        assert!(chunk.data.end <= chunk.consumed || chunk.data.is_empty());
        body.extend_from_slice(&buf[chunk.data.clone()]);
        buf.drain(..chunk.consumed);
        if chunk.need_more() && !reader.is_finished() {
            match pieces.next() {
                Some(p) => buf.extend_from_slice(p),
                None => reader.handle_eof()?,
            }
        }
    }
    buf.extend(pieces.flatten());
    Ok(Outcome {
        head,
        body,
        complete: reader.finish(),
        leftover: buf,
    })
}

fn cut_points(cuts: &[Index], len: usize) -> Vec<usize> {
    cuts.iter().map(|i| i.index(len + 1)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn exchange_split_anywhere(m in model(), cuts in prop::collection::vec(any::<Index>(), 0..24)) {
        let wire = m.wire();
        let limits = Limits::default();
        let whole = drive(&wire, &[], &limits).expect("valid response");
        let split = drive(&wire, &cut_points(&cuts, wire.len()), &limits).expect("valid response");
        prop_assert_eq!(&whole, &split);

        let (status, version, headers) = m.expected_head();
        prop_assert_eq!(whole.head.status, status);
        prop_assert_eq!(whole.head.version, version);
        let fields: Vec<(String, Vec<u8>)> =
            whole.head.fields().map(|(n, v)| (n.to_owned(), v.to_vec())).collect();
        prop_assert_eq!(&fields, &headers);
        prop_assert_eq!(&whole.body[..], m.expected_body());
        prop_assert_eq!(whole.complete.reuse, m.expected_reuse());
        let leftover: &[u8] = if m.ends_at_eof() { b"" } else { NEXT };
        prop_assert_eq!(&whole.leftover[..], leftover);
    }

    #[test]
    fn exchange_byte_by_byte(m in model()) {
        let wire = m.wire();
        let limits = Limits::default();
        let whole = drive(&wire, &[], &limits).expect("valid response");
        let every: Vec<usize> = (0..wire.len()).collect();
        prop_assert_eq!(whole, drive(&wire, &every, &limits).expect("valid response"));
    }

    /// Truncating a response anywhere gives an error (or, for a
    /// close-delimited body, a shorter body), never a panic, and the same
    /// answer however the truncated bytes are split.
    #[test]
    fn truncated_split_anywhere(
        m in model(),
        at in any::<Index>(),
        cuts in prop::collection::vec(any::<Index>(), 0..12),
    ) {
        let mut wire = m.wire();
        wire.truncate(at.index(wire.len() + 1));
        let limits = Limits::default();
        let whole = drive(&wire, &[], &limits);
        let split = drive(&wire, &cut_points(&cuts, wire.len()), &limits);
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn chunked_decoder_split_anywhere(
        body in prop::collection::vec(any::<u8>(), 0..2000),
        chunk_cuts in prop::collection::vec(any::<Index>(), 0..16),
        upper in any::<bool>(),
        zeros in 0usize..3,
        exts in prop::collection::vec(prop_oneof![Just(String::new()), "[a-z]{1,6}".prop_map(|n| format!(";{n}=1"))], 1..4),
        trailers in prop::collection::vec(("[A-Za-z][a-z-]{0,8}", "[ -~]{0,16}"), 0..3),
        cuts in prop::collection::vec(any::<Index>(), 0..32),
    ) {
        let mut wire = encode_chunked(&body, &chunk_cuts, upper, zeros, &exts, &trailers);
        let end = wire.len();
        wire.extend_from_slice(b"rest");
        let mut points = cut_points(&cuts, wire.len());
        points.push(0);
        points.push(wire.len());
        points.sort_unstable();
        points.dedup();

        let mut dec = ChunkedDecoder::new(4096);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let mut fed = 0;
        for p in points.windows(2) {
            buf.extend_from_slice(&wire[p[0]..p[1]]);
            fed = p[1];
            loop {
                let c = dec.decode(&buf).unwrap();
                out.extend_from_slice(&buf[c.data.clone()]);
                buf.drain(..c.consumed);
                if c.need_more() {
                    break;
                }
            }
            if dec.is_finished() {
                break;
            }
        }
        prop_assert!(dec.is_finished());
        prop_assert_eq!(out, body);
        // Exactly the encoded body was consumed; the rest is left over.
        prop_assert_eq!(fed - buf.len(), end);
    }
}
