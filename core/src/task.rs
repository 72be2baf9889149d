//! The mini-program style of a call, shared by every transport: the
//! `success`/`fail`/`complete` callbacks, the `onProgressUpdate` and
//! `onHeadersReceived` listeners, and the rule that whatever ends a call
//! first (its result, `abort()`, its page going away) runs the callbacks and
//! everything after that does nothing, so `complete` runs exactly once
//! (SPEC §4, §5).
//!
//! This holds no I/O: transports own the threads or futures and call
//! [`Completion::finish`]; waiting for the result is theirs too (they are
//! told through the notifier passed to [`Completion::new`]).

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::transfer::{HeadersReceived, ProgressEvent};
use crate::Error;

type SuccessFn<T> = Box<dyn FnOnce(&T) + Send>;
type FailFn = Box<dyn FnOnce(&Error) + Send>;
type CompleteFn<T> = Box<dyn FnOnce(&Result<T, Error>) + Send>;
/// A progress listener (`onProgressUpdate`).
pub type ProgressFn = Arc<dyn Fn(&ProgressEvent) + Send + Sync>;
/// A response-head listener (`onHeadersReceived`).
pub type HeadersFn = Arc<dyn Fn(&HeadersReceived) + Send + Sync>;

/// A page of the mini-program, named by the host (SPEC §3 pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageId(pub u64);

/// The callbacks and listeners of one call; `T` is its success value.
///
/// ```
/// use mpnet_core::task::Callbacks;
/// use mpnet_core::request::Response;
/// let cb: Callbacks<Response> = Callbacks::new()
///     .success(|res: &Response| println!("status {}", res.status))
///     .fail(|err| println!("error {}", err.code(mpnet_core::Api::Request)))
///     .complete(|_| println!("done"));
/// # drop(cb);
/// ```
#[must_use]
pub struct Callbacks<T> {
    success: Option<SuccessFn<T>>,
    fail: Option<FailFn>,
    complete: Option<CompleteFn<T>>,
    progress: Vec<ProgressFn>,
    headers: Vec<HeadersFn>,
}

impl<T> Default for Callbacks<T> {
    fn default() -> Self {
        Callbacks {
            success: None,
            fail: None,
            complete: None,
            progress: Vec::new(),
            headers: Vec::new(),
        }
    }
}

impl<T> std::fmt::Debug for Callbacks<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callbacks").finish_non_exhaustive()
    }
}

impl<T> Callbacks<T> {
    /// No callbacks.
    pub fn new() -> Self {
        Self::default()
    }
    /// Runs on success.
    pub fn success(mut self, f: impl FnOnce(&T) + Send + 'static) -> Self {
        self.success = Some(Box::new(f));
        self
    }
    /// Runs on failure.
    pub fn fail(mut self, f: impl FnOnce(&Error) + Send + 'static) -> Self {
        self.fail = Some(Box::new(f));
        self
    }
    /// Runs after `success` or `fail`, exactly once.
    pub fn complete(mut self, f: impl FnOnce(&Result<T, Error>) + Send + 'static) -> Self {
        self.complete = Some(Box::new(f));
        self
    }
    /// Listens to progress (`onProgressUpdate`, uploads and downloads),
    /// registered before the call starts so no event is missed.
    pub fn progress(mut self, f: impl Fn(&ProgressEvent) + Send + Sync + 'static) -> Self {
        self.progress.push(Arc::new(f));
        self
    }
    /// Listens to the response head (`onHeadersReceived`, uploads).
    pub fn headers_received(
        mut self,
        f: impl Fn(&HeadersReceived) + Send + Sync + 'static,
    ) -> Self {
        self.headers.push(Arc::new(f));
        self
    }
}

/// The error a call ends with when the transport's work for it panicked
/// (a bug in mpnet, or a panicking listener it called): `Unknown`, with the
/// panic's message, so the call still ends and `complete` still runs.
///
/// ```
/// let payload = std::panic::catch_unwind(|| panic!("oops")).unwrap_err();
/// let e = mpnet_core::task::panicked_error(payload.as_ref());
/// assert_eq!(e.message(), "the call failed inside mpnet: oops");
/// ```
pub fn panicked_error(payload: &(dyn Any + Send)) -> Error {
    let why = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic");
    Error::new(
        crate::ErrorKind::Unknown,
        format!("the call failed inside mpnet: {why}"),
    )
}

