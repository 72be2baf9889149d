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
            st = self.freed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st.serving += 1;
        st.active += 1;
        self.freed.notify_all();
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut st = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        st.active -= 1;
        self.0.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn at_most_max_in_flight_and_in_order() {
        let limiter = Arc::new(Limiter::new(2));
        let order = Arc::new(Mutex::new(Vec::new()));
        let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let first = limiter.acquire();
        let second = limiter.acquire();
        let mut handles = Vec::new();
        for i in 0..6 {
            let (l, o, a, p) = (limiter.clone(), order.clone(), active.clone(), peak.clone());
            handles.push(std::thread::spawn(move || {
                let _permit = l.acquire();
                o.lock().unwrap().push(i);
                let now = a.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                p.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(5));
                a.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }));
            // Let thread i take its ticket before thread i+1.
            while limiter.state.lock().unwrap().next_ticket < i as u64 + 3 {
                std::thread::yield_now();
            }
        }
        drop(first);
        drop(second);
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4, 5]);
        assert!(peak.load(std::sync::atomic::Ordering::SeqCst) <= 2);
    }
}
