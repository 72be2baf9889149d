//! The keep-alive pool's decisions, with the connections as opaque values:
//! which idle connection to reuse, when one has idled too long, how many to
//! keep (SPEC §4 transports: keep-alive per origin, idle expiry, a bound).
//! The transports own the sockets and a lock around this.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::target::{Host, Scheme, Target};

/// Default time an idle connection is kept.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default bound on idle connections per origin.
pub const DEFAULT_MAX_IDLE_PER_ORIGIN: usize = 8;
/// Default bound on idle connections in all.
pub const DEFAULT_MAX_IDLE: usize = 64;

/// Where a connection goes: scheme, host and port (and the proxy it runs
/// through, if any). Connections are reused only for an equal key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    scheme: Scheme,
    host: Host,
    port: u16,
    proxy: Option<(Host, u16)>,
}

impl PoolKey {
    /// The key for a request to `target`, through `proxy` if given.
    pub fn new(target: &Target, proxy: Option<&Target>) -> Self {
        PoolKey {
            scheme: target.scheme(),
            host: target.host().clone(),
            port: target.port(),
            proxy: proxy.map(|p| (p.host().clone(), p.port())),
        }
    }
}

/// The pool's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// How long a connection may idle before it is dropped.
    pub idle_timeout: Duration,
    /// Most idle connections per key.
    pub max_idle_per_origin: usize,
    /// Most idle connections in all.
    pub max_idle: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_idle_per_origin: DEFAULT_MAX_IDLE_PER_ORIGIN,
            max_idle: DEFAULT_MAX_IDLE,
        }
    }
}

impl PoolConfig {
    /// The default bounds for `ctx`: at least as many idle connections per
    /// origin as requests may be in flight, so a burst that ends together
    /// does not throw connections away only to reopen them.
    pub fn for_context(ctx: &crate::AppContext) -> Self {
        let default = PoolConfig::default();
        PoolConfig {
            max_idle_per_origin: default.max_idle_per_origin.max(ctx.max_in_flight()),
            max_idle: default.max_idle.max(ctx.max_in_flight()),
            ..default
        }
    }
}

/// Idle connections by key; `C` is the transport's connection.
///
/// ```
/// use std::time::{Duration, Instant};
/// use mpnet_core::pool::{Pool, PoolConfig, PoolKey};
/// use mpnet_core::{Limits, Target};
/// let t = Target::parse("https://a.example/", &Limits::default()).unwrap();
/// let key = PoolKey::new(&t, None);
/// let mut pool = Pool::new(PoolConfig::default());
/// let now = Instant::now();
/// pool.put(key.clone(), "conn", now);
/// assert_eq!(pool.take(&key, now + Duration::from_secs(1)), Some("conn"));
/// assert_eq!(pool.take(&key, now), None);
/// ```
#[derive(Debug)]
pub struct Pool<C> {
    config: PoolConfig,
    idle: HashMap<PoolKey, VecDeque<(C, Instant)>>,
    count: usize,
}

/// Takes candidates from `take` (each with whether it must be probed, as
/// [`Pool::take_candidate`] gives them, the most recently returned first)
/// until one needs no probe or passes it (`is_stale` false); stale ones are
/// handed to `discard`. `take` is where a shared pool is locked, so no
/// probe runs under the lock:
///
/// ```
/// use std::sync::Mutex;
/// use std::time::{Duration, Instant};
/// use mpnet_core::pool::{take_checked, Pool, PoolConfig, PoolKey};
/// use mpnet_core::request::Method;
/// use mpnet_core::{Limits, Target};
/// let t = Target::parse("https://a.example/", &Limits::default()).unwrap();
/// let key = PoolKey::new(&t, None);
/// let pool = Mutex::new(Pool::new(PoolConfig::default()));
/// let now = Instant::now();
/// pool.lock().unwrap().put(key.clone(), "fresh", now);
/// let got = take_checked(
///     || pool.lock().unwrap().take_candidate(&key, now, Method::Post, 0),
///     |_| false, // the probe, outside the lock
///     drop,
/// );
/// assert_eq!(got, Some("fresh"));
///
/// // Idle past PROBE_AFTER_IDLE, a GET probes too: both stale, both dropped.
/// pool.lock().unwrap().put(key.clone(), "old, closed by the peer", now);
/// pool.lock().unwrap().put(key.clone(), "closed too", now);
/// let later = now + Duration::from_secs(2);
/// let mut dropped = Vec::new();
/// let got = take_checked(
///     || pool.lock().unwrap().take_candidate(&key, later, Method::Get, 0),
///     |_| true,
///     |c| dropped.push(c),
/// );
/// assert_eq!((got, dropped.len()), (None, 2));
/// ```
pub fn take_checked<C>(
    mut take: impl FnMut() -> Option<(C, bool)>,
    mut is_stale: impl FnMut(&mut C) -> bool,
    mut discard: impl FnMut(C),
) -> Option<C> {
    loop {
        let (mut conn, probe) = take()?;
        if !probe || !is_stale(&mut conn) {
            return Some(conn);
        }
        discard(conn);
    }
}

