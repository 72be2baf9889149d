//! Polling a socket before a read waits on the reactor, as
//! `mpnet_core::spin` decides: a non-blocking `recv` in a loop for at most
//! the budget. The executor thread polls (it would otherwise go idle; a
//! response read polls only while few requests await answers,
//! `spin::Waiting`).

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

/// Polls `tcp` with `recv(flags | MSG_DONTWAIT)` into `buf` until it gives
/// something or `budget` passes (`spin::poll_for`; `None` also when
/// polling is off, the gate rests, or enough readers poll already).
#[cfg(unix)]
fn poll_recv(
    tcp: &TcpStream,
    buf: &mut [u8],
    peek: bool,
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
    let flags = if peek {
        RecvFlags::DONTWAIT | RecvFlags::PEEK
    } else {
        RecvFlags::DONTWAIT
    };
    poll_for(gate, budget, max_spinning(), Instant::now, || {
        match recv(tcp, &mut *buf, flags) {
            Ok((n, _)) => Some(Ok(n)),
            Err(Errno::AGAIN | Errno::INTR) => None,
            Err(e) => Some(Err(e.into())),
        }
    })
}

#[cfg(not(unix))]
fn poll_recv(
    _tcp: &TcpStream,
    _buf: &mut [u8],
    _peek: bool,
    _gate: &mut SpinGate,
    _budget: Duration,
) -> Option<io::Result<usize>> {
    None
}

/// Reads what `tcp` has now or gets within `budget`, without waiting;
/// `None`: wait on the reactor now. `Some` is the read's result (`Ok(0)`
/// the end of the stream).
pub(crate) fn read_soon(
    tcp: &TcpStream,
    buf: &mut [u8],
    gate: &mut SpinGate,
    budget: Duration,
) -> Option<io::Result<usize>> {
    poll_recv(tcp, buf, false, gate, budget)
}

/// Whether `tcp` has bytes (or its end) now or within `budget`, without
/// taking any: `Some(Ok(()))`, and the read that follows gets them at once;
/// `Some(Err)`: the socket's error (a reset, which the peek took);
/// `None`: wait on the reactor now.
pub(crate) fn readable_soon(
    tcp: &TcpStream,
    gate: &mut SpinGate,
    budget: Duration,
) -> Option<io::Result<()>> {
    poll_recv(tcp, &mut [0u8; 1], true, gate, budget).map(|r| r.map(|_| ()))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn readable_soon_leaves_the_bytes_and_read_soon_takes_them() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let mut gate = SpinGate::default();
        let budget = Duration::from_micros(200);
        assert!(readable_soon(&client, &mut gate, budget).is_none());
        server.write_all(b"hi").unwrap();
        while readable_soon(&client, &mut gate, budget).is_none() {}
        let mut buf = [0u8; 16];
        let n = loop {
            if let Some(r) = read_soon(&client, &mut buf, &mut gate, budget) {
                break r.unwrap();
            }
        };
        assert_eq!(&buf[..n], b"hi", "the peek left them");
        server.write_all(b"!").unwrap();
        drop(server);
        client.read_exact(&mut buf[..1]).unwrap();
        assert!(read_soon(&client, &mut buf, &mut gate, Duration::ZERO).is_none());
        let end = loop {
            if let Some(r) = read_soon(&client, &mut buf, &mut gate, budget) {
                break r.unwrap();
            }
        };
        assert_eq!(end, 0, "the end of the stream");
    }
}
