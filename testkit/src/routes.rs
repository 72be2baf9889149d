//! The httpbin-like endpoints. Every handler turns bad input into a 4xx
//! answer; nothing here panics on request data.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::data::{
    content_type_for_name, ContentGen, PseudoRandom, DEFAULT_DOWNLOAD_SIZE, DEFAULT_SEED,
};
use crate::server::Ctx;
use crate::tap::RawHead;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The response body type of every endpoint.
pub(crate) type Body = UnsyncBoxBody<Bytes, BoxError>;
type Resp = Response<Body>;

/// Largest request body the echo endpoints (`/post`, `/anything`, ...)
/// hold in memory; more gives 413. `/upload` streams and has no limit.
pub const MAX_ECHO_BODY: usize = 64 * 1024 * 1024;
/// Largest non-file field `/upload` accepts; more gives 413.
pub const MAX_UPLOAD_FIELD: usize = 1024 * 1024;
/// Largest body `/bytes/N`, `/stream-bytes/N` and `/download/NAME` send.
pub const MAX_GENERATED: u64 = 4 * 1024 * 1024 * 1024;
/// Longest `/delay/S` and `chunk_delay_ms` (seconds).
pub const MAX_DELAY_SECS: f64 = 10.0;
/// Most hops `/redirect/N` and `/absolute-redirect/N` accept.
pub const MAX_REDIRECTS: u32 = 100;

/// What a handler knows about the request besides its body.
struct Info {
    peer: SocketAddr,
    method: Method,
    path: String,
    query: String,
    url: String,
    base: String,
    headers: HeaderMap,
    /// Header fields in arrival order, names as sent, repeated names joined
    /// with ", ".
    echo_headers: Vec<(String, String)>,
}

