//! Where a socket's events go (SPEC §7), the same for every transport: to
//! the socket's own listeners, then, for the app socket, to the app-level
//! `my.onSocket*` ones; one at a time, in order, with no lock held (a
//! listener may call `send`, `close` or `connectSocket` itself); and the
//! slot table told when a socket closes.
//!
//! An [`AppRoute`] is one app's: its [`SocketSlots`], its app-level
//! listeners, and the [`Dispatcher`] the app socket's events share with
//! them, which is what puts a replaced socket's close event before the new
//! socket's open event. An [`EventRoute`] is one socket's. Transports hold
//! both and call [`EventRoute::deliver`] with what the core's
//! [`Connection`](super::Connection) gave them; no I/O happens here.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use mpnet_core::ws::listeners::SocketListeners;
//! use mpnet_core::ws::route::{AppRoute, EventRoute};
//! use mpnet_core::ws::SocketEvent;
//!
//! let app = Arc::new(AppRoute::new());
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let s = seen.clone();
//! app.listeners().on_open(Arc::new(move || s.lock().unwrap().push("app: open")));
//! let plan = app.plan(false).unwrap();
//! let route = EventRoute::new(app.clone(), Some(plan.id), plan.kind, SocketListeners::default());
//! let s = seen.clone();
//! route.listeners().on_open(Arc::new(move || s.lock().unwrap().push("socket: open")));
//! route.opened().unwrap();
//! route.deliver(vec![SocketEvent::Open]);
//! assert_eq!(*seen.lock().unwrap(), ["socket: open", "app: open"]);
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::context::AppContext;
use crate::dispatch::{Dispatcher, Queued};
use crate::Error;

use super::app::{ConnectPlan, SlotKind, SocketId, SocketSlots};
use super::listeners::{SharedListeners, SocketListeners};
use super::{ClientHandshake, ConnectOptions, SocketEvent};

/// One app's sockets: the slot table (one app socket, at most 5 tasks),
/// the app-level listeners, and the dispatcher the app socket's events go
/// through. See the module docs.
#[derive(Debug, Default)]
pub struct AppRoute {
    slots: Mutex<SocketSlots>,
    listeners: SharedListeners,
    dispatcher: Dispatcher,
}

impl AppRoute {
    /// An app with no socket yet and no app-level listener.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn slots(&self) -> MutexGuard<'_, SocketSlots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The app-level listeners (`my.onSocketOpen` and the others).
    pub fn listeners(&self) -> &SharedListeners {
        &self.listeners
    }

    /// What a new `connectSocket` means ([`SocketSlots::connect`]): its id,
    /// and for an app socket the one it replaces. Error 2 when 5 tasks are
    /// connecting or open.
    pub fn plan(&self, multiple: bool) -> Result<ConnectPlan, Error> {
        self.slots().connect(multiple)
    }

    /// A `connectSocket` of this app: its options and URL checked
    /// ([`ClientHandshake::new`], with `key` as the handshake's random key),
    /// then the slot table asked ([`plan`](Self::plan)). A connect that
    /// cannot start (codes 3-5, 8, 13) is refused before the table is
    /// asked, so it leaves the existing sockets alone.
    pub fn plan_connect(
        &self,
        ctx: &AppContext,
        opts: &ConnectOptions,
        key: [u8; 16],
    ) -> Result<(ClientHandshake, ConnectPlan), Error> {
        let handshake = ClientHandshake::new(ctx, opts, key)?;
        Ok((handshake, self.plan(opts.multiple)?))
    }
}

/// Where one socket's events go. See the module docs.
#[derive(Debug)]
pub struct EventRoute {
    /// `None` when the connect was refused before it started (its failure
    /// is the only thing it reports).
    id: Option<SocketId>,
    kind: SlotKind,
    listeners: SharedListeners,
    /// A task's own; the app socket uses the app's.
    dispatcher: Dispatcher,
    app: Arc<AppRoute>,
    superseded: AtomicBool,
}