impl<C> Pool<C> {
    /// An empty pool.
    pub fn new(config: PoolConfig) -> Self {
        Pool {
            config,
            idle: HashMap::new(),
            count: 0,
        }
    }

    /// The most recently returned live connection for `key`, if any;
    /// connections idle past the timeout are dropped on the way.
    pub fn take(&mut self, key: &PoolKey, now: Instant) -> Option<C> {
        self.take_idle(key, now).map(|(conn, _)| conn)
    }

    /// [`take`](Self::take), with how long the connection has been idle
    /// (for [`must_probe`]).
    pub fn take_idle(&mut self, key: &PoolKey, now: Instant) -> Option<(C, Duration)> {
        let timeout = self.config.idle_timeout;
        let queue = self.idle.get_mut(key)?;
        let mut found = None;
        while let Some((conn, since)) = queue.pop_back() {
            self.count -= 1;
            let idle = now.saturating_duration_since(since);
            if idle < timeout {
                found = Some((conn, idle));
                break;
            }
        }
        // An emptied queue stays (its allocation is reused by the next
        // `put`); `handle_timeout` and eviction drop empty queues.
        found
    }

    /// The next connection to try for `attempt` of a `method` request, and
    /// whether it must be probed before use ([`must_probe`]). For a pool
    /// shared between threads: take under the lock, probe outside it (see
    /// [`take_checked`]).
    pub fn take_candidate(
        &mut self,
        key: &PoolKey,
        now: Instant,
        method: crate::request::Method,
        attempt: u32,
    ) -> Option<(C, bool)> {
        let (conn, idle) = self.take_idle(key, now)?;
        Some((conn, must_probe(method, idle, attempt)))
    }

    /// Returns a connection for reuse. The oldest idle connections go first
    /// when a bound is reached.
    pub fn put(&mut self, key: PoolKey, conn: C, now: Instant) {
        if self.config.max_idle_per_origin == 0 || self.config.max_idle == 0 {
            return;
        }
        let queue = match self.idle.get_mut(&key) {
            Some(q) => q,
            None => self.idle.entry(key).or_default(),
        };
        if queue.len() >= self.config.max_idle_per_origin {
            queue.pop_front();
            self.count -= 1;
        }
        queue.push_back((conn, now));
        self.count += 1;
        while self.count > self.config.max_idle {
            self.evict_oldest();
        }
    }

    /// Drops every connection idle past the timeout at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let timeout = self.config.idle_timeout;
        let mut dropped = 0;
        self.idle.retain(|_, queue| {
            let before = queue.len();
            queue.retain(|(_, since)| now.saturating_duration_since(*since) < timeout);
            dropped += before - queue.len();
            !queue.is_empty()
        });
        self.count -= dropped;
    }

    /// When the next idle connection expires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.idle
            .values()
            .filter_map(|q| {
                q.front()
                    .map(|(_, since)| crate::deadline::after(*since, self.config.idle_timeout))
            })
            .min()
    }

    /// How many connections are idle.
    pub fn idle_count(&self) -> usize {
        self.count
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .idle
            .iter()
            .filter_map(|(k, q)| q.front().map(|(_, since)| (k.clone(), *since)))
            .min_by_key(|(_, since)| *since);
        if let Some((key, _)) = oldest {
            if let Some(queue) = self.idle.get_mut(&key) {
                queue.pop_front();
                self.count -= 1;
                if queue.is_empty() {
                    self.idle.remove(&key);
                }
            }
        }
    }
}

/// Whether a request that failed on a reused connection before any response
/// byte arrived may be sent again on a fresh one: only once, and only for
/// idempotent methods (GET, PUT, DELETE).
pub fn may_retry_on_fresh(method: crate::request::Method, reused: bool, attempt: u32) -> bool {
    reused && attempt == 0 && method != crate::request::Method::Post
}

