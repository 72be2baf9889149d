//! Cancellation from any thread: a flag, plus the socket of the connection
//! in use, shut down so that a blocked read or write returns at once.

use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// A cancellation handle shared by a call and whoever may stop it.
#[derive(Debug, Default)]
pub(crate) struct Cancel {
    cancelled: AtomicBool,
    socket: Mutex<Option<TcpStream>>,
}

impl Cancel {
    /// Remembers the socket in use; shuts it down at once if already cancelled.
    pub(crate) fn watch(&self, tcp: &TcpStream) {
        let clone = tcp.try_clone().ok();
        let mut slot = self.socket.lock().unwrap_or_else(|p| p.into_inner());
        *slot = clone;
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
