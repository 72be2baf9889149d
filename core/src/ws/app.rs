//! The app-level socket rules of SPEC §7 as bookkeeping: one app socket,
//! and up to 5 `SocketTask`s, tracked by id. The transports own the
//! threads, tasks and [`Connection`](super::Connection)s; they ask this
//! table what a new `connectSocket` means and tell it what happened.
//!
//! The app socket (`multiple: false`):
//!
//! ```text
//!             connect(false)            opened(id)              closing(id)
//!  (none) ------------------> Connecting ---------> Open ----------------> Closing
//!    ^                            |                  |                        |
//!    |    finished(id)            | connect(false):  | connect(false): Previous::Close(old)
//!    +----------------------------+ Previous::       |  (old.supersede(now): its close
//!         (connect failed or      | FailConnect(old) |   event, 1000, is delivered first;
//!          close event delivered) | (fail it with 2) |   it finishes in the background)
//!                                 v                  v
//!                          the new id is the app socket, Connecting
//! ```
//!
//! Tasks (`multiple: true`): each is `Connecting -> Open -> Closing ->
//! (removed by finished)`. At most [`MAX_SOCKET_TASKS`] are connecting or
//! open at once; one more is error 2 ("too many sockets"). Closing tasks do
//! not count. Tasks and the app socket do not affect each other.

use crate::{Error, ErrorKind};

/// Most `SocketTask`s open or connecting at once (SPEC §7).
pub const MAX_SOCKET_TASKS: usize = 5;

/// Identifies one socket (a connect attempt and the connection it becomes)
/// for the app's lifetime; never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(u64);

impl SocketId {
    /// The number inside (for logs).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// Which kind of socket an id is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    /// The app's one socket (`connectSocket` without `multiple`).
    App,
    /// A `SocketTask` (`multiple: true`).
    Task,
}

impl SlotKind {
    /// The kind a `connectSocket` asks for: a task with `multiple: true`,
    /// else the app socket.
    #[must_use]
    pub fn for_multiple(multiple: bool) -> SlotKind {
        if multiple {
            SlotKind::Task
        } else {
            SlotKind::App
        }
    }
}

/// Where a socket is in its life, as far as the app rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// TCP, TLS or the handshake is under way.
    Connecting,
    /// The handshake succeeded.
    Open,
    /// Closing (closeSocket, a failure); its close event is not delivered yet.
    Closing,
}

/// What happens to the app socket a new `connectSocket` replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Previous {
    /// It was still connecting: fail that connect with
    /// [`superseded_error`] (code 2) and drop it; it delivers no events.
    FailConnect(SocketId),
    /// It was open or closing: call
    /// [`Connection::supersede`](super::Connection::supersede) on it and
    /// deliver its events (its close event, code 1000) before the new
    /// socket's; keep driving it until it terminates, then call
    /// [`SocketSlots::finished`] for it (a no-op for the table).
    Close(SocketId),
}

/// The answer to a `connectSocket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct ConnectPlan {
    /// The new socket's id.
    pub id: SocketId,
    /// App socket or task.
    pub kind: SlotKind,
    /// For an app socket: the one it replaces, to deal with first.
    pub previous: Option<Previous>,
}

/// The error a superseded connect fails with (SPEC §7: 2).
pub fn superseded_error() -> Error {
    Error::new(
        ErrorKind::Superseded,
        "connectSocket was superseded by a newer connectSocket before the socket opened",
    )
}

/// The table of an app's sockets. See the module docs.
///
/// ```
/// use mpnet_core::ws::app::{Previous, SocketSlots};
/// let mut slots = SocketSlots::new();
/// let first = slots.connect(false).unwrap();
/// slots.opened(first.id).unwrap();
/// let second = slots.connect(false).unwrap();
/// assert_eq!(second.previous, Some(Previous::Close(first.id)));
/// assert_eq!(slots.app_socket(), Some((second.id, mpnet_core::ws::app::Phase::Connecting)));
/// ```
#[derive(Debug, Clone)]
pub struct SocketSlots {
    next_id: u64,
    max_tasks: usize,
    app: Option<(SocketId, Phase)>,
    tasks: Vec<(SocketId, Phase)>,
}

impl Default for SocketSlots {
    fn default() -> Self {
        SocketSlots::new()
    }
}

