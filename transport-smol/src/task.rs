//! The mini-program style of a call: `success`, `fail` and `complete`
//! callbacks, and a task handle whose `abort()` works from any thread.
//! Whatever ends the call first (its result, an abort, its page going away,
//! the executor dropping the task) runs the callbacks; everything after that
//! does nothing, so `complete` runs exactly once (SPEC §4).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_channel::{Receiver, Sender};
use mpnet_core::request::Response;
use mpnet_core::{Error, ErrorKind};

use crate::cancel::Cancel;

/// A page of the mini-program, named by the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageId(pub u64);

type SuccessFn = Box<dyn FnOnce(&Response) + Send>;
type FailFn = Box<dyn FnOnce(&Error) + Send>;
type CompleteFn = Box<dyn FnOnce(&Result<Response, Error>) + Send>;

/// The `success`/`fail`/`complete` callbacks of a call.
///
/// ```
/// use mpnet_smol::Callbacks;
/// let cb = Callbacks::new()
///     .success(|res| println!("status {}", res.status))
///     .fail(|err| println!("error {}", err.code(mpnet_core::Api::Request)))
///     .complete(|_| println!("done"));
/// # drop(cb);
/// ```
#[derive(Default)]
#[must_use]
pub struct Callbacks {
    success: Option<SuccessFn>,
    fail: Option<FailFn>,
    complete: Option<CompleteFn>,
}

impl std::fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callbacks").finish_non_exhaustive()
    }
}

impl Callbacks {
    /// No callbacks.
    pub fn new() -> Self {
        Self::default()
    }
    /// Runs on success.
    pub fn success(mut self, f: impl FnOnce(&Response) + Send + 'static) -> Self {
        self.success = Some(Box::new(f));
        self
    }
    /// Runs on failure.
    pub fn fail(mut self, f: impl FnOnce(&Error) + Send + 'static) -> Self {
        self.fail = Some(Box::new(f));
        self
    }
    /// Runs after `success` or `fail`, exactly once.
    pub fn complete(mut self, f: impl FnOnce(&Result<Response, Error>) + Send + 'static) -> Self {
        self.complete = Some(Box::new(f));
        self
    }

    fn run(self, result: Result<Response, Error>) -> Result<Response, Error> {
        match &result {
            Ok(r) => {
                if let Some(f) = self.success {
                    f(r)
                }
            }
            Err(e) => {
                if let Some(f) = self.fail {
                    f(e)
                }
            }
        }
        if let Some(f) = self.complete {
            f(&result);
        }
        result
    }
}

/// State shared by a task's future, its handle and the page registry.
pub(crate) struct TaskShared {
    finished: AtomicBool,
    callbacks: Mutex<Option<Callbacks>>,
    result: Mutex<Option<Result<Response, Error>>>,
    /// Closed once the result is stored; blocking and async waiters both
    /// wait on it.
    done_tx: Sender<()>,
    done_rx: Receiver<()>,
    cancel: Cancel,
}

impl TaskShared {
    pub(crate) fn new(callbacks: Callbacks) -> Self {
        let (done_tx, done_rx) = async_channel::bounded(1);
        TaskShared {
            finished: AtomicBool::new(false),
            callbacks: Mutex::new(Some(callbacks)),
            result: Mutex::new(None),
            done_tx,
            done_rx,
            cancel: Cancel::default(),
        }
    }

    pub(crate) fn cancel(&self) -> &Cancel {
        &self.cancel
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }

    /// Ends the task with `result` unless it has ended already.
    pub(crate) fn finish(&self, result: Result<Response, Error>) {
        if self.finished.swap(true, Ordering::SeqCst) {
            return;
        }
        let callbacks = self
            .callbacks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_default();
        let result = callbacks.run(result);
        *self.result.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
        self.done_tx.close();
    }

    /// Ends the task with `error` now and stops its I/O.
    pub(crate) fn stop(&self, error: Error) {
        self.cancel.cancel();
        self.finish(Err(error));
    }

    fn stored(&self) -> Option<Result<Response, Error>> {
        self.result
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Ends a task with an error if its future is dropped before it ended (an
/// executor shut down with the task still in it), so that the callbacks
/// still run exactly once.
pub(crate) struct FinishOnDrop(pub(crate) Arc<TaskShared>);

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        self.0.finish(Err(Error::new(
            ErrorKind::Unknown,
            "the executor dropped the request before it finished",
        )));
    }
}

/// The handle of a started call (`RequestTask` of the seed).
#[derive(Clone)]
pub struct RequestTask {
    shared: Arc<TaskShared>,
}

impl std::fmt::Debug for RequestTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestTask")
            .field("finished", &self.shared.is_finished())
            .finish()
    }
}

impl RequestTask {
    pub(crate) fn new(shared: Arc<TaskShared>) -> Self {
        RequestTask { shared }
    }

    /// Ends the request at once with error 20 (SPEC §4) and drops its
    /// connection; after completion it does nothing. Callable from any
    /// thread; the callbacks run on the calling thread.
    pub fn abort(&self) {
        if !self.shared.is_finished() {
            self.shared.stop(Error::new(
                ErrorKind::Aborted,
                "request aborted by RequestTask.abort()",
            ));
        }
    }

    /// Whether the task has ended (its callbacks have run).
    pub fn is_finished(&self) -> bool {
        self.shared.is_finished()
    }

    /// Blocks the thread until the task ends and returns its result. Not
    /// for use inside async code (use [`result`](Self::result) there).
    pub fn wait(&self) -> Result<Response, Error> {
        loop {
            if let Some(r) = self.shared.stored() {
                return r;
            }
            // Returns once the channel is closed, after the result is stored.
            let _ = self.shared.done_rx.recv_blocking();
        }
    }

    /// Waits for the task to end and returns its result. Dropping this
    /// future does not stop the task (use [`abort`](Self::abort)).
    pub async fn result(&self) -> Result<Response, Error> {
        loop {
            if let Some(r) = self.shared.stored() {
                return r;
            }
            let _ = self.shared.done_rx.recv().await;
        }
    }
}
