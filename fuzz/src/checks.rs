//! The invariants the fuzz targets check, as plain functions of the raw fuzz
//! input. Each function panics when an invariant breaks and returns quietly
//! otherwise, whatever the input.
//!
//! This one file is used twice:
//!
//! - by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`, through
//!   `#[path = "../src/checks.rs"] mod checks;`), and
//! - by the regression replay of the core's test suite
//!   (`core/tests/fuzz_regressions.rs`), which runs every file under
//!   `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through the
//!   function of the same name, on stable, in `cargo test`.
//!
//! So it depends only on crates the core itself depends on (`mpnet-core`,
//! `serde_json`, `flate2`, `http`, `url`, `base64`), and the input formats
//! below are the on-disk formats of the corpus and regression files.
//!
//! Several targets read a few control bytes before their payload (see each
//! function). A missing control byte reads as 0, so every input is valid.
#![allow(dead_code)]

use std::io::Write as _;

use base64::Engine as _;
use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
use flate2::{Compression, GzBuilder};
use mpnet_core::bridge;
use mpnet_core::http1::{
    AfterHead, ChunkedDecoder, CloseReason, ConnectionReuse, ContentDecoder, Exchange,
    ProtocolError, RequestHead, ResponseHead,
};
use mpnet_core::request::{Data, Method, PreparedRequest};
use mpnet_core::tls_session::{Handshake, TlsSession};
use mpnet_core::transfer::{
    upload_options, MultipartPlan, Progress, ProgressEvent, Segment, UploadRequest,
};
use mpnet_core::ws::frame::encode_frame;
use mpnet_core::ws::{
    Connection, ConnectionConfig, Frame, FrameDecoder, MessageData, ProtocolViolation, Role,
    SendOptions, SocketEvent,
};
use mpnet_core::{js, tls, AppContext, DomainPolicy, Host, Limits, OriginPattern, Target};
use serde_json::{Map, Number, Value};
use tungstenite::protocol::frame::coding::{Control, Data as WsData, OpCode};

/// A check: panics when the input breaks an invariant.
pub type Check = fn(&[u8]);

/// The targets, by name, with their check. The regression replay runs the
/// files of `fuzz/corpus/<name>/` and `fuzz/regressions/<name>/` through
/// the function.
pub const TARGETS: &[(&str, Check)] = &[
    ("response_split", response_split),
    ("chunked", chunked),
    ("content_decoder", content_decoder),
    ("encoders", encoders),
    ("url_policy", url_policy),
    ("options_json", options_json),
    ("ws_frames", ws_frames),
    ("ws_lifecycle", ws_lifecycle),
    ("multipart", multipart),
    ("ws_handshake", ws_handshake),
    ("tls_session", tls_session),
    ("tls_records", tls_records),
];

// ---------------------------------------------------------------------------
// Reading control bytes from the input.

/// The fuzz input, read from the front. Bytes past the end read as 0.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    fn rest(self) -> &'a [u8] {
        self.data
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// A count byte (`% 16`) and that many gap bytes: where a transport's reads
/// end. See [`pieces`].
fn read_gaps<'a>(inp: &mut Input<'a>) -> &'a [u8] {
    let n = usize::from(inp.byte() % 16);
    inp.take(n)
}

/// `data` cut into pieces: each gap byte `g` gives a piece of
/// `g * (1 + len / 1024)` bytes (so cuts can land anywhere in a long input;
/// `g = 0` is an empty read), and the rest is the last piece.
fn pieces<'a>(data: &'a [u8], gaps: &[u8]) -> Vec<&'a [u8]> {
    let scale = 1 + data.len() / 1024;
    let mut out = Vec::with_capacity(gaps.len() + 1);
    let mut pos: usize = 0;
    for &g in gaps {
        let end = pos.saturating_add(usize::from(g) * scale).min(data.len());
        out.push(&data[pos..end]);
        pos = end;
    }
    out.push(&data[pos..]);
    out
}

/// `data` one byte per piece.
fn bytewise(data: &[u8]) -> Vec<&[u8]> {
    data.chunks(1).collect()
}

/// What a transport holds: the bytes read and not yet consumed, and the
/// reads still to come.
struct Feed<'p, 'a> {
    pieces: &'p [&'a [u8]],
    next: usize,
    buf: Vec<u8>,
    /// Guards against a parser that neither consumes nor asks for more.
    steps: usize,
    max_steps: usize,
}

impl<'p, 'a> Feed<'p, 'a> {
    fn new(pieces: &'p [&'a [u8]]) -> Self {
        let total: usize = pieces.iter().map(|p| p.len()).sum();
        Feed {
            pieces,
            next: 0,
            buf: Vec::new(),
            steps: 0,
            max_steps: 4 * (total + pieces.len()) + 64,
        }
    }

    /// Appends the next read; `false` at the end of the stream.
    fn more(&mut self) -> bool {
        match self.pieces.get(self.next) {
            Some(p) => {
                self.buf.extend_from_slice(p);
                self.next += 1;
                true
            }
            None => false,
        }
    }

    fn step(&mut self) {
        self.steps += 1;
        assert!(
            self.steps <= self.max_steps,
            "no progress: {} calls for {} pieces",
            self.steps,
            self.pieces.len()
        );
    }

    /// The unconsumed bytes and every read not yet made.
    fn leftover(&self) -> Vec<u8> {
        let mut out = self.buf.clone();
        for p in &self.pieces[self.next..] {
            out.extend_from_slice(p);
        }
        out
    }
}

// ---------------------------------------------------------------------------
// response_split

/// Limits small enough for the fuzzer to reach them.
fn small_limits() -> Limits {
    let mut l = Limits::default();
    l.max_header_bytes = 96;
    l.max_header_count = 4;
    l.max_chunk_line_bytes = 8;
    l
}

/// One response read by a transport.
#[derive(Debug, Clone, PartialEq)]
struct ResponseRun {
    /// Byte lengths of the skipped 1xx heads.
    skipped: Vec<usize>,
    /// The final head and its length.
    head: Option<(usize, ResponseHead)>,
    /// `into_body` gave a body to read.
    has_body: bool,
    content_length: Option<u64>,
    body: Vec<u8>,
    /// Body-phase bytes consumed (framing included).
    body_consumed: usize,
    saw_eof: bool,
    end: Result<ConnectionReuse, ProtocolError>,
    leftover: Vec<u8>,
}

struct ExchangeCfg {
    head_request: bool,
    client_close: bool,
    limits: Limits,
}

fn drive_response(pieces: &[&[u8]], cfg: &ExchangeCfg) -> ResponseRun {
    let headers = http::HeaderMap::new();
    let method = if cfg.head_request {
        http::Method::HEAD
    } else {
        http::Method::GET
    };
    let req = RequestHead {
        method: &method,
        target: "/",
        host: "example.com",
        headers: &headers,
        body_len: None,
    };
    let mut send = Exchange::new(&req, &cfg.limits);
    if cfg.client_close {
        send.connection_close();
    }
    let mut recv = send.request_sent();
    let mut feed = Feed::new(pieces);
    let mut run = ResponseRun {
        skipped: Vec::new(),
        head: None,
        has_body: false,
        content_length: None,
        body: Vec::new(),
        body_consumed: 0,
        saw_eof: false,
        end: Err(ProtocolError::ClosedBeforeHead),
        leftover: Vec::new(),
    };
    let head = loop {
        feed.step();
        match recv.try_response(&feed.buf) {
            Err(e) => {
                run.end = Err(e);
                run.leftover = feed.leftover();
                return run;
            }
            Ok((0, None)) => {
                if !feed.more() {
                    run.saw_eof = true;
                    run.end = Err(recv.handle_eof());
                    run.leftover = feed.leftover();
                    return run;
                }
            }
            Ok((n, None)) => {
                assert!(n <= feed.buf.len(), "1xx head of {n} bytes > input");
                run.skipped.push(n);
                feed.buf.drain(..n);
            }
            Ok((n, Some(head))) => {
                assert!(
                    n > 0 && n <= feed.buf.len(),
                    "final head of {n} bytes, input {}",
                    feed.buf.len()
                );
                feed.buf.drain(..n);
                run.head = Some((n, head.clone()));
                break head;
            }
        }
    };
    let mut body = match recv.into_body(&head) {
        Err(e) => {
            run.end = Err(e);
            run.leftover = feed.leftover();
            return run;
        }
        Ok(AfterHead::Done(done)) => {
            run.end = Ok(done.reuse);
            run.leftover = feed.leftover();
            return run;
        }
        Ok(AfterHead::Body(body)) => body,
    };
    run.has_body = true;
    run.content_length = body.content_length();
    loop {
        feed.step();
        if body.is_finished() {
            break;
        }
        let chunk = match body.read(&feed.buf) {
            Ok(c) => c,
            Err(e) => {
                run.end = Err(e);
                run.leftover = feed.leftover();
                return run;
            }
        };
        assert!(
            chunk.data.start <= chunk.data.end
                && chunk.data.end <= chunk.consumed
                && chunk.consumed <= feed.buf.len(),
            "bad body chunk {chunk:?} for {} bytes of input",
            feed.buf.len()
        );
        run.body.extend_from_slice(&feed.buf[chunk.data.clone()]);
        run.body_consumed += chunk.consumed;
        feed.buf.drain(..chunk.consumed);
        if chunk.need_more() && !body.is_finished() && !feed.more() {
            run.saw_eof = true;
            if let Err(e) = body.handle_eof() {
                run.end = Err(e);
                run.leftover = feed.leftover();
                return run;
            }
            assert!(
                body.is_finished(),
                "handle_eof was Ok but the body is not finished"
            );
        }
    }
    run.end = Ok(body.finish().reuse);
    run.leftover = feed.leftover();
    run
}