/// The callbacks that run when a call ends.
type Ending<T> = (Option<SuccessFn<T>>, Option<FailFn>, Option<CompleteFn<T>>);

/// The shared end-of-call state of a task. See the module docs.
pub struct Completion<T> {
    finished: AtomicBool,
    callbacks: Mutex<Option<Ending<T>>>,
    progress: Mutex<Vec<ProgressFn>>,
    headers: Mutex<Vec<HeadersFn>>,
    result: Mutex<Option<Result<T, Error>>>,
    notify: Box<dyn Fn() + Send + Sync>,
}

impl<T> std::fmt::Debug for Completion<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completion")
            .field("finished", &self.finished.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

fn lock<V>(m: &Mutex<V>) -> std::sync::MutexGuard<'_, V> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `f`, keeping its panic (the first one) in `panicked` instead of
/// unwinding, so the callbacks after it still run.
fn run_guarded(panicked: &mut Option<Box<dyn Any + Send>>, f: impl FnOnce()) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
        panicked.get_or_insert(payload);
    }
}

impl<T: Clone> Completion<T> {
    /// The state of a call with `callbacks`; `notify` is called once, after
    /// the result is stored, to wake whoever waits for it.
    pub fn new(callbacks: Callbacks<T>, notify: impl Fn() + Send + Sync + 'static) -> Self {
        let Callbacks {
            success,
            fail,
            complete,
            progress,
            headers,
        } = callbacks;
        Completion {
            finished: AtomicBool::new(false),
            callbacks: Mutex::new(Some((success, fail, complete))),
            progress: Mutex::new(progress),
            headers: Mutex::new(headers),
            result: Mutex::new(None),
            notify: Box::new(notify),
        }
    }

