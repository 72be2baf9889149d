//! Cancellation from any thread: a signal that a spawned request races
//! against. When the signal wins, the request's future is dropped, and with
//! it the connection it was using, so a pending read or write ends at once.

use std::future::Future;

use async_channel::{Receiver, Sender};
use futures_lite::future;

/// A cancellation handle shared by a call and whoever may stop it. It is a
/// channel on which nothing is ever sent: closing it is the signal, and
/// every waiter wakes up.
#[derive(Debug)]
pub(crate) struct Cancel {
    tx: Sender<()>,
    rx: Receiver<()>,
}

impl Default for Cancel {
    fn default() -> Self {
        let (tx, rx) = async_channel::bounded(1);
        Cancel { tx, rx }
    }
}

impl Cancel {
    /// Stops the call: wakes whatever waits in [`run`](Self::run).
    pub(crate) fn cancel(&self) {
        self.tx.close();
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.tx.is_closed()
    }

    /// Runs `fut` until it ends (`Some`) or the call is cancelled (`None`;
    /// `fut` is then dropped where it stands). Cancellation is checked first,
    /// so a call cancelled before it starts never starts.
    pub(crate) async fn run<T>(&self, fut: impl Future<Output = T>) -> Option<T> {
        let cancelled = async {
            // `recv` fails once the channel is closed: that is the signal.
            let _ = self.rx.recv().await;
            None
        };
        future::or(cancelled, async { Some(fut.await) }).await
    }
}