impl Info {
    fn new(
        ctx: Arc<Ctx>,
        peer: SocketAddr,
        head: Option<RawHead>,
        parts: &http::request::Parts,
    ) -> Info {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("127.0.0.1:{}", ctx.port));
        let base = format!("{}://{}", ctx.scheme, host);
        let pq = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let url = if parts.uri.scheme().is_some() {
            parts.uri.to_string()
        } else {
            format!("{base}{pq}")
        };
        let target = parts.uri.to_string();
        let raw: Vec<(String, Vec<u8>)> = match head {
            Some(h) if h.method == parts.method.as_str() && h.target == target => h.headers,
            _ => parts
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect(),
        };
        let mut echo_headers: Vec<(String, String)> = Vec::new();
        for (name, value) in raw {
            let value = String::from_utf8_lossy(&value).into_owned();
            match echo_headers
                .iter_mut()
                .find(|(n, _)| n.eq_ignore_ascii_case(&name))
            {
                Some((_, v)) => {
                    v.push_str(", ");
                    v.push_str(&value);
                }
                None => echo_headers.push((name, value)),
            }
        }
        Info {
            peer,
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or("").to_owned(),
            url,
            base,
            headers: parts.headers.clone(),
            echo_headers,
        }
    }

    fn header(&self, name: HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn args(&self) -> Vec<(String, String)> {
        query_pairs(&self.query)
    }

    fn arg(&self, key: &str) -> Option<String> {
        self.args()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    fn args_json(&self) -> Value {
        multi_map(self.args().into_iter().map(|(k, v)| (k, Value::String(v))))
    }

    fn headers_json(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in &self.echo_headers {
            m.insert(k.clone(), Value::String(v.clone()));
        }
        Value::Object(m)
    }

    fn origin(&self) -> String {
        self.peer.ip().to_string()
    }
}

/// Routes one request. Never panics on request data.
pub(crate) async fn handle(
    ctx: Arc<Ctx>,
    peer: SocketAddr,
    head: Option<RawHead>,
    req: http::Request<Incoming>,
) -> Resp {
    if crate::ws::is_ws_path(req.uri().path()) {
        return crate::ws::handle(req);
    }
    let (parts, body) = req.into_parts();
    let info = Info::new(ctx, peer, head, &parts);
    let path = info.path.clone();
    let m = info.method.clone();
    match path.as_str() {
        "/" => text(StatusCode::OK, "text/plain; charset=utf-8", INDEX),
        "/get" => only(&m, Method::GET).unwrap_or_else(|| get(&info)),
        "/post" => match only(&m, Method::POST) {
            Some(r) => r,
            None => echo_body(&info, body, false).await,
        },
        "/put" => match only(&m, Method::PUT) {
            Some(r) => r,
            None => echo_body(&info, body, false).await,
        },
        "/delete" => match only(&m, Method::DELETE) {
            Some(r) => r,
            None => echo_body(&info, body, false).await,
        },
        "/headers" => json_ok(&json!({ "headers": info.headers_json() })),
        "/ip" => json_ok(&json!({ "origin": info.origin() })),
        "/user-agent" => json_ok(&json!({
            "user-agent": info.header(header::USER_AGENT).unwrap_or("")
        })),
        "/gzip" | "/deflate" => compressed(&info, path == "/gzip"),
        "/response-headers" => response_headers(&info),
        "/html" => text(StatusCode::OK, "text/html; charset=utf-8", HTML),
        "/json" => text(StatusCode::OK, "application/json", JSON_DOC),
        "/encoding/utf8" => text(StatusCode::OK, "text/html; charset=utf-8", UTF8_PAGE),
        "/invalid-utf8" => bytes_resp(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            Bytes::from_static(INVALID_UTF8),
        ),
        "/cookies" => json_ok(&json!({ "cookies": cookies(&info) })),
        "/cookies/set" => cookies_set(&info),
        "/redirect-to" => {
            // Read the request body first, as a real application does: hyper
            // closes a connection whose request body was left unread, and
            // the client could find out only after reusing it (a 307/308
            // POST follow-up would race that close).
            if let Err(e) = Limited::new(body, MAX_ECHO_BODY).collect().await {
                return bad_request(format!("reading the body failed: {e}"));
            }
            redirect_to(&info)
        }
        "/upload" => match only(&m, Method::POST) {
            Some(r) => r,
            None => upload(&info, body).await,
        },
        "/drop-mid-body" => drop_mid_body(),
        p if p == "/anything" || p.starts_with("/anything/") => echo_body(&info, body, true).await,
        p => {
            if let Some(n) = p.strip_prefix("/status/") {
                status(n)
            } else if let Some(s) = p.strip_prefix("/delay/") {
                delay(&info, body, s).await
            } else if let Some(n) = p.strip_prefix("/bytes/") {
                random_bytes(&info, n, false)
            } else if let Some(n) = p.strip_prefix("/stream-bytes/") {
                random_bytes(&info, n, true)
            } else if let Some(n) = p
                .strip_prefix("/redirect/")
                .or_else(|| p.strip_prefix("/relative-redirect/"))
            {
                redirect_n(&info, n, false)
            } else if let Some(n) = p.strip_prefix("/absolute-redirect/") {
                redirect_n(&info, n, true)
            } else if let Some(name) = p.strip_prefix("/download/") {
                download(&info, name)
            } else {
                error(StatusCode::NOT_FOUND, "no such endpoint")
            }
        }
    }
}

// ---------------------------------------------------------------- helpers

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn bytes_resp(status: StatusCode, content_type: &'static str, body: Bytes) -> Resp {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn text(status: StatusCode, content_type: &'static str, body: &'static str) -> Resp {
    bytes_resp(status, content_type, Bytes::from_static(body.as_bytes()))
}

fn json_bytes(v: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).unwrap_or_else(|_| b"null".to_vec());
    out.push(b'\n');
    out
}

fn json_resp(status: StatusCode, v: &Value) -> Resp {
    bytes_resp(status, "application/json", Bytes::from(json_bytes(v)))
}

