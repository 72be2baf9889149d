//! One hop of a call: a connection (from the pool, or new), the request
//! sent, the final response head read; a stale pooled connection is retried
//! once on a fresh one when the core allows it (`pool::may_retry_on_fresh`).
//!
//! The future owns the connection until it hands it back with the head;
//! dropped before that, it closes the connection.

use std::future::Future;
use std::time::Instant;

use mpnet_core::http1::{state, Exchange, HeadBuffers, ResponseHead};
use mpnet_core::pool::{self, PoolKey};
use mpnet_core::request::{Method, Profile};
use mpnet_core::{Error, Target};

use crate::client::ClientInner;
use crate::conn::{self, Conn, ConnectArgs};
use crate::exchange::{recv_response, Fail};
pub(crate) use mpnet_core::failure::classify;

/// What one hop sends, and how its errors read.
pub(crate) struct Hop<'a> {
    /// Where it goes.
    pub target: &'a Target,
    /// Its method (only idempotent ones are retried).
    pub method: Method,
    /// The call's deadline.
    pub deadline: Instant,
    /// The call's timeout error.
    pub timeout: &'a (dyn Fn() -> Error + Sync),
}

/// What a hop writes: the request, on whichever connection the hop got (it
/// may be written twice, on a fresh connection after a stale one). The
/// async form of the blocking transport's `FnMut(&mut Conn)` (an async
/// closure's future cannot be proven `Send` for every borrow of the
/// connection, so the bound is spelled out here).
pub(crate) trait Outgoing {
    /// Writes the request on `conn` and moves the exchange on to reading.
    fn send<'c>(
        &'c mut self,
        conn: &'c mut Conn,
    ) -> impl Future<Output = Result<Exchange<state::RecvResponse>, Fail>> + Send + 'c;
}

/// Gets a connection, sends with `send` and reads the final response head
/// (parsed into `head_bufs`, see `HeadBuffers`).
pub(crate) async fn open_and_send(
    client: &ClientInner,
    hop: &Hop<'_>,
    started: Instant,
    profile: &mut Profile,
    send: &mut impl Outgoing,
    head_bufs: &mut HeadBuffers,
) -> Result<(Conn, ResponseHead, Exchange<state::RecvResponse>), Error> {
    let proxy = client
        .ctx
        .proxy()
        .filter(|p| p.applies_to(hop.target))
        .map(|p| p.target());
    let key = PoolKey::new(hop.target, proxy);
    let mut attempt = 0;
    loop {
        if Instant::now() >= hop.deadline {
            return Err((hop.timeout)());
        }
        let pooled = client.take_pooled(&key, hop.method, attempt);
        let reused = pooled.is_some();
        let mut conn = match pooled {
            Some(c) => c,
            None => {
                let args = ConnectArgs {
                    target: hop.target,
                    proxy,
                    tls: &client.tls,
                    deadline: hop.deadline,
                    started,
                };
                conn::connect(&args, profile)
                    .await
                    .map_err(|f| f.into_error(hop.timeout))?
            }
        };
        conn.set_read_spin(client.read_spin());
        profile.reused = reused;
        let result = match send.send(&mut conn).await {
            Ok(mut ex) => {
                profile.request_sent = Some(started.elapsed());
                recv_response(&mut conn, &mut ex, hop.deadline, head_bufs)
                    .await
                    .map(|head| (head, ex))
            }
            Err(fail) => Err(fail),
        };
        match result {
            Ok((head, ex)) => {
                profile.first_byte = Some(started.elapsed());
                return Ok((conn, head, ex));
            }
            Err(fail) => {
                let retry = pool::may_retry_on_fresh(hop.method, reused, attempt)
                    && fail.is_stale_connection();
                conn.close();
                if !retry {
                    return Err(classify(fail, hop.timeout));
                }
                attempt += 1;
            }
        }
    }
}

/// Returns a connection to the pool, or closes it.
pub(crate) fn release(client: &ClientInner, conn: Conn, reusable: bool) {
    if reusable {
        client.put_pooled(conn);
    } else {
        conn.close();
    }
}
