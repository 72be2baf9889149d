//! The `my.request` driver: runs the core's `RequestFlow` over pooled
//! connections. Every decision (redirects, status, decoding, retry, reuse)
//! is the core's; this only connects, moves bytes and keeps the pool.
//!
//! The future of [`run`] owns the connection it uses. Dropped at any await
//! point, it drops (closes) that connection; a connection returns to the
//! pool only in [`release`], called in the same synchronous step that sees
//! its exchange complete.

use std::time::Instant;

use mpnet_core::http1::{AfterHead, ConnectionReuse, ResponseHead};
use mpnet_core::pool::{self, PoolKey};
use mpnet_core::request::{Profile, RequestFlow, RequestOptions, Response, Step};
use mpnet_core::{tls, Error, ErrorKind};

use crate::client::ClientInner;
use crate::conn::{self, Conn, ConnectArgs};
use crate::exchange::{recv_body, recv_response, send_request, Fail};

/// Runs one `my.request` to its result.
pub(crate) async fn run(client: &ClientInner, opts: &RequestOptions) -> Result<Response, Error> {
    let started = Instant::now();
    let mut flow = RequestFlow::new(&client.ctx, opts, started)?;
    let mut profile = Profile::default();
    let mut response = drive(client, &mut flow, started, &mut profile).await?;
    profile.redirects = flow.redirects();
    profile.done = Some(started.elapsed());
    response.profile = profile;
    Ok(response)
}

async fn drive(
    client: &ClientInner,
    flow: &mut RequestFlow,
    started: Instant,
    profile: &mut Profile,
) -> Result<Response, Error> {
    let ctx = &client.ctx;
    loop {
        let (mut conn, head, exchange) = open_and_send(client, flow, started, profile).await?;
        let step = flow.on_head(ctx, &head)?;
        let flow = &*flow;
        let deadline = flow.poll_timeout();
        let classify = |f: Fail| classify(f, flow);
        match step {
            Step::Redirect { drain } => {
                let reusable = drain
                    && match exchange
                        .into_body(&head)
                        .map_err(Fail::from)
                        .map_err(classify)?
                    {
                        AfterHead::Done(c) => Some(c),
                        AfterHead::Body(b) => recv_body(&mut conn, b, deadline, |_| Ok(()))
                            .await
                            .ok(),
                    }
                    .is_some_and(|c| matches!(c.reuse, ConnectionReuse::KeepAlive));
                release(client, conn, reusable);
            }
            Step::ReadBody(mut collector) => {
                let complete = match exchange
                    .into_body(&head)
                    .map_err(Fail::from)
                    .map_err(classify)?
                {
                    AfterHead::Done(c) => c,
                    AfterHead::Body(b) => {
                        recv_body(&mut conn, b, deadline, |d| collector.push(d))
                            .await
                            .map_err(classify)?
                    }
                };
                release(
                    client,
                    conn,
                    matches!(complete.reuse, ConnectionReuse::KeepAlive),
                );
                let body = collector.finish()?;
                return flow.finish(&head, body);
            }
        }
    }
}

/// Gets a connection (pooled or new), sends the request and reads the
/// response head; a stale pooled connection is retried once on a fresh one
/// for idempotent methods (core's `may_retry_on_fresh`).
async fn open_and_send(
    client: &ClientInner,
    flow: &RequestFlow,
    started: Instant,
    profile: &mut Profile,
) -> Result<
    (
        Conn,
        ResponseHead,
        mpnet_core::http1::Exchange<mpnet_core::http1::state::RecvResponse>,
    ),
    Error,
> {
    let request = flow.request();
    let deadline = flow.poll_timeout();
    let limits = client.ctx.limits();
    let proxy = client
        .ctx
        .proxy()
        .filter(|p| p.applies_to(request.target()))
        .map(|p| p.target());
    let key = PoolKey::new(request.target(), proxy);
    let mut attempt = 0;
    loop {
        flow.handle_timeout(Instant::now())?;
        let pooled = client.take_pooled(&key);
        let reused = pooled.is_some();
        let mut conn = match pooled {
            Some(c) => c,
            None => {
                let args = ConnectArgs {
                    target: request.target(),
                    proxy,
                    tls: &client.tls,
                    deadline,
                    started,
                };
                conn::connect(&args, profile)
                    .await
                    .map_err(|f| f.into_error(|| flow.timeout_error()))?
            }
        };
        profile.reused = reused;
        let sent = send_request(&mut conn, request, limits, deadline).await;
        let result = match sent {
            Ok(mut ex) => {
                profile.request_sent = Some(started.elapsed());
                recv_response(&mut conn, &mut ex, deadline)
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
                let retry = pool::may_retry_on_fresh(request.method(), reused, attempt)
                    && is_stale_failure(&fail);
                conn.close();
                if !retry {
                    return Err(classify(fail, flow));
                }
                attempt += 1;
            }
        }
    }
}

/// A failure that a connection closed while idle would cause.
fn is_stale_failure(fail: &Fail) -> bool {
    match fail {
        Fail::Io(e) => !conn::is_timeout(e),
        Fail::Api(e) => e.kind() == ErrorKind::Network,
    }
}

/// The API error for a failure, with the flow's timeout for a passed deadline.
fn classify(fail: Fail, flow: &RequestFlow) -> Error {
    match fail {
        Fail::Api(e) => e,
        Fail::Io(e) if conn::is_timeout(&e) => flow.timeout_error(),
        Fail::Io(e) => tls::io_error(&e, "network error"),
    }
}

/// Returns a connection to the pool, or closes it.
fn release(client: &ClientInner, conn: Conn, reusable: bool) {
    if reusable {
        client.put_pooled(conn);
    } else {
        conn.close();
    }
}
