//! One hop of a call: a connection (from the pool, or new), the request
//! sent, the final response head read; a stale pooled connection is retried
//! once on a fresh one when the core allows it (`pool::may_retry_on_fresh`).
//! Shared by `my.request`, `my.uploadFile` and `my.downloadFile`.

use std::time::Instant;

use mpnet_core::http1::{state, Exchange, HeadBuffers, ResponseHead};
use mpnet_core::pool::{self, PoolKey};
use mpnet_core::request::{Method, Profile};
use mpnet_core::{Error, Target};

use crate::cancel::Cancel;
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
    pub timeout: &'a dyn Fn() -> Error,
}

/// Gets a connection, sends with `send` and reads the final response head
/// (parsed into `head_bufs`, see `HeadBuffers`).
pub(crate) fn open_and_send(
    client: &ClientInner,
    hop: &Hop<'_>,
    cancel: &Cancel,
    started: Instant,
    profile: &mut Profile,
    send: &mut dyn FnMut(&mut Conn) -> Result<Exchange<state::RecvResponse>, Fail>,
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
                    cancel,
                    started,
                };
                conn::connect(&args, profile).map_err(|f| f.into_error(hop.timeout))?
            }
        };
        cancel.watch(conn.tcp());
        conn.set_read_spin(client.read_spin());
        profile.reused = reused;
        let result = send(&mut conn).and_then(|mut ex| {
            profile.request_sent = Some(started.elapsed());
            let head = recv_response(&mut conn, &mut ex, hop.deadline, head_bufs)?;
            Ok((head, ex))
        });
        match result {
            Ok((head, ex)) => {
                profile.first_byte = Some(started.elapsed());
                return Ok((conn, head, ex));
            }
            Err(fail) => {
                let retry = pool::may_retry_on_fresh(hop.method, reused, attempt)
                    && fail.is_stale_connection()
                    && !cancel.is_cancelled();
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
pub(crate) fn release(client: &ClientInner, conn: Conn, reusable: bool, cancel: &Cancel) {
    // Unwatched first, so that a cancel arriving after this point cannot
    // shut down a pooled socket; one cancelled before is not pooled.
    if reusable && !cancel.unwatch() {
        client.put_pooled(conn);
    } else {
        conn.close();
    }
}