fn json_ok(v: &Value) -> Resp {
    json_resp(StatusCode::OK, v)
}

/// A JSON error answer `{"error": message}`.
pub(crate) fn error(status: StatusCode, message: impl std::fmt::Display) -> Resp {
    json_resp(status, &json!({ "error": message.to_string() }))
}

fn bad_request(message: impl std::fmt::Display) -> Resp {
    error(StatusCode::BAD_REQUEST, message)
}

/// `None` if `m` is `allowed`, else a 405 naming the allowed method.
fn only(m: &Method, allowed: Method) -> Option<Resp> {
    if *m == allowed {
        return None;
    }
    let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    if let Ok(v) = HeaderValue::from_str(allowed.as_str()) {
        r.headers_mut().insert(header::ALLOW, v);
    }
    Some(r)
}

fn redirect(status: StatusCode, location: &str) -> Resp {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = status;
    match HeaderValue::from_str(location) {
        Ok(v) => {
            r.headers_mut().insert(header::LOCATION, v);
            r
        }
        Err(_) => bad_request("invalid redirect location"),
    }
}

/// Query pairs, decoded as `application/x-www-form-urlencoded` (`+` is a
/// space; a malformed `%` escape is kept literally).
fn query_pairs(q: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// An object where a repeated key collects its values in an array.
fn multi_map(items: impl IntoIterator<Item = (String, Value)>) -> Value {
    let mut m = Map::new();
    for (k, v) in items {
        push_multi(&mut m, k, v);
    }
    Value::Object(m)
}

fn push_multi(m: &mut Map<String, Value>, k: String, v: Value) {
    match m.get_mut(&k) {
        None => {
            m.insert(k, v);
        }
        Some(Value::Array(a)) => a.push(v),
        Some(old) => {
            let first = old.take();
            *old = Value::Array(vec![first, v]);
        }
    }
}

/// Percent-decodes a path segment (a malformed escape is kept literally).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Text as it is when UTF-8, else an httpbin-style
/// `data:application/octet-stream;base64,...` URL.
fn text_or_data_url(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => format!(
            "data:application/octet-stream;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ),
    }
}

fn content_type_is(info: &Info, essence: &str) -> bool {
    info.header(header::CONTENT_TYPE).is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|e| e.trim().eq_ignore_ascii_case(essence))
    })
}

/// A streamed body of `total` bytes from `gen`, in chunks of `chunk` bytes
/// with `delay` between chunks.
fn generated(total: u64, chunk: usize, delay: Duration, gen: ContentGen) -> Body {
    let stream = futures_util::stream::unfold(
        (total, gen, true),
        move |(left, mut gen, first)| async move {
            if left == 0 {
                return None;
            }
            if !first && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let n = left.min(chunk as u64) as usize;
            let mut buf = vec![0u8; n];
            gen.fill(&mut buf);
            let frame: Result<Frame<Bytes>, BoxError> = Ok(Frame::data(Bytes::from(buf)));
            Some((frame, (left - n as u64, gen, false)))
        },
    );
    StreamBody::new(stream).boxed_unsync()
}

/// `chunk_size` (1 B..=1 MiB, default `default`) and `chunk_delay_ms`
/// (0..=10000, default 0) from the query.
fn chunking(info: &Info, default: usize) -> Result<(usize, Duration), &'static str> {
    let chunk = match info.arg("chunk_size") {
        None => default,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=1 << 20).contains(&n) => n,
            _ => return Err("chunk_size must be 1..=1048576"),
        },
    };
    let delay = match info.arg("chunk_delay_ms") {
        None => 0,
        Some(s) => match s.parse::<u64>() {
            Ok(n) if n as f64 <= MAX_DELAY_SECS * 1000.0 => n,
            _ => return Err("chunk_delay_ms must be 0..=10000"),
        },
    };
    Ok((chunk, Duration::from_millis(delay)))
}

// -------------------------------------------------------------- endpoints

