//! What can fail while a transport moves bytes, and which API error each
//! failure becomes: the one place both transports classify I/O errors (the
//! core does no I/O; it only reads the `std::io::Error`s handed to it).

use std::io;

use crate::error::{Error, ErrorKind};
use crate::tls;

/// Whether an I/O error means the call's deadline passed (`TimedOut`, or
/// `WouldBlock` from a socket timeout).
///
/// ```
/// use std::io;
/// use mpnet_core::failure::is_timeout;
/// assert!(is_timeout(&io::ErrorKind::WouldBlock.into()));
/// assert!(!is_timeout(&io::ErrorKind::ConnectionReset.into()));
/// ```
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// A failure while exchanging on an open connection: an I/O error (its
/// meaning depends on the deadline, which the caller knows) or an error
/// the core already classified.
#[derive(Debug)]
pub enum Fail {
    /// Reading or writing failed.
    Io(io::Error),
    /// Already an API error.
    Api(Error),
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        Fail::Io(e)
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Api(e)
    }
}

impl From<crate::http1::ProtocolError> for Fail {
    fn from(e: crate::http1::ProtocolError) -> Self {
        Fail::Api(e.into())
    }
}

impl Fail {
    /// Whether a connection the peer closed while it sat idle in the pool
    /// would fail this way (anything but a timeout or an error the core
    /// classified other than a network error): see
    /// [`pool::may_retry_on_fresh`](crate::pool::may_retry_on_fresh).
    pub fn is_stale_connection(&self) -> bool {
        match self {
            Fail::Io(e) => !is_timeout(e),
            Fail::Api(e) => e.kind() == ErrorKind::Network,
        }
    }
}

/// The API error for `fail`, with the call's `timeout` error for a passed
/// deadline.
///
/// ```
/// use std::io;
/// use mpnet_core::failure::{classify, Fail};
/// use mpnet_core::{Error, ErrorKind};
/// let timeout = || Error::new(ErrorKind::Timeout, "timed out");
/// let e = classify(Fail::Io(io::ErrorKind::TimedOut.into()), &timeout);
/// assert_eq!(e.kind(), ErrorKind::Timeout);
/// ```
pub fn classify(fail: Fail, timeout: &dyn Fn() -> Error) -> Error {
    match fail {
        Fail::Api(e) => e,
        Fail::Io(e) if is_timeout(&e) => timeout(),
        Fail::Io(e) => tls::io_error(&e, "network error"),
    }
}

/// Why a connection could not be opened.
#[derive(Debug)]
pub enum ConnectFailure {
    /// Talking to the target (or TLS with it) failed.
    Io(io::Error),
    /// Talking to the proxy failed (error 23, or a timeout).
    Proxy(io::Error),
    /// Already classified.
    Api(Error),
}

impl ConnectFailure {
    /// The API error, with `timeout` for a passed deadline.
    pub fn into_error(self, timeout: impl FnOnce() -> Error) -> Error {
        match self {
            ConnectFailure::Api(e) => e,
            ConnectFailure::Io(e) | ConnectFailure::Proxy(e) if is_timeout(&e) => timeout(),
            ConnectFailure::Io(e) => tls::io_error(&e, "connecting failed"),
            ConnectFailure::Proxy(e) => {
                Error::new(ErrorKind::Proxy, format!("the proxy failed: {e}"))
            }
        }
    }
}
