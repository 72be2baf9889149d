//! A listener served by a tokio runtime on a background thread.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener as StdListener};
use std::thread::JoinHandle;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Worker threads of each server's runtime.
const WORKERS: usize = 2;

/// Binds `127.0.0.1:port` (0: an ephemeral port), never any other address.
pub(crate) fn bind_loopback(port: u16) -> io::Result<StdListener> {
    let listener = StdListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// A running background server: dropping it (or calling `stop`) ends the
/// accept loop, drops every task (closing every connection) and joins the
/// thread.
pub(crate) struct Background {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Runs `serve(listener)` on a new multi-thread runtime in a new thread.
    pub(crate) fn spawn<F, Fut>(name: &str, listener: StdListener, serve: F) -> io::Result<Self>
    where
        F: FnOnce(TcpListener) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .thread_name(format!("{name}-worker"))
            .enable_all()
            .build()?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(_) => return,
                    };
                    tokio::select! {
                        _ = stop_rx => {}
                        () = serve(listener) => {}
                    }
                });
                // Dropping the runtime drops every spawned task, which closes
                // every connection, before the thread ends.
                drop(runtime);
            })?;
        Ok(Background {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server and waits until its listener and connections are
    /// closed. Idempotent.
    pub(crate) fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Accepts connections for ever, calling `on_conn` for each; transient
/// accept errors (e.g. too many open files) are retried after a pause.
pub(crate) async fn accept_loop<F>(listener: TcpListener, mut on_conn: F)
where
    F: FnMut(tokio::net::TcpStream, SocketAddr),
{
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                on_conn(stream, peer);
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
}
