//! Loopback test kit for mpnet: a run-time test CA, an httpbin-like HTTPS
//! (and plain HTTP) server, a scripted raw TCP/TLS server, and a CONNECT
//! proxy. Used by both transports' tests and by `mpnet serve`.
//!
//! This crate is test infrastructure, not code under test: it is built on
//! well-kept crates (rcgen, rustls with *ring*, tokio, hyper 1, multer).
//! Every server listens on `127.0.0.1` only, runs on its own background
//! thread (a tokio runtime with 2 workers), and stops — closing its listener
//! and all its connections — on `shutdown()` or drop. Bad request data never
//! panics a server: it gets a 4xx answer or the connection is closed.
//!
//! ```no_run
//! use mpnet_testkit::{HttpsServer, TestCa};
//! let ca = TestCa::new();
//! let server = HttpsServer::start(&ca);
//! let url = server.url("/get?a=1"); // https://127.0.0.1:PORT/get?a=1
//! ca.write_pem("/tmp/ca.pem").unwrap(); // trust this in the client
//! # let _ = url;
//! ```
//!
//! # Endpoints of [`HttpsServer`] / [`HttpServer`]
//!
//! JSON answers are pretty-printed with `Content-Type: application/json`,
//! keys in the order below. `args`, `form` and `files` map a name to a
//! string, or to an array when the name is repeated. `headers` maps each
//! request header name *as the client spelled it*, in arrival order, to its
//! value (repeated fields joined with `", "`). `origin` is the client IP,
//! `url` is `scheme://{Host header}{path?query}`. Errors are
//! `{"error": "..."}` with a 4xx status.
//!
//! | endpoint | behaviour |
//! |---|---|
//! | `GET /get` | `{args, headers, origin, url}`; other methods 405 |
//! | `POST /post`, `PUT /put`, `DELETE /delete` | `{args, data, files, form, headers, json, origin, url}`; only that method, else 405. `data` is the body as text (non-UTF-8: a `data:application/octet-stream;base64,` URL; `""` for form bodies); `json` the body parsed as JSON or `null`; `form` from urlencoded or multipart bodies; `files` maps multipart file fields to their content (text or data URL). Bodies over [`MAX_ECHO_BODY`] get 413. |
//! | `ANY /anything[/...]` | as `/post`, plus `method` |
//! | `ANY /status/N` | status N (200-599) with an empty body; 301, 302, 303, 307, 308 carry `Location: /get` |
//! | `ANY /delay/S` | waits S seconds (fractional, capped at 10), then answers as `/anything` |
//! | `GET /bytes/N` | N bytes of [`pseudo_random_bytes`]`(seed, N)` (`?seed=K`, default [`DEFAULT_SEED`]), `application/octet-stream`, `Content-Length` |
//! | `GET /stream-bytes/N` | the same bytes, chunked (no `Content-Length`), `?chunk_size=` default 10240 |
//! | `ANY /redirect-to?url=U&status_code=C` | C (300-399, default 302) with `Location: U` |
//! | `GET /redirect/N`, `/relative-redirect/N` | 302 to `/redirect/{N-1}`; `/redirect/1` goes to `/get` (N 1-100) |
//! | `GET /absolute-redirect/N` | as `/redirect/N` with absolute `Location`s built from the Host header |
//! | `GET /gzip`, `/deflate` | `{gzipped|deflated: true, headers, method, origin}` compressed (gzip; zlib-wrapped deflate) with `Content-Encoding` and `Content-Length` |
//! | `ANY /response-headers?K=V...` | adds each `K: V` field (repeated keys give repeated fields) and echoes them as JSON (with `Content-Type`) |
//! | `GET /html` | an HTML page, `text/html; charset=utf-8` |
//! | `GET /json` | httpbin's slideshow JSON document |
//! | `GET /encoding/utf8` | an HTML page with text in several scripts and emoji |
//! | `GET /invalid-utf8` | bytes that are not UTF-8, `text/plain; charset=utf-8` |
//! | `GET /cookies` | `{"cookies": {name: value}}` from the `Cookie` header |
//! | `GET /cookies/set?K=V` | `Set-Cookie: K=V; Path=/` for each pair, 302 to `/cookies` |
//! | `GET /headers` | `{"headers": {...}}` |
//! | `GET /ip`, `/user-agent` | `{"origin"}`, `{"user-agent"}` |
//! | `POST /upload` | reads a `multipart/form-data` body as it streams in; `{form, files, fields, contentLength, headers, url}` where `files` maps each file field to `{filename, contentType, size, sha256}` (hex). File parts are hashed on the fly, never held in memory; a non-file field over [`MAX_UPLOAD_FIELD`] gets 413; a body that is not multipart gets 400 |
//! | `GET /download/NAME` | [`download_content`]`(NAME, size)` with the type from [`content_type_for_name`] and `Content-Length`; `?size=N` (default [`DEFAULT_DOWNLOAD_SIZE`]), `?chunked=1` (no length), `?type=T` (content type), `?chunk_size=`/`?chunk_delay_ms=` (pacing, also on `/bytes`, `/stream-bytes`) |
//! | `GET /drop-mid-body` | `Content-Length: 1000`, 100 bytes, then the connection closes |
//! | `GET /ws` | WebSocket (`wss://` on [`HttpsServer`], `ws://` on [`HttpServer`]; URLs from `ws_url`): echoes every text and binary message, answers pings, answers a close with a close (same code) |
//! | `GET /ws/close?code=N&reason=R` | WebSocket: after the client's first message (`&immediate=1`: at once) closes with code N (1000-4999, default 1000) and reason R (default empty, at most 123 bytes); echoes nothing |
//! | `GET /` | a plain-text list of endpoints |
//! | anything else | 404 |
//!
//! The WebSocket endpoints select the first subprotocol the client offers,
//! or none with `?protocol=none` (for the missing-subprotocol check); they
//! accept messages and frames up to [`MAX_WS_MESSAGE`]; a request that is
//! not a valid upgrade gets 400 (426 for a version other than 13).

#![warn(missing_docs)]

mod bg;
mod ca;
mod data;
mod proxy;
mod raw;
mod routes;
mod server;
mod tap;
mod ws;

pub use ca::{crypto_provider, Leaf, LeafKind, TestCa, LOOPBACK_NAMES, WRONG_HOST};
pub use data::{
    content_type_for_name, download_content, fnv1a64, pseudo_random_bytes, PseudoRandom,
    DEFAULT_DOWNLOAD_SIZE, DEFAULT_SEED,
};
pub use proxy::{ProxyMode, ProxyServer};
pub use raw::{
    refused_port, RawServer, RawServerBuilder, ReadUntil, Step, CLOSE_DRAIN, MAX_READ_BUFFER,
};
pub use routes::{MAX_DELAY_SECS, MAX_ECHO_BODY, MAX_GENERATED, MAX_REDIRECTS, MAX_UPLOAD_FIELD};
pub use server::{serve_http, serve_https, HttpServer, HttpsServer};
pub use ws::MAX_WS_MESSAGE;
