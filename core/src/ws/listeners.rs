//! The listener lists behind `onSocketOpen`/`offSocketOpen` and friends
//! (SPEC §7), as plain data the transports own.
//!
//! ```text
//!  on(cb)      append                      [a, b, a]
//!  off(&cb)    remove every registration   off(a) -> [b]
//!  off_all()   remove all                  []
//!  snapshot()  the callbacks, in order, to call without holding a lock
//! ```
//!
//! - Listeners run in registration order.
//! - Registering the same callback twice calls it twice.
//! - `off(cb)` removes every registration of that callback; identity is the
//!   `Arc` (`Arc::ptr_eq`), so a host keeps the `Arc` it registered to
//!   remove it later.
//! - `off_all()` (JavaScript's `off*()` with no callback) removes them all.
//!
//! A transport keeps a [`SharedListeners`] per socket (the app socket and
//! each `SocketTask`); to deliver an event it takes a snapshot under the
//! lock (an `Arc` of the lists: no copy, no allocation; an `on`/`off` made
//! while a snapshot is held copies the lists first) and calls the
//! listeners after releasing it, so a listener may call `on`/`off` itself.

use std::sync::Arc;

use super::event::{MessageData, SocketEvent};
use crate::Error;

/// The callbacks registered for one event, in registration order. Generic
/// over the callback type `F` (usually `dyn Fn(..) + Send + Sync`).
pub struct Listeners<F: ?Sized> {
    entries: Vec<Arc<F>>,
}

impl<F: ?Sized> Listeners<F> {
    /// No listeners.
    pub fn new() -> Self {
        Listeners {
            entries: Vec::new(),
        }
    }

    /// Registers `cb` at the end (again, if it is already registered).
    pub fn on(&mut self, cb: Arc<F>) {
        self.entries.push(cb);
    }

    /// Removes every registration of `cb` (the same `Arc` allocation);
    /// returns how many were removed.
    pub fn off(&mut self, cb: &Arc<F>) -> usize {
        let before = self.entries.len();
        self.entries.retain(|e| !Arc::ptr_eq(e, cb));
        before - self.entries.len()
    }

    /// Removes every listener.
    pub fn off_all(&mut self) {
        self.entries.clear();
    }

    /// The listeners, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<F>> {
        self.entries.iter()
    }

    /// A copy of the list to call after releasing a lock.
    pub fn snapshot(&self) -> Vec<Arc<F>> {
        self.entries.clone()
    }

    /// How many registrations there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<F: ?Sized> Default for Listeners<F> {
    fn default() -> Self {
        Listeners::new()
    }
}

impl<F: ?Sized> Clone for Listeners<F> {
    fn clone(&self) -> Self {
        Listeners {
            entries: self.entries.clone(),
        }
    }
}

impl<F: ?Sized> std::fmt::Debug for Listeners<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listeners")
            .field("len", &self.entries.len())
            .finish()
    }
}

/// An open listener.
pub type OpenListener = dyn Fn() + Send + Sync;
/// A message listener: `{data, isBuffer}`.
pub type MessageListener = dyn Fn(&MessageData) + Send + Sync;
/// An error listener: read the code with `Api::Socket`.
pub type ErrorListener = dyn Fn(&Error) + Send + Sync;
/// A close listener: `code`, `reason`.
pub type CloseListener = dyn Fn(u16, &str) + Send + Sync;

/// The four listener lists of one socket (SPEC §7: open, error, message,
/// close).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use mpnet_core::ws::listeners::{MessageListener, SocketListeners};
/// use mpnet_core::ws::{MessageData, SocketEvent};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let cb: Arc<MessageListener> = Arc::new(move |m: &MessageData| log.lock().unwrap().push(m.js_data()));
/// let mut listeners = SocketListeners::default();
/// listeners.message.on(cb.clone());
/// listeners.message.on(cb.clone());
/// listeners.dispatch(&SocketEvent::Message { data: MessageData::Text("hi".into()) });
/// assert_eq!(*seen.lock().unwrap(), ["hi", "hi"]);
/// assert_eq!(listeners.message.off(&cb), 2);
/// ```
#[derive(Debug, Clone, Default)]
pub struct SocketListeners {
    /// `onSocketOpen` / `SocketTask.onOpen`.
    pub open: Listeners<OpenListener>,
    /// `onSocketMessage` / `SocketTask.onMessage`.
    pub message: Listeners<MessageListener>,
    /// `onSocketError` / `SocketTask.onError`.
    pub error: Listeners<ErrorListener>,
    /// `onSocketClose` / `SocketTask.onClose`.
    pub close: Listeners<CloseListener>,
}

