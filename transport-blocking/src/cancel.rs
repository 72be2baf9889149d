//! Cancellation from any thread: a flag, plus the socket of the connection
//! in use, shut down so that a blocked read or write returns at once.

use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::sync::Mutex;

/// A cancellation handle shared by a call and whoever may stop it.
#[derive(Debug)]
pub(crate) struct Cancel {
    cancelled: AtomicBool,
    /// False for calls nobody else holds a handle to (`Client::request`):
    /// watching their socket would be wasted work.
    cancellable: bool,
    socket: Mutex<Option<Arc<TcpStream>>>,
}

impl Default for Cancel {
    fn default() -> Self {
        Cancel {
            cancelled: AtomicBool::new(false),
            cancellable: true,
            socket: Mutex::new(None),
        }
    }
}

impl Cancel {
    /// For a call that nothing can cancel: `watch` does nothing.
    pub(crate) fn inert() -> Self {
        Cancel {
            cancellable: false,
            ..Cancel::default()
        }
    }

    /// Remembers the socket in use; shuts it down at once if already cancelled.
    pub(crate) fn watch(&self, tcp: &Arc<TcpStream>) {
        if !self.cancellable {
            return;
        }
        let mut slot = self.socket.lock().unwrap_or_else(|p| p.into_inner());
        *slot = Some(tcp.clone());
        if self.is_cancelled() {
            if let Some(s) = slot.as_ref() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    /// Stops the call: sets the flag and shuts the socket down.
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        let slot = self.socket.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = slot.as_ref() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
}
