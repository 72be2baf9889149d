//! When a read that waits for an answer may poll the socket before it
//! blocks, and for how long: the policy both transports follow (the
//! polling itself, a non-blocking `recv` in a loop, is theirs).
//!
//! A read that blocks puts its thread to sleep, and a CPU with nothing
//! else to run goes idle. Waking the thread then costs the CPU's way out
//! of idle as well; on a virtual machine whose idle vCPUs halt (no halt
//! polling) that goes through the host and takes 20–35 µs (BENCHMARKS.md,
//! "The machine"), more than a whole loopback request. A thread that polls
//! for the length of a round trip gets the answer as it lands instead.
//!
//! What bounds the CPU this spends:
//! - only the first read for an answer polls (the first read after a
//!   request is sent, or a socket's next read), for at most the client's
//!   budget (default [`DEFAULT_READ_SPIN`], at most [`MAX_READ_SPIN`];
//!   zero turns it off);
//! - at most [`max_spinning`] threads poll at once, process wide (half
//!   the CPUs: none on one)
//!   ([`Spinning`]), and a response read polls only while no more than
//!   that many requests await their answers at all ([`Waiting`], counted
//!   from the request's send to its answer's first read): with many
//!   requests in flight the CPUs have other work, and every reader blocks
//!   at once;
//! - a connection whose answers do not come within the budget
//!   ([`SpinGate`]: [`MISSES_TO_REST`] in a row) stops polling for its
//!   next [`REST_READS`] reads (a slow peer, an idle WebSocket), then tries
//!   once more.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a read polls before it blocks unless the client says otherwise.
pub const DEFAULT_READ_SPIN: Duration = Duration::from_micros(50);

/// The longest a read may poll (a larger budget is cut to this): a poll
/// does not watch the call's deadline, and on an async transport it holds
/// the executor's thread.
pub const MAX_READ_SPIN: Duration = Duration::from_millis(1);

/// A client's poll budget, shared by its threads or tasks: the default
/// [`DEFAULT_READ_SPIN`], and any budget set cut to [`MAX_READ_SPIN`].
#[derive(Debug)]
pub struct ReadSpin {
    micros: AtomicU64,
}

impl Default for ReadSpin {
    fn default() -> Self {
        ReadSpin {
            micros: AtomicU64::new(micros(DEFAULT_READ_SPIN)),
        }
    }
}

impl ReadSpin {
    /// Sets the budget (cut to [`MAX_READ_SPIN`]; zero: never poll).
    pub fn set(&self, budget: Duration) {
        self.micros
            .store(micros(budget.min(MAX_READ_SPIN)), Ordering::Relaxed);
    }

    /// The budget now.
    #[must_use]
    pub fn get(&self) -> Duration {
        Duration::from_micros(self.micros.load(Ordering::Relaxed))
    }
}

/// `d` in whole microseconds (saturating).
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Polls in a row that found nothing before a connection rests.
pub const MISSES_TO_REST: u32 = 4;

/// Reads a resting connection makes without polling.
pub const REST_READS: u32 = 64;

/// Threads polling now, process wide.
static SPINNING: AtomicUsize = AtomicUsize::new(0);

/// Threads (or tasks) waiting for a response now, polling or not.
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// Most readers that poll at once on a machine with `cpus` CPUs: half of
/// them, so none on one CPU (the answer cannot come while its reader holds
/// the only CPU).
#[must_use]
pub fn max_spinning(cpus: usize) -> usize {
    cpus / 2
}

/// One connection's record of whether polling pays.
#[derive(Debug, Default, Clone, Copy)]
pub struct SpinGate {
    misses: u32,
    resting: u32,
}

impl SpinGate {
    /// Whether this read may poll (a resting gate counts the read).
    pub fn open(&mut self) -> bool {
        if self.resting > 0 {
            self.resting -= 1;
            return false;
        }
        true
    }

    /// Whether the poll found bytes (or the end) within the budget.
    pub fn record(&mut self, hit: bool) {
        if hit {
            self.misses = 0;
            return;
        }
        self.misses += 1;
        if self.misses >= MISSES_TO_REST {
            self.resting = REST_READS;
            // One more miss after the rest makes it rest again.
            self.misses = MISSES_TO_REST - 1;
        }
    }
}

/// A place among the readers allowed to poll, given back on drop.
#[derive(Debug)]
pub struct Spinning(());

impl Spinning {
    /// A place, if fewer than `max` readers poll now.
    #[must_use]
    pub fn take(max: usize) -> Option<Spinning> {
        let before = SPINNING.fetch_add(1, Ordering::Relaxed);
        if before < max {
            Some(Spinning(()))
        } else {
            SPINNING.fetch_sub(1, Ordering::Relaxed);
            None
        }
    }
}