fn get(info: &Info) -> Resp {
    json_ok(&json!({
        "args": info.args_json(),
        "headers": info.headers_json(),
        "origin": info.origin(),
        "url": info.url,
    }))
}

/// `/post`, `/put`, `/delete`, `/anything`, `/delay/S`: echoes the request
/// with its body in the manner of httpbin.
async fn echo_body(info: &Info, body: Incoming, with_method: bool) -> Resp {
    let bytes = match Limited::new(body, MAX_ECHO_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            return if e.is::<http_body_util::LengthLimitError>() {
                error(StatusCode::PAYLOAD_TOO_LARGE, "body over 64 MiB")
            } else {
                bad_request(format!("reading the body failed: {e}"))
            };
        }
    };
    let mut form = Map::new();
    let mut files = Map::new();
    let mut data = String::new();
    if content_type_is(info, "application/x-www-form-urlencoded") {
        for (k, v) in url::form_urlencoded::parse(&bytes) {
            push_multi(&mut form, k.into_owned(), Value::String(v.into_owned()));
        }
    } else if content_type_is(info, "multipart/form-data") {
        let boundary = match info
            .header(header::CONTENT_TYPE)
            .map(multer::parse_boundary)
        {
            Some(Ok(b)) => b,
            _ => return bad_request("multipart/form-data without a boundary"),
        };
        let once = futures_util::stream::once(async move { Ok::<Bytes, BoxError>(bytes.clone()) });
        let mut mp = multer::Multipart::new(once, boundary);
        loop {
            match mp.next_field().await {
                Ok(None) => break,
                Ok(Some(field)) => {
                    let name = field.name().unwrap_or("").to_owned();
                    let is_file = field.file_name().is_some();
                    let content = match field.bytes().await {
                        Ok(b) => b,
                        Err(e) => return bad_request(format!("bad multipart body: {e}")),
                    };
                    let v = Value::String(text_or_data_url(&content));
                    if is_file {
                        push_multi(&mut files, name, v);
                    } else {
                        push_multi(&mut form, name, v);
                    }
                }
                Err(e) => return bad_request(format!("bad multipart body: {e}")),
            }
        }
    } else {
        data = text_or_data_url(&bytes);
    }
    let json_value: Value = if content_type_is(info, "multipart/form-data")
        || content_type_is(info, "application/x-www-form-urlencoded")
    {
        Value::Null
    } else {
        serde_json::from_str(&data).unwrap_or(Value::Null)
    };
    let mut out = Map::new();
    out.insert("args".into(), info.args_json());
    out.insert("data".into(), Value::String(data));
    out.insert("files".into(), Value::Object(files));
    out.insert("form".into(), Value::Object(form));
    out.insert("headers".into(), info.headers_json());
    out.insert("json".into(), json_value);
    if with_method {
        out.insert("method".into(), Value::String(info.method.to_string()));
    }
    out.insert("origin".into(), Value::String(info.origin()));
    out.insert("url".into(), Value::String(info.url.clone()));
    json_ok(&Value::Object(out))
}

fn status(n: &str) -> Resp {
    let code = match n.parse::<u16>() {
        Ok(c) if (200..=599).contains(&c) => c,
        _ => return bad_request("status must be 200..=599"),
    };
    let Ok(status) = StatusCode::from_u16(code) else {
        return bad_request("status must be 200..=599");
    };
    if matches!(code, 301 | 302 | 303 | 307 | 308) {
        return redirect(status, "/get");
    }
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn delay(info: &Info, body: Incoming, s: &str) -> Resp {
    let secs = match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => v.min(MAX_DELAY_SECS),
        _ => return bad_request("delay must be a number of seconds >= 0"),
    };
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    echo_body(info, body, true).await
}

fn seed(info: &Info) -> Result<u64, &'static str> {
    match info.arg("seed") {
        None => Ok(DEFAULT_SEED),
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| "seed must be an unsigned integer"),
    }
}

