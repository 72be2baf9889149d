//! # mpnet-blocking
//!
//! The blocking transport of mpnet: drives the sans-IO `mpnet-core` over
//! `std::net` and rustls, with threads. For code with no async runtime.
//!
//! | module | job |
//! |---|---|
//! | `client` | [`Client`]: TLS settings, keep-alive pool, in-flight bound, pages |
//! | `conn` | one connection: DNS, TCP, proxy tunnel, TLS, under the deadline |
//! | `exchange` | one HTTP/1.1 exchange: one small function per core state |
//! | `hop` | one hop: pooled or new connection, send, response head, stale retry |
//! | `request` | the `my.request` driver over the core's `RequestFlow` |
//! | `socket` | `my.connectSocket`, the app socket and `SocketTask`s: reader and writer threads |
//! | `stream` | [`StreamResponse`]: the body as `std::io::Read` |
//! | `task` | [`Callbacks`] and [`RequestTask`] (`abort()` from any thread) |
//! | `transfer` | `my.uploadFile` and `my.downloadFile`: files streamed in chunks |
//! | `limit` | the first-come, first-served bound on requests in flight |
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cancel;
mod client;
mod conn;
mod exchange;
mod hop;
mod limit;
mod request;
mod socket;
mod spin;
mod stream;
mod task;
mod transfer;

pub use client::Client;
pub use mpnet_core::task::{Callbacks, PageId};
pub use socket::SocketTask;
pub use stream::{BodyReader, StreamResponse};
pub use task::{DownloadTask, RequestTask, Task, UploadTask};