fn check_response_run(run: &ResponseRun, wire: &[u8], cfg: &ExchangeCfg) {
    let skipped: usize = run.skipped.iter().sum();
    let head_len = run.head.as_ref().map_or(0, |(n, _)| *n);
    let accounted = skipped + head_len + run.body_consumed + run.leftover.len();
    if run.end.is_ok() {
        assert_eq!(accounted, wire.len(), "bytes lost or invented: {run:?}");
    } else {
        assert!(accounted <= wire.len(), "bytes invented: {run:?}");
    }
    assert!(
        run.body.len() <= run.body_consumed,
        "more body than input consumed"
    );
    let Some((_, head)) = &run.head else {
        assert!(run.end.is_err(), "no head but no error");
        return;
    };
    // The header object is the same whichever way it is built (the head's
    // buffer taken over, or a new one), and holds each name once.
    let js = head.js_headers();
    assert_eq!(
        js,
        head.clone().into_js_headers(),
        "js_headers paths differ"
    );
    let names: Vec<&str> = js.iter().map(|(n, _)| n).collect();
    for (i, name) in names.iter().enumerate() {
        assert!(
            !names[..i].iter().any(|n| n.eq_ignore_ascii_case(name)),
            "header object repeats {name:?}"
        );
    }
    assert!(
        (head.status == 101 || head.status >= 200) && head.status <= 999,
        "status {} returned as a final head",
        head.status
    );
    assert!(
        head.version == http::Version::HTTP_10 || head.version == http::Version::HTTP_11,
        "version {:?}",
        head.version
    );
    for (name, _) in head.fields() {
        assert!(
            !name.is_empty() && name.bytes().all(is_tchar),
            "header name {name:?} is not a token"
        );
    }
    if cfg.head_request || matches!(head.status, 101 | 204 | 304) {
        assert!(!run.has_body, "a body after HEAD/101/204/304: {run:?}");
    }
    if let Some(n) = run.content_length {
        assert!(run.body_consumed as u64 <= n, "read past Content-Length");
        if run.end.is_ok() {
            assert_eq!(run.body.len() as u64, n, "Content-Length body");
        }
    }
    match run.end {
        Ok(ConnectionReuse::KeepAlive) => {
            assert!(
                head.version == http::Version::HTTP_11
                    && !cfg.client_close
                    && !head.has_token("connection", "close")
                    && !run.saw_eof,
                "keep-alive after close or HTTP/1.0: {run:?}"
            );
            if run.has_body {
                assert!(
                    run.content_length.is_some() || head.has_token("transfer-encoding", "chunked"),
                    "keep-alive with a close-delimited body"
                );
            }
        }
        Ok(ConnectionReuse::Close(reason)) if cfg.client_close => {
            assert!(
                matches!(
                    reason,
                    CloseReason::ConnectionClose | CloseReason::SwitchingProtocols
                ),
                "client asked to close, verdict {reason:?}"
            );
        }
        _ => {}
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Equal runs; on an error, where the error was noticed may differ in how
/// much framing was consumed, so consumption and leftovers are not compared.
fn assert_same_response(a: &ResponseRun, b: &ResponseRun, what: &str) {
    if a.end.is_ok() || b.end.is_ok() {
        assert_eq!(a, b, "whole vs {what}");
    } else {
        let strip = |r: &ResponseRun| ResponseRun {
            body_consumed: 0,
            leftover: Vec::new(),
            ..r.clone()
        };
        assert_eq!(strip(a), strip(b), "whole vs {what}");
    }
}

/// `response_split`: the input is
/// `[flags][cut count][gaps...][response bytes]`; flags bit 0: the request
/// was HEAD (else GET); bit 1: small limits (96-byte head, 4 fields, 8-byte
/// chunk lines); bit 2: the client asked for `connection: close`.
///
/// The response fed whole, in the chosen pieces, and (up to 2 KiB) one byte
/// at a time gives the same skipped 1xx heads, final head, body bytes, EOF,
/// result or error, and (on success) connection verdict and leftover. The
/// whole run also keeps its accounts: every byte is a head, body framing or
/// leftover; a Content-Length body is exactly that long; keep-alive only
/// for HTTP/1.1 without `close` and with a delimited body.
pub fn response_split(data: &[u8]) {
    let mut inp = Input::new(data);
    let flags = inp.byte();
    let gaps = read_gaps(&mut inp);
    let wire = inp.rest();
    let cfg = ExchangeCfg {
        head_request: flags & 1 != 0,
        client_close: flags & 4 != 0,
        limits: if flags & 2 != 0 {
            small_limits()
        } else {
            Limits::default()
        },
    };
    let whole = drive_response(&[wire], &cfg);
    check_response_run(&whole, wire, &cfg);
    let split = drive_response(&pieces(wire, gaps), &cfg);
    assert_same_response(&whole, &split, "split");
    if wire.len() <= 2048 {
        let bytes = drive_response(&bytewise(wire), &cfg);
        assert_same_response(&whole, &bytes, "bytewise");
    }
}

// ---------------------------------------------------------------------------
// chunked

#[derive(Debug, Clone, PartialEq)]
struct ChunkRun {
    data: Vec<u8>,
    consumed: usize,
    finished: bool,
    saw_eof: bool,
    end: Result<(), ProtocolError>,
}

fn drive_chunked(pieces: &[&[u8]], max_line: usize) -> ChunkRun {
    let mut dec = ChunkedDecoder::new(max_line);
    let mut feed = Feed::new(pieces);
    let mut run = ChunkRun {
        data: Vec::new(),
        consumed: 0,
        finished: false,
        saw_eof: false,
        end: Ok(()),
    };
    loop {
        feed.step();
        let chunk = match dec.decode(&feed.buf) {
            Ok(c) => c,
            Err(e) => {
                // Sticky: the same error again, whatever comes next.
                assert_eq!(dec.decode(b"0\r\n\r\n").err(), Some(e.clone()), "sticky");
                assert_eq!(dec.handle_eof().err(), Some(e.clone()), "sticky at EOF");
                run.end = Err(e);
                break;
            }
        };
        assert!(
            chunk.data.start <= chunk.data.end
                && chunk.data.end <= chunk.consumed
                && chunk.consumed <= feed.buf.len(),
            "bad chunk {chunk:?} for {} bytes of input",
            feed.buf.len()
        );
        run.data.extend_from_slice(&feed.buf[chunk.data.clone()]);
        run.consumed += chunk.consumed;
        feed.buf.drain(..chunk.consumed);
        if chunk.need_more() {
            if dec.is_finished() {
                break;
            }
            if !feed.more() {
                run.saw_eof = true;
                run.end = dec.handle_eof();
                if run.end.is_ok() {
                    assert!(dec.is_finished(), "handle_eof Ok but not finished");
                }
                break;
            }
        }
    }
    run.finished = dec.is_finished();
    run
}

fn assert_same_chunked(a: &ChunkRun, b: &ChunkRun, what: &str) {
    if a.end.is_ok() || b.end.is_ok() {
        assert_eq!(a, b, "whole vs {what}");
    } else {
        let strip = |r: &ChunkRun| ChunkRun {
            consumed: 0,
            ..r.clone()
        };
        assert_eq!(strip(a), strip(b), "whole vs {what}");
    }
}

/// A chunked encoding of `payload` with chunk boundaries from `sizes`
/// (each byte a chunk size, 0 skipped), spelled as `style` says.
fn encode_chunked(payload: &[u8], sizes: &[u8], style: u8) -> Vec<u8> {
    let upper = style & 1 != 0;
    let ext = style & 2 != 0;
    let trailers = style & 4 != 0;
    let bare_lf = style & 8 != 0;
    let zeros = style & 16 != 0;
    let ws = style & 32 != 0;
    let eol: &[u8] = if bare_lf { b"\n" } else { b"\r\n" };
    let mut out = Vec::new();
    let size_line = |out: &mut Vec<u8>, n: usize| {
        if zeros {
            out.extend_from_slice(b"00");
        }
        let hex = if upper {
            format!("{n:X}")
        } else {
            format!("{n:x}")
        };
        out.extend_from_slice(hex.as_bytes());
        if ws {
            out.extend_from_slice(b" \t");
        }
        if ext {
            out.extend_from_slice(b";name=\"v;a\\\"l\";x");
        }
        out.extend_from_slice(eol);
    };
    let mut rest = payload;
    let mut sizes = sizes.iter().copied().filter(|&s| s > 0).cycle();
    while !rest.is_empty() {
        let n = usize::from(sizes.next().unwrap_or(255)).min(rest.len());
        size_line(&mut out, n);
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(eol);
        rest = &rest[n..];
    }
    size_line(&mut out, 0);
    if trailers {
        out.extend_from_slice(b"Trailer-A: 1");
        out.extend_from_slice(eol);
        out.extend_from_slice(b"x:");
        out.extend_from_slice(eol);
    }
    out.extend_from_slice(eol);
    out
}

/// `chunked`: the input is `[flags][cut count][gaps...][payload]`.
///
/// flags bit 0 clear (raw mode): the payload is a chunked body; bits 1-2
/// pick the line limit (4096, 1, 8, 64). Fed whole, in the chosen pieces
/// and (up to 4 KiB) one byte at a time, the decoder returns the same data,
/// error and EOF verdict (and on success the same consumption); it never
/// returns more data than it consumed, nor consumes more than it was given;
/// errors are sticky.
///
/// flags bit 0 set (encode mode): the payload is encoded as chunks (the
/// gaps are the chunk sizes; flags bits 1-6 the spelling: upper-case hex,
/// extensions, trailers, bare LF, leading zeros, whitespace), followed by
/// the start of the next response; decoding, whole and in pieces, gives the
/// payload back and consumes exactly the chunked body.
pub fn chunked(data: &[u8]) {
    let mut inp = Input::new(data);
    let flags = inp.byte();
    let gaps = read_gaps(&mut inp);
    let payload = inp.rest();
    if flags & 1 == 0 {
        let max_line = [4096, 1, 8, 64][usize::from((flags >> 1) & 3)];
        let whole = drive_chunked(&[payload], max_line);
        assert!(
            whole.data.len() <= whole.consumed && whole.consumed <= payload.len(),
            "decoded {} bytes from {} consumed of {}",
            whole.data.len(),
            whole.consumed,
            payload.len()
        );
        if whole.end.is_ok() && !whole.saw_eof {
            assert!(whole.finished);
        }
        let split = drive_chunked(&pieces(payload, gaps), max_line);
        assert_same_chunked(&whole, &split, "split");
        if payload.len() <= 4096 {
            let bytes = drive_chunked(&bytewise(payload), max_line);
            assert_same_chunked(&whole, &bytes, "bytewise");
        }
    } else {
        const NEXT: &[u8] = b"HTTP/1.1 200 OK\r\n";
        let body = encode_chunked(payload, gaps, flags >> 1);
        let mut wire = body.clone();
        wire.extend_from_slice(NEXT);
        let want = ChunkRun {
            data: payload.to_vec(),
            consumed: body.len(),
            finished: true,
            saw_eof: false,
            end: Ok(()),
        };
        assert_eq!(drive_chunked(&[&wire], 4096), want, "encoded, whole");
        assert_eq!(
            drive_chunked(&pieces(&wire, gaps), 4096),
            want,
            "encoded, split"
        );
        if wire.len() <= 4096 {
            assert_eq!(
                drive_chunked(&bytewise(&wire), 4096),
                want,
                "encoded, bytewise"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// content_decoder

/// The largest output step of the decoder (`mpnet_core::http1::content::STEP`).
const STEP: u64 = 32 * 1024;

/// Pushes `pieces`, then finishes; checks the bound and stickiness on the way.
fn drive_content(
    coding: Option<&[u8]>,
    max: u64,
    pieces: &[&[u8]],
) -> (Vec<u8>, Result<(), ProtocolError>) {
    let mut dec = ContentDecoder::new(coding, max);
    let mut out = Vec::new();
    let mut result = Ok(());
    for p in pieces {
        result = dec.push(p, &mut out);
        assert!(
            out.len() as u64 <= max,
            "output {} over max_output {max}",
            out.len()
        );
        assert_eq!(dec.total_out(), out.len() as u64, "total_out");
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        result = dec.finish(&mut out);
    }
    if let Err(e) = &result {
        let len = out.len();
        assert_eq!(
            dec.push(b"\x1f\x8b\x08\0", &mut out).err().as_ref(),
            Some(e),
            "sticky"
        );
        assert_eq!(
            dec.finish(&mut out).err().as_ref(),
            Some(e),
            "sticky finish"
        );
        assert_eq!(out.len(), len, "output after an error");
    }
    assert!(out.len() as u64 <= max);
    (out, result)
}

fn is_prefix_either(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// Whole and split runs of the same stream agree: both succeed with the
/// same output, or both fail with outputs that are prefixes of one another.
/// They may fail differently only when one passed the output limit while
/// the other hit corrupt data in the same output step.
fn assert_same_content(
    a: &(Vec<u8>, Result<(), ProtocolError>),
    b: &(Vec<u8>, Result<(), ProtocolError>),
    max: u64,
    what: &str,
) {
    match (&a.1, &b.1) {
        (Ok(()), Ok(())) => assert!(a.0 == b.0, "whole vs {what}: outputs differ"),
        (Err(x), Err(y)) => {
            assert!(
                is_prefix_either(&a.0, &b.0),
                "whole vs {what}: outputs diverge"
            );
            let kind = |e: &ProtocolError| match e {
                ProtocolError::BodyTooLarge { .. } => 0,
                ProtocolError::BadContentEncoding(_) => 1,
                _ => 2,
            };
            assert!(
                kind(x) < 2 && kind(y) < 2,
                "unexpected errors {x:?} / {y:?}"
            );
            if kind(x) != kind(y) {
                let bad = if kind(x) == 1 { &a.0 } else { &b.0 };
                assert!(
                    bad.len() as u64 + STEP > max,
                    "whole vs {what}: {x:?} / {y:?} with output {} of max {max}",
                    bad.len()
                );
            }
        }
        (x, y) => panic!("whole vs {what}: {x:?} / {y:?}"),
    }
}

/// `content_decoder`: the input is
/// `[mode][max][opts][garbage][cut count][gaps...][payload]`.
///
/// `max` picks `max_output`: `max * 37` below 128, else 1 MiB.
///
/// mode % 4 == 0 (raw): the payload is a body with the `Content-Encoding`
/// picked by `(mode >> 2) % 6` (gzip, deflate, x-gzip, none, br, "gzip,
/// br"); whole and split runs agree (see [`assert_same_content`]); the
/// output never passes `max_output`; identity passes bytes through.
///
/// mode % 4 == 1, 2, 3 (round trip): the payload is compressed by flate2
/// as gzip, zlib (`deflate`) or raw deflate (`deflate`), at the level in
/// `opts & 15`; gzip with a file name, comment, extra field (opts bits 4-6)
/// and, opts bit 7, as two members. `garbage % 8` bytes of the payload's
/// start follow the stream (after a gzip stream only when they do not start
/// a new member, `1f 8b`). Decoding, whole and in pieces, gives the payload
/// back when it fits `max_output`, else `BodyTooLarge` with a prefix of it.
pub fn content_decoder(data: &[u8]) {
    let mut inp = Input::new(data);
    let mode = inp.byte();
    let max_sel = inp.byte();
    let opts = inp.byte();
    let garbage_len = usize::from(inp.byte() % 8);
    let gaps = read_gaps(&mut inp);
    let payload = inp.rest();
    let max: u64 = if max_sel < 128 {
        u64::from(max_sel) * 37
    } else {
        1 << 20
    };
    if mode.is_multiple_of(4) {
        let coding: Option<&[u8]> = match (mode >> 2) % 6 {
            0 => Some(b"gzip"),
            1 => Some(b"deflate"),
            2 => Some(b" X-GZIP "),
            3 => None,
            4 => Some(b"br"),
            _ => Some(b"gzip, br"),
        };
        let whole = drive_content(coding, max, &[payload]);
        if matches!((mode >> 2) % 6, 3..=5) {
            if payload.len() as u64 <= max {
                assert_eq!(whole, (payload.to_vec(), Ok(())), "identity");
            } else {
                assert_eq!(whole.1, Err(ProtocolError::BodyTooLarge { max }));
                assert!(payload.starts_with(&whole.0));
            }
        }
        let split = drive_content(coding, max, &pieces(payload, gaps));
        assert_same_content(&whole, &split, max, "split");
        if payload.len() <= 512 {
            let bytes = drive_content(coding, max, &bytewise(payload));
            assert_same_content(&whole, &bytes, max, "bytewise");
        }
        return;
    }
    let level = Compression::new(u32::from(opts & 15).min(9));
    let (coding, mut stream): (&[u8], Vec<u8>) = match mode % 4 {
        1 => {
            let mut stream = Vec::new();
            let halves: Vec<&[u8]> = if opts & 128 != 0 {
                let mid = payload.len() / 2;
                vec![&payload[..mid], &payload[mid..]]
            } else {
                vec![payload]
            };
            for part in halves {
                let mut b = GzBuilder::new().mtime(0x0102_0304);
                if opts & 16 != 0 {
                    b = b.filename(&b"name.txt"[..]);
                }
                if opts & 32 != 0 {
                    b = b.comment(&b"a comment"[..]);
                }
                if opts & 64 != 0 {
                    b = b.extra(vec![b'A', b'B', 2, 0, 0xff, 0x1f]);
                }
                let mut e = b.write(Vec::new(), level);
                e.write_all(part).expect("gzip in memory");
                stream.extend(e.finish().expect("gzip in memory"));
            }
            (b"gzip", stream)
        }
        2 => {
            let mut e = ZlibEncoder::new(Vec::new(), level);
            e.write_all(payload).expect("zlib in memory");
            (b"deflate", e.finish().expect("zlib in memory"))
        }
        _ => {
            let mut e = DeflateEncoder::new(Vec::new(), level);
            e.write_all(payload).expect("deflate in memory");
            (b"deflate", e.finish().expect("deflate in memory"))
        }
    };
    let garbage = &payload[..garbage_len.min(payload.len())];
    if !(coding == b"gzip" && garbage.starts_with(&[0x1f, 0x8b])) {
        stream.extend_from_slice(garbage);
    }
    let check = |(out, result): (Vec<u8>, Result<(), ProtocolError>), what: &str| {
        if payload.len() as u64 <= max {
            assert_eq!(result, Ok(()), "round trip, {what}");
            assert!(out == payload, "round trip, {what}: output differs");
        } else {
            assert_eq!(
                result,
                Err(ProtocolError::BodyTooLarge { max }),
                "round trip over the limit, {what}"
            );
            assert!(
                payload.starts_with(&out),
                "round trip, {what}: not a prefix"
            );
        }
    };
    check(drive_content(Some(coding), max, &[&stream]), "whole");
    check(
        drive_content(Some(coding), max, &pieces(&stream, gaps)),
        "split",
    );
    if stream.len() <= 512 {
        check(
            drive_content(Some(coding), max, &bytewise(&stream)),
            "bytewise",
        );
    }
    // The same stream wrapped in `GzEncoder` defaults, as a server would.
    if mode % 4 == 1 && opts & 0xf0 == 0 && payload.len() <= 1024 {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(payload).expect("gzip in memory");
        check(
            drive_content(Some(b"gzip"), max, &[&e.finish().expect("gzip")]),
            "GzEncoder",
        );
    }
}

// ---------------------------------------------------------------------------
// encoders

/// Builds a JSON value from bytes (for inputs that are not JSON text).
fn build_value(inp: &mut Input<'_>, depth: u32) -> Value {
    let tag = inp.byte();
    match tag % 10 {
        0 => Value::Null,
        1 => Value::Bool(tag & 16 != 0),
        2 => Value::from(u64::from_le_bytes(eight(inp))),
        3 => Value::from(i64::from_le_bytes(eight(inp))),
        4 => {
            let f = f64::from_bits(u64::from_le_bytes(eight(inp)));
            Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
        5 => {
            // Small decimals: 1.5, 0.1, 1e21, -0 ...
            let m = i64::from(i16::from_le_bytes([inp.byte(), inp.byte()]));
            let e = i32::from(inp.byte() as i8) / 4;
            let f: f64 = format!("{m}e{e}").parse().unwrap_or(0.0);
            Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
        6 | 7 => Value::String(build_string(inp)),
        8 if depth < 5 => {
            let n = inp.byte() % 6;
            Value::Array((0..n).map(|_| build_value(inp, depth + 1)).collect())
        }
        9 if depth < 5 => {
            let n = inp.byte() % 6;
            let mut map = Map::new();
            for _ in 0..n {
                let key = build_key(inp);
                map.insert(key, build_value(inp, depth + 1));
            }
            Value::Object(map)
        }
        _ => Value::from(tag),
    }
}

fn eight(inp: &mut Input<'_>) -> [u8; 8] {
    let mut b = [0u8; 8];
    for x in &mut b {
        *x = inp.byte();
    }
    b
}

fn build_key(inp: &mut Input<'_>) -> String {
    let sel = inp.byte();
    match sel % 4 {
        // Array-index-like keys, around the 2^32 - 2 edge too.
        0 => u32::from_le_bytes([inp.byte(), inp.byte(), inp.byte(), inp.byte()]).to_string(),
        1 => format!("{}", sel / 4),
        2 => format!("0{}", sel / 4),
        _ => build_string(inp),
    }
}

fn build_string(inp: &mut Input<'_>) -> String {
    let n = inp.byte() % 24;
    let mut s = String::new();
    for _ in 0..n {
        let b = inp.byte();
        if b < 0x80 {
            s.push(char::from(b));
        } else {
            let c = u32::from(b & 0x7f) << 14
                | u32::from(inp.byte()) << 6
                | u32::from(inp.byte() & 0x3f);
            s.push(char::from_u32(c % 0x11_0000).unwrap_or('\u{fffd}'));
        }
    }
    s
}

/// Equal as JSON values, numbers by value (integers exactly), objects by
/// key whatever the order.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => same_number(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

fn same_number(x: &Number, y: &Number) -> bool {
    if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
        return x == y;
    }
    if x.is_f64() || y.is_f64() {
        return x.as_f64() == y.as_f64();
    }
    false
}

/// The significant digits (no leading or trailing zeros) and the decimal
/// exponent `n` of a decimal number written `[-]d.ddd`, `[-]ddd`,
/// `[-]0.000ddd` or `[-]d.ddde[+-]x`: the value is `0.digits * 10^n`.
fn decimal_parts(text: &str) -> (bool, String, i32) {
    let (neg, text) = match text.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, text),
    };
    let (mant, exp) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().expect("exponent")),
        None => (text, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let all = format!("{int}{frac}");
    let lead = all.len() - all.trim_start_matches('0').len();
    let digits = all.trim_matches('0').to_string();
    let n = exp + int.len() as i32 - lead as i32;
    (neg, digits, n)
}

/// ECMAScript `Number::toString(10)` layout of `0.digits * 10^n`
/// (ECMA-262 §6.1.6.1.20, steps 6-10).
fn js_layout(neg: bool, digits: &str, n: i32) -> String {
    if digits.is_empty() {
        return "0".into();
    }
    let k = digits.len() as i32;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let e = if e >= 0 {
            format!("+{e}")
        } else {
            e.to_string()
        };
        if k == 1 {
            format!("{digits}e{e}")
        } else {
            format!("{}.{}e{e}", &digits[..1], &digits[1..])
        }
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

/// Checks `out`, the core's text for the finite `f`, against ECMAScript's
/// `Number::toString`: the layout for its digits, the value, the shortest
/// digit count (Rust's `{:e}` is shortest too), and where the two pick
/// different digits, a tie that ECMAScript breaks towards the even digit.
fn check_js_float(f: f64, out: &str) {
    if f == 0.0 {
        assert_eq!(out, "0", "zero");
        return;
    }
    let (neg, digits, n) = decimal_parts(out);
    assert_eq!(neg, f < 0.0, "sign of {out}");
    assert_eq!(js_layout(neg, &digits, n), out, "layout of {f:?}");
    let back: f64 = out.parse().unwrap_or(f64::NAN);
    assert!(back == f, "{out} does not read back as {f:?}");
    let (_, shortest, sn) = decimal_parts(&format!("{f:e}"));
    assert_eq!(
        digits.len(),
        shortest.len(),
        "{out}: not the shortest digits of {f:?}"
    );
    if digits != shortest {
        // Two shortest candidates one unit apart, equally close to f:
        // ECMAScript picks the even one.
        let a: u128 = digits.parse().expect("digits");
        let b: u128 = shortest.parse().expect("digits");
        assert!(
            n == sn && a.abs_diff(b) == 1 && a.is_multiple_of(2),
            "{out}: digits {digits} where the shortest are {shortest} (f = {f:?})"
        );
    }
}

fn check_number(n: &Number) {
    let mut out = String::new();
    js::write_number(n, &mut out);
    if let Some(u) = n.as_u64() {
        assert_eq!(out, u.to_string(), "u64 {n}");
    } else if let Some(i) = n.as_i64() {
        assert_eq!(out, i.to_string(), "i64 {n}");
    } else if let Some(f) = n.as_f64() {
        check_js_float(f, &out);
    }
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).expect("`%` and two hex digits");
            assert!(
                hex.iter()
                    .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c)),
                "`%{}` is not upper-case hex",
                String::from_utf8_lossy(hex)
            );
            let hex = std::str::from_utf8(hex).expect("hex is ASCII");
            out.push(u8::from_str_radix(hex, 16).expect("hex digits"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

fn check_uri_component(s: &str) {
    let mut out = String::from("prefix");
    js::encode_uri_component(s, &mut out);
    let enc = out.strip_prefix("prefix").expect("appends");
    assert!(
        enc.bytes().all(|b| is_unreserved(b) || b == b'%'),
        "encodeURIComponent({s:?}) = {enc:?} holds a reserved byte"
    );
    let expected_len: usize = s
        .bytes()
        .map(|b| if is_unreserved(b) { 1 } else { 3 })
        .sum();
    assert_eq!(
        enc.len(),
        expected_len,
        "encodeURIComponent({s:?}) = {enc:?}"
    );
    assert!(
        percent_decode(enc) == s.as_bytes(),
        "encodeURIComponent({s:?}) = {enc:?} does not decode back"
    );
}

fn query_text(v: &Value) -> String {
    let mut out = String::new();
    js::write_query_value(v, &mut out);
    out
}

fn check_query_string(v: &Value) {
    let query = js::to_query_string(v);
    assert!(
        query
            .bytes()
            .all(|b| is_unreserved(b) || b"%=&".contains(&b)),
        "query {query:?} holds a reserved byte"
    );
    let expected: Vec<(String, String)> = match v {
        Value::Object(map) => js::ordered_entries(map)
            .into_iter()
            .map(|(k, v)| (k.clone(), query_text(v)))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), query_text(v)))
            .collect(),
        _ => Vec::new(),
    };
    let decoded: Vec<(String, String)> = if query.is_empty() {
        Vec::new()
    } else {
        query
            .split('&')
            .map(|pair| {
                let (k, v) = pair.split_once('=').expect("every pair has `=`");
                let k = String::from_utf8(percent_decode(k)).expect("key decodes to UTF-8");
                let v = String::from_utf8(percent_decode(v)).expect("value decodes to UTF-8");
                (k, v)
            })
            .collect()
    };
    assert_eq!(decoded, expected, "query {query:?}");
}

/// Strings and numbers anywhere in `v` (keys too), at most `limit` of each.
fn collect_leaves<'v>(v: &'v Value, strings: &mut Vec<&'v str>, numbers: &mut Vec<&'v Number>) {
    match v {
        Value::String(s) => strings.push(s),
        Value::Number(n) => numbers.push(n),
        Value::Array(items) => items
            .iter()
            .for_each(|i| collect_leaves(i, strings, numbers)),
        Value::Object(map) => {
            for (k, i) in map {
                strings.push(k);
                collect_leaves(i, strings, numbers);
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

/// Object keys in the order `stringify` must write them, recursively.
fn check_stringify_order(v: &Value, text: &str) {
    // Reparse without reordering and compare the key sequence of each object.
    let back: Value = serde_json::from_str(text).expect("stringify output parses");
    fn walk(v: &Value, back: &Value) {
        match (v, back) {
            (Value::Object(m), Value::Object(b)) => {
                let want: Vec<&String> =
                    js::ordered_entries(m).into_iter().map(|(k, _)| k).collect();
                let got: Vec<&String> = b.keys().collect();
                assert_eq!(got, want, "property order");
                for (k, x) in m {
                    if let Some(y) = b.get(k) {
                        walk(x, y);
                    }
                }
            }
            (Value::Array(a), Value::Array(b)) => a.iter().zip(b).for_each(|(x, y)| walk(x, y)),
            _ => {}
        }
    }
    walk(v, &back);
}

/// `encoders`: the input is JSON text, or, when it is not, bytes from which
/// a JSON value is built.
///
/// - `stringify` output parses back to an equal value (numbers by value,
///   integers exactly), in JavaScript property order, with no raw control
///   character, and stringifying that again gives the same text;
/// - `to_query_string` uses only unreserved characters, `%XX`, `=` and `&`,
///   and percent-decodes to the keys (property order, array indices) and
///   the texts of the values;
/// - `encode_uri_component` of every string (keys, values, the stringify
///   text) has only unreserved characters and upper-case `%XX` and decodes
///   back;
/// - `write_number` prints integers exactly and floats as an independent
///   model of ECMAScript's `Number::toString` does.
pub fn encoders(data: &[u8]) {
    let value = match serde_json::from_slice::<Value>(data) {
        Ok(v) => v,
        Err(_) => {
            let mut inp = Input::new(data);
            let mut items = Vec::new();
            while !inp.is_empty() && items.len() < 8 {
                items.push(build_value(&mut inp, 1));
            }
            if items.len() == 1 {
                items.pop().unwrap_or(Value::Null)
            } else {
                Value::Array(items)
            }
        }
    };
    let mut text = String::new();
    js::stringify(&value, &mut text);
    assert!(
        !text.bytes().any(|b| b < 0x20),
        "raw control byte in {text:?}"
    );
    let back: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("stringify output {text:?} does not parse: {e}"));
    assert!(same_value(&value, &back), "{value} -> {text} -> {back}");
    check_stringify_order(&value, &text);
    let mut again = String::new();
    js::stringify(&back, &mut again);
    assert_eq!(again, text, "stringify is not stable");

    check_query_string(&value);
    if let Value::Object(map) = &value {
        // Each member alone, as `data` of a GET would be.
        for (_, v) in map.iter().take(8) {
            check_query_string(v);
        }
    }

    let mut strings = Vec::new();
    let mut numbers = Vec::new();
    collect_leaves(&value, &mut strings, &mut numbers);
    for s in strings.iter().take(64) {
        check_uri_component(s);
    }
    check_uri_component(&text);
    for n in numbers.iter().take(64) {
        check_number(n);
    }
}

// ---------------------------------------------------------------------------
// url_policy

/// The fixed whitelist of the `url_policy` target.
pub const WHITELIST: [&str; 3] = [
    "https://example.com",
    "https://*.example.org",
    "https://example.net:8443",
];

fn roomy_limits() -> Limits {
    let mut l = Limits::default();
    l.max_url_bytes = usize::MAX;
    l
}

/// A URL's bytes that may go on the wire as they are.
fn wire_safe(s: &str) -> bool {
    s.bytes().all(|b| b > 0x20 && b < 0x7f)
}

/// The invariants of one parsed target.
fn check_target(t: &Target, policy: &DomainPolicy, input: &str) {
    let shown = t.to_string();
    let rt = t.request_target();
    assert!(
        wire_safe(&shown),
        "{input:?}: Display {shown:?} is not wire-safe"
    );
    assert!(
        wire_safe(&rt) && rt.starts_with('/') && !rt.contains('#'),
        "{input:?}: request target {rt:?}"
    );
    assert_eq!(
        t.port(),
        t.explicit_port().unwrap_or(t.scheme().default_port())
    );
    let _ = t.check_query();
    match t.host() {
        Host::Domain(d) => {
            assert!(
                !d.is_empty()
                    && !d.split('.').any(str::is_empty)
                    && d.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b)
                    }),
                "{input:?}: domain {d:?}"
            );
            assert_eq!(t.connect_host(), &**d);
        }
        Host::Ipv4(a) => assert_eq!(t.connect_host(), a.to_string()),
        Host::Ipv6(a) => assert_eq!(t.connect_host(), a.to_string()),
    }
    let hh = t.host_header();
    assert!(wire_safe(&hh), "{input:?}: Host header {hh:?}");
    if t.port() == t.scheme().default_port() {
        assert_eq!(hh, t.host().to_string());
    } else {
        assert_eq!(hh, format!("{}:{}", t.host(), t.port()));
    }

    // An allowed URL connects to a whitelisted host and port.
    if policy.allows(t) {
        let host = t.connect_host();
        assert!(t.scheme().is_secure(), "{input:?}: allowed plain scheme");
        let ok = match host.as_str() {
            "example.com" => t.explicit_port().is_none() && t.port() == 443,
            "example.net" => t.port() == 8443,
            h => {
                t.explicit_port().is_none()
                    && t.port() == 443
                    && h.strip_suffix(".example.org")
                        .is_some_and(|sub| !sub.is_empty() && !sub.ends_with('.'))
            }
        };
        assert!(
            ok,
            "{input:?}: allowed, but connects to {host:?} port {} (explicit {:?})",
            t.port(),
            t.explicit_port()
        );
        assert!(matches!(t.host(), Host::Domain(_)));
    }

    // Display reparses to the same target. Display leaves out a port equal
    // to the scheme's default, so only the written-port flag may change,
    // and then only from `Some(default)` to `None`.
    let again = Target::parse(&shown, &roomy_limits())
        .unwrap_or_else(|e| panic!("{input:?}: Display {shown:?} does not reparse: {e}"));
    let default = t.scheme().default_port();
    let normalised_port = t.explicit_port().filter(|&p| p != default);
    assert!(
        again.scheme() == t.scheme()
            && again.host() == t.host()
            && again.port() == t.port()
            && again.explicit_port() == normalised_port
            && again.path() == t.path()
            && again.query() == t.query(),
        "{input:?}: {t:?} displays as {shown:?}, which parses as {again:?}"
    );
    assert_eq!(again.to_string(), shown, "{input:?}: Display is not stable");
    if t.explicit_port() == normalised_port {
        assert_eq!(&again, t, "{input:?}: reparse of {shown:?}");
        assert_eq!(
            policy.allows(&again),
            policy.allows(t),
            "{input:?}: verdict"
        );
    }
}

/// The host the `url` crate (WHATWG) would connect to for `input`, as
/// `Target` normalises it, and the port.
fn whatwg_host(input: &str) -> Option<(String, u16)> {
    let url = url::Url::parse(input.trim_matches(' ')).ok()?;
    let host = match url.host()? {
        url::Host::Domain(d) => {
            let d = d.strip_suffix('.').unwrap_or(d);
            d.to_ascii_lowercase()
        }
        url::Host::Ipv4(a) => a.to_string(),
        url::Host::Ipv6(a) => a.to_string(),
    };
    Some((host, url.port_or_known_default()?))
}

/// `url_policy`: the input is a URL, optionally followed by a NUL byte and a
/// redirect `Location` (also used as text for `append_query`).
///
/// For the whitelist [`WHITELIST`]: every URL the policy allows (first
/// request, or a redirect hop resolved with `join`) is HTTPS/WSS and
/// connects to `example.com` (no written port), a strict subdomain of
/// `example.org` (no written port) or `example.net` port 8443; the host is
/// the one the WHATWG parser gives; Display reparses to the same target
/// (except a written default port, which Display leaves out), is stable and
/// wire-safe. The input as a whitelist entry, when it parses, displays as
/// an entry that parses back to itself.
pub fn url_policy(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (url, location) = match text.split_once('\0') {
        Some((u, l)) => (u, Some(l)),
        None => (&*text, None),
    };
    let policy = DomainPolicy::whitelist(WHITELIST).expect("the fixed whitelist parses");
    let limits = Limits::default();

    if let Ok(entry) = url.parse::<OriginPattern>() {
        let shown = entry.to_string();
        let again: OriginPattern = shown
            .parse()
            .unwrap_or_else(|e| panic!("{url:?}: entry displays as {shown:?}: {e}"));
        assert_eq!(again, entry, "{url:?}: entry displays as {shown:?}");
    }

    let Ok(mut t) = Target::parse(url, &limits) else {
        return;
    };
    check_target(&t, &policy, url);
    if let Some((host, port)) = whatwg_host(url) {
        assert_eq!(
            (t.connect_host(), t.port()),
            (host, port),
            "{url:?}: the checked host is not WHATWG's"
        );
    }
    if let Some(location) = location {
        if let Ok(next) = t.join(location, &limits) {
            check_target(&next, &policy, location);
        }
        t.append_query(location);
        check_target(&t, &policy, url);
    }
}

// ---------------------------------------------------------------------------
// options_json

/// `options_json`: the input is options JSON for `my.request`.
///
/// `bridge::request_options`, then `PreparedRequest::new` in an allow-any
/// context, never panic; for every success, the request head the exchange
/// writes parses as exactly one HTTP/1.1 head; `wire_view` shows the same
/// head: `host` first and once, the context's referer once, no
/// `transfer-encoding`/`connection`, header names tokens, values without
/// CR, LF or NUL; the URL and request-target hold only bytes 0x21-0x7E;
/// `content-length` is present for POST/PUT and any non-empty body, and
/// equals the body's length; a GET has no body; the body is what SPEC §4
/// makes of `data`.
pub fn options_json(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(opts) = bridge::request_options(&text) else {
        return;
    };
    let ctx = AppContext::builder("fuzz-app", "1.0.0")
        .allow_any_origin()
        .build()
        .expect("allow-any context");
    let limits = ctx.limits().clone();
    let Ok(req) = PreparedRequest::new(&ctx, &opts) else {
        return;
    };
    let view = req.wire_view(&limits);
    let target = req.target();
    let rt = target.request_target();
    assert!(wire_safe(&view.url), "url {:?}", view.url);
    assert!(wire_safe(&rt), "request target {rt:?}");
    assert_eq!(view.method, opts.method.as_str());

    // The head bytes: one head, ending exactly where the blank line is.
    let exchange = req.exchange(&limits);
    let head = exchange.head();
    let line = format!("{} {rt} HTTP/1.1\r\n", opts.method.as_str());
    assert!(
        head.starts_with(line.as_bytes()),
        "request line of {head:?}"
    );
    let mut slots = vec![httparse::EMPTY_HEADER; req.headers().len() + 8];
    let mut parsed = httparse::Request::new(&mut slots);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(n)) => assert_eq!(n, head.len(), "head length"),
        other => panic!(
            "head {:?} does not parse: {other:?}",
            String::from_utf8_lossy(head)
        ),
    }
    let raw_names: Vec<String> = parsed.headers.iter().map(|h| h.name.to_string()).collect();

    let body = base64::engine::general_purpose::STANDARD
        .decode(&view.body)
        .expect("body is base64");
    assert!(body == req.body().as_ref(), "wire_view body");
    let names: Vec<&str> = view.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, raw_names, "wire_view headers are the head's");
    assert_eq!(
        view.headers.first().map(|(n, v)| (n.as_str(), v.clone())),
        Some(("host", target.host_header())),
        "host first"
    );
    let count = |name: &str| {
        names
            .iter()
            .filter(|n| n.eq_ignore_ascii_case(name))
            .count()
    };
    assert_eq!(count("host"), 1, "one host");
    assert_eq!(count("referer"), 1, "one referer");
    assert_eq!(count("transfer-encoding"), 0);
    assert_eq!(count("connection"), 0);
    assert!(count("content-length") <= 1, "content-length twice");
    for (name, value) in &view.headers {
        assert!(
            !name.is_empty() && name.bytes().all(is_tchar),
            "header name {name:?}"
        );
        assert!(
            !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0),
            "header {name:?} value {value:?}"
        );
        if name.eq_ignore_ascii_case("referer") {
            assert_eq!(Some(value.as_str()), ctx.referer().to_str().ok());
        }
    }
    let length = view
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.clone());
    match length {
        Some(v) => assert_eq!(v, body.len().to_string(), "content-length"),
        None => assert!(
            body.is_empty() && !matches!(opts.method, Method::Post | Method::Put),
            "no content-length for {} with {} body bytes",
            opts.method,
            body.len()
        ),
    }

    // The body SPEC §4 makes of `data`.
    let form = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(mpnet_core::headers::is_form_urlencoded);
    let expected: Vec<u8> = match (&opts.method, &opts.data) {
        (Method::Get, _) | (_, None) => Vec::new(),
        (_, Some(Data::Json(v))) if form => js::to_query_string(v).into_bytes(),
        (_, Some(Data::Json(v))) => {
            let mut out = String::new();
            js::stringify(v, &mut out);
            out.into_bytes()
        }
        (_, Some(Data::Text(s))) => s.clone().into_bytes(),
        (_, Some(Data::Bytes(b))) => b.to_vec(),
    };
    assert!(body == expected, "body is not SPEC §4's encoding of data");

    // The URL shown is the target, and reparses to it.
    assert_eq!(view.url, target.to_string());
    let again = Target::parse(&view.url, &roomy_limits())
        .unwrap_or_else(|e| panic!("url {:?} does not reparse: {e}", view.url));
    assert_eq!(again.request_target(), rt, "url reparse");
    assert_eq!(again.host_header(), target.host_header(), "url reparse");
}

