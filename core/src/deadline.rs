//! The one deadline of a whole call (SPEC §4 `timeout`, §6 download
//! `timeout`): when it is, whether it has passed, and the timeout error
//! that names it. Shared by the request and download flows.

use std::time::{Duration, Instant};

use crate::{Error, ErrorKind};

/// A call's deadline: `start + timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
    timeout: Duration,
    what: &'static str,
}

impl Deadline {
    /// The deadline of a `what` call (e.g. "request") that started at
    /// `start` and may take `timeout`.
    pub fn new(what: &'static str, start: Instant, timeout: Duration) -> Self {
        Deadline {
            at: start + timeout,
            timeout,
            what,
        }
    }

    /// When it passes.
    pub fn at(&self) -> Instant {
        self.at
    }

    /// `Err` (the timeout error) once `now` has reached it.
    pub fn check(&self, now: Instant) -> Result<(), Error> {
        if now >= self.at {
            Err(self.error())
        } else {
            Ok(())
        }
    }

    /// The timeout error: `"{what} timed out after N ms"`.
    pub fn error(&self) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "{} timed out after {} ms",
                self.what,
                self.timeout.as_millis()
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_at_start_plus_timeout() {
        let t0 = Instant::now();
        let d = Deadline::new("request", t0, Duration::from_millis(500));
        assert_eq!(d.at(), t0 + Duration::from_millis(500));
        assert!(d.check(t0 + Duration::from_millis(499)).is_ok());
        let e = d.check(t0 + Duration::from_millis(500)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert_eq!(e.message(), "request timed out after 500 ms");
    }
}