impl Drop for Spinning {
    fn drop(&mut self) {
        SPINNING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request counted among those awaiting their answers until dropped:
/// taken when the request is sent and held until its answer's first read
/// returns, so that a reader sees how many requests are in flight, those
/// between reads included (a reader that counted only readers would often
/// see itself alone among many requests and poll for an answer that the
/// busy CPUs make late).
#[derive(Debug)]
pub struct Waiting(());

impl Waiting {
    /// Counts a request in.
    #[must_use]
    pub fn begin() -> Waiting {
        WAITING.fetch_add(1, Ordering::Relaxed);
        Waiting(())
    }

    /// Whether at most `max` requests (this one included) await answers
    /// now: few enough for this one's reader to poll.
    #[must_use]
    pub fn few(&self, max: usize) -> bool {
        WAITING.load(Ordering::Relaxed) <= max
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Polls for an answer as the rules say: nothing when `budget` is zero,
/// the gate rests or `max_spinning` readers poll already; else `attempt`
/// (one non-blocking read: `None` for nothing yet) again and again until
/// it gives something or `budget` has passed by `now` (the transport's
/// clock). The gate learns whether it paid. `None`: wait the usual way.
pub fn poll_for<T>(
    gate: &mut SpinGate,
    budget: Duration,
    max_spinning: usize,
    now: impl Fn() -> Instant,
    mut attempt: impl FnMut() -> Option<T>,
) -> Option<T> {
    if budget.is_zero() || !gate.open() {
        return None;
    }
    let _place = Spinning::take(max_spinning)?;
    let started = now();
    loop {
        if let Some(got) = attempt() {
            gate.record(true);
            return Some(got);
        }
        if now().saturating_duration_since(started) >= budget {
            gate.record(false);
            return None;
        }
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_rests_after_misses_in_a_row_then_tries_again() {
        let mut gate = SpinGate::default();
        for _ in 0..MISSES_TO_REST - 1 {
            assert!(gate.open());
            gate.record(false);
        }
        assert!(gate.open());
        gate.record(true);
        for _ in 0..MISSES_TO_REST {
            assert!(gate.open());
            gate.record(false);
        }
        for _ in 0..REST_READS {
            assert!(!gate.open(), "resting");
        }
        assert!(gate.open(), "tries again");
        gate.record(false);
        assert!(!gate.open(), "one more miss rests again");
    }

    #[test]
    fn half_the_cpus_poll_at_most_and_none_on_one() {
        assert_eq!(max_spinning(1), 0);
        assert_eq!(max_spinning(2), 1);
        assert_eq!(max_spinning(16), 8);
    }

    #[test]
    fn poll_for_tries_until_something_comes_or_the_budget_passes() {
        use std::cell::Cell;
        let start = Instant::now();
        let clock = Cell::new(start);
        // Each attempt takes 10 µs of the fake clock.
        let now = || clock.get();
        let tick = || clock.set(clock.get() + Duration::from_micros(10));
        let budget = Duration::from_micros(50);
        let mut gate = SpinGate::default();

        let mut tries = 0;
        let got = poll_for(&mut gate, budget, 1, now, || {
            tick();
            tries += 1;
            (tries == 3).then_some("answer")
        });
        assert_eq!((got, tries), (Some("answer"), 3));

        tries = 0;
        let got: Option<()> = poll_for(&mut gate, budget, 1, now, || {
            tick();
            tries += 1;
            None
        });
        assert_eq!((got, tries), (None, 5), "gave up once 50 µs had passed");

        let mut called = false;
        assert!(poll_for(&mut gate, Duration::ZERO, 1, now, || {
            called = true;
            Some(())
        })
        .is_none());
        assert!(
            poll_for(&mut gate, budget, 0, now, || {
                called = true;
                Some(())
            })
            .is_none(),
            "no place"
        );
        assert!(!called, "nothing tried when polling is off");
    }

    #[test]
    fn a_read_spin_starts_at_the_default_and_is_cut_to_the_most() {
        let spin = ReadSpin::default();
        assert_eq!(spin.get(), DEFAULT_READ_SPIN);
        spin.set(Duration::from_secs(1));
        assert_eq!(spin.get(), MAX_READ_SPIN);
        spin.set(Duration::ZERO);
        assert!(spin.get().is_zero());
    }

    #[test]
    fn places_are_bounded() {
        assert!(Spinning::take(0).is_none(), "no place under a bound of 0");
        assert!(Spinning::take(usize::MAX).is_some());
        let w = Waiting::begin();
        assert!(w.few(usize::MAX));
        assert!(!w.few(0), "this reader itself counts");
    }
}
