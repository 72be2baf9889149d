//! The one deadline of a whole call (SPEC §4 `timeout`, §6 download
//! `timeout`): when it is, whether it has passed, and the timeout error
//! that names it. Shared by the request and download flows.

use std::time::{Duration, Instant};

use crate::{Error, ErrorKind};

/// `start + timeout`; a timeout too large for the platform's clock (the
/// caller's `timeout` may be up to ~5.8e11 years, more than an `Instant`
/// holds) gives a deadline a century away, or a day where even that does
/// not fit: one that never passes in practice. Never panics.
///
/// ```
/// use std::time::{Duration, Instant};
/// use mpnet_core::deadline::after;
/// let now = Instant::now();
/// assert_eq!(after(now, Duration::from_secs(2)), now + Duration::from_secs(2));
/// assert!(after(now, Duration::MAX) > now + Duration::from_secs(365 * 86_400));
/// ```
pub fn after(start: Instant, timeout: Duration) -> Instant {
    const FAR: [Duration; 2] = [
        Duration::from_secs(100 * 365 * 86_400),
        Duration::from_secs(86_400),
    ];
    start
        .checked_add(timeout)
        .or_else(|| FAR.iter().find_map(|far| start.checked_add(*far)))
        .unwrap_or(start)
}

/// A call's deadline: `start + timeout` (see [`after`]).
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
            at: after(start, timeout),
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
            format!("{} timed out after {}", self.what, Millis(self.timeout)),
        )
    }
}

/// A timeout as the options gave it, in milliseconds: `1500 ms`, and
/// `0.25 ms` for a fraction (never `0 ms` for a timeout that is not zero).
#[derive(Debug, Clone, Copy)]
pub struct Millis(pub Duration);

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.subsec_nanos().is_multiple_of(1_000_000) {
            write!(f, "{} ms", self.0.as_millis())
        } else {
            write!(f, "{} ms", self.0.as_secs_f64() * 1000.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_shows_a_fraction_and_never_zero_for_a_timeout_that_is_not() {
        assert_eq!(Millis(Duration::from_millis(1500)).to_string(), "1500 ms");
        assert_eq!(Millis(Duration::from_micros(500)).to_string(), "0.5 ms");
        assert_eq!(Millis(Duration::from_micros(1250)).to_string(), "1.25 ms");
        assert_eq!(Millis(Duration::ZERO).to_string(), "0 ms");
    }

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

    #[test]
    fn a_timeout_too_large_for_the_clock_is_a_deadline_that_does_not_pass() {
        let t0 = Instant::now();
        for timeout in [Duration::MAX, Duration::from_secs(u64::MAX / 2)] {
            let d = Deadline::new("request", t0, timeout);
            assert!(d.at() >= t0 + Duration::from_secs(86_400));
            assert!(d.check(t0 + Duration::from_secs(3600)).is_ok());
        }
    }
}
