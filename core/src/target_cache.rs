//! A small, bounded memo of URL parses, one per app context, so a page that
//! calls `my.request` on the same URL again and again parses it once.
//!
//! - **Key**: the exact `url` option string (no trimming, no case folding).
//!   The limits are the context's and never change, so the URL alone
//!   decides the result of [`Target::parse`].
//! - **Value**: the parsed [`Target`]; a hit hands out a clone, which
//!   allocates nothing ([`Target`] shares its text).
//! - **Errors are not cached**: a URL that fails to parse is parsed again
//!   next time and fails with the same [`UrlError`].
//! - **Bounds**: at most [`TARGET_CACHE_ENTRIES`] entries, and only URLs of
//!   at most [`TARGET_CACHE_MAX_URL_BYTES`] bytes are kept (longer ones are
//!   parsed every time). When full, a new URL replaces the oldest entry
//!   (first in, first out). The memory held is bounded by those two
//!   numbers (the key plus a target text at most about three times as long,
//!   as percent-encoding may grow it).
//! - **Look-up** hashes and compares the `&str` given: no allocation. A miss
//!   parses outside the lock, then stores one copy of the key.
//! - **Locking**: one `std::sync::Mutex`, held only to look up or insert.
//!   A poisoned lock is never unwrapped: the cache is bypassed and the URL
//!   parsed as if it were not there.
//! - **Policy is not cached**: only the parse is. Callers still run
//!   [`crate::AppContext::check_target`] on every request (SPEC §3).
//!
//! The hash is FNV-1a with fixed constants: deterministic, no random seed
//! (SPEC §2: the core draws no random numbers). The table is too small for
//! collisions to matter: the full key is always compared.

use std::fmt;
use std::sync::Mutex;

use crate::target::{Target, UrlError};
use crate::Limits;

/// Most URLs a [`TargetCache`] holds.
pub const TARGET_CACHE_ENTRIES: usize = 64;

/// Longest URL (in bytes) a [`TargetCache`] keeps; longer ones are parsed
/// every time.
pub const TARGET_CACHE_MAX_URL_BYTES: usize = 1024;

/// A bounded memo of [`Target::parse`] results keyed by the URL string. See
/// the module docs for the contract.
///
/// ```
/// use mpnet_core::target_cache::TargetCache;
/// use mpnet_core::{Limits, Target};
/// let cache = TargetCache::new();
/// let limits = Limits::default();
/// let a = cache.parse("https://api.example.com/x?y=1", &limits).unwrap();
/// let b = cache.parse("https://api.example.com/x?y=1", &limits).unwrap();
/// assert_eq!(a, b);
/// assert_eq!(a, Target::parse("https://api.example.com/x?y=1", &limits).unwrap());
/// assert_eq!(cache.len(), 1);
/// ```
pub struct TargetCache {
    slots: Mutex<Slots>,
}

/// The entries, in insertion order up to the bound; then `next` is the
/// oldest, replaced by the next insert.
#[derive(Default)]
struct Slots {
    entries: Vec<Entry>,
    next: usize,
}

struct Entry {
    hash: u64,
    url: Box<str>,
    target: Target,
}

impl TargetCache {
    /// An empty cache. Allocates nothing until the first insert.
    pub fn new() -> Self {
        TargetCache {
            slots: Mutex::new(Slots::default()),
        }
    }

    /// [`Target::parse`]`(url, limits)`, memoised: returns a target equal to
    /// a fresh parse, and the same error when the parse fails.
    ///
    /// The cache must always be used with the same `limits` (an
    /// [`crate::AppContext`] passes its own, which never change): the key
    /// is the URL alone.
    pub fn parse(&self, url: &str, limits: &Limits) -> Result<Target, UrlError> {
        if url.len() > TARGET_CACHE_MAX_URL_BYTES {
            return Target::parse(url, limits);
        }
        let hash = fnv1a(url);
        if let Ok(slots) = self.slots.lock() {
            if let Some(target) = slots.get(hash, url) {
                return Ok(target.clone());
            }
        }
        let target = Target::parse(url, limits)?;
        if let Ok(mut slots) = self.slots.lock() {
            slots.insert(hash, url, &target);
        }
        Ok(target)
    }

