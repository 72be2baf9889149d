//! The client: one per app context. It owns the TLS settings, the
//! keep-alive pool, the bound on requests in flight, the page registry, the
//! app's sockets, and the executor that runs spawned calls.
//!
//! Spawned calls ([`Client::spawn_request`], [`Client::spawn_upload`],
//! [`Client::spawn_download`]) and the sockets' reader and writer tasks run
//! on smol's global executor (`smol::spawn`: background threads started on
//! first use, one by default, `SMOL_THREADS` for more) unless the host
//! hands its own executor to [`Client::with_executor`]. [`Client::request`],
//! [`Client::upload_file`] and [`Client::download_file`] are plain futures
//! and run wherever they are awaited.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use mpnet_core::pool::{Pool, PoolConfig, PoolKey};
use mpnet_core::request::{Method, RequestOptions, Response};
use mpnet_core::spin::ReadSpin;
use mpnet_core::task::{Callbacks, PageId};
use mpnet_core::transfer::{DownloadOptions, DownloadResponse, UploadOptions, UploadResponse};
use mpnet_core::ws::listeners::{
    CloseListener, ErrorListener, MessageListener, OpenListener, SocketListeners,
};
use mpnet_core::ws::{CloseOptions, ConnectOptions, SendOptions};
use mpnet_core::{tls, AppContext, ContextError, Error};
use rustls::ClientConfig;
use smol::Executor;

use crate::conn::Conn;
use crate::limit::Limiter;
use crate::socket::SocketTask;
use crate::stream::StreamResponse;
use crate::task::{
    DownloadTask, FinishOnDrop, RequestTask, Stoppable, Task, TaskShared, UploadTask,
};

/// An async mpnet client for one app. Cheap to clone; clones share the
/// pool, limits, pages and sockets.
///
/// ```no_run
/// use mpnet_core::request::{Method, RequestOptions, Response};
/// use mpnet_core::AppContext;
/// use mpnet_smol::{Callbacks, Client};
///
/// let ctx = AppContext::builder("2021000000000000", "1.0.0")
///     .whitelist(["https://httpbin.org"]).unwrap()
///     .build().unwrap();
/// let client = Client::new(ctx).unwrap();
/// // As a future, on any executor:
/// let res = smol::block_on(client.request(RequestOptions::new("https://httpbin.org/get")));
/// # drop(res);
/// // In the mini-program style, with callbacks:
/// let task = client.spawn_request(
///     RequestOptions::new("https://httpbin.org/post").method(Method::Post),
///     Callbacks::new()
///         .success(|r: &Response| println!("{}", r.status))
///         .fail(|e| println!("error {}", e.code(mpnet_core::Api::Request))),
/// );
/// task.abort();
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<ClientInner>,
    executor: Option<Arc<Executor<'static>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("inner", &self.inner)
            .field("own_executor", &self.executor.is_some())
            .finish()
    }
}

pub(crate) struct ClientInner {
    pub(crate) ctx: AppContext,
    pub(crate) tls: Arc<ClientConfig>,
    pool: Mutex<Pool<Conn>>,
    pub(crate) limiter: Limiter,
    pub(crate) sockets: Arc<crate::socket::AppSockets>,
    pages: Mutex<HashMap<PageId, Vec<Weak<dyn Stoppable>>>>,
    /// [`Client::set_read_spin`].
    read_spin: ReadSpin,
}

impl ClientInner {
    /// How long a read for an answer or a socket's next message polls
    /// before it waits on the reactor (`mpnet_core::spin`).
    pub(crate) fn read_spin(&self) -> Duration {
        self.read_spin.get()
    }
}

impl std::fmt::Debug for ClientInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientInner")
            .field("app_id", &self.ctx.app_id())
            .finish_non_exhaustive()
    }
}

impl ClientInner {
    /// A pooled connection for `attempt` of a `method` request, probed
    /// first where the core says it must be (`pool::must_probe`).
    pub(crate) fn take_pooled(&self, key: &PoolKey, method: Method, attempt: u32) -> Option<Conn> {
        // Each take holds the lock only for itself; probes run outside it.
        mpnet_core::pool::take_checked(
            || {
                self.lock_pool()
                    .take_candidate(key, Instant::now(), method, attempt)
            },
            Conn::is_stale,
            Conn::close,
        )
    }