// ---------------------------------------------------------------------------
// ws_frames

#[derive(Debug, Clone, PartialEq)]
struct FramesRun {
    frames: Vec<Frame>,
    end: Result<(), ProtocolViolation>,
    consumed: usize,
}

/// Decodes `pieces` with a transport's loop: the bytes after a completed
/// frame are fed again; the decoder keeps partial frames inside.
fn drive_frames(pieces: &[&[u8]], role: Role, max: usize) -> FramesRun {
    let mut dec = FrameDecoder::new(role, max);
    let mut feed = Feed::new(pieces);
    let mut run = FramesRun {
        frames: Vec::new(),
        end: Ok(()),
        consumed: 0,
    };
    // What `partial()` showed of the frame being read.
    let mut partial: Option<(usize, Vec<u8>)> = None;
    loop {
        feed.step();
        if feed.buf.is_empty() {
            if !feed.more() {
                break;
            }
            continue;
        }
        match dec.decode(&feed.buf) {
            Err(v) => {
                run.end = Err(v);
                break;
            }
            Ok((n, frame)) => {
                assert!(n <= feed.buf.len(), "consumed {n} of {}", feed.buf.len());
                run.consumed += n;
                feed.buf.drain(..n);
                match frame {
                    Some(f) => {
                        if let Some((len, seen)) = partial.take() {
                            assert_eq!(len, f.payload.len(), "partial header length");
                            assert!(
                                f.payload.starts_with(&seen),
                                "partial payload is not a prefix"
                            );
                        }
                        check_frame(&f, max);
                        run.frames.push(f);
                    }
                    None => {
                        assert!(
                            feed.buf.is_empty(),
                            "need more input, but {} bytes left",
                            feed.buf.len()
                        );
                        assert!(n > 0, "no frame and nothing consumed");
                        if let Some(p) = dec.partial() {
                            assert!(p.payload.len() <= p.header.len);
                            if let Some((len, seen)) = &partial {
                                assert_eq!(*len, p.header.len);
                                assert!(p.payload.starts_with(seen), "partial payload changed");
                            }
                            partial = Some((p.header.len, p.payload.to_vec()));
                        }
                    }
                }
            }
        }
    }
    run
}