    /// How many URLs are held (0 when the lock is poisoned).
    pub fn len(&self) -> usize {
        self.slots.lock().map_or(0, |s| s.entries.len())
    }

    /// Whether no URL is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for TargetCache {
    fn default() -> Self {
        TargetCache::new()
    }
}

impl fmt::Debug for TargetCache {
    /// The number of entries and the bound, not the URLs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TargetCache");
        match self.slots.lock() {
            Ok(s) => d.field("len", &s.entries.len()),
            Err(_) => d.field("len", &"poisoned"),
        };
        d.field("capacity", &TARGET_CACHE_ENTRIES).finish()
    }
}

impl Slots {
    fn get(&self, hash: u64, url: &str) -> Option<&Target> {
        self.entries
            .iter()
            .find(|e| e.hash == hash && &*e.url == url)
            .map(|e| &e.target)
    }

    /// Stores `url` unless it is there already (two threads may miss the
    /// same URL at once); when full, replaces the oldest entry.
    fn insert(&mut self, hash: u64, url: &str, target: &Target) {
        if self.get(hash, url).is_some() {
            return;
        }
        let entry = Entry {
            hash,
            url: url.into(),
            target: target.clone(),
        };
        if self.entries.len() < TARGET_CACHE_ENTRIES {
            self.entries.push(entry);
        } else if let Some(slot) = self.entries.get_mut(self.next) {
            *slot = entry;
            self.next = (self.next + 1) % TARGET_CACHE_ENTRIES;
        }
    }
}