impl EventRoute {
    /// The route of socket `id` (of `kind`) of `app`, with `listeners` (the
    /// socket's own) to start with.
    pub fn new(
        app: Arc<AppRoute>,
        id: Option<SocketId>,
        kind: SlotKind,
        listeners: SocketListeners,
    ) -> Arc<EventRoute> {
        Arc::new(EventRoute {
            id,
            kind,
            listeners: SharedListeners::new(listeners),
            dispatcher: Dispatcher::new(),
            app,
            superseded: AtomicBool::new(false),
        })
    }

    /// The socket's id (`None`: refused before it started).
    pub fn id(&self) -> Option<SocketId> {
        self.id
    }

    /// App socket or task.
    pub fn kind(&self) -> SlotKind {
        self.kind
    }

    /// The socket's own listeners (`SocketTask.onOpen` and the others).
    pub fn listeners(&self) -> &SharedListeners {
        &self.listeners
    }

    /// Delivers `events` in order: each to the socket's listeners, then (the
    /// app socket) to the app-level ones, through the dispatcher, so with
    /// no lock held and never two at once. A close event frees the
    /// socket's slot first. A superseded socket delivers nothing (its close
    /// event went out when it was replaced).
    ///
    /// Events a transport makes under its own lock go through
    /// [`queue`](Self::queue) instead, so that two threads' events cannot
    /// overtake each other between that lock and this call.
    pub fn deliver(self: &Arc<Self>, events: Vec<SocketEvent>) {
        self.queue(events).run();
    }

