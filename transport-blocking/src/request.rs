//! The `my.request` driver: runs the core's `RequestFlow` over pooled
//! connections. Every decision (redirects, status, decoding, retry, reuse)
//! is the core's; this only connects, moves bytes and keeps the pool.

use std::sync::Arc;
use std::time::Instant;

use mpnet_core::http1::{AfterHead, ResponseHead};
use mpnet_core::pool::{self, PoolKey};
use mpnet_core::request::{BodyCollector, Profile, RequestFlow, RequestOptions, Response, Step};
use mpnet_core::{tls, Error, ErrorKind};

use crate::cancel::Cancel;
use crate::client::ClientInner;
use crate::conn::{self, Conn, ConnectArgs};
use crate::exchange::{recv_body, recv_response, send_request, Fail};
use crate::stream::{BodyReader, StreamResponse};

/// Runs one `my.request` to its result.
pub(crate) fn run(
    client: &ClientInner,
    opts: &RequestOptions,
    cancel: &Cancel,
) -> Result<Response, Error> {
    let started = Instant::now();
    let mut flow = RequestFlow::new(&client.ctx, opts, started)?;
    let mut profile = Profile::default();
    let result = drive(client, &mut flow, cancel, started, &mut profile)
        .and_then(|last| collect(client, &flow, last));
    if cancel.is_cancelled() {
        return Err(Error::new(ErrorKind::Aborted, "request aborted"));
    }
    let mut response = result?;
    profile.redirects = flow.redirects();
    profile.done = Some(started.elapsed());
    response.profile = profile;
    Ok(response)
}

/// The call up to its final response head, with the connection and the
/// exchange ready to read that response's body.
struct Final {
    conn: Conn,
    head: ResponseHead,
    body: AfterHead,
    collector: BodyCollector,
}

/// Follows redirects until the final response head.
fn drive(
    client: &ClientInner,
    flow: &mut RequestFlow,
    cancel: &Cancel,
    started: Instant,
    profile: &mut Profile,
) -> Result<Final, Error> {
    let ctx = &client.ctx;
    loop {
        let (mut conn, head, exchange) = open_and_send(client, flow, cancel, started, profile)?;
        let step = flow.on_head(ctx, &head)?;
        let flow = &*flow;
        let deadline = flow.poll_timeout();
        let classify = |f: Fail| classify(f, flow);
        let body = exchange
            .into_body(&head)
            .map_err(Fail::from)
            .map_err(classify)?;
        match step {
            Step::Redirect { drain } => {
                let reusable = drain
                    && match body {
                        AfterHead::Done(c) => Some(c),
                        AfterHead::Body(b) => recv_body(&mut conn, b, deadline, |_| Ok(())).ok(),
                    }
                    .is_some_and(|c| c.reuse.is_keep_alive());
                release(client, conn, reusable);
            }
            Step::ReadBody(collector) => {
                return Ok(Final {
                    conn,
                    head,
                    body,
                    collector,
                });
            }
        }
    }
}

/// Reads the final response's body into memory and gives the call's result.
fn collect(client: &ClientInner, flow: &RequestFlow, last: Final) -> Result<Response, Error> {
    let Final {
        mut conn,
        head,
        body,
        mut collector,
    } = last;
    let complete = match body {
        AfterHead::Done(c) => c,
        AfterHead::Body(b) => recv_body(&mut conn, b, flow.poll_timeout(), |d| collector.push(d))
            .map_err(|f| classify(f, flow))?,
    };
    release(client, conn, complete.reuse.is_keep_alive());
    flow.finish(&head, collector.finish()?)
}

/// Runs one `my.request` and hands back a successful response's body as a
/// stream (error statuses are collected and reported as usual).
pub(crate) fn run_stream(
    client: &Arc<ClientInner>,
    opts: &RequestOptions,
    cancel: &Cancel,
) -> Result<StreamResponse, Error> {
    let started = Instant::now();
    let mut flow = RequestFlow::new(&client.ctx, opts, started)?;
    let mut profile = Profile::default();
    let last = drive(client, &mut flow, cancel, started, &mut profile)?;
    profile.redirects = flow.redirects();
    let Some(decoder) = flow.stream_decoder(&last.head) else {
        return Err(collect(client, &flow, last).err().unwrap_or_else(|| {
            Error::new(
                ErrorKind::Unknown,
                "an error status was classified as success",
            )
        }));
    };
    let Final {
        conn, head, body, ..
    } = last;
    let exchange = match body {
        AfterHead::Done(_) => None,
        AfterHead::Body(b) => Some(b),
    };
    Ok(StreamResponse {
        status: head.status,
        headers: head.js_headers(),
        profile,
        body: BodyReader::new(client.clone(), conn, exchange, decoder, flow.poll_timeout()),
    })
}

/// Gets a connection (pooled or new), sends the request and reads the
/// response head; a stale pooled connection is retried once on a fresh one
/// for idempotent methods (core's `may_retry_on_fresh`).
fn open_and_send(
    client: &ClientInner,
    flow: &RequestFlow,
    cancel: &Cancel,
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
                    cancel,
                    started,
                };
                conn::connect(&args, profile).map_err(|f| f.into_error(|| flow.timeout_error()))?
            }
        };
        if let Ok(s) = conn.socket() {
            cancel.watch(&s);
        }
        profile.reused = reused;
        let sent = send_request(&mut conn, request, limits, deadline);
        let result = sent.and_then(|mut ex| {
            profile.request_sent = Some(started.elapsed());
            let head = recv_response(&mut conn, &mut ex, deadline)?;
            Ok((head, ex))
        });
        match result {
            Ok((head, ex)) => {
                profile.first_byte = Some(started.elapsed());
                return Ok((conn, head, ex));
            }
            Err(fail) => {
                let retry = pool::may_retry_on_fresh(request.method(), reused, attempt)
                    && is_stale_failure(&fail)
                    && !cancel.is_cancelled();
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