/// FNV-1a, 64 bits: fixed constants, so the same on every run.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn hit_equals_fresh_parse() {
        let cache = TargetCache::new();
        for url in [
            "https://api.example.com/a/b?x='1'#frag",
            "https://127.0.0.1:8443/1k",
            "  https://Example.COM./p q?c d  ",
            "wss://[::1]:9000/s",
            "https://a.com:443/",
            "https://a.com/p?",
        ] {
            let fresh = Target::parse(url, &limits()).unwrap_or_else(|e| panic!("{url}: {e}"));
            let first = cache.parse(url, &limits());
            let second = cache.parse(url, &limits());
            assert_eq!(first.as_ref(), Ok(&fresh), "{url}");
            assert_eq!(second.as_ref(), Ok(&fresh), "{url}");
            let second = second.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(second.to_string(), fresh.to_string(), "{url}");
            assert_eq!(second.request_target(), fresh.request_target(), "{url}");
            assert_eq!(second.host_header(), fresh.host_header(), "{url}");
            assert_eq!(second.explicit_port(), fresh.explicit_port(), "{url}");
        }
        assert_eq!(cache.len(), 6);
    }

    #[test]
    fn key_is_the_exact_string() {
        let cache = TargetCache::new();
        let a = cache.parse("https://a.com/x", &limits());
        let b = cache.parse("https://A.com/x", &limits());
        let c = cache.parse(" https://a.com/x", &limits());
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn errors_are_identical_and_not_cached() {
        let cache = TargetCache::new();
        let small = Limits {
            max_url_bytes: 20,
            ..Limits::default()
        };
        for (url, limits) in [
            ("", limits()),
            ("https://a.com/\tx", limits()),
            ("ftp://a.com/", limits()),
            ("https://user@a.com/", limits()),
            ("https://a..b/", limits()),
            ("/relative", limits()),
            ("https://example.com/abc", small),
        ] {
            let fresh = Target::parse(url, &limits);
            assert!(fresh.is_err(), "{url}");
            assert_eq!(cache.parse(url, &limits), fresh, "{url}");
            assert_eq!(cache.parse(url, &limits), fresh, "{url} again");
        }
        assert!(cache.is_empty());
    }

    #[test]
    fn the_bound_holds_and_the_oldest_goes_first() {
        let cache = TargetCache::new();
        let url = |i: usize| format!("https://a.com/{i}");
        for i in 0..TARGET_CACHE_ENTRIES + 10 {
            let t = cache
                .parse(&url(i), &limits())
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(t.path(), format!("/{i}"));
            assert!(cache.len() <= TARGET_CACHE_ENTRIES);
        }
        assert_eq!(cache.len(), TARGET_CACHE_ENTRIES);
        let slots = cache.slots.lock().unwrap_or_else(|e| panic!("{e}"));
        // The ten oldest were replaced; the rest stay.
        for i in 0..10 {
            assert!(slots.get(fnv1a(&url(i)), &url(i)).is_none(), "{i}");
        }
        for i in 10..TARGET_CACHE_ENTRIES + 10 {
            assert!(slots.get(fnv1a(&url(i)), &url(i)).is_some(), "{i}");
        }
    }

    #[test]
    fn long_urls_are_parsed_but_not_kept() {
        let cache = TargetCache::new();
        let long = format!("https://a.com/{}", "x".repeat(TARGET_CACHE_MAX_URL_BYTES));
        let fresh = Target::parse(&long, &limits());
        assert!(fresh.is_ok());
        assert_eq!(cache.parse(&long, &limits()), fresh);
        assert!(cache.is_empty());
        let fits = format!(
            "https://a.com/{}",
            "x".repeat(TARGET_CACHE_MAX_URL_BYTES - 14)
        );
        assert_eq!(fits.len(), TARGET_CACHE_MAX_URL_BYTES);
        assert!(cache.parse(&fits, &limits()).is_ok());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_hit_shares_the_text_and_append_query_copies() {
        let cache = TargetCache::new();
        let url = "https://a.com/p?x=1";
        let first = cache
            .parse(url, &limits())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut second = cache
            .parse(url, &limits())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(Arc::ptr_eq(&first.text_arc(), &second.text_arc()));
        second.append_query("y=2");
        assert_eq!(second.request_target(), "/p?x=1&y=2");
        // Neither the first clone nor the cached entry saw the append.
        assert_eq!(first.request_target(), "/p?x=1");
        let third = cache
            .parse(url, &limits())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(third.request_target(), "/p?x=1");
    }

    #[test]
    fn concurrent_use_from_threads() {
        let cache = Arc::new(TargetCache::new());
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let cache = Arc::clone(&cache);
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let url = format!("https://h{}.example.com/{}", (t + i) % 80, i % 3);
                        let got = cache.parse(&url, &limits());
                        assert_eq!(got, Target::parse(&url, &limits()), "{url}");
                    }
                })
            })
            .collect();
        for h in handles {
            assert!(h.join().is_ok());
        }
        assert!(cache.len() <= TARGET_CACHE_ENTRIES);
        // No URL is held twice.
        let slots = cache.slots.lock().unwrap_or_else(|e| panic!("{e}"));
        let mut urls: Vec<&str> = slots.entries.iter().map(|e| &*e.url).collect();
        urls.sort_unstable();
        let n = urls.len();
        urls.dedup();
        assert_eq!(urls.len(), n);
    }

    #[test]
    fn a_poisoned_lock_falls_back_to_parsing() {
        let cache = Arc::new(TargetCache::new());
        let url = "https://a.com/x";
        assert!(cache.parse(url, &limits()).is_ok());
        let poisoner = Arc::clone(&cache);
        let joined = std::thread::spawn(move || {
            let _guard = poisoner.slots.lock();
            panic!("poison the cache's lock");
        })
        .join();
        assert!(joined.is_err());
        assert!(cache.slots.is_poisoned());
        assert_eq!(cache.parse(url, &limits()), Target::parse(url, &limits()));
        let other = "https://b.com/y";
        assert_eq!(
            cache.parse(other, &limits()),
            Target::parse(other, &limits())
        );
        assert_eq!(cache.len(), 0);
        assert!(format!("{cache:?}").contains("poisoned"));
    }
}