    /// [`deliver`](Self::deliver) in two steps: queue `events` while the
    /// lock they were made under is held (they go out in the order that
    /// lock was taken, whichever thread delivers first), then
    /// [`Queued::run`] once it is released. Nothing is queued for a
    /// superseded socket.
    pub fn queue(self: &Arc<Self>, events: Vec<SocketEvent>) -> Queued<'_> {
        if events.is_empty() || self.is_superseded() {
            return self.dispatcher().nothing();
        }
        let me = self.clone();
        self.dispatcher().queue(move || me.dispatch(&events))
    }

    /// [`queue`](Self::queue), with `first` run in the same job just before
    /// the events: a connect's `success` callback before its open event
    /// (SPEC §7), in order with anything else the socket delivers. When
    /// the socket is superseded by then (or by `first` itself: a `success`
    /// callback that calls `connectSocket` again), `first` still runs and
    /// the events are dropped.
    pub fn queue_after(
        self: &Arc<Self>,
        first: impl FnOnce() + Send + 'static,
        events: Vec<SocketEvent>,
    ) -> Queued<'_> {
        let me = self.clone();
        self.dispatcher().queue(move || {
            first();
            if !me.is_superseded() {
                me.dispatch(&events);
            }
        })
    }

    /// The app's dispatcher for the app socket, the socket's own for a task.
    fn dispatcher(&self) -> &Dispatcher {
        match self.kind {
            SlotKind::App => &self.app.dispatcher,
            SlotKind::Task => &self.dispatcher,
        }
    }

    /// Runs the listeners of `events` (inside a dispatcher job).
    fn dispatch(&self, events: &[SocketEvent]) {
        for event in events {
            if matches!(event, SocketEvent::Close { .. }) {
                self.finished();
            }
            self.listeners.snapshot().dispatch(event);
            if self.kind == SlotKind::App {
                self.app.listeners.snapshot().dispatch(event);
            }
        }
    }

    /// From now on the socket delivers nothing: a newer `connectSocket`
    /// replaced it (after its close event, if it was open).
    pub fn supersede(&self) {
        self.superseded.store(true, Ordering::SeqCst);
    }

    /// Whether [`supersede`](Self::supersede) was called.
    pub fn is_superseded(&self) -> bool {
        self.superseded.load(Ordering::SeqCst)
    }

    /// Tells the slot table the handshake succeeded. Error 2 when the
    /// socket was superseded meanwhile (its connect failed already).
    pub fn opened(&self) -> Result<(), Error> {
        match self.id {
            Some(id) => self.app.slots().opened(id),
            None => Ok(()),
        }
    }

    /// Tells the slot table the socket is closing (`closeSocket`).
    pub fn closing(&self) {
        if let Some(id) = self.id {
            self.app.slots().closing(id);
        }
    }

    /// Frees the socket's slot: its connect failed, or its close event is
    /// being delivered.
    pub fn finished(&self) {
        if let Some(id) = self.id {
            self.app.slots().finished(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::app::MAX_SOCKET_TASKS;
    use crate::ws::MessageData;

    fn close() -> SocketEvent {
        SocketEvent::Close {
            code: 1000,
            reason: String::new(),
        }
    }

    /// A route whose own listeners and the app's log into `seen`.
    fn logged(
        app: &Arc<AppRoute>,
        multiple: bool,
        seen: &Arc<Mutex<Vec<String>>>,
        name: &'static str,
    ) -> Arc<EventRoute> {
        let plan = app.plan(multiple).expect("plan");
        let route = EventRoute::new(
            app.clone(),
            Some(plan.id),
            plan.kind,
            SocketListeners::default(),
        );
        let s = seen.clone();
        route
            .listeners()
            .on_message(Arc::new(move |m: &MessageData| {
                s.lock().unwrap().push(format!("{name}: {}", m.js_data()));
            }));
        let s = seen.clone();
        route.listeners().on_close(Arc::new(move |code, _: &str| {
            s.lock().unwrap().push(format!("{name}: close {code}"))
        }));
        route
    }

    #[test]
    fn the_app_socket_reaches_the_app_listeners_after_its_own_and_a_task_only_its_own() {
        let app = Arc::new(AppRoute::new());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        app.listeners().on_message(Arc::new(move |m: &MessageData| {
            s.lock().unwrap().push(format!("app: {}", m.js_data()));
        }));
        let socket = logged(&app, false, &seen, "socket");
        let task = logged(&app, true, &seen, "task");
        let message = |t: &str| SocketEvent::Message {
            data: MessageData::Text(t.into()),
        };
        socket.deliver(vec![message("a")]);
        task.deliver(vec![message("b")]);
        assert_eq!(*seen.lock().unwrap(), ["socket: a", "app: a", "task: b"]);
    }

    #[test]
    fn a_close_event_frees_the_slot_and_a_superseded_socket_delivers_nothing() {
        let app = Arc::new(AppRoute::new());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..MAX_SOCKET_TASKS)
            .map(|_| logged(&app, true, &seen, "task"))
            .collect();
        assert!(app.plan(true).is_err(), "a sixth task is refused (2)");
        tasks[0].deliver(vec![close()]);
        assert_eq!(*seen.lock().unwrap(), ["task: close 1000"]);
        let sixth = app.plan(true).expect("the closed task's slot is free");
        assert_ne!(Some(sixth.id), tasks[0].id());

        tasks[1].supersede();
        tasks[1].deliver(vec![close()]);
        assert_eq!(seen.lock().unwrap().len(), 1, "nothing after supersede");
    }

    /// SPEC §7 order (messages, then at most one error, then exactly one
    /// close): the reader made a message under the socket's lock, then the
    /// writer failed the connection under it; the writer delivers first.
    #[test]
    fn events_queued_under_the_sockets_lock_keep_its_order_whoever_delivers_first() {
        let app = Arc::new(AppRoute::new());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let socket = logged(&app, false, &seen, "socket");
        let io = Mutex::new(());
        let reader = {
            let _io = io.lock().unwrap();
            socket.queue(vec![SocketEvent::Message {
                data: MessageData::Text("m".into()),
            }])
        };
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let writer = {
                    let _io = io.lock().unwrap();
                    socket.queue(vec![close()])
                };
                writer.run();
            });
        });
        assert!(seen.lock().unwrap().is_empty(), "the reader delivers both");
        reader.run();
        assert_eq!(*seen.lock().unwrap(), ["socket: m", "socket: close 1000"]);
    }

    #[test]
    fn queue_after_runs_its_first_step_just_before_the_events_and_always() {
        let app = Arc::new(AppRoute::new());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let task = logged(&app, true, &seen, "task");
        let s = seen.clone();
        task.queue_after(
            move || s.lock().unwrap().push("success".into()),
            vec![close()],
        )
        .run();
        assert_eq!(*seen.lock().unwrap(), ["success", "task: close 1000"]);

        task.supersede();
        let s = seen.clone();
        task.queue_after(
            move || s.lock().unwrap().push("first".into()),
            vec![close()],
        )
        .run();
        assert_eq!(seen.lock().unwrap().len(), 3, "first runs, no events");
    }
}