impl SocketSlots {
    /// An empty table with the SPEC's limit of 5 tasks.
    pub fn new() -> Self {
        SocketSlots::with_max_tasks(MAX_SOCKET_TASKS)
    }

    /// An empty table allowing `max_tasks` tasks open or connecting.
    pub fn with_max_tasks(max_tasks: usize) -> Self {
        SocketSlots {
            next_id: 1,
            max_tasks,
            app: None,
            tasks: Vec::new(),
        }
    }

    /// A `connectSocket` call. `multiple: true` makes a task: error 2 (too
    /// many sockets) when [`MAX_SOCKET_TASKS`] are already open or
    /// connecting. `multiple: false` makes the new app socket; the plan
    /// says what to do with the one it replaces. The transport checks the
    /// options (building the handshake) before calling this, so a connect
    /// with bad options replaces nothing.
    pub fn connect(&mut self, multiple: bool) -> Result<ConnectPlan, Error> {
        if multiple {
            let live = self.active_tasks();
            if live >= self.max_tasks {
                return Err(Error::new(
                    ErrorKind::TooManySockets,
                    format!(
                        "too many sockets: {live} SocketTasks are open or connecting (at most {})",
                        self.max_tasks
                    ),
                ));
            }
            let id = self.fresh_id();
            self.tasks.push((id, Phase::Connecting));
            return Ok(ConnectPlan {
                id,
                kind: SlotKind::Task,
                previous: None,
            });
        }
        let id = self.fresh_id();
        let previous = match self.app.replace((id, Phase::Connecting)) {
            None => None,
            Some((old, Phase::Connecting)) => Some(Previous::FailConnect(old)),
            Some((old, Phase::Open | Phase::Closing)) => Some(Previous::Close(old)),
        };
        Ok(ConnectPlan {
            id,
            kind: SlotKind::App,
            previous,
        })
    }

    /// The handshake of `id` succeeded. Error 2 ([`superseded_error`]) when
    /// `id` is no longer a connecting socket of this table (a newer connect
    /// replaced it meanwhile): drop that connection without any event.
    pub fn opened(&mut self, id: SocketId) -> Result<(), Error> {
        match self.slot_mut(id) {
            Some(phase @ Phase::Connecting) => {
                *phase = Phase::Open;
                Ok(())
            }
            _ => Err(superseded_error()),
        }
    }

    /// `id` started closing (closeSocket, `SocketTask.close`, a failure):
    /// a closing task no longer counts towards the limit.
    pub fn closing(&mut self, id: SocketId) {
        if let Some(phase) = self.slot_mut(id) {
            *phase = Phase::Closing;
        }
    }

    /// `id` is over: its connect failed, or its close event was delivered.
    /// Unknown ids (already replaced) are ignored.
    pub fn finished(&mut self, id: SocketId) {
        if matches!(self.app, Some((app, _)) if app == id) {
            self.app = None;
        }
        self.tasks.retain(|(task, _)| *task != id);
    }

    /// The current app socket and its phase (`sendSocketMessage` and
    /// `closeSocket` go to it; when it is not open they fail with 10).
    pub fn app_socket(&self) -> Option<(SocketId, Phase)> {
        self.app
    }

    /// The kind and phase of `id`, if the table tracks it.
    pub fn phase(&self, id: SocketId) -> Option<(SlotKind, Phase)> {
        match self.app {
            Some((app, phase)) if app == id => Some((SlotKind::App, phase)),
            _ => self
                .tasks
                .iter()
                .find(|(task, _)| *task == id)
                .map(|(_, phase)| (SlotKind::Task, *phase)),
        }
    }

    /// How many tasks are connecting or open.
    pub fn active_tasks(&self) -> usize {
        self.tasks
            .iter()
            .filter(|(_, phase)| *phase != Phase::Closing)
            .count()
    }

    fn fresh_id(&mut self) -> SocketId {
        let id = SocketId(self.next_id);
        self.next_id += 1;
        id
    }

    fn slot_mut(&mut self, id: SocketId) -> Option<&mut Phase> {
        match &mut self.app {
            Some((app, phase)) if *app == id => Some(phase),
            _ => self
                .tasks
                .iter_mut()
                .find(|(task, _)| *task == id)
                .map(|(_, phase)| phase),
        }
    }
}