fn check_frame(f: &Frame, max: usize) {
    match f.opcode {
        OpCode::Data(WsData::Reserved(op)) | OpCode::Control(Control::Reserved(op)) => {
            panic!("reserved opcode {op:#x} decoded")
        }
        OpCode::Control(_) => assert!(
            f.fin && f.payload.len() <= 125,
            "control frame fin {} len {}",
            f.fin,
            f.payload.len()
        ),
        OpCode::Data(_) => assert!(f.payload.len() <= max, "data frame over the budget"),
    }
}

fn assert_same_frames(a: &FramesRun, b: &FramesRun, what: &str) {
    if a.end.is_ok() || b.end.is_ok() {
        assert_eq!(a, b, "whole vs {what}");
    } else {
        assert_eq!((&a.frames, &a.end), (&b.frames, &b.end), "whole vs {what}");
    }
}

const OPCODES: [OpCode; 6] = [
    OpCode::Data(WsData::Continue),
    OpCode::Data(WsData::Text),
    OpCode::Data(WsData::Binary),
    OpCode::Control(Control::Close),
    OpCode::Control(Control::Ping),
    OpCode::Control(Control::Pong),
];

/// A frame built from control bytes: fin, opcode, length (sometimes over
/// 125 or 65535 to use every length form), payload bytes from the input.
fn build_frame(inp: &mut Input<'_>) -> Frame {
    let b = inp.byte();
    let opcode = OPCODES[usize::from((b >> 1) % 6)];
    let control = matches!(opcode, OpCode::Control(_));
    let len = match (inp.byte(), control) {
        (l, true) => usize::from(l % 126),
        (0xff, false) => 65_536 + 7,
        (l, false) if l >= 0xf0 => 126 + usize::from(l - 0xf0) * 700,
        (l, false) => usize::from(l),
    };
    let seed = inp.take(len.min(64)).to_vec();
    let payload: Vec<u8> = if seed.is_empty() {
        vec![0x5a; len]
    } else {
        seed.iter().copied().cycle().take(len).collect()
    };
    Frame {
        fin: control || b & 1 != 0,
        opcode,
        payload: payload.into(),
    }
}