/// Idle time after which a pooled connection is probed before any reuse.
pub const PROBE_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Whether a pooled connection, idle for `idle`, must be probed (a
/// non-blocking peek: has the peer closed it, or sent bytes nobody asked
/// for?) before `attempt` of a `method` request is sent on it.
///
/// The probe costs system calls on every reuse, so it is skipped where a
/// stale connection costs little: a request that
/// [`may_retry_on_fresh`] (idempotent, first attempt) on a connection
/// idle for less than [`PROBE_AFTER_IDLE`]: peers close idle connections
/// after their keep-alive timeout (seconds), and if one did close it
/// sooner, the request fails before any response byte and is sent again.
/// A POST, a retry, or a connection idle longer is always probed.
///
/// ```
/// use std::time::Duration;
/// use mpnet_core::pool::must_probe;
/// use mpnet_core::request::Method;
/// let ms = Duration::from_millis;
/// assert!(!must_probe(Method::Get, ms(5), 0));
/// assert!(must_probe(Method::Get, ms(1500), 0));
/// assert!(must_probe(Method::Get, ms(5), 1)); // the retry
/// assert!(must_probe(Method::Post, ms(5), 0));
/// ```
pub fn must_probe(method: crate::request::Method, idle: Duration, attempt: u32) -> bool {
    !may_retry_on_fresh(method, true, attempt) || idle >= PROBE_AFTER_IDLE
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;

    fn key(url: &str) -> PoolKey {
        PoolKey::new(&Target::parse(url, &Limits::default()).unwrap(), None)
    }

    #[test]
    fn reuse_is_per_origin() {
        let mut pool = Pool::new(PoolConfig::default());
        let now = Instant::now();
        pool.put(key("https://a.example/x"), 1, now);
        assert_eq!(pool.take(&key("https://a.example:8443/"), now), None);
        assert_eq!(pool.take(&key("https://b.example/"), now), None);
        assert_eq!(pool.take(&key("https://a.example/y?z"), now), Some(1));
    }

    #[test]
    fn idle_connections_expire() {
        let config = PoolConfig {
            idle_timeout: Duration::from_secs(5),
            ..PoolConfig::default()
        };
        let mut pool = Pool::new(config);
        let t0 = Instant::now();
        pool.put(key("https://a.example/"), 1, t0);
        pool.put(key("https://b.example/"), 2, t0 + Duration::from_secs(3));
        assert_eq!(pool.poll_timeout(), Some(t0 + Duration::from_secs(5)));
        pool.handle_timeout(t0 + Duration::from_secs(6));
        assert_eq!(pool.idle_count(), 1);
        assert_eq!(
            pool.take(&key("https://a.example/"), t0 + Duration::from_secs(6)),
            None
        );
        assert_eq!(
            pool.take(&key("https://b.example/"), t0 + Duration::from_secs(9)),
            None
        );
    }

    #[test]
    fn an_idle_timeout_too_large_for_the_clock_never_expires_and_never_panics() {
        let config = PoolConfig {
            idle_timeout: Duration::MAX,
            ..PoolConfig::default()
        };
        let mut pool = Pool::new(config);
        let t0 = Instant::now();
        pool.put(key("https://a.example/"), 1, t0);
        let next = pool.poll_timeout().expect("one idle connection");
        assert!(next > t0 + Duration::from_secs(86_400));
        pool.handle_timeout(t0 + Duration::from_secs(86_400));
        assert_eq!(pool.take(&key("https://a.example/"), t0), Some(1));
    }

    #[test]
    fn bounds_evict_the_oldest() {
        let config = PoolConfig {
            max_idle_per_origin: 2,
            max_idle: 3,
            ..PoolConfig::default()
        };
        let mut pool = Pool::new(config);
        let t0 = Instant::now();
        for i in 0..3 {
            pool.put(key("https://a.example/"), i, t0 + Duration::from_millis(i));
        }
        assert_eq!(pool.idle_count(), 2);
        pool.put(
            key("https://b.example/"),
            10,
            t0 + Duration::from_millis(10),
        );
        pool.put(
            key("https://c.example/"),
            20,
            t0 + Duration::from_millis(20),
        );
        assert_eq!(pool.idle_count(), 3);
        // The oldest (a's connection 1) went first.
        let now = t0 + Duration::from_millis(30);
        assert_eq!(pool.take(&key("https://a.example/"), now), Some(2));
        assert_eq!(pool.take(&key("https://a.example/"), now), None);
    }

    #[test]
    fn only_idempotent_methods_are_retried_once() {
        use crate::request::Method;
        assert!(may_retry_on_fresh(Method::Get, true, 0));
        assert!(!may_retry_on_fresh(Method::Get, true, 1));
        assert!(!may_retry_on_fresh(Method::Get, false, 0));
        assert!(!may_retry_on_fresh(Method::Post, true, 0));
    }
}
