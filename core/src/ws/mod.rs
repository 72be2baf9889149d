//! The WebSocket client of `my.connectSocket` (SPEC §7), with no I/O
//! (SPEC §2): option parsing, the opening handshake, frames, the
//! per-connection state machine, listener lists and the app's socket rules.
//!
//! ```text
//!  ConnectOptions --SocketSlots::connect(multiple)--> ConnectPlan (id, what to do
//!     |                                               with a replaced app socket)
//!     v
//!  ClientHandshake::new(ctx, opts, key)  --> request() bytes; target() to connect to
//!     |  try_response(input) until Some     (fail: 3, 4, 5, 8, 9, 13, 2; timeout 6)
//!     v
//!  Accepted + leftover bytes --> Connection::new(config, masks) --> SocketSlots::opened(id)
//!     |
//!     |  handle_input(now, bytes) / handle_eof() / handle_transport_error(e)
//!     |  send(..) / close(now, ..) / supersede(now) / handle_timeout(now)
//!     v
//!  poll_transmit() -> bytes to write     poll_event() -> Open, Message*, Error?, Close
//!  poll_timeout()  -> close deadline     is_terminated() -> drop the TCP connection,
//!                                                           SocketSlots::finished(id)
//! ```
//!
//! A whole connection, driven by hand (what a transport does with sockets):
//!
//! ```
//! use std::time::Instant;
//! use mpnet_core::ws::{
//!     ClientHandshake, ConnectOptions, Connection, ConnectionConfig, FixedMask, MessageData,
//!     SocketEvent,
//! };
//! use mpnet_core::AppContext;
//!
//! let ctx = AppContext::builder("app", "1.0").allow_any_origin().build().unwrap();
//! let hs = ClientHandshake::new(&ctx, &ConnectOptions::new("wss://echo.example/ws"), [7; 16]).unwrap();
//! // write hs.request(), then read the response:
//! let accept = mpnet_core::ws::handshake::accept_key(hs.key());
//! let mut wire = format!(
//!     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\
//!      Sec-WebSocket-Accept: {accept}\r\n\r\n"
//! )
//! .into_bytes();
//! wire.extend_from_slice(b"\x81\x02hi"); // a first frame in the same read
//! let (n, accepted) = hs.try_response(&wire).unwrap();
//! assert!(accepted.is_some());
//!
//! let now = Instant::now();
//! let mut conn = Connection::new(ConnectionConfig::from_limits(ctx.limits()), Box::new(FixedMask([0; 4])));
//! conn.handle_input(now, &wire[n..]);
//! conn.send_text("hello").unwrap();
//! conn.close(now, Some(1000), Some("bye")).unwrap();
//! assert!(conn.poll_transmit().is_some()); // the text frame and the close frame
//! conn.handle_input(now, b"\x88\x02\x03\xe8"); // the server's close reply
//! let events: Vec<_> = std::iter::from_fn(|| conn.poll_event()).collect();
//! assert_eq!(
//!     events,
//!     [
//!         SocketEvent::Open,
//!         SocketEvent::Message { data: MessageData::Text("hi".into()) },
//!         SocketEvent::Close { code: 1000, reason: "bye".into() },
//!     ]
//! );
//! assert!(conn.is_terminated());
//! ```
//!
//! | file | job |
//! |---|---|
//! | `options.rs` | `ConnectOptions`, `SendOptions`, `CloseOptions` and their JSON bridge |
//! | `handshake.rs` | URL and policy checks, the upgrade request, the 101 response checks |
//! | `frame.rs` | frame encoder (masked with an injected [`MaskSource`]) and incremental decoder |
//! | `utf8.rs` | streaming UTF-8 validation (fail fast, close 1007) |
//! | `connection.rs` | one connection: messages, pings, the close handshake, event order |
//! | `event.rs` | `SocketEvent`, `MessageData` and their JSON shapes (SPEC §8, §9) |
//! | `link.rs` | a connection with its TLS session: received bytes in, one message a step; frames out, encrypted |
//! | `listeners.rs` | on/off listener lists |
//! | `app.rs` | one app socket, up to 5 tasks: `SocketSlots` |
//! | `route.rs` | where a socket's events go: its listeners, the app's, the slot table |
//! | `outlet.rs` | a link under its transport's lock: bytes written at once or through the writer, stepped one message at a time |

pub mod app;
pub mod connection;
pub mod event;
pub mod frame;
pub mod handshake;
pub mod link;
pub mod listeners;
pub mod options;
pub mod outlet;
pub mod route;
pub mod utf8;

pub use app::{ConnectPlan, Previous, SocketId, SocketSlots};
pub use connection::{Connection, ConnectionConfig};
pub use event::{CloseInfo, MessageData, SocketEvent};
pub use frame::{
    BatchedMasks, FixedMask, Frame, FrameDecoder, MaskSource, ProtocolViolation, Role,
};
pub use handshake::{Accepted, ClientHandshake};
pub use link::Link;
pub use listeners::{Listeners, SocketListeners};
pub use options::{CloseOptions, ConnectOptions, SendData, SendOptions};
