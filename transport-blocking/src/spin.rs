//! Polling a socket before a read blocks, as `mpnet_core::spin` decides:
//! a non-blocking `recv` in a loop for at most the budget.

use std::io;
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::Duration;

pub(crate) use mpnet_core::spin::SpinGate;

/// Most readers that poll at once on this machine (`spin::max_spinning`).
pub(crate) fn max_spinning() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| {
        mpnet_core::spin::max_spinning(std::thread::available_parallelism().map_or(1, |n| n.get()))
    })
}

/// Reads what `tcp` has now or gets within `budget`, without blocking
/// (`spin::poll_for`). `None`: nothing came (or polling is off, the gate
/// rests, or enough readers poll already): make the blocking read now.
/// `Some` is the read's result (`Ok(0)` the end of the stream).
#[cfg(unix)]
pub(crate) fn read_soon(
    tcp: &TcpStream,
    buf: &mut [u8],
    gate: &mut SpinGate,
    budget: Duration,
) -> Option<io::Result<usize>> {
    use mpnet_core::spin::poll_for;
    use rustix::io::Errno;
    use rustix::net::{recv, RecvFlags};
    use std::time::Instant;
    if buf.is_empty() {
        return None;
    }
    poll_for(gate, budget, max_spinning(), Instant::now, || {
        match recv(tcp, &mut *buf, RecvFlags::DONTWAIT) {
            Ok((n, _)) => Some(Ok(n)),
            Err(Errno::AGAIN | Errno::INTR) => None,
            Err(e) => Some(Err(e.into())),
        }
    })
}

/// Without `recv(MSG_DONTWAIT)` every read blocks at once.
#[cfg(not(unix))]
pub(crate) fn read_soon(
    _tcp: &TcpStream,
    _buf: &mut [u8],
    _gate: &mut SpinGate,
    _budget: Duration,
) -> Option<io::Result<usize>> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    #[test]
    fn read_soon_takes_what_is_there_and_gives_up_on_silence() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let mut gate = SpinGate::default();
        let mut buf = [0u8; 16];
        let budget = Duration::from_micros(200);
        assert!(read_soon(&client, &mut buf, &mut gate, budget).is_none());
        server.write_all(b"hi").unwrap();
        // The bytes are on their way: poll until they land.
        let n = loop {
            if let Some(r) = read_soon(&client, &mut buf, &mut gate, budget) {
                break r.unwrap();
            }
        };
        assert_eq!(&buf[..n], b"hi");
        assert!(read_soon(&client, &mut buf, &mut gate, Duration::ZERO).is_none());
        drop(server);
        let end = loop {
            if let Some(r) = read_soon(&client, &mut buf, &mut gate, budget) {
                break r.unwrap();
            }
        };
        assert_eq!(end, 0, "the end of the stream");
    }
}
