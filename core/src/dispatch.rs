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
        {
            let mut st = self.lock();
            st.queue.push_back(Box::new(job));
            if st.running {
                return;
            }
            st.running = true;
        }
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
