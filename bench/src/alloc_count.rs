//! A counting global allocator: [`System`] with a per-thread count of
//! allocations and allocated bytes, so a scenario counts what its own
//! thread allocates and nothing the server threads do.
//!
//! This is the crate's one `unsafe` module: `GlobalAlloc` is an unsafe
//! trait. Each method only forwards to `System` with the caller's own
//! arguments (so `System`'s contract is the caller's) and bumps two
//! thread-local `Cell<u64>`s. The counters are `const`-initialised and have
//! no destructor, so touching them never allocates and is valid for the
//! whole life of every thread (`try_with` covers thread teardown anyway).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

/// The allocator: `System`, counted.
pub struct Counting;

#[global_allocator]
static GLOBAL: Counting = Counting;

fn count(size: usize) {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
    let _ = BYTES.try_with(|c| c.set(c.get() + size as u64));
}

// SAFETY: every method forwards to `System` with the arguments it was given;
// the counting touches only thread-local cells and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations (alloc, alloc_zeroed and realloc calls) and bytes requested
/// by the current thread so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Calls.
    pub allocs: u64,
    /// Bytes asked for.
    pub bytes: u64,
}

impl Counts {
    /// The current thread's counts.
    pub fn now() -> Counts {
        Counts {
            allocs: ALLOCS.try_with(Cell::get).unwrap_or(0),
            bytes: BYTES.try_with(Cell::get).unwrap_or(0),
        }
    }

    /// What was counted since `earlier`.
    pub fn since(earlier: Counts) -> Counts {
        let now = Counts::now();
        Counts {
            allocs: now.allocs - earlier.allocs,
            bytes: now.bytes - earlier.bytes,
        }
    }
}

/// Runs `f` and returns what the current thread allocated meanwhile.
pub fn counting<T>(f: impl FnOnce() -> T) -> (T, Counts) {
    let before = Counts::now();
    let out = f();
    (out, Counts::since(before))
}