fn random_bytes(info: &Info, n: &str, chunked: bool) -> Resp {
    let len = match n.parse::<u64>() {
        Ok(v) if v <= MAX_GENERATED => v,
        _ => return bad_request("length must be 0..=4 GiB"),
    };
    let seed = match seed(info) {
        Ok(s) => s,
        Err(e) => return bad_request(e),
    };
    let (chunk, delay) = match chunking(info, if chunked { 10 * 1024 } else { 64 * 1024 }) {
        Ok(c) => c,
        Err(e) => return bad_request(e),
    };
    let body = generated(
        len,
        chunk,
        delay,
        ContentGen::Random(PseudoRandom::new(seed)),
    );
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if !chunked {
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    r
}

fn redirect_to(info: &Info) -> Resp {
    let Some(target) = info.arg("url") else {
        return bad_request("redirect-to needs ?url=");
    };
    let code = match info.arg("status_code") {
        None => 302,
        Some(s) => match s.parse::<u16>() {
            Ok(c) if (300..=399).contains(&c) => c,
            _ => return bad_request("status_code must be 300..=399"),
        },
    };
    match StatusCode::from_u16(code) {
        Ok(status) => redirect(status, &target),
        Err(_) => bad_request("status_code must be 300..=399"),
    }
}

fn redirect_n(info: &Info, n: &str, absolute: bool) -> Resp {
    let n = match n.parse::<u32>() {
        Ok(v) if (1..=MAX_REDIRECTS).contains(&v) => v,
        _ => return bad_request("hops must be 1..=100"),
    };
    let path = match (n, absolute) {
        (1, _) => "/get".to_owned(),
        (_, false) => format!("/redirect/{}", n - 1),
        (_, true) => format!("/absolute-redirect/{}", n - 1),
    };
    let location = if absolute {
        format!("{}{}", info.base, path)
    } else {
        path
    };
    redirect(StatusCode::FOUND, &location)
}

fn compressed(info: &Info, gzip: bool) -> Resp {
    let key = if gzip { "gzipped" } else { "deflated" };
    let doc = json!({
        key: true,
        "headers": info.headers_json(),
        "method": info.method.to_string(),
        "origin": info.origin(),
    });
    let plain = json_bytes(&doc);
    let encoded = if gzip {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&plain).and_then(|()| e.finish())
    } else {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&plain).and_then(|()| e.finish())
    };
    let Ok(encoded) = encoded else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "compression failed");
    };
    let mut r = bytes_resp(StatusCode::OK, "application/json", Bytes::from(encoded));
    r.headers_mut().insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static(if gzip { "gzip" } else { "deflate" }),
    );
    r
}

fn response_headers(info: &Info) -> Resp {
    let pairs = info.args();
    let mut fields = Vec::with_capacity(pairs.len());
    for (k, v) in &pairs {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) else {
            return bad_request(format!("invalid header {k:?}: {v:?}"));
        };
        fields.push((name, value));
    }
    let has_ct = fields.iter().any(|(n, _)| *n == header::CONTENT_TYPE);
    let mut doc = Map::new();
    if !has_ct {
        doc.insert(
            "Content-Type".into(),
            Value::String("application/json".into()),
        );
    }
    for (k, v) in pairs {
        push_multi(&mut doc, k, Value::String(v));
    }
    let mut r = json_ok(&Value::Object(doc));
    if has_ct {
        r.headers_mut().remove(header::CONTENT_TYPE);
    }
    for (name, value) in fields {
        r.headers_mut().append(name, value);
    }
    r
}

fn cookies(info: &Info) -> Value {
    let mut m = Map::new();
    for v in info.headers.get_all(header::COOKIE) {
        let s = String::from_utf8_lossy(v.as_bytes());
        for pair in s.split(';') {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            m.insert(k.trim().to_owned(), Value::String(v.trim().to_owned()));
        }
    }
    Value::Object(m)
}