    pub(crate) fn put_pooled(&self, conn: Conn) {
        let key = conn.key.clone();
        self.lock_pool().put(key, conn, Instant::now());
    }

    fn lock_pool(&self) -> std::sync::MutexGuard<'_, Pool<Conn>> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Client {
    /// A client for `ctx` with the default pool settings.
    pub fn new(ctx: AppContext) -> Result<Client, ContextError> {
        let pool = PoolConfig::for_context(&ctx);
        Client::with_pool(ctx, pool)
    }

    /// A client for `ctx` with these pool settings.
    pub fn with_pool(ctx: AppContext, pool: PoolConfig) -> Result<Client, ContextError> {
        let tls = tls::client_config(&ctx, &tls::TlsSources::system())?;
        let limiter = Limiter::new(ctx.max_in_flight());
        Ok(Client {
            inner: Arc::new(ClientInner {
                ctx,
                tls,
                pool: Mutex::new(Pool::new(pool)),
                limiter,
                sockets: Arc::default(),
                pages: Mutex::new(HashMap::new()),
                read_spin: ReadSpin::default(),
            }),
            executor: None,
        })
    }

    /// How long the first read for an answer (the first read after a
    /// request is sent; a socket's next message) polls the socket before
    /// it waits on the reactor; zero: wait at once. Default 50 µs, at most 1 ms
    /// (longer is cut to that); it applies from the next request and the
    /// next socket read on ([`mpnet_core::spin`] has the rules).
    ///
    /// Polling gets an answer that comes within it without the thread's
    /// CPU going idle and waking again (20–35 µs on a VM whose idle vCPUs
    /// halt), at the cost of up to this much CPU per answer, on the executor's thread.
    /// At most half the CPUs poll at once (none on one CPU); a response
    /// read polls only while that few requests await answers in all; a
    /// connection whose answers keep coming later stops polling for a
    /// while. So many tasks or slow peers cost next to nothing.
    ///
    /// ```
    /// # use mpnet_core::AppContext;
    /// let ctx = AppContext::builder("2021001", "1.0.0").allow_any_origin().build().unwrap();
    /// let client = mpnet_smol::Client::new(ctx).unwrap();
    /// client.set_read_spin(std::time::Duration::ZERO); // never poll
    /// assert!(client.read_spin().is_zero());
    /// client.set_read_spin(std::time::Duration::from_secs(1));
    /// assert_eq!(client.read_spin(), mpnet_core::spin::MAX_READ_SPIN);
    /// ```
    pub fn set_read_spin(&self, budget: Duration) {
        self.inner.read_spin.set(budget);
    }

    /// The poll budget [`set_read_spin`](Self::set_read_spin) set (50 µs
    /// unless changed).
    pub fn read_spin(&self) -> Duration {
        self.inner.read_spin()
    }

    /// This client (sharing its pool, limits, pages and sockets) with
    /// spawned calls and socket I/O run on `executor` instead of smol's
    /// global one. The host must keep running `executor`; a task it drops
    /// unfinished fails (`ErrorKind::Unknown`, code 12), so its callbacks
    /// still run exactly once, and a socket whose I/O it drops fails
    /// (its error and close events are delivered).
    pub fn with_executor(&self, executor: Arc<Executor<'static>>) -> Client {
        Client {
            inner: self.inner.clone(),
            executor: Some(executor),
        }
    }

    /// The app context.
    pub fn context(&self) -> &AppContext {
        &self.inner.ctx
    }

    /// How many idle keep-alive connections the pool holds now (every one
    /// of them finished its last exchange).
    pub fn idle_connections(&self) -> usize {
        self.inner.lock_pool().idle_count()
    }

    /// Runs `my.request` and resolves to its result (SPEC §4). Waits for a
    /// free slot first when the app's bound on requests in flight is
    /// reached. Runs on any executor; dropping the future cancels the
    /// request and closes its connection.
    pub async fn request(&self, opts: RequestOptions) -> Result<Response, Error> {
        let _permit = self.inner.limiter.acquire().await;
        crate::request::run(&self.inner, &opts).await
    }

