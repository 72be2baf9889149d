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

    /// Forgets the socket before its connection goes back to the pool,
    /// where a late [`cancel`](Self::cancel) must not reach it (it may
    /// carry another call by then). Returns whether the call was cancelled
    /// already: its socket may be shut down, so it must not be reused.
    pub(crate) fn unwatch(&self) -> bool {
        if !self.cancellable {
            return self.is_cancelled();
        }
        let mut slot = self.socket.lock().unwrap_or_else(|p| p.into_inner());
        *slot = None;
        self.is_cancelled()
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn pair() -> (Arc<TcpStream>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let client = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
        let (server, _) = listener.accept().unwrap_or_else(|e| panic!("{e}"));
        (Arc::new(client), server)
    }

    /// A cancel after `unwatch` (the connection went back to the pool)
    /// leaves the socket working; one before it says so.
    #[test]
    fn a_late_cancel_does_not_reach_an_unwatched_socket() {
        let (client, mut server) = pair();
        let cancel = Cancel::default();
        cancel.watch(&client);
        assert!(!cancel.unwatch(), "not cancelled yet");
        cancel.cancel();
        (&*client)
            .write_all(b"still open")
            .unwrap_or_else(|e| panic!("the unwatched socket was shut down: {e}"));
        let mut got = [0u8; 10];
        server
            .read_exact(&mut got)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&got, b"still open");

        let (client, _server) = pair();
        let cancel = Cancel::default();
        cancel.watch(&client);
        cancel.cancel();
        assert!(cancel.unwatch(), "cancelled before: not to be reused");
        assert!(
            (&*client).write_all(b"x").is_err(),
            "a watched socket is shut down"
        );
    }
}
