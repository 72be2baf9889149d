//! Task handles of the mini-program style (`RequestTask`, `UploadTask`,
//! `DownloadTask`): `abort()` from any thread, waiting for the result,
//! blocking or async, and progress listeners. The once-only end-of-call
//! rule lives in core ([`mpnet_core::task::Completion`]); this adds the
//! waits and the cancellation of the I/O.

use std::sync::Arc;

use async_channel::{Receiver, Sender};
use mpnet_core::request::Response;
use mpnet_core::task::{Callbacks, Completion, HeadersFn, ProgressFn};
use mpnet_core::transfer::{DownloadResponse, HeadersReceived, ProgressEvent, UploadResponse};
use mpnet_core::{Error, ErrorKind};

use crate::cancel::Cancel;

/// State shared by a task's future, its handle and the page registry.
pub(crate) struct TaskShared<T> {
    pub(crate) completion: Completion<T>,
    cancel: Cancel,
    /// Closed once the result is stored; blocking and async waiters both
    /// wait on it.
    done: Receiver<()>,
    /// Closed once the task's future has ended or been dropped: its I/O is
    /// closed and its files cleaned up.
    work_stopped: (Sender<()>, Receiver<()>),
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
        let (tx, done) = async_channel::bounded(1);
        TaskShared {
            completion: Completion::new(callbacks, move || {
                tx.close();
            }),
            cancel: Cancel::default(),
            done,
            work_stopped: async_channel::bounded(1),
        }
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
        loop {
            if let Some(result) = self.completion.result() {
                return result;
            }
            // Returns once the channel is closed, after the result is stored.
            let _ = self.done.recv_blocking();
        }
    }

    async fn result(&self) -> Result<T, Error> {
        loop {
            if let Some(result) = self.completion.result() {
                return result;
            }
            let _ = self.done.recv().await;
        }
    }

    /// Returns once the future has ended; it never sends, so `recv` ends
    /// when the channel is closed.
    async fn work_stopped(&self) {
        let _ = self.work_stopped.1.recv().await;
    }
}

/// Ends a task with an error if its future is dropped before it ended (an
/// executor shut down with the task still in it), so that the callbacks
/// still run exactly once. A stopped task is left to whoever stopped it,
/// which finishes it with its own error right after cancelling.
pub(crate) struct FinishOnDrop<T: Clone>(pub(crate) Arc<TaskShared<T>>);

impl<T: Clone> Drop for FinishOnDrop<T> {
    fn drop(&mut self) {
        if !self.0.cancel.is_cancelled() {
            self.0.completion.finish(Err(Error::new(
                ErrorKind::Unknown,
                "the executor dropped the task before it finished",
            )));
        }
        // The future is over (what it held is dropped): wake `stopped`.
        self.0.work_stopped.0.close();
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

    /// Ends the call at once (SPEC §4: error 20 for `my.request`; §5, §6:
    /// error 12 "aborted" for uploads and downloads) and drops its
    /// connection (and a download's unfinished file); after completion it
    /// does nothing. Callable from any thread; the callbacks run on the
    /// calling thread.
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

    /// Blocks the thread until the task ends and returns its result. Not
    /// for use inside async code (use [`result`](Self::result) there).
    pub fn wait(&self) -> Result<T, Error> {
        self.shared.wait()
    }

    /// Waits for the task to end and returns its result. Dropping this
    /// future does not stop the task (use [`abort`](Self::abort)).
    pub async fn result(&self) -> Result<T, Error> {
        self.shared.result().await
    }

    /// [`result`](Self::result), and also until the call's work has
    /// stopped: a task ended by [`abort`](Self::abort) (or its page going
    /// away) has its result at once, while its future may still be on the
    /// executor, to be dropped there (its connection closed, a download's
    /// unfinished file removed); this resolves once that is done. For a
    /// host that aborts and then exits.
    pub async fn stopped(&self) -> Result<T, Error> {
        self.shared.work_stopped().await;
        self.shared.result().await
    }

    /// [`stopped`](Self::stopped), blocking the thread. Not for use inside
    /// async code.
    pub fn wait_stopped(&self) -> Result<T, Error> {
        futures_lite::future::block_on(self.stopped())
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
