//! An ordered job queue for handing events to listeners with no lock held,
//! shared by the transports' socket code (SPEC §7: listeners run in order,
//! and a listener may call `send`, `close` or `connectSocket` itself).
//!
//! [`Dispatcher::run`] queues a job and, unless another thread is already
//! draining the queue, drains it on the calling thread: jobs run one at a
//! time, in the order they were queued, never while the dispatcher's own
//! lock is held. A job that queues another job (a listener that sends and
//! gets an event back) does not run it nested: it runs right after, on the
//! same thread. A thread that queues while another drains returns at once;
//! the draining thread runs its job.
//!
//! No I/O, no threads of its own: whoever produces events drives it.
//!
//! [`Dispatcher::queue`] splits `run` in two, for producers that make their
//! events under a lock of their own: queue while holding it (so jobs are
//! in the order the lock was taken, whichever thread gets to drain first),
//! then [`Queued::run`] once it is released (listeners never run under it).
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use mpnet_core::dispatch::Dispatcher;
//!
//! let d = Arc::new(Dispatcher::new());
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let (d2, s1, s2) = (d.clone(), seen.clone(), seen.clone());
//! d.run(move || {
//!     s1.lock().unwrap().push("first");
//!     // Queued from inside a job: runs after this one ends, not nested.
//!     d2.run(move || s2.lock().unwrap().push("third"));
//!     s1.lock().unwrap().push("second");
//! });
//! assert_eq!(*seen.lock().unwrap(), ["first", "second", "third"]);
//! ```

use std::collections::VecDeque;
use std::sync::Mutex;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// A thread is draining the queue.
    running: bool,
}

/// Runs jobs one at a time, in order, on whichever thread queues while no
/// one else is running them. See the module docs.
#[derive(Default)]
pub struct Dispatcher {
    state: Mutex<State>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("Dispatcher")
            .field("queued", &st.queue.len())
            .field("running", &st.running)
            .finish()
    }
}

/// Clears the running mark if a job panics, so that the next `run` drains
/// what is left instead of queueing forever.
struct Unwinding<'a>(&'a Dispatcher);

impl Drop for Unwinding<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.lock().running = false;
        }
    }
}

impl Dispatcher {
    /// An empty dispatcher.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `job`, then runs the queue to its end unless another thread
    /// (or an outer call on this thread) is running it already.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) {
        self.queue(job).run();
    }

    /// Queues `job` and runs nothing yet: the answer runs the queue (with
    /// [`Queued::run`]) when this call is the one that must, because no one
    /// else is running it. Jobs run in the order they were queued, so a
    /// producer that queues under its own lock gets its events out in the
    /// order it made them; it must call `run` after releasing that lock.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use mpnet_core::dispatch::Dispatcher;
    ///
    /// let d = Dispatcher::new();
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let (s1, s2) = (seen.clone(), seen.clone());
    /// let first = d.queue(move || s1.lock().unwrap().push("first"));
    /// // Another producer queues and runs: the first queuer drains, so
    /// // nothing runs yet and nothing overtakes "first".
    /// d.run(move || s2.lock().unwrap().push("second"));
    /// assert!(seen.lock().unwrap().is_empty());
    /// first.run();
    /// assert_eq!(*seen.lock().unwrap(), ["first", "second"]);
    /// ```
    pub fn queue(&self, job: impl FnOnce() + Send + 'static) -> Queued<'_> {
        let mut st = self.lock();
        st.queue.push_back(Box::new(job));
        let drains = !st.running;
        st.running = true;
        Queued {
            dispatcher: self,
            drains,
        }
    }

    /// A [`Queued`] for nothing queued: its `run` does nothing.
    pub fn nothing(&self) -> Queued<'_> {
        Queued {
            dispatcher: self,
            drains: false,
        }
    }

    /// The queue run to its end by the caller that claimed it.
    fn drain(&self) {
        let _unwinding = Unwinding(self);
        loop {
            let next = {
                let mut st = self.lock();
                match st.queue.pop_front() {
                    Some(job) => job,
                    None => {
                        st.running = false;
                        return;
                    }
                }
            };
            next();
        }
    }
}

