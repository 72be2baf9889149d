//! The `my.request` driver: runs the core's `RequestFlow` over pooled
//! connections. Every decision (redirects, status, decoding, retry, reuse)
//! is the core's; this only connects, moves bytes and keeps the pool.

use std::sync::Arc;
use std::time::Instant;

use mpnet_core::http1::{AfterHead, ResponseHead};
use mpnet_core::request::{
    BodyCollector, Profile, RequestFlow, RequestOptions, Response, ResponseBuffers, Step,
};
use mpnet_core::{Error, ErrorKind};

use crate::cancel::Cancel;
use crate::client::ClientInner;
use crate::conn::Conn;
use crate::exchange::{recv_body, send_request, Fail};
use crate::hop::{classify, open_and_send, release, Hop};
use crate::stream::{BodyReader, StreamResponse};

/// Runs one `my.request` to its result.
pub(crate) fn run(
    client: &ClientInner,
    opts: &RequestOptions,
    cancel: &Cancel,
) -> Result<Response, Error> {
    let mut out = Response::default();
    run_into(client, opts, cancel, &mut out).map(|()| out)
}

/// Runs one `my.request`, writing a success into `out` and reusing its
/// buffers (`ResponseBuffers`: the head is parsed and the body collected
/// in them); `run` is this with an empty `out`. On an error `out` is
/// `Response::default()`.
pub(crate) fn run_into(
    client: &ClientInner,
    opts: &RequestOptions,
    cancel: &Cancel,
    out: &mut Response,
) -> Result<(), Error> {
    let started = Instant::now();
    let mut bufs = ResponseBuffers::take(out);
    let mut flow = RequestFlow::new(&client.ctx, opts, started)?;
    let mut profile = Profile::default();
    let result = drive(client, &mut flow, &mut bufs, cancel, started, &mut profile)
        .and_then(|last| collect(client, &flow, last, cancel, out));
    if cancel.is_cancelled() {
        *out = Response::default();
        return Err(Error::new(ErrorKind::Aborted, "request aborted"));
    }
    result?;
    profile.redirects = flow.redirects();
    profile.done = Some(started.elapsed());
    out.profile = profile;
    Ok(())
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
    bufs: &mut ResponseBuffers,
    cancel: &Cancel,
    started: Instant,
    profile: &mut Profile,
) -> Result<Final, Error> {
    let ctx = &client.ctx;
    loop {
        let timeout = || flow.timeout_error();
        let request = flow.request();
        let hop = Hop {
            target: request.target(),
            method: request.method(),
            deadline: flow.poll_timeout(),
            timeout: &timeout,
        };
        let limits = client.ctx.limits();
        let mut send = |conn: &mut Conn| send_request(conn, request, limits, hop.deadline);
        let (mut conn, head, exchange) = open_and_send(
            client,
            &hop,
            cancel,
            started,
            profile,
            &mut send,
            bufs.head(),
        )?;
        let step = flow.on_head_in(ctx, &head, bufs)?;
        let flow = &*flow;
        let deadline = flow.poll_timeout();
        let timeout = || flow.timeout_error();
        let classify = |f: Fail| classify(f, &timeout);
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
                release(client, conn, reusable, cancel);
                bufs.recycle_head(head);
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

/// Reads the final response's body into memory and writes the call's
/// result into `out` (left as it is on an error).
fn collect(
    client: &ClientInner,
    flow: &RequestFlow,
    last: Final,
    cancel: &Cancel,
    out: &mut Response,
) -> Result<(), Error> {
    let Final {
        mut conn,
        head,
        body,
        mut collector,
    } = last;
    let complete = match body {
        AfterHead::Done(c) => c,
        AfterHead::Body(b) => recv_body(&mut conn, b, flow.poll_timeout(), |d| collector.push(d))
            .map_err(|f| classify(f, &|| flow.timeout_error()))?,
    };
    release(client, conn, complete.reuse.is_keep_alive(), cancel);
    flow.finish_into(head, collector.finish()?, out)
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
    let mut bufs = ResponseBuffers::new();
    let last = drive(client, &mut flow, &mut bufs, cancel, started, &mut profile)?;
    profile.redirects = flow.redirects();
    let Some(decoder) = flow.stream_decoder(&last.head) else {
        return Err(
            collect(client, &flow, last, cancel, &mut Response::default())
                .err()
                .unwrap_or_else(|| {
                    Error::new(
                        ErrorKind::Unknown,
                        "an error status was classified as success",
                    )
                }),
        );
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
        headers: head.into_js_headers(),
        profile,
        body: BodyReader::new(client.clone(), conn, exchange, decoder, flow.poll_timeout()),
    })
}