    /// [`request`](Self::request) for repeated calls, without allocating:
    /// borrows `opts` (nothing of them is copied) and writes a success into
    /// `out`, reusing the buffers `out` already holds from an earlier call
    /// — the response head is parsed into the header object's buffers and
    /// the body collected into the data's buffer (arraybuffer bytes that
    /// nothing else shares, or a text or base64 string). Status, headers,
    /// data and profile are those `request(opts.clone())` gives. With a
    /// response that fits the buffers, mpnet allocates nothing for it but
    /// json values (`dataType: json` builds a new value each time; an
    /// arraybuffer body shorter than its buffer costs `bytes` one small
    /// allocation). Buffers are kept only up to
    /// [`KEPT_RESPONSE_HEAD_MAX`](mpnet_core::http1::KEPT_RESPONSE_HEAD_MAX)
    /// (head) and
    /// [`KEPT_RESPONSE_BODY_MAX`](mpnet_core::request::KEPT_RESPONSE_BODY_MAX)
    /// (body), so one large response does not pin memory. A small body
    /// read into a kept buffer still holds that buffer's capacity: copy out
    /// (`to_vec`) data you keep for long.
    ///
    /// On an error (the same [`Error`] as `request`), or when the future is
    /// dropped after it got its in-flight slot, `out` is
    /// [`Response::default()`]: status 0, no headers, empty data; its
    /// buffers are freed. A future dropped while it still waits for a slot
    /// leaves `out` as it was.
    ///
    /// ```
    /// use mpnet_core::request::{DataType, RequestOptions, Response, ResponseData};
    /// use mpnet_core::AppContext;
    /// use mpnet_smol::Client;
    /// use mpnet_testkit::{HttpsServer, TestCa};
    ///
    /// let ca = TestCa::new();
    /// let server = HttpsServer::start(&ca);
    /// let ctx = AppContext::builder("2021000000000000", "1.0.0")
    ///     .whitelist([format!("https://127.0.0.1:{}", server.port())])?
    ///     .add_roots_pem(&ca.cert_pem())?
    ///     .build()?;
    /// let client = Client::new(ctx)?;
    /// let opts = RequestOptions::new(server.url("/bytes/1024")).data_type(DataType::ArrayBuffer);
    /// futures_lite::future::block_on(async {
    ///     let mut out = Response::default();
    ///     for _ in 0..3 {
    ///         client.request_into(&opts, &mut out).await?;
    ///         let ResponseData::ArrayBuffer(bytes) = &out.data else { panic!("arraybuffer") };
    ///         assert_eq!((out.status, bytes.len()), (200, 1024));
    ///     }
    ///     // Errors are those of `request`; `out` is then empty.
    ///     let not_found = RequestOptions::new(server.url("/status/404"));
    ///     let err = client.request_into(&not_found, &mut out).await.unwrap_err();
    ///     assert_eq!(err.code(mpnet_core::Api::Request), 19);
    ///     assert_eq!(out, Response::default());
    ///     Ok::<(), mpnet_core::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn request_into(
        &self,
        opts: &RequestOptions,
        out: &mut Response,
    ) -> Result<(), Error> {
        let _permit = self.inner.limiter.acquire().await;
        crate::request::run_into(&self.inner, opts, out).await
    }

    /// Runs `my.request` and resolves to a successful response with its
    /// body as a stream ([`futures_lite::AsyncRead`]) instead of a buffer:
    /// memory does not grow with the body. Error statuses fail as in
    /// [`request`](Self::request). The in-flight slot is held until the
    /// response head; the body's connection stays out of the pool until the
    /// body is read to its end.
    pub async fn request_stream(&self, opts: RequestOptions) -> Result<StreamResponse, Error> {
        let _permit = self.inner.limiter.acquire().await;
        crate::request::run_stream(&self.inner, &opts).await
    }

    /// Starts `my.request` in the mini-program style: returns at once with a
    /// [`RequestTask`]; `success` or `fail`, then `complete`, run exactly
    /// once on the executor (or on the thread that aborts).
    pub fn spawn_request(
        &self,
        opts: RequestOptions,
        callbacks: Callbacks<Response>,
    ) -> RequestTask {
        let inner = self.inner.clone();
        self.spawn_with(None, callbacks, None, move |_| async move {
            crate::request::run(&inner, &opts).await
        })
    }

    /// As [`spawn_request`](Self::spawn_request), tied to `page`: when the
    /// host calls [`page_gone`](Self::page_gone), the request fails with 1.
    pub fn spawn_request_on_page(
        &self,
        page: PageId,
        opts: RequestOptions,
        callbacks: Callbacks<Response>,
    ) -> RequestTask {
        let inner = self.inner.clone();
        self.spawn_with(Some(page), callbacks, None, move |_| async move {
            crate::request::run(&inner, &opts).await
        })
    }

    /// Runs `fut` on the client's executor (the host's, or smol's global
    /// one).
    pub(crate) fn spawn<F>(&self, fut: F) -> smol::Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.executor {
            Some(ex) => ex.spawn(fut),
            None => smol::spawn(fut),
        }
    }

    /// Spawns `work` on the executor as a task: waits for an in-flight slot,
    /// then ends the task with the work's result unless it ended before
    /// (then `work` is dropped where it stands, closing its connection).
    /// `work` gets the task's shared state, to tell its listeners of
    /// progress. A success that arrives after the task ended another way
    /// is handed to `undo` (a download removes its file).
    fn spawn_with<T, F>(
        &self,
        page: Option<PageId>,
        callbacks: Callbacks<T>,
        undo: Option<fn(&T)>,
        work: impl FnOnce(Arc<TaskShared<T>>) -> F,
    ) -> Task<T>
    where
        T: Clone + Send + 'static,
        F: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let shared = Arc::new(TaskShared::new(callbacks));
        if let Some(page) = page {
            let mut pages = self.inner.pages.lock().unwrap_or_else(|p| p.into_inner());
            let list = pages.entry(page).or_default();
            list.retain(|w| w.strong_count() > 0);
            let weak: Weak<dyn Stoppable> = Arc::downgrade(&shared) as Weak<dyn Stoppable>;
            list.push(weak);
        }
        let work = work(shared.clone());
        let worker = FinishOnDrop(shared.clone());
        let inner = self.inner.clone();
        let job = async move {
            let call = async {
                let _permit = inner.limiter.acquire().await;
                work.await
            };
            if let Some(result) = worker.0.cancel().run(call).await {
                let late = undo.and_then(|_| result.as_ref().ok().cloned());
                if !worker.0.completion.finish(result) {
                    if let (Some(undo), Some(value)) = (undo, late) {
                        undo(&value);
                    }
                }
            }
        };
        self.spawn(job).detach();
        Task::new(shared)
    }

    /// Runs `my.uploadFile` and resolves to its result (SPEC §5): the file
    /// is streamed from disk in chunks with an exact Content-Length.
    /// Dropping the future stops the upload: nothing more is written.
    pub async fn upload_file(&self, opts: UploadOptions) -> Result<UploadResponse, Error> {
        let _permit = self.inner.limiter.acquire().await;
        crate::transfer::upload_file(&self.inner, &opts, None).await
    }

    /// Starts `my.uploadFile` in the mini-program style; progress and the
    /// response head go to the listeners in `callbacks` and on the task.
    pub fn spawn_upload(
        &self,
        opts: UploadOptions,
        callbacks: Callbacks<UploadResponse>,
    ) -> UploadTask {
        let inner = self.inner.clone();
        self.spawn_with(None, callbacks, None, move |task| async move {
            crate::transfer::upload_file(&inner, &opts, Some(&task.completion)).await
        })
    }

    /// Runs `my.downloadFile` and resolves to its result (SPEC §6): the
    /// body is streamed to a file in the app's temp folder. Dropping the
    /// future stops the download and removes its unfinished file.
    pub async fn download_file(&self, opts: DownloadOptions) -> Result<DownloadResponse, Error> {
        let _permit = self.inner.limiter.acquire().await;
        crate::transfer::download_file(&self.inner, &opts, None).await
    }

    /// Starts `my.downloadFile` in the mini-program style, with progress.
    pub fn spawn_download(
        &self,
        opts: DownloadOptions,
        callbacks: Callbacks<DownloadResponse>,
    ) -> DownloadTask {
        let inner = self.inner.clone();
        let undo: fn(&DownloadResponse) = |done| {
            // Finished just after an abort: the caller was told it failed,
            // so the file must not stay (a metadata operation).
            let _ = std::fs::remove_file(&done.ap_file_path);
        };
        self.spawn_with(None, callbacks, Some(undo), move |task| async move {
            crate::transfer::download_file(&inner, &opts, Some(&task.completion)).await
        })
    }

    /// `my.connectSocket` (SPEC §7): returns at once; `success` runs just
    /// before the open event, `fail` with the socket codes. Without
    /// `multiple` this is the app's one socket (a previous one is closed
    /// first); with `multiple: true` a separate [`SocketTask`] (at most 5).
    /// The socket's reader and writer run as tasks on the client's
    /// executor, and so do its listeners (keep them short).
    pub fn connect_socket(&self, opts: ConnectOptions, callbacks: Callbacks<()>) -> SocketTask {
        crate::socket::connect_socket(self, opts, callbacks, SocketListeners::default())
    }

    /// As [`connect_socket`](Self::connect_socket), with the task's own
    /// listeners registered before it starts, so none of its events is
    /// missed (what a mini-program gets by registering in the same tick).
    pub fn connect_socket_with(
        &self,
        opts: ConnectOptions,
        callbacks: Callbacks<()>,
        listeners: SocketListeners,
    ) -> SocketTask {
        crate::socket::connect_socket(self, opts, callbacks, listeners)
    }

    /// `my.sendSocketMessage` on the app socket: 10 when none is open.
    /// Never waits: the bytes are queued for the socket's writer task.
    pub fn send_socket_message(&self, opts: &SendOptions) -> Result<(), Error> {
        self.inner.sockets.send(opts)
    }

    /// `my.closeSocket` on the app socket: 10 when none is open.
    pub fn close_socket(&self, opts: &CloseOptions) -> Result<(), Error> {
        self.inner.sockets.close(opts)
    }

    /// `my.onSocketOpen`.
    pub fn on_socket_open(&self, cb: Arc<OpenListener>) {
        self.inner.sockets.listeners().on_open(cb);
    }
    /// `my.onSocketMessage`.
    pub fn on_socket_message(&self, cb: Arc<MessageListener>) {
        self.inner.sockets.listeners().on_message(cb);
    }
    /// `my.onSocketError`.
    pub fn on_socket_error(&self, cb: Arc<ErrorListener>) {
        self.inner.sockets.listeners().on_error(cb);
    }
    /// `my.onSocketClose`.
    pub fn on_socket_close(&self, cb: Arc<CloseListener>) {
        self.inner.sockets.listeners().on_close(cb);
    }
    /// `my.offSocketOpen(cb)`: removes every registration of `cb`; `None`
    /// removes all open listeners.
    pub fn off_socket_open(&self, cb: Option<&Arc<OpenListener>>) {
        self.inner.sockets.listeners().off_open(cb);
    }
    /// `my.offSocketMessage(cb)`, or all with `None`.
    pub fn off_socket_message(&self, cb: Option<&Arc<MessageListener>>) {
        self.inner.sockets.listeners().off_message(cb);
    }
    /// `my.offSocketError(cb)`, or all with `None`.
    pub fn off_socket_error(&self, cb: Option<&Arc<ErrorListener>>) {
        self.inner.sockets.listeners().off_error(cb);
    }
    /// `my.offSocketClose(cb)`, or all with `None`.
    pub fn off_socket_close(&self, cb: Option<&Arc<CloseListener>>) {
        self.inner.sockets.listeners().off_close(cb);
    }

    /// The host says `page` is gone: its unfinished requests fail with
    /// error 1 (SPEC §3 pages).
    pub fn page_gone(&self, page: PageId) {
        let tasks = self
            .inner
            .pages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&page)
            .unwrap_or_default();
        for task in tasks.iter().filter_map(Weak::upgrade) {
            task.stop(Error::new(
                mpnet_core::ErrorKind::PageGone,
                "the page that started the request went away",
            ));
        }
    }
}