    /// Whether the call has ended.
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }

    /// Ends the call with `result` unless it has ended already; runs
    /// `success` or `fail`, then `complete`. Returns whether this call ended
    /// it.
    ///
    /// A callback that panics does not stop the rest: `complete` still runs
    /// (exactly once), the result is stored and waiters are woken; then the
    /// first panic goes on unwinding from here, so it is not lost.
    pub fn finish(&self, result: Result<T, Error>) -> bool {
        if self.finished.swap(true, Ordering::SeqCst) {
            return false;
        }
        let mut panicked = None;
        let callbacks = lock(&self.callbacks).take();
        if let Some((success, fail, complete)) = callbacks {
            match &result {
                Ok(v) => {
                    if let Some(f) = success {
                        run_guarded(&mut panicked, || f(v));
                    }
                }
                Err(e) => {
                    if let Some(f) = fail {
                        run_guarded(&mut panicked, || f(e));
                    }
                }
            }
            if let Some(f) = complete {
                run_guarded(&mut panicked, || f(&result));
            }
        }
        lock(&self.progress).clear();
        lock(&self.headers).clear();
        *lock(&self.result) = Some(result);
        (self.notify)();
        if let Some(payload) = panicked {
            panic::resume_unwind(payload);
        }
        true
    }

    /// The result, once the call has ended.
    pub fn result(&self) -> Option<Result<T, Error>> {
        lock(&self.result).clone()
    }

    /// Adds a progress listener (`onProgressUpdate`).
    pub fn on_progress_update(&self, f: ProgressFn) {
        if !self.is_finished() {
            lock(&self.progress).push(f);
        }
    }

    /// Removes every registration of `f` (`offProgressUpdate`).
    pub fn off_progress_update(&self, f: &ProgressFn) {
        lock(&self.progress).retain(|g| !Arc::ptr_eq(g, f));
    }

    /// Adds a response-head listener (`onHeadersReceived`).
    pub fn on_headers_received(&self, f: HeadersFn) {
        if !self.is_finished() {
            lock(&self.headers).push(f);
        }
    }

    /// Tells the progress listeners, in registration order (not after the
    /// call has ended).
    pub fn emit_progress(&self, event: &ProgressEvent) {
        if self.is_finished() {
            return;
        }
        let listeners = lock(&self.progress).clone();
        for f in listeners {
            f(event);
        }
    }

    /// Tells the response-head listeners, in registration order.
    pub fn emit_headers(&self, event: &HeadersReceived) {
        if self.is_finished() {
            return;
        }
        let listeners = lock(&self.headers).clone();
        for f in listeners {
            f(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn complete_runs_exactly_once_and_first_result_wins() {
        let completes = Arc::new(AtomicUsize::new(0));
        let fails = Arc::new(AtomicUsize::new(0));
        let notified = Arc::new(AtomicUsize::new(0));
        let (c, f, n) = (completes.clone(), fails.clone(), notified.clone());
        let done = Completion::<u32>::new(
            Callbacks::new()
                .success(|_| panic!("the abort came first"))
                .fail(move |e| {
                    assert_eq!(e.code(crate::Api::Request), 20);
                    f.fetch_add(1, Ordering::SeqCst);
                })
                .complete(move |_| {
                    c.fetch_add(1, Ordering::SeqCst);
                }),
            move || {
                n.fetch_add(1, Ordering::SeqCst);
            },
        );
        assert!(done.finish(Err(Error::new(crate::ErrorKind::Aborted, "aborted"))));
        assert!(!done.finish(Ok(7)));
        assert!(!done.finish(Err(Error::new(crate::ErrorKind::PageGone, "gone"))));
        assert_eq!(completes.load(Ordering::SeqCst), 1);
        assert_eq!(fails.load(Ordering::SeqCst), 1);
        assert_eq!(notified.load(Ordering::SeqCst), 1);
        assert_eq!(
            done.result()
                .unwrap()
                .unwrap_err()
                .code(crate::Api::Request),
            20
        );
    }

    #[test]
    fn a_panicking_success_still_runs_complete_stores_the_result_wakes_and_then_unwinds() {
        let completes = Arc::new(AtomicUsize::new(0));
        let notified = Arc::new(AtomicUsize::new(0));
        let (c, n) = (completes.clone(), notified.clone());
        let done = Completion::<u32>::new(
            Callbacks::new()
                .success(|_| panic!("the app's success callback failed"))
                .complete(move |r| {
                    assert_eq!(r.as_ref().ok(), Some(&7));
                    c.fetch_add(1, Ordering::SeqCst);
                }),
            move || {
                n.fetch_add(1, Ordering::SeqCst);
            },
        );
        let unwound = panic::catch_unwind(AssertUnwindSafe(|| done.finish(Ok(7))));
        let payload = unwound.expect_err("the panic is not swallowed");
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"the app's success callback failed")
        );
        assert_eq!(completes.load(Ordering::SeqCst), 1);
        assert_eq!(notified.load(Ordering::SeqCst), 1);
        assert_eq!(done.result().and_then(Result::ok), Some(7));
        assert!(!done.finish(Ok(8)), "ended once");
        assert_eq!(completes.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn listeners_in_order_until_the_end() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s1 = seen.clone();
        let done = Completion::<u32>::new(
            Callbacks::new().progress(move |e| s1.lock().unwrap().push(("a", e.progress))),
            || {},
        );
        let s2 = seen.clone();
        let late: ProgressFn = Arc::new(move |e| s2.lock().unwrap().push(("b", e.progress)));
        done.on_progress_update(late.clone());
        done.on_progress_update(late.clone());
        let mut p = crate::transfer::Progress::new(10);
        let ev = p.advance(5).unwrap();
        done.emit_progress(&ev);
        done.off_progress_update(&late);
        let ev = p.advance(5).unwrap();
        done.emit_progress(&ev);
        done.finish(Ok(1));
        done.emit_progress(&ev);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![("a", 50), ("b", 50), ("b", 50), ("a", 100)]
        );
    }
}
