//! The bound on requests in flight per app: callers beyond it wait, and are
//! let in in the order they arrived.
//!
//! `async_lock::Semaphore` is not used because it lets a newcomer take a
//! freed slot before the oldest waiter wakes up; here a freed slot is handed
//! straight to the oldest waiter. Dropping a waiting `acquire` future leaves
//! the queue (and passes on a slot it was already handed), so cancellation
//! never leaks a slot.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// A first-come, first-served async counting semaphore.
#[derive(Debug)]
pub(crate) struct Limiter {
    max: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    active: usize,
    next_ticket: u64,
    /// Waiters in arrival order.
    waiting: VecDeque<(u64, Waker)>,
    /// Waiters handed a slot that have not yet seen it.
    granted: HashSet<u64>,
}

impl State {
    /// Frees a slot: hands it to the oldest waiter (whose waker is
    /// returned, to be woken outside the lock), or returns it.
    fn release(&mut self) -> Option<Waker> {
        match self.waiting.pop_front() {
            Some((ticket, waker)) => {
                self.granted.insert(ticket);
                Some(waker)
            }
            None => {
                self.active -= 1;
                None
            }
        }
    }
}

/// A slot; freed when dropped.
#[derive(Debug)]
pub(crate) struct Permit<'a>(&'a Limiter);

/// The future of [`Limiter::acquire`].
#[derive(Debug)]
pub(crate) struct Acquire<'a> {
    limiter: &'a Limiter,
    ticket: Option<u64>,
    done: bool,
}

impl Limiter {
    pub(crate) fn new(max: usize) -> Self {
        Limiter {
            max: max.max(1),
            state: Mutex::new(State::default()),
        }
    }

    /// Waits for a slot, in arrival order (the order of first polls).
    pub(crate) fn acquire(&self) -> Acquire<'_> {
        Acquire {
            limiter: self,
            ticket: None,
            done: false,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<'a> Future for Acquire<'a> {
    type Output = Permit<'a>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Permit<'a>> {
        let this = &mut *self;
        let limiter = this.limiter;
        let mut st = limiter.lock();
        let ready = match this.ticket {
            None if st.waiting.is_empty() && st.active < limiter.max => {
                st.active += 1;
                true
            }
            None => {
                let ticket = st.next_ticket;
                st.next_ticket += 1;
                st.waiting.push_back((ticket, cx.waker().clone()));
                this.ticket = Some(ticket);
                false
            }
            Some(ticket) if st.granted.remove(&ticket) => true,
            Some(ticket) => {
                if let Some((_, waker)) = st.waiting.iter_mut().find(|(t, _)| *t == ticket) {
                    waker.clone_from(cx.waker());
                }
                false
            }
        };
        if ready {
            this.done = true;
            Poll::Ready(Permit(limiter))
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket.filter(|_| !self.done) else {
            return;
        };
        let mut st = self.limiter.lock();
        let wake = if st.granted.remove(&ticket) {
            st.release()
        } else {
            st.waiting.retain(|(t, _)| *t != ticket);
            None
        };
        drop(st);
        if let Some(w) = wake {
            w.wake();
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let wake = self.0.lock().release();
        if let Some(w) = wake {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::{block_on, poll_once};

    #[test]
    fn at_most_max_in_flight_and_in_order() {
        block_on(async {
            let limiter = Limiter::new(2);
            let first = limiter.acquire().await;
            let second = limiter.acquire().await;
            let mut waiters: Vec<_> = (0..6).map(|_| Box::pin(limiter.acquire())).collect();
            for w in &mut waiters {
                assert!(poll_once(w.as_mut()).await.is_none(), "bound is 2");
            }
            drop(first);
            // Only the oldest waiter gets the slot, even if a newcomer asks.
            let mut newcomer = Box::pin(limiter.acquire());
            assert!(poll_once(newcomer.as_mut()).await.is_none());
            for (i, w) in waiters.iter_mut().enumerate().skip(1) {
                assert!(poll_once(w.as_mut()).await.is_none(), "waiter {i}");
            }
            let p0 = poll_once(waiters[0].as_mut()).await.expect("oldest first");
            drop(second);
            assert!(poll_once(waiters[2].as_mut()).await.is_none());
            let p1 = poll_once(waiters[1].as_mut()).await.expect("then the next");
            drop((p0, p1));
            let p2 = poll_once(waiters[2].as_mut()).await.expect("next");
            let p3 = poll_once(waiters[3].as_mut()).await.expect("next");
            drop((p2, p3));
        });
    }

    #[test]
    fn dropped_waiters_leak_no_slot() {
        block_on(async {
            let limiter = Limiter::new(1);
            let held = limiter.acquire().await;
            let mut a = Box::pin(limiter.acquire());
            let mut b = Box::pin(limiter.acquire());
            let mut c = Box::pin(limiter.acquire());
            assert!(poll_once(a.as_mut()).await.is_none());
            assert!(poll_once(b.as_mut()).await.is_none());
            assert!(poll_once(c.as_mut()).await.is_none());
            // `a` is handed the slot, then dropped before it sees it; `b`
            // leaves the queue while waiting.
            drop(held);
            drop(a);
            drop(b);
            let p = poll_once(c.as_mut())
                .await
                .expect("the slot passed on to c");
            drop(p);
            let st = limiter.lock();
            assert_eq!(st.active, 0);
            assert!(st.waiting.is_empty() && st.granted.is_empty());
        });
    }
}
