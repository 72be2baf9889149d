//! The machine's state, measured in the run: the median round trip of one
//! byte over loopback TCP between two threads of this process (plain
//! sockets, `TCP_NODELAY`). Every request-rate and echo row is a chain of
//! such round trips, so the ratios of a run are read next to it: on these
//! shared VMs it moves several-fold with the host's load (a waking thread
//! is served by the guest's halt-polling when the host is quiet, by a
//! host wake-up when it is not).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Round trips timed per probe.
const ROUNDS: usize = 2000;

/// The median loopback round trip, or why it could not be measured.
pub(crate) fn loopback_round_trip() -> Result<Duration, String> {
    round_trip().map_err(|e| format!("loopback probe: {e}"))
}

fn round_trip() -> io::Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let echo = std::thread::Builder::new()
        .name("bench-probe".into())
        .spawn(move || -> io::Result<()> {
            let (mut s, _) = listener.accept()?;
            s.set_nodelay(true)?;
            let mut b = [0u8; 1];
            while s.read(&mut b)? > 0 {
                s.write_all(&b)?;
            }
            Ok(())
        })?;
    let mut c = TcpStream::connect(addr)?;
    c.set_nodelay(true)?;
    let mut b = [0u8; 1];
    let mut times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        c.write_all(&[1])?;
        c.read_exact(&mut b)?;
        times.push(t.elapsed());
    }
    drop(c);
    echo.join()
        .map_err(|_| io::Error::other("the echo thread panicked"))??;
    times.sort();
    Ok(times[ROUNDS / 2])
}

#[cfg(test)]
mod tests {
    #[test]
    fn measures_a_round_trip() {
        let rtt = super::loopback_round_trip().expect("probe");
        assert!(rtt > std::time::Duration::ZERO);
    }
}
