//! # mpnet-core
//!
//! The sans-IO core of mpnet, the mini-program network API (`my.request`,
//! `my.uploadFile`, `my.downloadFile`, `my.connectSocket`) in Rust.
//!
//! Nothing here opens a socket or a file, reads a clock, sleeps or draws
//! random numbers (SPEC §2; TLS takes its clock and randomness from the
//! caller, see [`tls::TlsSources`]). Callers pass in the bytes they read and the
//! current `Instant`; the core hands back bytes to write, events, results
//! and the next deadline. The transports (`mpnet-blocking`, `mpnet-smol`)
//! only move bytes and run timers.
//!
//! | module | job |
//! |---|---|
//! | [`context`] | the app context: identity, referer, domain policy, security, limits (SPEC §3) |
//! | [`target`] | one parsed, normalised URL: the host checked is the host connected to |
//! | [`target_cache`] | the app context's bounded memo of URL parses (a repeated URL is parsed once) |
//! | [`policy`] | the whitelist of origins, or allow-any |
//! | [`js`] | JavaScript's number printing, `encodeURIComponent`, `JSON.stringify` |
//! | [`js_headers`] | the `headers` object of a response as a mini-program sees it (SPEC §4) |
//! | [`request`] | `my.request` options, the JSON bridge, encoding, redirects, dataType (SPEC §4) |
//! | [`http1`] | the HTTP/1.1 client exchange as a type-state machine |
//! | [`headers`] | the request headers a call sends: checks, reserved names, referer |
//! | [`bridge`] | the JSON bridge: JavaScript-shaped options in (SPEC §8) |
//! | [`tls`] | rustls settings from the app context and the caller's clock and randomness; TLS and I/O error classification |
//! | [`tls_session`] | a TLS client session as bytes in and bytes out (rustls's unbuffered API for the handshake) |
//! | [`tls_record`] | TLS 1.3 traffic records sealed and opened in place, with rustls's key schedule |
//! | [`pool`] | the keep-alive pool's decisions: reuse per origin, idle expiry, bounds, when to probe and retry |
//! | [`failure`] | a transport's I/O failures and the API error each becomes (timeouts, stale connections) |
//! | [`tunnel`] | the proxy CONNECT request and answer (error 23) |
//! | [`ws`] | the WebSocket client of `my.connectSocket`: handshake, frames, close handshake, socket rules (SPEC §7) |
//! | [`transfer`] | `my.uploadFile` and `my.downloadFile`: options, file sandbox, multipart, progress (SPEC §5, §6) |
//! | [`task`] | callbacks and listeners of a call; `complete` exactly once |
//! | [`deadline`] | one call's deadline and its timeout error |
//! | [`error`] | the error type and the one table of mini-program codes |
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bridge;
pub mod context;
pub mod deadline;
pub mod dispatch;
pub mod error;
pub mod failure;
pub mod headers;
pub mod http1;
pub mod js;
pub mod js_headers;
pub mod limits;
pub mod policy;
pub mod pool;
pub mod request;
mod span;
pub mod spin;
pub mod target;
pub mod target_cache;
pub mod task;
pub mod tls;
pub mod tls_record;
pub mod tls_session;
pub mod transfer;
pub mod tunnel;
pub mod ws;

pub use context::{AppContext, AppContextBuilder, ContextError, Proxy};
pub use error::{Api, Error, ErrorKind, HttpErrorResponse};
pub use js_headers::JsHeaders;
pub use limits::Limits;
pub use policy::{DomainPolicy, OriginPattern};
pub use target::{Host, Scheme, Target, UrlError};
