//! The client: one per app context. It owns the TLS settings, the
//! keep-alive pool, the bound on requests in flight, the page registry, and
//! the executor that runs spawned requests.
//!
//! Spawned requests ([`Client::spawn_request`]) run on smol's global
//! executor (`smol::spawn`: background threads started on first use, one by
//! default, `SMOL_THREADS` for more) unless the host hands its own executor
//! to [`Client::with_executor`]. [`Client::request`] is a plain future and
//! runs wherever it is awaited.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use mpnet_core::pool::{Pool, PoolConfig, PoolKey};
use mpnet_core::request::{RequestOptions, Response};
use mpnet_core::task::{Callbacks, PageId};
use mpnet_core::{tls, AppContext, ContextError, Error};
use rustls::ClientConfig;
use smol::Executor;

use crate::conn::Conn;
use crate::limit::Limiter;
use crate::stream::StreamResponse;
use crate::task::{FinishOnDrop, RequestTask, Stoppable, Task, TaskShared};

/// An async mpnet client for one app. Cheap to clone; clones share the
/// pool, limits and pages.
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
    pages: Mutex<HashMap<PageId, Vec<Weak<dyn Stoppable>>>>,
}

impl std::fmt::Debug for ClientInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientInner")
            .field("app_id", &self.ctx.app_id())
            .finish_non_exhaustive()
    }
}

impl ClientInner {
    pub(crate) fn take_pooled(&self, key: &PoolKey) -> Option<Conn> {
        let now = Instant::now();
        loop {
            let conn = self.lock_pool().take(key, now)?;
            let mut conn = conn;
            if !conn.is_stale() {
                return Some(conn);
            }
            conn.close();
        }
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
        let tls = tls::client_config(&ctx)?;
        let limiter = Limiter::new(ctx.max_in_flight());
        Ok(Client {
            inner: Arc::new(ClientInner {
                ctx,
                tls,
                pool: Mutex::new(Pool::new(pool)),
                limiter,
                pages: Mutex::new(HashMap::new()),
            }),
            executor: None,
        })
    }

    /// This client (sharing its pool, limits and pages) with spawned
    /// requests run on `executor` instead of smol's global one. The host
    /// must keep running `executor`; a task it drops unfinished fails
    /// (`ErrorKind::Unknown`, code 12), so its callbacks still run exactly
    /// once.
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
        self.spawn_with(None, callbacks, async move {
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
        self.spawn_with(Some(page), callbacks, async move {
            crate::request::run(&inner, &opts).await
        })
    }

    /// Spawns `work` on the executor as a task: waits for an in-flight slot,
    /// then ends the task with the work's result unless it ended before
    /// (then `work` is dropped where it stands, closing its connection).
    fn spawn_with<T>(
        &self,
        page: Option<PageId>,
        callbacks: Callbacks<T>,
        work: impl Future<Output = Result<T, Error>> + Send + 'static,
    ) -> Task<T>
    where
        T: Clone + Send + 'static,
    {
        let shared = Arc::new(TaskShared::new(callbacks));
        if let Some(page) = page {
            let mut pages = self.inner.pages.lock().unwrap_or_else(|p| p.into_inner());
            let list = pages.entry(page).or_default();
            list.retain(|w| w.strong_count() > 0);
            let weak: Weak<dyn Stoppable> = Arc::downgrade(&shared) as Weak<dyn Stoppable>;
            list.push(weak);
        }
        let worker = FinishOnDrop(shared.clone());
        let inner = self.inner.clone();
        let job = async move {
            let call = async {
                let _permit = inner.limiter.acquire().await;
                work.await
            };
            if let Some(result) = worker.0.cancel().run(call).await {
                worker.0.completion.finish(result);
            }
        };
        match &self.executor {
            Some(ex) => ex.spawn(job).detach(),
            None => smol::spawn(job).detach(),
        }
        Task::new(shared)
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
