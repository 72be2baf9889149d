//! The timing profile of one request (as WeChat's `profile` gives): when
//! each phase ended, measured from the start of the call. Transports fill it
//! in from the clock; core only defines it.

use std::time::Duration;

/// When each phase of a request ended, from the start of the call. A phase
/// that did not happen (DNS, connect and TLS on a reused connection) is
/// `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// Name resolution finished.
    pub dns: Option<Duration>,
    /// TCP connection established.
    pub connect: Option<Duration>,
    /// TLS handshake finished.
    pub tls: Option<Duration>,
    /// The whole request was written.
    pub request_sent: Option<Duration>,
    /// The first byte of the response arrived.
    pub first_byte: Option<Duration>,
    /// The body was complete.
    pub done: Option<Duration>,
    /// Whether a pooled connection was reused.
    pub reused: bool,
    /// Redirects followed.
    pub redirects: u32,
}
