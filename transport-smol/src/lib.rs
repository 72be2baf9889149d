//! # mpnet-smol
//!
//! The async transport of mpnet: drives the sans-IO `mpnet-core` with
//! futures built on async-io, with TLS as the core's `TlsSession`. It reads
//! like `mpnet-blocking`, module for module and state for state; every
//! decision (redirects, status classes, decoding, reuse, retry, errors) is
//! the core's.
//!
//! | module | job |
//! |---|---|
//! | `client` | [`Client`]: TLS settings, keep-alive pool, in-flight bound, pages, sockets, executor |
//! | `conn` | one connection: DNS, TCP, proxy tunnel, TLS, under the deadline |
//! | `exchange` | one HTTP/1.1 exchange: one small function per core state |
//! | `hop` | one hop: pooled or new connection, send, response head, stale retry |
//! | `request` | the `my.request` driver over the core's `RequestFlow` |
//! | `socket` | `my.connectSocket`, the app socket and [`SocketTask`]s: reader and writer tasks |
//! | `stream` | [`StreamResponse`]: the body as `futures_lite::AsyncRead` |
//! | `task` | [`RequestTask`], [`UploadTask`], [`DownloadTask`] (`abort()` from any thread, `wait()`, `result().await`, progress) |
//! | `transfer` | `my.uploadFile` and `my.downloadFile`: files streamed in chunks on the blocking pool |
//! | `cancel` | the cancellation signal a spawned call races against |
//! | `limit` | the first-come, first-served bound on requests in flight |
//!
//! ## Any executor
//!
//! The futures need no particular executor: async-io runs its own reactor
//! thread, so [`Client::request`] works under `smol::block_on`,
//! `futures_lite::future::block_on`, a multi-threaded `smol::Executor`, or
//! inside a tokio runtime. The futures are `Send`.
//!
//! ## The three ways to call
//!
//! - [`Client::request`], [`Client::upload_file`],
//!   [`Client::download_file`]: a future of the whole result.
//! - [`Client::request_stream`]: a future of the head, with the body as
//!   [`futures_lite::AsyncRead`] ([`BodyReader`]).
//! - [`Client::spawn_request`] / [`Client::spawn_request_on_page`],
//!   [`Client::spawn_upload`], [`Client::spawn_download`]: the
//!   mini-program style, with [`Callbacks`] and a [`Task`] (progress
//!   listeners on uploads and downloads). These run on smol's global
//!   executor (background threads it starts on first use; `SMOL_THREADS`
//!   sets how many, default one), or on the host's own executor given to
//!   [`Client::with_executor`].
//!
//! Sockets ([`Client::connect_socket`]) are in the mini-program style
//! only: the connect returns a [`SocketTask`] at once; its reader and
//! writer run as tasks on the same executor. [`SocketTask::connected`]
//! awaits the connect's result ([`SocketTask::wait_connected`] blocks for
//! it); sending never waits.
//!
//! ## Cancellation is dropping
//!
//! Dropping a [`Client::request`] future at any await point cancels the
//! request: its connection (owned by the future) is closed, its slot of the
//! in-flight bound is freed, and nothing half-read ever reaches the pool,
//! because a connection goes back to the pool only in the same synchronous
//! step that sees its exchange complete. A dropped upload writes nothing
//! more; a dropped download removes its unfinished file. [`Task::abort`]
//! and [`Client::page_gone`] use the same mechanism: the spawned future
//! races a cancellation signal and is dropped when it loses.
//!
//! ## Example
//!
//! ```no_run
//! use mpnet_core::request::{Method, RequestOptions};
//! use mpnet_core::AppContext;
//! use mpnet_smol::Client;
//!
//! let ctx = AppContext::builder("2021000000000000", "1.0.0")
//!     .whitelist(["https://httpbin.org"]).unwrap()
//!     .build().unwrap();
//! let client = Client::new(ctx).unwrap();
//! smol::block_on(async {
//!     let res = client
//!         .request(
//!             RequestOptions::new("https://httpbin.org/post")
//!                 .method(Method::Post)
//!                 .json(serde_json::json!({"from": "支付宝", "production": "AlipayJSAPI"})),
//!         )
//!         .await;
//!     match res {
//!         Ok(r) => println!("{} {:?}", r.status, r.data),
//!         Err(e) => println!("error {}: {e}", e.code(mpnet_core::Api::Request)),
//!     }
//! });
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod batched_file;
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
