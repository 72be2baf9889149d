//! The bound on requests in flight per app: callers beyond it wait, and are
//! let in in the order they arrived.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::thread::{self, Thread};

/// A first-come, first-served counting semaphore. A freed slot wakes the
/// one caller whose turn it is (no herd of waiters woken to find that only
/// one may enter).
#[derive(Debug)]
pub(crate) struct Limiter {
    max: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    active: usize,
    next_ticket: u64,
    /// The ticket whose turn it is.
    serving: u64,
    /// Callers blocked in `acquire`, in ticket order (the front holds
    /// ticket `serving`).
    queue: VecDeque<Thread>,
}

/// A slot; freed when dropped.
pub(crate) struct Permit<'a>(&'a Limiter);

impl Limiter {
    pub(crate) fn new(max: usize) -> Self {
        Limiter {
            max: max.max(1),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a slot, in arrival order.
    pub(crate) fn acquire(&self) -> Permit<'_> {
        let mut st = self.lock();
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        if st.serving != ticket || st.active >= self.max {
            st.queue.push_back(thread::current());
            while st.serving != ticket || st.active >= self.max {
                drop(st);
                // Unparked by a freed slot or by the caller before us;
                // a spurious wake-up just checks again.
                thread::park();
                st = self.lock();
            }
            st.queue.pop_front();
        }
        st.serving += 1;
        st.active += 1;
        if st.active < self.max {
            // A slot is still free: the next in line may enter too.
            if let Some(next) = st.queue.front() {
                next.unpark();
            }
        }
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.active -= 1;
        if let Some(next) = st.queue.front() {
            next.unpark();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Starts `n` threads that each take a slot, in ticket order, while the
    /// caller holds `held` slots; returns (order of entry, peak in flight).
    fn run(max: usize, held: usize, n: usize) -> (Vec<usize>, usize) {
        let limiter = Arc::new(Limiter::new(max));
        let order = Arc::new(Mutex::new(Vec::new()));
        let active = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let holds: Vec<_> = (0..held).map(|_| limiter.acquire()).collect();
        let mut handles = Vec::new();
        for i in 0..n {
            let (l, o, a, p) = (limiter.clone(), order.clone(), active.clone(), peak.clone());
            handles.push(std::thread::spawn(move || {
                let _permit = l.acquire();
                o.lock().unwrap().push(i);
                let now = a.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(5));
                a.fetch_sub(1, Ordering::SeqCst);
            }));
            // Thread i takes its ticket before thread i+1 is started.
            while limiter.state.lock().unwrap().next_ticket < (held + i + 1) as u64 {
                std::thread::yield_now();
            }
        }
        drop(holds);
        for h in handles {
            h.join().unwrap();
        }
        let order = order.lock().unwrap().clone();
        (order, peak.load(Ordering::SeqCst))
    }

    #[test]
    fn waiters_enter_in_arrival_order() {
        let (order, peak) = run(1, 1, 6);
        assert_eq!(order, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(peak, 1);
    }

    #[test]
    fn never_more_than_max_in_flight() {
        let (order, peak) = run(3, 2, 12);
        assert_eq!(order.len(), 12);
        assert!(peak <= 3, "peak {peak}");
    }
}
