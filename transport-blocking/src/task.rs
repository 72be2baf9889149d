//! Task handles of the mini-program style (`RequestTask`, `UploadTask`,
//! `DownloadTask`): `abort()` from any thread, waiting for the result, and
//! progress listeners. The once-only end-of-call rule lives in core
//! ([`mpnet_core::task::Completion`]); this adds the blocking wait and the
//! cancellation of the I/O.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use mpnet_core::request::Response;
use mpnet_core::task::{Callbacks, Completion, HeadersFn, ProgressFn};
use mpnet_core::transfer::{DownloadResponse, HeadersReceived, ProgressEvent, UploadResponse};
use mpnet_core::{Error, ErrorKind};

use crate::cancel::Cancel;

/// State shared by a task's worker, its handle and the page registry.
pub(crate) struct TaskShared<T> {
    pub(crate) completion: Completion<T>,
    cancel: Cancel,
    signal: Arc<(Mutex<()>, Condvar)>,
    /// The worker has returned: its I/O is closed and its files cleaned up.
    work_stopped: AtomicBool,
}

/// What the page registry holds: anything that can be stopped.
pub(crate) trait Stoppable: Send + Sync {
    fn stop(&self, error: Error);
}

impl<T: Clone + Send + 'static> Stoppable for TaskShared<T> {
    fn stop(&self, error: Error) {
        TaskShared::stop(self, error)
    }
}

impl<T: Clone> TaskShared<T> {
    pub(crate) fn new(callbacks: Callbacks<T>) -> Self {
        let signal = Arc::new((Mutex::new(()), Condvar::new()));
        let notify = signal.clone();
        TaskShared {
            completion: Completion::new(callbacks, move || {
                let _guard = notify.0.lock().unwrap_or_else(|p| p.into_inner());
                notify.1.notify_all();
            }),
            cancel: Cancel::default(),
            signal,
            work_stopped: AtomicBool::new(false),
        }
    }

    /// The worker has returned (or never started): wakes `wait_stopped`.
    pub(crate) fn work_stopped(&self) {
        let _guard = self.signal.0.lock().unwrap_or_else(|p| p.into_inner());
        self.work_stopped.store(true, Ordering::SeqCst);
        self.signal.1.notify_all();
    }

    pub(crate) fn cancel(&self) -> &Cancel {
        &self.cancel
    }

    /// Ends the task with `error` now and stops its I/O.
    pub(crate) fn stop(&self, error: Error) {
        // The result first, so the worker's own failure (its I/O cut short
        // by the cancel) can never take the place of this error.
        self.completion.finish(Err(error));
        self.cancel.cancel();
    }

    fn wait(&self) -> Result<T, Error> {
        self.wait_until(|| true)
    }

    /// Waits for the result and for `also` to hold.
    fn wait_until(&self, also: impl Fn() -> bool) -> Result<T, Error> {
        let mut guard = self.signal.0.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(result) = self.completion.result().filter(|_| also()) {
                return result;
            }
            guard = self.signal.1.wait(guard).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The handle of a started call; `T` is its success value.
pub struct Task<T> {
    shared: Arc<TaskShared<T>>,
}

/// `RequestTask` of the seed (`my.request`).
pub type RequestTask = Task<Response>;
/// `UploadTask` of the seed (`my.uploadFile`).
pub type UploadTask = Task<UploadResponse>;
/// The task of `my.downloadFile` (progress and abort are extensions).
pub type DownloadTask = Task<DownloadResponse>;

impl<T> Clone for Task<T> {
    fn clone(&self) -> Self {
        Task {
            shared: self.shared.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task").finish_non_exhaustive()
    }
}

impl<T: Clone> Task<T> {
    pub(crate) fn new(shared: Arc<TaskShared<T>>) -> Self {
        Task { shared }
    }

    /// Ends the call at once (SPEC §4: error 20 for `my.request`; §5: error
    /// 12 "aborted" for uploads) and stops its I/O; after completion it does
    /// nothing. Callable from any thread.
    pub fn abort(&self) {
        if !self.shared.completion.is_finished() {
            self.shared
                .stop(Error::new(ErrorKind::Aborted, "aborted by task.abort()"));
        }
    }

    /// Whether the task has ended (its callbacks have run).
    pub fn is_finished(&self) -> bool {
        self.shared.completion.is_finished()
    }

    /// Waits for the task to end and returns its result.
    pub fn wait(&self) -> Result<T, Error> {
        self.shared.wait()
    }

    /// [`wait`](Self::wait), and also until the call's work has stopped:
    /// a task ended by [`abort`](Self::abort) (or its page going away) has
    /// its result at once, while its worker may still be closing the
    /// connection and removing a download's unfinished file; this returns
    /// once that is done. For a host that aborts and then exits.
    pub fn wait_stopped(&self) -> Result<T, Error> {
        self.shared
            .wait_until(|| self.shared.work_stopped.load(Ordering::SeqCst))
    }

    /// `onProgressUpdate`: listens to progress from now on.
    pub fn on_progress_update(
        &self,
        f: impl Fn(&ProgressEvent) + Send + Sync + 'static,
    ) -> ProgressFn {
        let f: ProgressFn = Arc::new(f);
        self.shared.completion.on_progress_update(f.clone());
        f
    }

    /// `offProgressUpdate`: removes every registration of `f`.
    pub fn off_progress_update(&self, f: &ProgressFn) {
        self.shared.completion.off_progress_update(f);
    }

    /// `onHeadersReceived`: listens to the response head.
    pub fn on_headers_received(&self, f: impl Fn(&HeadersReceived) + Send + Sync + 'static) {
        let f: HeadersFn = Arc::new(f);
        self.shared.completion.on_headers_received(f);
    }
}