/// `ws_frames`: the input is `[flags][cut count][gaps...][payload]`.
///
/// flags bit 0 clear (raw): the payload is bytes from the peer, read by a
/// client (flags bit 1 clear) or a server (set), with the data budget
/// picked by `(flags >> 2) % 6` (1 MiB, 0, 1, 125, 126, 65536). Fed whole,
/// in the chosen pieces and (up to 4 KiB) byte by byte, the decoder gives
/// the same frames and the same violation; it consumes everything it is
/// given (keeping partial frames inside); frames are never reserved,
/// control frames are final and at most 125 bytes, data frames within the
/// budget; `partial()` shows a growing prefix of the frame to come.
///
/// flags bit 0 set (round trip): frames built from the payload are encoded
/// by `encode_frame` (masked with keys from the input when flags bit 1 is
/// set, as a client sends them) in the minimal length form, and decode,
/// whole and in pieces, by the other side, to the same frames.
pub fn ws_frames(data: &[u8]) {
    let mut inp = Input::new(data);
    let flags = inp.byte();
    let gaps = read_gaps(&mut inp);
    if flags & 1 == 0 {
        let role = if flags & 2 == 0 {
            Role::Client
        } else {
            Role::Server
        };
        let max = [1 << 20, 0, 1, 125, 126, 65_536][usize::from((flags >> 2) % 6)];
        let wire = inp.rest();
        let whole = drive_frames(&[wire], role, max);
        if whole.end.is_ok() {
            assert_eq!(whole.consumed, wire.len(), "input left over");
        }
        let split = drive_frames(&pieces(wire, gaps), role, max);
        assert_same_frames(&whole, &split, "split");
        if wire.len() <= 4096 {
            let bytes = drive_frames(&bytewise(wire), role, max);
            assert_same_frames(&whole, &bytes, "bytewise");
        }
        return;
    }
    let masked = flags & 2 != 0;
    let mut frames = Vec::new();
    let mut wire = Vec::new();
    while !inp.is_empty() && frames.len() < 16 {
        let frame = build_frame(&mut inp);
        let mask = masked.then(|| [inp.byte(), inp.byte(), inp.byte(), inp.byte()]);
        let before = wire.len();
        if frames.len() % 2 == 0 {
            frame.encode(mask, &mut wire);
        } else {
            encode_frame(&mut wire, frame.fin, frame.opcode, &frame.payload, mask);
        }
        let len = frame.payload.len();
        let ext = if len < 126 {
            0
        } else if len <= 0xffff {
            2
        } else {
            8
        };
        let header = 2 + ext + if masked { 4 } else { 0 };
        assert_eq!(
            wire.len() - before,
            header + len,
            "frame size for {len} bytes"
        );
        assert_eq!(wire[before] & 0x70, 0, "reserved bits written");
        frames.push(frame);
    }
    let role = if masked { Role::Server } else { Role::Client };
    let want = FramesRun {
        frames,
        end: Ok(()),
        consumed: wire.len(),
    };
    assert_eq!(
        drive_frames(&[&wire], role, usize::MAX),
        want,
        "round trip, whole"
    );
    assert_eq!(
        drive_frames(&pieces(&wire, gaps), role, usize::MAX),
        want,
        "round trip, split"
    );
    if wire.len() <= 4096 {
        assert_eq!(
            drive_frames(&bytewise(&wire), role, usize::MAX),
            want,
            "round trip, bytewise"
        );
    }
}

// ---------------------------------------------------------------------------
// ws_lifecycle

/// One step of a socket's life.
#[derive(Debug, Clone)]
enum SocketOp {
    /// Bytes from the server.
    Input(Vec<u8>),
    Eof,
    TransportError,
    SendText(String),
    SendBinary(Vec<u8>),
    /// `sendSocketMessage` with `isBuffer: true`.
    SendBase64(String),
    Ping(Vec<u8>),
    Close(Option<u16>, Option<String>),
    Supersede,
    /// Time passes (ms), then `handle_timeout`.
    Advance(u64),
}

fn read_socket_ops(inp: &mut Input<'_>) -> Vec<SocketOp> {
    let mut ops = Vec::new();
    while !inp.is_empty() && ops.len() < 48 {
        let tag = inp.byte();
        let op = match tag % 14 {
            0 | 1 => {
                let n = usize::from(inp.byte() % 64);
                SocketOp::Input(inp.take(n).to_vec())
            }
            2..=4 => {
                // A well-formed frame from the server (masked, wrongly, when
                // tag bit 7 is set), possibly several in one read.
                let mut wire = Vec::new();
                for _ in 0..=(tag >> 5 & 3) {
                    let f = build_frame(inp);
                    let mask = (tag & 0x80 != 0).then_some([1, 2, 3, 4]);
                    f.encode(mask, &mut wire);
                }
                SocketOp::Input(wire)
            }
            5 => SocketOp::Eof,
            6 => SocketOp::TransportError,
            7 => {
                let n = usize::from(inp.byte() % 32);
                SocketOp::SendText(String::from_utf8_lossy(inp.take(n)).into_owned())
            }
            8 => {
                let n = usize::from(inp.byte() % 32);
                SocketOp::SendBinary(inp.take(n).to_vec())
            }
            9 => {
                let n = usize::from(inp.byte() % 16);
                let text = String::from_utf8_lossy(inp.take(n)).into_owned();
                if tag & 0x80 != 0 {
                    // Valid base64 of those bytes.
                    SocketOp::SendBase64(base64::engine::general_purpose::STANDARD.encode(text))
                } else {
                    SocketOp::SendBase64(text)
                }
            }
            10 => {
                let n = usize::from(inp.byte() % 130);
                SocketOp::Ping(vec![0x70; n])
            }
            11 => {
                let sel = inp.byte();
                let code = match sel % 8 {
                    0 => None,
                    1 => Some(1000),
                    2 => Some(3000 + u16::from(inp.byte()) * 7),
                    3 => Some(4999),
                    4 => Some(1001),
                    5 => Some(2999),
                    6 => Some(5000),
                    _ => Some(u16::from_le_bytes([inp.byte(), inp.byte()])),
                };
                let reason = match sel >> 3 {
                    0 => None,
                    n => Some("é".repeat(usize::from(n) * 3)),
                };
                SocketOp::Close(code, reason)
            }
            12 => SocketOp::Supersede,
            _ => SocketOp::Advance(u64::from(inp.byte()) * 100),
        };
        ops.push(op);
    }
    ops
}

/// One op's outcome: the command's result (error code), the bytes
/// consumed, and the state after it.
#[derive(Debug, Clone, PartialEq)]
struct SocketStep {
    result: Option<Result<(), u32>>,
    consumed: Option<usize>,
    open: bool,
    closing: bool,
    terminated: bool,
}

/// What the app and the server saw.
#[derive(Debug, Clone, PartialEq)]
struct SocketRun {
    events: Vec<SocketEvent>,
    transmit: Vec<u8>,
    steps: Vec<SocketStep>,
    /// Successful sends, in order: (is text, bytes).
    sent: Vec<(bool, Vec<u8>)>,
    /// Close codes this end asked for (accepted `close` calls).
    closed_with: Vec<u16>,
}

fn run_socket(ops: &[SocketOp], config: &ConnectionConfig, bytewise_input: bool) -> SocketRun {
    let base = std::time::Instant::now();
    let mut now = base;
    let mut counter = 0u32;
    let masks = move || {
        counter = counter.wrapping_add(0x0101_0101);
        counter.to_be_bytes()
    };
    let mut conn = Connection::new(config.clone(), Box::new(masks));
    let mut run = SocketRun {
        events: Vec::new(),
        transmit: Vec::new(),
        steps: Vec::new(),
        sent: Vec::new(),
        closed_with: Vec::new(),
    };
    let code = |r: Result<(), mpnet_core::Error>| r.map_err(|e| e.code(mpnet_core::Api::Socket));
    for op in ops {
        let was_open = conn.is_open();
        let mut result = None;
        let mut consumed = None;
        match op {
            SocketOp::Input(bytes) => {
                let used = if bytewise_input {
                    let mut used = 0;
                    // Single bytes; long reads (big frames) in 97-byte
                    // pieces, to stay fast.
                    let size = if bytes.len() <= 4096 { 1 } else { 97 };
                    for b in bytes.chunks(size) {
                        let n = conn.handle_input(now, b);
                        used += n;
                        if n < b.len() {
                            break;
                        }
                    }
                    used
                } else {
                    conn.handle_input(now, bytes)
                };
                assert!(
                    used == bytes.len() || (used < bytes.len() && conn.is_terminated()),
                    "consumed {used} of {} while not terminated",
                    bytes.len()
                );
                consumed = Some(used);
            }
            SocketOp::Eof => conn.handle_eof(),
            SocketOp::TransportError => conn.handle_transport_error(mpnet_core::Error::new(
                mpnet_core::ErrorKind::Network,
                "connection reset",
            )),
            SocketOp::SendText(t) => {
                let r = conn.send_text(t);
                if r.is_ok() {
                    run.sent.push((true, t.as_bytes().to_vec()));
                }
                result = Some(code(r));
            }
            SocketOp::SendBinary(b) => {
                let r = conn.send_binary(b);
                if r.is_ok() {
                    run.sent.push((false, b.clone()));
                }
                result = Some(code(r));
            }
            SocketOp::SendBase64(text) => {
                let opts = SendOptions::base64(text.clone());
                let r = conn.send(&opts);
                if r.is_ok() {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(text)
                        .expect("send accepted invalid base64");
                    run.sent.push((false, bytes));
                }
                result = Some(code(r));
            }
            SocketOp::Ping(p) => result = Some(code(conn.send_ping(p))),
            SocketOp::Close(c, reason) => {
                let r = conn.close(now, *c, reason.as_deref());
                if r.is_ok() {
                    run.closed_with.push(c.unwrap_or(1000));
                }
                result = Some(code(r));
            }
            SocketOp::Supersede => conn.supersede(now),
            SocketOp::Advance(ms) => {
                now += std::time::Duration::from_millis(*ms);
                conn.handle_timeout(now);
            }
        }
        // Commands: 10 when not open; 2 for bad arguments; 11 for bad base64.
        if let Some(Err(c)) = result {
            assert!(
                c == 2 || c == 11 || (c == 10 && !was_open),
                "{op:?}: error {c} (open before: {was_open})"
            );
        }
        if let Some(Ok(())) = result {
            assert!(was_open, "{op:?} accepted while not open");
        }
        if let Some(t) = conn.poll_transmit() {
            assert!(!t.is_empty(), "empty transmit");
            run.transmit.extend_from_slice(&t);
        }
        while let Some(e) = conn.poll_event() {
            run.events.push(e);
        }
        if conn.is_closing() {
            assert!(conn.poll_timeout().is_some(), "closing without a deadline");
        } else {
            assert!(
                conn.poll_timeout().is_none(),
                "a deadline while not closing"
            );
        }
        assert!(
            u8::from(conn.is_open()) + u8::from(conn.is_closing()) + u8::from(conn.is_terminated())
                == 1,
            "exactly one of open/closing/terminated"
        );
        run.steps.push(SocketStep {
            result,
            consumed,
            open: conn.is_open(),
            closing: conn.is_closing(),
            terminated: conn.is_terminated(),
        });
    }
    // The end: a closing connection times out, anything else sees EOF.
    if !conn.is_terminated() {
        if let Some(deadline) = conn.poll_timeout() {
            conn.handle_timeout(deadline);
        } else {
            conn.handle_eof();
        }
    }
    assert!(conn.is_terminated(), "not terminated at the end");
    if let Some(t) = conn.poll_transmit() {
        run.transmit.extend_from_slice(&t);
    }
    while let Some(e) = conn.poll_event() {
        run.events.push(e);
    }
    assert_eq!(conn.poll_event(), None);
    // Nothing after the end.
    assert_eq!(
        conn.handle_input(now, b"\x81\x01a"),
        0,
        "input after the end"
    );
    conn.handle_eof();
    assert!(conn.send_text("late").is_err(), "send after the end");
    assert_eq!(conn.poll_event(), None, "an event after the end");
    run
}

/// The close codes an app may see: the ones a peer may send (RFC 6455
/// §7.4; 1012-1013 registered since), 1005 and 1006.
fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1005..=1013 | 3000..=4999)
}