/// A job [`queued`](Dispatcher::queue): [`run`](Self::run) it (and what was
/// queued meanwhile) once the caller's own locks are released. Dropped
/// without `run`, it still runs the queue, so jobs are never stranded.
#[must_use = "call run() once your own locks are released"]
pub struct Queued<'a> {
    dispatcher: &'a Dispatcher,
    /// This caller claimed the queue and must run it.
    drains: bool,
}

impl std::fmt::Debug for Queued<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queued")
            .field("drains", &self.drains)
            .finish()
    }
}

impl Queued<'_> {
    /// Runs the queue to its end if this caller claimed it; else returns at
    /// once (the thread running it runs this job too, in order).
    pub fn run(mut self) {
        self.run_claimed();
    }

    fn run_claimed(&mut self) {
        if std::mem::take(&mut self.drains) {
            self.dispatcher.drain();
        }
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Unwinding before `run`: give the claim back, so that the next
            // `run` drains what is queued.
            if self.drains {
                self.dispatcher.lock().running = false;
            }
        } else {
            self.run_claimed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn jobs_from_many_threads_never_overlap_and_keep_each_threads_order() {
        let d = Arc::new(Dispatcher::new());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let busy = Arc::new(Mutex::new(false));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (d, seen, busy) = (d.clone(), seen.clone(), busy.clone());
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let (seen, busy) = (seen.clone(), busy.clone());
                        d.run(move || {
                            {
                                let mut b = busy.lock().unwrap();
                                assert!(!*b, "two jobs at once");
                                *b = true;
                            }
                            seen.lock().unwrap().push((t, i));
                            *busy.lock().unwrap() = false;
                        });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 800);
        for t in 0..4 {
            let mine: Vec<_> = seen.iter().filter(|(u, _)| *u == t).map(|p| p.1).collect();
            assert_eq!(mine, (0..200).collect::<Vec<_>>());
        }
    }

    #[test]
    fn jobs_queued_under_a_lock_keep_the_locks_order_whoever_drains() {
        // Two producers make events under one lock; the second drains first.
        let d = Arc::new(Dispatcher::new());
        let lock = Mutex::new(());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let first = {
            let _held = lock.lock().unwrap();
            d.queue(move || s.lock().unwrap().push("message"))
        };
        let s = seen.clone();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let queued = {
                    let _held = lock.lock().unwrap();
                    d.queue(move || s.lock().unwrap().extend(["error", "close"]))
                };
                queued.run();
            });
        });
        assert!(seen.lock().unwrap().is_empty(), "the first queuer drains");
        first.run();
        assert_eq!(*seen.lock().unwrap(), ["message", "error", "close"]);
    }

    #[test]
    fn a_queued_job_dropped_without_run_still_runs_and_a_panic_gives_the_claim_back() {
        let d = Dispatcher::new();
        let ran = Arc::new(Mutex::new(0));
        let r = ran.clone();
        drop(d.queue(move || *r.lock().unwrap() += 1));
        assert_eq!(*ran.lock().unwrap(), 1);

        let r = ran.clone();
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _queued = d.queue(move || *r.lock().unwrap() += 1);
            panic!("the producer failed before run");
        }));
        assert!(unwound.is_err());
        let r = ran.clone();
        d.run(move || *r.lock().unwrap() += 10);
        assert_eq!(*ran.lock().unwrap(), 12, "both jobs ran, in order");
    }

    #[test]
    fn a_panicking_job_does_not_stop_later_ones() {
        let d = Dispatcher::new();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            d.run(|| panic!("listener failed"));
        }));
        assert!(r.is_err());
        let ran = Arc::new(Mutex::new(false));
        let r2 = ran.clone();
        d.run(move || *r2.lock().unwrap() = true);
        assert!(*ran.lock().unwrap());
    }
}