fn cookies_set(info: &Info) -> Resp {
    let mut r = redirect(StatusCode::FOUND, "/cookies");
    for (k, v) in info.args() {
        match HeaderValue::from_str(&format!("{k}={v}; Path=/")) {
            Ok(h) if !k.is_empty() && !k.contains(['=', ';']) && !v.contains(';') => {
                r.headers_mut().append(header::SET_COOKIE, h);
            }
            _ => return bad_request(format!("invalid cookie {k:?}")),
        }
    }
    r
}

fn drop_mid_body() -> Resp {
    let stream = futures_util::stream::unfold(0u8, |step| async move {
        match step {
            0 => {
                let f: Result<Frame<Bytes>, BoxError> =
                    Ok(Frame::data(Bytes::from(vec![b'x'; 100])));
                Some((f, 1))
            }
            1 => {
                // Let hyper flush the 100 bytes, then fail the body so the
                // connection is dropped 900 bytes short.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let f: Result<Frame<Bytes>, BoxError> = Err("dropped mid-body on purpose".into());
                Some((f, 2))
            }
            _ => None,
        }
    });
    let mut r = Response::new(StreamBody::new(stream).boxed_unsync());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(1000u64));
    r
}

fn download(info: &Info, name: &str) -> Resp {
    let name = percent_decode(name);
    if name.is_empty() {
        return bad_request("download needs a name");
    }
    let size = match info.arg("size") {
        None => DEFAULT_DOWNLOAD_SIZE,
        Some(s) => match s.parse::<u64>() {
            Ok(v) if v <= MAX_GENERATED => v,
            _ => return bad_request("size must be 0..=4 GiB"),
        },
    };
    let chunked = info.arg("chunked").is_some_and(|v| v == "1" || v == "true");
    let (chunk, delay) = match chunking(info, 64 * 1024) {
        Ok(c) => c,
        Err(e) => return bad_request(e),
    };
    let content_type = match info.arg("type") {
        Some(t) => match HeaderValue::from_str(&t) {
            Ok(v) => v,
            Err(_) => return bad_request("invalid type"),
        },
        None => HeaderValue::from_static(content_type_for_name(&name)),
    };
    let body = generated(size, chunk, delay, ContentGen::for_download(&name));
    let mut r = Response::new(body);
    r.headers_mut().insert(header::CONTENT_TYPE, content_type);
    if !chunked {
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    r
}

/// `/upload`: reads a multipart/form-data body as it arrives, hashing each
/// file part on the fly; never holds a file part in memory.
async fn upload(info: &Info, body: Incoming) -> Resp {
    let boundary = match info
        .header(header::CONTENT_TYPE)
        .map(multer::parse_boundary)
    {
        Some(Ok(b)) if content_type_is(info, "multipart/form-data") => b,
        _ => return bad_request("upload expects multipart/form-data with a boundary"),
    };
    let mut mp = multer::Multipart::new(body.into_data_stream(), boundary);
    let mut form = Map::new();
    let mut files = Map::new();
    let mut body_fields = 0u64;
    loop {
        let mut field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return bad_request(format!("bad multipart body: {e}")),
        };
        body_fields += 1;
        let name = field.name().unwrap_or("").to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(|m| m.to_string());
        match file_name {
            Some(file_name) => {
                let mut hasher = Sha256::new();
                let mut size = 0u64;
                loop {
                    match field.chunk().await {
                        Ok(Some(chunk)) => {
                            size += chunk.len() as u64;
                            hasher.update(&chunk);
                        }
                        Ok(None) => break,
                        Err(e) => return bad_request(format!("bad multipart body: {e}")),
                    }
                }
                let entry = json!({
                    "filename": file_name,
                    "contentType": content_type,
                    "size": size,
                    "sha256": hex(&hasher.finalize()),
                });
                push_multi(&mut files, name, entry);
            }
            None => {
                let mut value = Vec::new();
                loop {
                    match field.chunk().await {
                        Ok(Some(chunk)) => {
                            if value.len() + chunk.len() > MAX_UPLOAD_FIELD {
                                return error(
                                    StatusCode::PAYLOAD_TOO_LARGE,
                                    "a form field is over 1 MiB",
                                );
                            }
                            value.extend_from_slice(&chunk);
                        }
                        Ok(None) => break,
                        Err(e) => return bad_request(format!("bad multipart body: {e}")),
                    }
                }
                push_multi(&mut form, name, Value::String(text_or_data_url(&value)));
            }
        }
    }
    let content_length: Value = info
        .header(header::CONTENT_LENGTH)
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(Value::Null, Value::from);
    json_ok(&json!({
        "form": form,
        "files": files,
        "fields": body_fields,
        "contentLength": content_length,
        "headers": info.headers_json(),
        "url": info.url,
    }))
}

