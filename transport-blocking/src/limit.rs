//! The bound on requests in flight per app: callers beyond it wait, and are
//! let in in the order they arrived.

use std::sync::{Condvar, Mutex};

/// A first-come, first-served counting semaphore.
#[derive(Debug)]
pub(crate) struct Limiter {
    max: usize,
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    active: usize,
    /// Callers blocked in `acquire`.
    waiting: usize,
    next_ticket: u64,
    serving: u64,
}

/// A slot; freed when dropped.
pub(crate) struct Permit<'a>(&'a Limiter);

impl Limiter {
    pub(crate) fn new(max: usize) -> Self {
        Limiter {
            max: max.max(1),
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
        }
    }

    /// Waits for a slot, in arrival order.
    pub(crate) fn acquire(&self) -> Permit<'_> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        while st.serving != ticket || st.active >= self.max {
            st.waiting += 1;
            st = self.freed.wait(st).unwrap_or_else(|p| p.into_inner());
            st.waiting -= 1;
        }
        st.serving += 1;
        st.active += 1;
        if st.waiting > 0 {
            // The next ticket may be able to enter too.
            self.freed.notify_all();
        }
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut st = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        st.active -= 1;
        if st.waiting > 0 {
            self.0.freed.notify_all();
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