fn check_socket_run(run: &SocketRun, max_message: usize) {
    // SPEC §7: open, then messages, then at most one error, then exactly
    // one close, then nothing.
    let ev = &run.events;
    assert_eq!(ev.first(), Some(&SocketEvent::Open), "first event {ev:?}");
    let last = ev.len() - 1;
    assert!(
        matches!(ev[last], SocketEvent::Close { .. }),
        "last event is not Close: {ev:?}"
    );
    let mut phase = 0; // 0 messages, 1 after error
    for e in &ev[1..last] {
        match e {
            SocketEvent::Message { data } => {
                assert_eq!(phase, 0, "message after error: {ev:?}");
                let len = match data {
                    MessageData::Text(t) => t.len(),
                    MessageData::Binary(b) => b.len(),
                };
                assert!(len <= max_message, "message of {len} over {max_message}");
            }
            SocketEvent::Error(_) => {
                assert_eq!(phase, 0, "second error: {ev:?}");
                phase = 1;
            }
            other => panic!("{other:?} in the middle: {ev:?}"),
        }
    }
    if let SocketEvent::Close { code, reason } = &ev[last] {
        assert!(valid_close_code(*code), "close code {code}");
        assert!(
            reason.len() <= 123,
            "close reason of {} bytes",
            reason.len()
        );
    }

    // What the client wrote: masked frames only, the sends in order, at
    // most one close frame and nothing after it.
    let wire = drive_frames(&[&run.transmit], Role::Server, usize::MAX);
    assert_eq!(wire.end, Ok(()), "client output does not decode");
    assert_eq!(
        wire.consumed,
        run.transmit.len(),
        "client output ends mid-frame"
    );
    let closes: Vec<usize> = wire
        .frames
        .iter()
        .enumerate()
        .filter(|(_, f)| f.opcode == OpCode::Control(Control::Close))
        .map(|(i, _)| i)
        .collect();
    assert!(closes.len() <= 1, "{} close frames sent", closes.len());
    if let Some(&i) = closes.first() {
        assert_eq!(i, wire.frames.len() - 1, "frames after the close frame");
        let p = &wire.frames[i].payload;
        assert!(p.is_empty() || p.len() >= 2, "close payload of 1 byte");
        if p.len() >= 2 {
            let code = u16::from_be_bytes([p[0], p[1]]);
            assert!(
                valid_close_code(code) && code != 1005 && code != 1006,
                "close frame code {code}"
            );
            assert!(
                std::str::from_utf8(&p[2..]).is_ok(),
                "close reason not UTF-8"
            );
        }
    }
    let data: Vec<(bool, Vec<u8>)> = wire
        .frames
        .iter()
        .filter(|f| matches!(f.opcode, OpCode::Data(_)))
        .map(|f| {
            assert!(f.fin, "fragmented send");
            (f.opcode == OpCode::Data(WsData::Text), f.payload.to_vec())
        })
        .collect();
    assert_eq!(data, run.sent, "data frames are not the sends");
    for f in &wire.frames {
        if matches!(f.opcode, OpCode::Control(Control::Ping | Control::Pong)) {
            assert!(f.payload.len() <= 125);
        }
    }
}

/// `ws_lifecycle`: the input is `[flags][ops...]`: a sequence of socket
/// steps (server bytes, raw or as well-formed frames; EOF; a transport
/// error; send text, binary, base64; ping; close with valid and invalid
/// codes and reasons; supersede; time passing), with the message limit
/// picked by `flags % 5` (16 MiB, 0, 5, 125, 200).
///
/// The events keep SPEC §7's order (Open first, messages, at most one
/// Error, exactly one Close last, nothing after it), with valid close codes
/// and messages within the limit; commands fail with 10 exactly when the
/// socket is not open (2 and 11 for bad arguments); input is consumed
/// whole until the connection terminates; a deadline exists exactly while
/// closing; everything the client writes decodes as masked frames: the
/// accepted sends in order, pongs, and at most one close frame, last. The
/// same steps with every read split into single bytes (reads over 4 KiB
/// into 97-byte pieces) give the same
/// events, output and results.
pub fn ws_lifecycle(data: &[u8]) {
    let mut inp = Input::new(data);
    let flags = inp.byte();
    let max_message = [16 << 20, 0, 5, 125, 200][usize::from(flags % 5)];
    let mut limits = Limits::default();
    limits.max_message_bytes = max_message;
    let config = ConnectionConfig::from_limits(&limits);
    let ops = read_socket_ops(&mut inp);
    let whole = run_socket(&ops, &config, false);
    check_socket_run(&whole, max_message);
    let bytes = run_socket(&ops, &config, true);
    // Once a read has terminated the connection, how much of it counts as
    // consumed is not specified ("fewer once it has terminated"): a
    // violation while closing reports the whole read, a close frame only
    // the bytes up to its end. Everything else must be equal.
    let settle = |run: &SocketRun| SocketRun {
        steps: run
            .steps
            .iter()
            .map(|s| SocketStep {
                consumed: if s.terminated { None } else { s.consumed },
                ..s.clone()
            })
            .collect(),
        ..run.clone()
    };
    assert_eq!(
        settle(&whole),
        settle(&bytes),
        "whole reads vs single bytes"
    );
}

// ---------------------------------------------------------------------------
// multipart

/// The byte at `offset` of the made-up file the checks upload.
fn file_byte(offset: u64) -> u8 {
    (offset % 251) as u8
}

/// `"` → `%22`, CR → `%0D`, LF → `%0A` (the HTML standard's escaping).
fn escape_form_name(s: &str) -> String {
    s.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Checks a progress event sequence for a body of `total` bytes: integer
/// percent never decreasing, bytes written never decreasing, at most one
/// event per percent, and the last one 100 % with written == expected.
fn check_progress(events: &[(u64, ProgressEvent)], total: u64, known: bool) {
    let mut last: Option<&ProgressEvent> = None;
    for (pos, e) in events {
        assert_eq!(
            e.total_bytes_written, *pos,
            "event for {pos} bytes says {e:?}"
        );
        assert!(e.progress <= 100);
        if let Some(l) = last {
            assert!(
                e.progress >= l.progress && e.total_bytes_written >= l.total_bytes_written,
                "progress went back: {l:?} then {e:?}"
            );
            assert!(l.progress < 100, "an event after 100 %");
            if known {
                assert!(
                    e.progress > l.progress || e.progress == 100,
                    "two events at {}%",
                    e.progress
                );
            }
        }
        if known {
            assert_eq!(e.total_bytes_expected_to_write, total, "{e:?}");
            if e.progress < 100 {
                assert_eq!(
                    u128::from(e.progress),
                    u128::from(e.total_bytes_written) * 100 / u128::from(total.max(1)),
                    "{e:?}: not the percent rounded down"
                );
            }
        } else if e.progress < 100 {
            assert_eq!(
                (e.progress, e.total_bytes_expected_to_write),
                (0, 0),
                "{e:?}"
            );
        }
        last = Some(e);
    }
    assert!(events.len() <= 101 || !known, "{} events", events.len());
    let end = last.expect("no progress event at all");
    assert_eq!(end.progress, 100, "last event {end:?}");
    assert_eq!(end.total_bytes_written, total, "last event {end:?}");
    assert_eq!(
        end.total_bytes_expected_to_write, total,
        "last event {end:?}"
    );
}

/// Checks a plan: the exact length, the boundary, and the parts read back.
fn check_plan(
    plan: &MultipartPlan,
    form: &Map<String, Value>,
    field_name: &str,
    file_name: &str,
    content_type: &str,
    file_len: u64,
) {
    let b = plan.boundary();
    let hex = b
        .strip_prefix("----mpnetFormBoundary")
        .unwrap_or_else(|| panic!("boundary {b:?}"));
    assert!(
        hex.len() == 32
            && hex
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
        "boundary {b:?}"
    );
    assert_eq!(
        plan.content_type_header(),
        format!("multipart/form-data; boundary={b}")
    );
    assert_eq!(plan.file_len(), file_len);
    let pre = plan.preamble();
    let epi = plan.epilogue();
    assert_eq!(
        Some(plan.content_length()),
        (pre.len() as u64)
            .checked_add(file_len)
            .and_then(|n| n.checked_add(epi.len() as u64)),
        "content length"
    );
    assert!(epi == format!("\r\n--{b}--\r\n").as_bytes(), "epilogue");

    // The parts, read back.
    let fields: Vec<(String, String)> = js::ordered_entries(form)
        .into_iter()
        .map(|(k, v)| (escape_form_name(k), query_text(v)))
        .collect();
    for (n, v) in &fields {
        assert!(!n.contains(b) && !v.contains(b), "boundary inside a field");
    }
    let (field, file) = (escape_form_name(field_name), escape_form_name(file_name));
    assert!(
        !field.contains(b) && !file.contains(b) && !content_type.contains(b),
        "boundary inside a name"
    );
    let pre = std::str::from_utf8(pre).expect("the preamble is UTF-8");
    let delimiter = format!("--{b}\r\n");
    let parts: Vec<&str> = pre.split(&delimiter).collect();
    assert_eq!(parts.len(), fields.len() + 2, "parts of {pre:?}");
    assert_eq!(parts[0], "", "bytes before the first boundary");
    for ((name, value), part) in fields.iter().zip(&parts[1..]) {
        let want = format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n");
        assert_eq!(*part, want, "field part");
        assert!(!name.contains(['"', '\r', '\n']), "unescaped name {name:?}");
    }
    let file_part = parts[parts.len() - 1];
    assert_eq!(
        file_part,
        format!(
            "Content-Disposition: form-data; name=\"{field}\"; filename=\"{file}\"\r\nContent-Type: {content_type}\r\n\r\n"
        ),
        "file part"
    );
}

/// Sends the body of `total` bytes through `segment`/`advance`, in writes
/// sized by `gaps` (sometimes far more than the segment holds), and
/// returns the bytes and the progress events.
fn drive_body(
    mut segment: impl FnMut() -> Segment,
    mut advance: impl FnMut(u64) -> (u64, Option<ProgressEvent>),
    pre_len: u64,
    file_len: u64,
    total: u64,
    gaps: &[u8],
    materialize: bool,
) -> (Vec<u8>, u64, Vec<(u64, ProgressEvent)>) {
    let mut body = Vec::new();
    let mut pos = 0u64;
    let mut events = Vec::new();
    let mut sizes = gaps.iter().copied().cycle();
    let mut writes = 0u64;
    loop {
        writes += 1;
        assert!(writes <= total.saturating_add(8), "the body does not end");
        let want = match sizes.next() {
            // A body too large to build is sent in a few small writes,
            // then in writes larger than what is left.
            _ if !materialize && writes > 4 => u64::MAX,
            None | Some(0) => u64::MAX,
            Some(g) if g >= 0xf0 => u64::MAX - u64::from(g),
            Some(g) => u64::from(g),
        };
        let n = match segment() {
            Segment::Done => {
                assert_eq!(pos, total, "Done at {pos} of {total}");
                break;
            }
            Segment::Bytes(b) => {
                assert!(!b.is_empty(), "an empty Bytes segment");
                assert!(
                    pos < pre_len || pos >= pre_len + file_len,
                    "Bytes inside the file"
                );
                let n = want.min(b.len() as u64);
                if materialize {
                    body.extend_from_slice(&b[..n as usize]);
                }
                n
            }
            Segment::File { offset, len } => {
                assert_eq!(offset, pos - pre_len, "file offset");
                assert_eq!(len, file_len - offset, "file bytes left");
                assert!(len > 0, "an empty File segment");
                let n = want.min(len);
                if materialize {
                    body.extend((offset..offset + n).map(file_byte));
                }
                n
            }
        };
        // Over-long writes are clamped to the segment.
        let (accepted, event) = advance(want);
        assert_eq!(
            accepted, n,
            "advance({want}) accepted {accepted}, the segment allowed {n}"
        );
        pos += n;
        if let Some(e) = event {
            events.push((pos, e));
        }
    }
    assert_eq!(advance(1).0, 0, "advance after Done");
    (body, pos, events)
}

fn check_body(plan: &MultipartPlan, body: &[u8]) {
    let pre = plan.preamble();
    let epi = plan.epilogue();
    let n = plan.file_len() as usize;
    assert_eq!(body.len() as u64, plan.content_length(), "bytes produced");
    assert!(body[..pre.len()] == *pre, "preamble bytes");
    assert!(
        body[pre.len()..pre.len() + n]
            .iter()
            .enumerate()
            .all(|(i, &x)| x == file_byte(i as u64)),
        "file bytes out of order"
    );
    assert!(body[pre.len() + n..] == *epi, "epilogue bytes");
}

/// `multipart`: the input is `[flags][len][len][16 random][cut count][gaps...][rest]`.
///
/// When `rest` is `my.uploadFile` options JSON: `UploadRequest::new` (read
/// folder `/srv/app/files`, temp folder `/srv/app/tmp`) resolves the
/// `filePath` lexically inside a readable folder (no `.` or `..` left), and
/// `prepare` gives a POST whose head announces `content-length` equal to
/// the bytes the body produces and the plan's content type. Otherwise form
/// fields, names and a content type are built from `rest` and planned
/// directly.
///
/// Every plan: content length = preamble + file + epilogue; the boundary is
/// `----mpnetFormBoundary` and 32 hex digits and occurs in no name, value
/// or content type; the preamble reads back as the fields in property order
/// (names escaped, values as query values) then the file part; the body
/// sent through the cursor in writes of the chosen sizes (clamped when
/// over-long) has exactly that length and those bytes; the progress events
/// never go back and end at 100 % with written == expected. A file length
/// near `u64::MAX` (flags bit 0) is an error exactly when the total
/// overflows.
pub fn multipart(data: &[u8]) {
    let mut inp = Input::new(data);
    let flags = inp.byte();
    let len = u64::from(u16::from_le_bytes([inp.byte(), inp.byte()])) % 5000;
    let file_len = if flags & 1 != 0 {
        u64::MAX - len * 1000
    } else {
        len
    };
    let mut random = [0u8; 16];
    for r in &mut random {
        *r = inp.byte();
    }
    let gaps = read_gaps(&mut inp);
    let rest = inp.rest();
    let materialize = file_len <= 1 << 20;

    let text = String::from_utf8_lossy(rest);
    if let Ok(opts) = upload_options(&text) {
        let ctx = AppContext::builder("fuzz-app", "1.0.0")
            .allow_any_origin()
            .read_dir("/srv/app/files")
            .temp_dir("/srv/app/tmp")
            .build()
            .expect("context");
        let Ok(req) = UploadRequest::new(&ctx, &opts) else {
            return;
        };
        let path = req.path();
        assert!(
            path.starts_with("/srv/app/files") || path.starts_with("/srv/app/tmp"),
            "{:?} resolves outside the readable folders: {path:?}",
            opts.file_path
        );
        assert!(
            path.components().all(|c| matches!(
                c,
                std::path::Component::RootDir | std::path::Component::Normal(_)
            )),
            "{path:?} keeps `.` or `..`"
        );
        assert_eq!(
            Some(req.base_name()),
            path.file_name().and_then(|n| n.to_str()),
            "base name of {path:?}"
        );
        let prepared = match req.prepare(file_len, random) {
            Ok(p) => p,
            Err(e) => {
                assert!(flags & 1 != 0, "prepare failed: {e:?}");
                return;
            }
        };
        let plan = prepared.plan().clone();
        check_plan(
            &plan,
            &opts.form_data,
            &opts.file_name,
            req.base_name(),
            mpnet_core::transfer::file_content_type(req.base_name()),
            file_len,
        );
        assert_eq!(prepared.content_length(), plan.content_length());
        let head = prepared.exchange(&Limits::default()).head().to_vec();
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("POST "), "{head}");
        assert!(
            head.contains(&format!(
                "\r\ncontent-length: {}\r\n",
                plan.content_length()
            )),
            "content-length in {head}"
        );
        assert!(
            head.contains(&format!(
                "\r\ncontent-type: {}\r\n",
                plan.content_type_header()
            )),
            "content-type in {head}"
        );
        let mut upload = prepared.body();
        let upload = std::cell::RefCell::new(&mut upload);
        let (body, pos, events) = drive_body(
            || upload.borrow().segment(),
            |n| {
                let mut u = upload.borrow_mut();
                let before = u.position();
                let e = u.advance(n);
                (u.position() - before, e)
            },
            plan.preamble().len() as u64,
            file_len,
            plan.content_length(),
            gaps,
            materialize,
        );
        assert!(upload.borrow().is_done());
        assert_eq!(pos, plan.content_length());
        check_progress(&events, plan.content_length(), true);
        if materialize {
            check_body(&plan, &body);
        }
        return;
    }

    // Built from bytes.
    let mut b = Input::new(rest);
    let mut form = Map::new();
    for _ in 0..b.byte() % 6 {
        let key = build_key(&mut b);
        form.insert(key, build_value(&mut b, 2));
    }
    let field_name = build_string(&mut b);
    let file_name = build_string(&mut b);
    let content_type = match b.byte() % 5 {
        0 => "application/octet-stream".to_string(),
        1 => "image/jpeg".to_string(),
        2 => String::new(),
        3 => "text/plain\r\nX: y".to_string(),
        _ => build_string(&mut b),
    };
    let valid_type =
        !content_type.is_empty() && content_type.bytes().all(|c| (0x20..0x7f).contains(&c));
    let plan = match MultipartPlan::new(
        &form,
        &field_name,
        &file_name,
        &content_type,
        file_len,
        random,
    ) {
        Ok(plan) => plan,
        Err(e) => {
            let code = e.code(mpnet_core::Api::Upload);
            assert!(
                (!valid_type && code == 2) || (valid_type && flags & 1 != 0),
                "MultipartPlan::new failed with {code}: {e:?}"
            );
            return;
        }
    };
    assert!(valid_type, "content type {content_type:?} accepted");
    check_plan(
        &plan,
        &form,
        &field_name,
        &file_name,
        &content_type,
        file_len,
    );
    let mut cursor = plan.cursor();
    assert_eq!(cursor.total(), plan.content_length());
    let mut progress = Progress::new(plan.content_length());
    let mut unknown = Progress::unknown();
    let mut unknown_events = Vec::new();
    let cursor_cell = std::cell::RefCell::new(&mut cursor);
    let (body, pos, mut events) = drive_body(
        || cursor_cell.borrow().segment(),
        |n| {
            let accepted = cursor_cell.borrow_mut().advance(n);
            if let Some(e) = unknown.advance(accepted) {
                unknown_events.push((unknown.written(), e));
            }
            (accepted, progress.advance(accepted))
        },
        plan.preamble().len() as u64,
        file_len,
        plan.content_length(),
        gaps,
        materialize,
    );
    assert_eq!(pos, plan.content_length());
    if let Some(e) = progress.finish() {
        events.push((pos, e));
    }
    check_progress(&events, plan.content_length(), true);
    if let Some(e) = unknown.finish() {
        unknown_events.push((pos, e));
    }
    check_progress(&unknown_events, pos, false);
    if materialize {
        check_body(&plan, &body);
    }
}