impl SocketListeners {
    /// Calls the listeners of `event`'s kind, in registration order. Call
    /// it on a clone taken under the transport's lock, not under the lock.
    pub fn dispatch(&self, event: &SocketEvent) {
        match event {
            SocketEvent::Open => self.open.iter().for_each(|cb| cb()),
            SocketEvent::Message { data } => self.message.iter().for_each(|cb| cb(data)),
            SocketEvent::Error(e) => self.error.iter().for_each(|cb| cb(e)),
            SocketEvent::Close { code, reason } => {
                self.close.iter().for_each(|cb| cb(*code, reason))
            }
        }
    }
}

/// A socket's four listener lists behind a lock, with the `on*`/`off*`
/// calls of SPEC §7 — the registry both transports hold for each
/// `SocketTask` and for the app-level `my.onSocket*` listeners.
///
/// `off_*(Some(cb))` removes every registration of `cb`; `off_*(None)`
/// removes all of that event's listeners. Delivery works on a
/// [`snapshot`](Self::snapshot), taken without holding the lock while
/// listeners run: a shared, immutable copy of the lists, so taking one per
/// event costs no allocation; `on`/`off` while a snapshot is held copy the
/// lists first (the snapshot keeps the lists as they were).
#[derive(Debug, Default)]
pub struct SharedListeners {
    inner: std::sync::Mutex<Arc<SocketListeners>>,
}

impl SharedListeners {
    /// A registry holding `listeners` to start with.
    pub fn new(listeners: SocketListeners) -> Self {
        SharedListeners {
            inner: std::sync::Mutex::new(Arc::new(listeners)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Arc<SocketListeners>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the lists (copying them first if a snapshot holds them).
    fn change(&self, f: impl FnOnce(&mut SocketListeners)) {
        f(Arc::make_mut(&mut self.lock()));
    }

    /// The listeners as they are now, to deliver an event to.
    pub fn snapshot(&self) -> Arc<SocketListeners> {
        self.lock().clone()
    }

    /// `onOpen`.
    pub fn on_open(&self, cb: Arc<OpenListener>) {
        self.change(|l| l.open.on(cb));
    }
    /// `onMessage`.
    pub fn on_message(&self, cb: Arc<MessageListener>) {
        self.change(|l| l.message.on(cb));
    }
    /// `onError`.
    pub fn on_error(&self, cb: Arc<ErrorListener>) {
        self.change(|l| l.error.on(cb));
    }
    /// `onClose`.
    pub fn on_close(&self, cb: Arc<CloseListener>) {
        self.change(|l| l.close.on(cb));
    }
    /// `offOpen(cb)`, or every open listener with `None`.
    pub fn off_open(&self, cb: Option<&Arc<OpenListener>>) {
        self.change(|l| off(&mut l.open, cb));
    }
    /// `offMessage(cb)`, or all with `None`.
    pub fn off_message(&self, cb: Option<&Arc<MessageListener>>) {
        self.change(|l| off(&mut l.message, cb));
    }
    /// `offError(cb)`, or all with `None`.
    pub fn off_error(&self, cb: Option<&Arc<ErrorListener>>) {
        self.change(|l| off(&mut l.error, cb));
    }
    /// `offClose(cb)`, or all with `None`.
    pub fn off_close(&self, cb: Option<&Arc<CloseListener>>) {
        self.change(|l| off(&mut l.close, cb));
    }
}

fn off<F: ?Sized>(list: &mut Listeners<F>, cb: Option<&Arc<F>>) {
    match cb {
        Some(cb) => {
            list.off(cb);
        }
        None => list.off_all(),
    }
}
