//! `onProgressUpdate` accounting (SPEC §5, §6): bytes in, events out.
//!
//! `{progress, totalBytesWritten, totalBytesExpectedToWrite}`, `progress` an
//! integer percent (rounded down). Rules, all checked by property tests:
//!
//! - events are rate-limited: with a known total, at most one per percent
//!   step (at most 101 events in all, the final one included);
//! - `progress` and `totalBytesWritten` never decrease;
//! - the last event has `progress == 100` and `totalBytesWritten ==
//!   totalBytesExpectedToWrite`;
//! - with an unknown total (a download without `Content-Length`),
//!   `totalBytesExpectedToWrite` is `0` and `progress` `0` until
//!   [`Progress::finish`], whose event is `100` with the expected total set
//!   to the bytes written. Meanwhile an event is emitted for the first bytes,
//!   then each time the count has grown by [`UNKNOWN_STEP`] bytes or by 1 %,
//!   whichever is more.

use serde::Serialize;

/// With an unknown total, the fewest new bytes between two events.
pub const UNKNOWN_STEP: u64 = 64 * 1024;

/// One `onProgressUpdate` event; serialises with the JavaScript names.
///
/// ```
/// let e = mpnet_core::transfer::ProgressEvent {
///     progress: 50,
///     total_bytes_written: 5,
///     total_bytes_expected_to_write: 10,
/// };
/// assert_eq!(
///     serde_json::to_string(&e).unwrap(),
///     r#"{"progress":50,"totalBytesWritten":5,"totalBytesExpectedToWrite":10}"#
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressEvent {
    /// Integer percent, 0-100, rounded down.
    pub progress: u8,
    /// Bytes written so far.
    pub total_bytes_written: u64,
    /// The total expected (`0` while unknown).
    pub total_bytes_expected_to_write: u64,
}

/// Progress of one upload or download. See the module docs.
///
/// ```
/// use mpnet_core::transfer::Progress;
/// let mut p = Progress::new(1000);
/// assert_eq!(p.advance(5).unwrap().progress, 0);
/// assert_eq!(p.advance(4), None); // still 0 %
/// assert_eq!(p.advance(1).unwrap().progress, 1);
/// let last = p.advance(990).unwrap();
/// assert_eq!((last.progress, last.total_bytes_written), (100, 1000));
/// assert_eq!(p.finish(), None); // 100 % was already reported
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The total expected; `0` when unknown.
    expected: u64,
    /// Whether the total was known at the start.
    known: bool,
    written: u64,
    /// The `progress` of the last event, if any.
    last_percent: Option<u8>,
    /// `totalBytesWritten` of the last event.
    last_written: u64,
    /// The 100 % event has been emitted; nothing follows it.
    done: bool,
}

impl Progress {
    /// Progress towards `total_expected` bytes; `0` means unknown.
    pub fn new(total_expected: u64) -> Self {
        Progress {
            expected: total_expected,
            known: total_expected > 0,
            written: 0,
            last_percent: None,
            last_written: 0,
            done: false,
        }
    }

    /// Progress towards an unknown total (`Progress::new(0)`).
    pub fn unknown() -> Self {
        Progress::new(0)
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The total expected (`0` while unknown).
    pub fn expected(&self) -> u64 {
        self.expected
    }

    /// Whether the final (100 %) event has been emitted.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Records `n` more bytes written; the event to report, if one is due.
    ///
    /// With a known total, the event that reaches it is the final one
    /// (`progress: 100`); bytes beyond the total raise the expected total to
    /// match, so that event still has written == expected. Nothing is
    /// reported after the final event, nor for `n == 0`.
    pub fn advance(&mut self, n: u64) -> Option<ProgressEvent> {
        if self.done || n == 0 {
            return None;
        }
        self.written = self.written.saturating_add(n);
        if !self.known {
            let step = UNKNOWN_STEP.max(self.last_written / 100);
            let due = self.last_percent.is_none()
                || self.written.saturating_sub(self.last_written) >= step;
            return due.then(|| self.emit(0));
        }
        if self.written >= self.expected {
            self.expected = self.written;
            self.done = true;
            return Some(self.emit(100));
        }
        let percent = percent(self.written, self.expected);
        if self.last_percent.is_none_or(|last| percent > last) {
            Some(self.emit(percent))
        } else {
            None
        }
    }

    /// The transfer completed: the final event (`progress: 100`, expected =
    /// written), unless it was already emitted. Call it once the body is
    /// complete; with a known total that is not reached (a caller's
    /// mistake), the expected total is lowered to the bytes written.
    pub fn finish(&mut self) -> Option<ProgressEvent> {
        if self.done {
            return None;
        }
        self.expected = self.written;
        self.done = true;
        Some(self.emit(100))
    }

    fn emit(&mut self, percent: u8) -> ProgressEvent {
        self.last_percent = Some(percent);
        self.last_written = self.written;
        ProgressEvent {
            progress: percent,
            total_bytes_written: self.written,
            total_bytes_expected_to_write: if self.known || self.done {
                self.expected
            } else {
                0
            },
        }
    }
}

/// `floor(written * 100 / expected)` for `written < expected` (0-99).
fn percent(written: u64, expected: u64) -> u8 {
    let p = u128::from(written) * 100 / u128::from(expected.max(1));
    u8::try_from(p.min(99)).unwrap_or(99)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_total_stays_at_zero_until_finish() {
        let mut p = Progress::unknown();
        let first = p.advance(10).unwrap();
        assert_eq!(
            (
                first.progress,
                first.total_bytes_written,
                first.total_bytes_expected_to_write
            ),
            (0, 10, 0)
        );
        assert_eq!(p.advance(10), None);
        let e = p.advance(UNKNOWN_STEP).unwrap();
        assert_eq!((e.progress, e.total_bytes_expected_to_write), (0, 0));
        let last = p.finish().unwrap();
        assert_eq!(last.progress, 100);
        assert_eq!(last.total_bytes_written, UNKNOWN_STEP + 20);
        assert_eq!(last.total_bytes_expected_to_write, UNKNOWN_STEP + 20);
        assert_eq!(p.finish(), None);
        assert_eq!(p.advance(1), None);
    }

    #[test]
    fn empty_download_finishes_at_100() {
        let mut p = Progress::new(0);
        let e = p.finish().unwrap();
        assert_eq!(
            (
                e.progress,
                e.total_bytes_written,
                e.total_bytes_expected_to_write
            ),
            (100, 0, 0)
        );
    }

    #[test]
    fn overshoot_raises_the_total() {
        let mut p = Progress::new(10);
        let e = p.advance(15).unwrap();
        assert_eq!(
            (
                e.progress,
                e.total_bytes_written,
                e.total_bytes_expected_to_write
            ),
            (100, 15, 15)
        );
    }

    #[test]
    fn huge_totals_do_not_overflow() {
        let mut p = Progress::new(u64::MAX);
        assert_eq!(p.advance(u64::MAX / 2).unwrap().progress, 49);
        assert_eq!(p.advance(u64::MAX).unwrap().progress, 100);
    }
}