// ---------------------------------------------------------------------------
// ws_handshake

/// The key bytes of every handshake the checks make.
const WS_KEY: [u8; 16] = *b"the sample nonce";

#[derive(Debug, Clone, PartialEq)]
struct HandshakeRun {
    result: Result<Option<(usize, mpnet_core::ws::Accepted)>, mpnet_core::Error>,
    leftover: Vec<u8>,
}

/// Reads a handshake response the way a transport does; `Ok(None)` is EOF
/// before a complete head.
fn drive_handshake(hs: &mpnet_core::ws::ClientHandshake, pieces: &[&[u8]]) -> HandshakeRun {
    let mut feed = Feed::new(pieces);
    loop {
        feed.step();
        match hs.try_response(&feed.buf) {
            Err(e) => {
                return HandshakeRun {
                    result: Err(e),
                    leftover: Vec::new(),
                }
            }
            Ok((0, None)) => {
                if !feed.more() {
                    return HandshakeRun {
                        result: Ok(None),
                        leftover: feed.leftover(),
                    };
                }
            }
            Ok((n, Some(accepted))) => {
                assert!(n > 0 && n <= feed.buf.len(), "head of {n} bytes");
                feed.buf.drain(..n);
                return HandshakeRun {
                    result: Ok(Some((n, accepted))),
                    leftover: feed.leftover(),
                };
            }
            Ok((n, None)) => panic!("consumed {n} bytes without a head"),
        }
    }
}

/// The request of a handshake: one HTTP/1.1 GET head with the upgrade
/// headers, the key, the subprotocols, and clean caller headers.
fn check_handshake_request(hs: &mpnet_core::ws::ClientHandshake) {
    let req = hs.request();
    let target = hs.target();
    assert!(target.scheme().is_websocket(), "scheme {}", target.scheme());
    let rt = target.request_target();
    assert!(
        wire_safe(&rt) && wire_safe(&target.to_string()),
        "target {target}"
    );
    let line = format!("GET {rt} HTTP/1.1\r\n");
    assert!(req.starts_with(line.as_bytes()), "request line");
    let mut slots = [httparse::EMPTY_HEADER; 160];
    let mut parsed = httparse::Request::new(&mut slots);
    match parsed.parse(req) {
        Ok(httparse::Status::Complete(n)) => assert_eq!(n, req.len(), "request length"),
        other => panic!(
            "request {:?} does not parse: {other:?}",
            String::from_utf8_lossy(req)
        ),
    }
    let values = |name: &str| -> Vec<String> {
        parsed
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
            .collect()
    };
    assert_eq!(values("host"), [target.host_header()], "Host");
    assert_eq!(values("upgrade"), ["websocket"], "Upgrade");
    assert_eq!(values("connection"), ["Upgrade"], "Connection");
    assert_eq!(values("sec-websocket-version"), ["13"], "version");
    let key = base64::engine::general_purpose::STANDARD.encode(WS_KEY);
    assert_eq!(
        values("sec-websocket-key"),
        std::slice::from_ref(&key),
        "key"
    );
    assert_eq!(hs.key(), key);
    let protocols = values("sec-websocket-protocol");
    if hs.protocols().is_empty() {
        assert!(protocols.is_empty(), "protocols sent: {protocols:?}");
    } else {
        assert_eq!(protocols, [hs.protocols().join(", ")], "protocols");
        for p in hs.protocols() {
            assert!(!p.is_empty() && p.bytes().all(is_tchar), "protocol {p:?}");
        }
    }
    for name in [
        "sec-websocket-accept",
        "sec-websocket-extensions",
        "referer",
    ] {
        assert!(
            values(name).len() <= usize::from(name == "referer"),
            "{name} sent"
        );
    }
    for h in parsed.headers.iter() {
        assert!(
            !h.value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0),
            "header {} value",
            h.name
        );
    }
}

/// A valid 101 answer to `hs`, choosing the first requested subprotocol.
fn valid_101(hs: &mpnet_core::ws::ClientHandshake) -> Vec<u8> {
    let accept = mpnet_core::ws::handshake::accept_key(hs.key());
    let mut out = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
    );
    if let Some(p) = hs.protocols().first() {
        out.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    out.into_bytes()
}

/// `ws_handshake`: the input is `[flags][cut count][gaps...][rest]`.
///
/// When `rest` is `connectSocket` options JSON: `ClientHandshake::new` in
/// an allow-any context either fails or writes one HTTP/1.1 GET head (its
/// length exactly the request's) with the target's Host, the upgrade
/// headers, the key, the requested subprotocols as tokens, no caller
/// `Sec-WebSocket-Accept`/`Extensions`, one referer, no CR/LF/NUL in a
/// value; a valid 101 answer, fed whole and split, is accepted with the
/// first subprotocol.
///
/// Otherwise `rest` is the server's answer to `wss://example.com/ws`
/// (subprotocols `chat`, `superchat` when flags bit 0 is set; a valid 101
/// head start in front when bit 1 is set): fed whole, in the chosen reads
/// and (up to 2 KiB) byte by byte it gives the same result; an accepted
/// answer is a 101 HTTP/1.1 head with `Upgrade: websocket`, `Connection:
/// upgrade`, the right accept key, and a requested subprotocol exactly when
/// some were requested; errors are codes 8 or 9.
pub fn ws_handshake(data: &[u8]) {
    let mut inp = Input::new(data);
    let flags = inp.byte();
    let gaps = read_gaps(&mut inp);
    let rest = inp.rest();
    let ctx = AppContext::builder("fuzz-app", "1.0.0")
        .allow_any_origin()
        .build()
        .expect("allow-any context");
    let text = String::from_utf8_lossy(rest);
    if let Ok(opts) = mpnet_core::ws::options::connect_options(&text) {
        let Ok(hs) = mpnet_core::ws::ClientHandshake::new(&ctx, &opts, WS_KEY) else {
            return;
        };
        check_handshake_request(&hs);
        let mut answer = valid_101(&hs);
        answer.extend_from_slice(b"\r\n\x81\x02hi");
        let want = hs.protocols().first().cloned();
        for run in [
            drive_handshake(&hs, &[&answer]),
            drive_handshake(&hs, &pieces(&answer, gaps)),
        ] {
            match run.result {
                Ok(Some((_, accepted))) => assert_eq!(accepted.protocol, want, "protocol"),
                other => panic!("a valid 101 was refused: {other:?}"),
            }
            assert_eq!(run.leftover, b"\x81\x02hi", "frame bytes after the head");
        }
        return;
    }

    let mut opts = mpnet_core::ws::ConnectOptions::new("wss://example.com/ws");
    if flags & 1 != 0 {
        opts.protocols = vec!["chat".into(), "superchat".into()];
    }
    let hs = mpnet_core::ws::ClientHandshake::new(&ctx, &opts, WS_KEY).expect("fixed handshake");
    check_handshake_request(&hs);
    let mut wire = Vec::new();
    if flags & 2 != 0 {
        wire = valid_101(&hs);
    }
    wire.extend_from_slice(rest);
    let whole = drive_handshake(&hs, &[&wire]);
    match &whole.result {
        Ok(Some((n, accepted))) => {
            let head = &accepted.head;
            assert_eq!(head.status, 101);
            assert_eq!(head.version, http::Version::HTTP_11);
            assert!(head.has_token("upgrade", "websocket"), "Upgrade");
            assert!(head.has_token("connection", "upgrade"), "Connection");
            let accept = mpnet_core::ws::handshake::accept_key(hs.key());
            let accepts: Vec<&[u8]> = head.headers_named("sec-websocket-accept").collect();
            assert_eq!(accepts.len(), 1, "accept headers");
            assert_eq!(
                std::str::from_utf8(accepts[0]).map(str::trim),
                Ok(accept.as_str()),
                "accept key"
            );
            match &accepted.protocol {
                Some(p) => assert!(hs.protocols().contains(p), "protocol {p:?} not requested"),
                None => assert!(hs.protocols().is_empty(), "no protocol chosen"),
            }
            assert_eq!(whole.leftover, wire[*n..], "bytes after the head");
        }
        Ok(None) => {}
        Err(e) => {
            let code = e.code(mpnet_core::Api::Socket);
            assert!(code == 8 || code == 9, "handshake error {code}: {e:?}");
        }
    }
    let split = drive_handshake(&hs, &pieces(&wire, gaps));
    assert_eq!(whole, split, "whole vs split");
    if wire.len() <= 2048 {
        let bytes = drive_handshake(&hs, &bytewise(&wire));
        assert_eq!(whole, bytes, "whole vs bytewise");
    }
}

// ---------------------------------------------------------------------------
// tls_session