// ------------------------------------------------------------ static text

const INDEX: &str = "mpnet-testkit loopback server (httpbin-like)

GET  /get                      echo args, headers, origin, url
POST /post  PUT /put  DELETE /delete   echo with body: data, form, files, json
ANY  /anything[/...]           echo with method
ANY  /status/N                 answer status N (3xx: Location /get)
ANY  /delay/S                  wait S seconds (max 10), then echo
GET  /bytes/N?seed=K           N pseudo-random bytes, Content-Length
GET  /stream-bytes/N?seed=K    the same bytes, chunked
GET  /redirect-to?url=U&status_code=C
GET  /redirect/N  /relative-redirect/N  /absolute-redirect/N
GET  /gzip  /deflate           compressed JSON
GET  /response-headers?K=V     set response headers
GET  /html  /json  /encoding/utf8  /invalid-utf8
GET  /cookies  /cookies/set?K=V  /headers  /ip  /user-agent
POST /upload                   multipart: form fields and file digests
GET  /download/NAME?size=N&chunked=1&type=T
GET  /drop-mid-body            Content-Length 1000, 100 bytes, close
GET  /ws                       WebSocket echo (text, binary; close answered)
GET  /ws/close?code=N&reason=R WebSocket: closes with N, R after the first message
";

const HTML: &str = "<!DOCTYPE html>
<html>
  <head>
    <meta charset=\"utf-8\">
    <title>Moby-Dick</title>
  </head>
  <body>
      <h1>Herman Melville - Moby-Dick</h1>
      <div>
        <p>
          Call me Ishmael. Some years ago - never mind how long precisely - having
          little or no money in my purse, and nothing particular to interest me on
          shore, I thought I would sail about a little and see the watery part of
          the world.
        </p>
      </div>
  </body>
</html>
";

const JSON_DOC: &str = r#"{
  "slideshow": {
    "author": "Yours Truly",
    "date": "date of publication",
    "slides": [
      {
        "title": "Wake up to WonderWidgets!",
        "type": "all"
      },
      {
        "items": [
          "Why <em>WonderWidgets</em> are great",
          "Who <em>buys</em> WonderWidgets"
        ],
        "title": "Overview",
        "type": "all"
      }
    ],
    "title": "Sample Slide Show"
  }
}
"#;

const UTF8_PAGE: &str = "<!DOCTYPE html>
<html>
<head><meta charset=\"utf-8\"><title>UTF-8 demo</title></head>
<body>
<p>English: The quick brown fox jumps over the lazy dog.</p>
<p>中文: 小程序网络接口测试</p>
<p>日本語: いろはにほへと ちりぬるを</p>
<p>Русский: Съешь же ещё этих мягких французских булок</p>
<p>Ελληνικά: Ξεσκεπάζω την ψυχοφθόρα βδελυγμία</p>
<p>Emoji: 😀 🚀 ✓</p>
</body>
</html>
";

/// Bytes that are not UTF-8 (a lone 0xFF, 0xFE, a bad continuation).
const INVALID_UTF8: &[u8] = b"invalid utf-8: \xff\xfe \xc3\x28 end\n";