/// mpnet's own client configuration for an app that trusts no root (no web
/// PKI roots, no extra CA): no server can complete a handshake with it.
fn trusting_nobody() -> std::sync::Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<std::sync::Arc<rustls::ClientConfig>> =
        std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let ctx = AppContext::builder("fuzz-app", "1.0.0")
                .allow_any_origin()
                .use_web_pki_roots(false)
                .build()
                .expect("an app context");
            tls::client_config(&ctx, &tls::TlsSources::system()).expect("a client config")
        })
        .clone()
}

/// `tls_session`: the input after its first byte is what a server sends,
/// fed to a `TlsSession` in pieces of `first * 64 + 1` bytes (through
/// `read_buf`/`received` and `received_in` in turn), the handshake driven
/// after each. Invariants: no panic; the first call queues a
/// ClientHello (a handshake record) and asks for input; the handshake never
/// completes (the client trusts no root; it may see the server close);
/// once it fails, every later call
/// gives the same error; the unprocessed input stays within the session's
/// bound.
pub fn tls_session(data: &[u8]) {
    let mut input = Input::new(data);
    let piece = usize::from(input.byte()) * 64 + 1;
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a valid name");
    let mut session = TlsSession::new(trusting_nobody(), name).expect("a new session");
    assert_eq!(session.handshake().ok(), Some(Handshake::NeedRead));
    assert_eq!(
        session.transmit().first(),
        Some(&22),
        "a handshake record first"
    );
    let sent = session.transmit().len();
    session.sent(sent);
    for (i, chunk) in input.rest().chunks(piece).enumerate() {
        if i % 2 == 1 {
            // Every other piece as a transport's own read buffer, taken
            // whole or appended (`received_in`).
            let mut read = chunk.to_vec();
            read.resize(chunk.len() + 7, 0);
            if session.received_in(&mut read, chunk.len()).is_err() {
                return;
            }
            assert!(
                read.len() >= chunk.len() + 7,
                "the read buffer came back shorter"
            );
        } else {
            let Ok(buf) = session.read_buf() else {
                return;
            };
            let n = chunk.len().min(buf.len());
            buf[..n].copy_from_slice(&chunk[..n]);
            session.received(n);
        }
        match session.handshake() {
            Ok(Handshake::Done) => panic!("a handshake completed with a client trusting nobody"),
            Ok(Handshake::NeedRead) => {}
            // A close_notify: the server ended the session.
            Ok(Handshake::Closed) => return,
            Err(e) => {
                assert_eq!(session.handshake().err(), Some(e.clone()));
                assert_eq!(
                    session.encrypt(b"GET / HTTP/1.1\r\n\r\n").err(),
                    Some(e.clone())
                );
                assert_eq!(session.read_plaintext(&mut [0u8; 16]).err(), Some(e));
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// tls_records

/// A server certificate resolver with one key and a placeholder
/// certificate: the fuzz client below checks no certificate, since what is
/// fuzzed is the traffic after the handshake.
#[derive(Debug)]
struct OneKey(std::sync::Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for OneKey {
    fn resolve(
        &self,
        _: rustls::server::ClientHello<'_>,
    ) -> Option<std::sync::Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A certificate verifier that takes any server (fuzzing only).
#[derive(Debug)]
struct AnyServer(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// TLS 1.3 client and server settings that let the secrets out (the
/// client's, for mpnet's record layer; the server's, to seal the fuzzed
/// records), made once.
fn records_configs() -> (
    std::sync::Arc<rustls::ClientConfig>,
    std::sync::Arc<rustls::ServerConfig>,
) {
    use std::sync::{Arc, OnceLock};
    type Configs = (Arc<rustls::ClientConfig>, Arc<rustls::ServerConfig>);
    static CONFIGS: OnceLock<Configs> = OnceLock::new();
    CONFIGS
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                &ring::rand::SystemRandom::new(),
            )
            .expect("a P-256 key");
            let key = provider
                .key_provider
                .load_private_key(rustls::pki_types::PrivateKeyDer::Pkcs8(
                    pkcs8.as_ref().to_vec().into(),
                ))
                .expect("the key loads");
            let certified = rustls::sign::CertifiedKey::new(
                vec![rustls::pki_types::CertificateDer::from(vec![0x30, 0x00])],
                key,
            );
            let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .expect("TLS 1.3")
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(OneKey(Arc::new(certified))));
            server.enable_secret_extraction = true;
            let mut client = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .expect("TLS 1.3")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
                .with_no_client_auth();
            client.enable_secret_extraction = true;
            (Arc::new(client), Arc::new(server))
        })
        .clone()
}

/// One direction of the server's traffic keys, taken from it: to seal what
/// it sends, or to open what the client sent.
struct PeerKey {
    key: ring::aead::LessSafeKey,
    iv: [u8; 12],
    seq: u64,
}

impl PeerKey {
    fn new((seq, secrets): (u64, rustls::ConnectionTrafficSecrets)) -> PeerKey {
        let (alg, key, iv) = match &secrets {
            rustls::ConnectionTrafficSecrets::Aes128Gcm { key, iv } => {
                (&ring::aead::AES_128_GCM, key, iv)
            }
            rustls::ConnectionTrafficSecrets::Aes256Gcm { key, iv } => {
                (&ring::aead::AES_256_GCM, key, iv)
            }
            rustls::ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&ring::aead::CHACHA20_POLY1305, key, iv)
            }
            _ => panic!("a suite of TLS 1.3"),
        };
        let key = ring::aead::LessSafeKey::new(
            ring::aead::UnboundKey::new(alg, key.as_ref()).expect("a key"),
        );
        let iv = iv.as_ref().try_into().expect("a 12-byte IV");
        PeerKey { key, iv, seq }
    }

    fn nonce(&mut self) -> ring::aead::Nonce {
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        self.seq += 1;
        ring::aead::Nonce::assume_unique_for_key(nonce)
    }

    /// Opens the records of `wire` one by one: each one's inner type and
    /// content (`None` for one that does not open).
    fn open_all(&mut self, wire: &[u8]) -> Vec<Option<(u8, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(&[typ, major, minor, hi, lo]) = wire.get(at..at + 5) {
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            let Some(body) = wire.get(at + 5..at + 5 + len) else {
                out.push(None);
                break;
            };
            let mut body = body.to_vec();
            let nonce = self.nonce();
            let aad = ring::aead::Aad::from([typ, major, minor, hi, lo]);
            out.push(
                self.key
                    .open_in_place(nonce, aad, &mut body)
                    .ok()
                    .and_then(|plain| {
                        let end = plain.iter().rposition(|&b| b != 0)?;
                        Some((plain[end], plain[..end].to_vec()))
                    }),
            );
            at += 5 + len;
        }
        out
    }

    /// One record: `content`, the inner type `inner`, `padding` zeros.
    fn seal(&mut self, inner: u8, content: &[u8], padding: usize) -> Vec<u8> {
        let mut plain = content.to_vec();
        plain.push(inner);
        plain.resize(plain.len() + padding, 0);
        let len = u16::try_from(plain.len() + 16).expect("a record's length fits");
        let [hi, lo] = len.to_be_bytes();
        let header = [0x17, 3, 3, hi, lo];
        let nonce = self.nonce();
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, ring::aead::Aad::from(header), &mut plain)
            .expect("seal");
        [&header[..], &plain, tag.as_ref()].concat()
    }
}

/// A client session on mpnet's record layer after a handshake with an
/// in-memory rustls server (its tickets taken in), and the server's keys:
/// the one it seals with and the one that opens the client's records.
fn records_pair() -> (TlsSession, PeerKey, PeerKey) {
    use std::io::Read as _;
    let (client_config, server_config) = records_configs();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a valid name");
    let mut client = TlsSession::new(client_config, name).expect("a session");
    let mut server = rustls::ServerConnection::new(server_config).expect("a server");
    let to_server = |client: &mut TlsSession, server: &mut rustls::ServerConnection| {
        let mut bytes = client.transmit();
        let n = bytes.len();
        while !bytes.is_empty() {
            server.read_tls(&mut bytes).expect("server read_tls");
            server.process_new_packets().expect("server process");
        }
        client.sent(n);
    };
    let to_client = |server: &mut rustls::ServerConnection, client: &mut TlsSession| {
        let mut wire = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut wire).expect("server write_tls");
        }
        let mut read = wire.clone();
        client
            .received_in(&mut read, wire.len())
            .expect("client takes it");
    };
    loop {
        let state = client.handshake().expect("client handshake");
        to_server(&mut client, &mut server);
        if state == Handshake::Done {
            break;
        }
        to_client(&mut server, &mut client);
    }
    to_client(&mut server, &mut client);
    let mut none = [0u8; 1];
    assert_eq!(
        client.read_plaintext(&mut none),
        Ok(mpnet_core::tls_session::Plaintext::NeedRead),
        "tickets only"
    );
    let _ = server.reader().read(&mut none);
    assert!(
        client.uses_mpnet_records(),
        "TLS 1.3 moves to mpnet's records"
    );
    #[allow(deprecated)]
    let secrets = server
        .dangerous_extract_secrets()
        .expect("the server's secrets");
    (client, PeerKey::new(secrets.tx), PeerKey::new(secrets.rx))
}

/// `tls_records`: after a real TLS 1.3 handshake, the input describes what
/// the server sends: records sealed with its real key (application data,
/// any inner type and content, padding), raw bytes, `close_notify`; the
/// first byte sets how the bytes are cut into reads; before them the client
/// sends data cut as the next bytes say. Checks: what the client sends
/// opens with the server's key as application-data records of at most
/// 16 KiB, in order, with nothing lost; no panic; the
/// plaintext read starts with the data of the well-formed records sent
/// before anything else (all of it, and then the end the peer gave, when
/// nothing else was sent); after an error every later call gives it again.
pub fn tls_records(data: &[u8]) {
    let mut input = Input::new(data);
    let piece = usize::from(input.byte()) * 97 + 1;
    let (mut session, mut peer, mut from_client) = records_pair();
    // The client's side: pieces of data sealed, then opened by the peer.
    let mut sent = Vec::new();
    for _ in 0..usize::from(input.byte() % 4) {
        let [a, b] = [input.byte(), input.byte()];
        let len = usize::from(u16::from_be_bytes([a, b])) * 2;
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        session.encrypt_all(&data).expect("the client seals");
        sent.extend_from_slice(&data);
    }
    let wire_out = session.transmit().to_vec();
    session.sent(wire_out.len());
    let mut opened = Vec::new();
    for record in from_client.open_all(&wire_out) {
        let (typ, content) = record.expect("each client record opens with the server's key");
        assert_eq!(typ, 23, "application data");
        assert!(
            content.len() <= 16_384,
            "a record of {} bytes",
            content.len()
        );
        opened.extend_from_slice(&content);
    }
    assert_eq!(opened, sent, "the client's data, whole and in order");
    let mut wire = Vec::new();
    // The data of the well-formed records before the first other thing.
    let mut sure = Vec::new();
    let mut clean = true;
    let mut closed = false;
    // Records with no content in a row (rustls's bound, and the layer's:
    // the 33rd fails the session).
    let mut empty_in_a_row = 0;
    while !input.is_empty() && wire.len() < 256 * 1024 {
        match input.byte() % 5 {
            0 | 1 => {
                let [a, b] = [input.byte(), input.byte()];
                let len = usize::from(u16::from_be_bytes([a, b])) % (16_384 + 1);
                let seed = input.byte();
                let content: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(seed)).collect();
                // Content, type byte and padding within 2^14 + 1 bytes.
                let padding = usize::from(input.byte() % 32).min(16_384 - len);
                wire.extend(peer.seal(23, &content, padding));
                empty_in_a_row = if len == 0 { empty_in_a_row + 1 } else { 0 };
                if empty_in_a_row > 32 {
                    clean = false;
                }
                if clean {
                    sure.extend_from_slice(&content);
                }
            }
            2 => {
                let inner = input.byte();
                let len = usize::from(input.byte());
                let content = input.take(len).to_vec();
                let padding = usize::from(input.byte() % 4);
                wire.extend(peer.seal(inner, &content, padding));
                clean = false;
            }
            3 => {
                let len = usize::from(input.byte());
                wire.extend_from_slice(input.take(len));
                clean = false;
            }
            _ => {
                wire.extend(peer.seal(21, &[1, 0], 0));
                if clean {
                    closed = true;
                }
                clean = false;
            }
        }
    }
    let mut got = Vec::new();
    let mut dst = vec![0u8; 3000];
    let mut end = None;
    'reads: for chunk in wire.chunks(piece) {
        let mut read = chunk.to_vec();
        if let Err(e) = session.received_in(&mut read, chunk.len()) {
            end = Some(Err(e));
            break;
        }
        loop {
            match session.read_plaintext(&mut dst) {
                Ok(mpnet_core::tls_session::Plaintext::Data(n)) => {
                    got.extend_from_slice(&dst[..n]);
                }
                Ok(mpnet_core::tls_session::Plaintext::NeedRead) => break,
                other => {
                    end = Some(other);
                    break 'reads;
                }
            }
        }
    }
    assert!(
        got.len() >= sure.len() && got[..sure.len()] == sure[..],
        "the well-formed records' data comes out first, whole and in order"
    );
    if clean {
        assert_eq!(got, sure, "nothing but well-formed data");
        assert!(end.is_none(), "no end: {end:?}");
    }
    if closed {
        assert_eq!(got, sure);
        assert_eq!(end, Some(Ok(mpnet_core::tls_session::Plaintext::Closed)));
    }
    if let Some(Err(e)) = end {
        assert_eq!(session.read_plaintext(&mut dst).err(), Some(e.clone()));
        assert_eq!(session.encrypt(b"more").err(), Some(e));
    }
}
