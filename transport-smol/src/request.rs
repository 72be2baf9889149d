//! The `my.request` driver: runs the core's `RequestFlow` over pooled
//! connections. Every decision (redirects, status, decoding, retry, reuse)
//! is the core's; this only connects, moves bytes and keeps the pool.
//!
//! The future of [`run`] owns the connection it uses. Dropped at any await
//! point, it drops (closes) that connection; a connection returns to the
//! pool only in `release`, called in the same synchronous step that sees
//! its exchange complete.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use mpnet_core::http1::{state, AfterHead, Exchange, ResponseHead};
use mpnet_core::request::{
    BodyCollector, PreparedRequest, Profile, RequestFlow, RequestOptions, Response,
    ResponseBuffers, Step,
};
use mpnet_core::{Error, ErrorKind, Limits};

use crate::client::ClientInner;
use crate::conn::Conn;
use crate::exchange::{recv_body, send_request, Fail};
use crate::hop::{classify, open_and_send, release, Hop, Outgoing};
use crate::stream::{BodyReader, StreamResponse};

/// Runs one `my.request` to its result.
pub(crate) async fn run(client: &ClientInner, opts: &RequestOptions) -> Result<Response, Error> {
    let mut out = Response::default();
    run_into(client, opts, &mut out).await.map(|()| out)
}

/// Runs one `my.request`, writing a success into `out` and reusing its
/// buffers (`ResponseBuffers`: the head is parsed and the body collected
/// in them); `run` is this with an empty `out`. On an error, or when the
/// future is dropped after it started, `out` is `Response::default()`.
pub(crate) async fn run_into(
    client: &ClientInner,
    opts: &RequestOptions,
    out: &mut Response,
) -> Result<(), Error> {
    let started = Instant::now();
    let mut bufs = ResponseBuffers::take(out);
    let mut flow = RequestFlow::new(&client.ctx, opts, started)?;
    let mut profile = Profile::default();
    let last = drive(client, &mut flow, &mut bufs, started, &mut profile).await?;
    collect(client, &flow, last, out).await?;
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
async fn drive(
    client: &ClientInner,
    flow: &mut RequestFlow,
    bufs: &mut ResponseBuffers,
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
        let mut send = SendRequest {
            request,
            limits: client.ctx.limits(),
            deadline: hop.deadline,
        };
        let (mut conn, head, exchange) =
            open_and_send(client, &hop, started, profile, &mut send, bufs.head()).await?;
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
                        AfterHead::Body(b) => {
                            recv_body(&mut conn, b, deadline, |_| Ok(())).await.ok()
                        }
                    }
                    .is_some_and(|c| c.reuse.is_keep_alive());
                release(client, conn, reusable);
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

/// `SendRequest` of a buffered request: head, then body.
struct SendRequest<'a> {
    request: &'a PreparedRequest,
    limits: &'a Limits,
    deadline: Instant,
}

impl Outgoing for SendRequest<'_> {
    fn send<'c>(
        &'c mut self,
        conn: &'c mut Conn,
    ) -> impl Future<Output = Result<Exchange<state::RecvResponse>, Fail>> + Send + 'c {
        send_request(conn, self.request, self.limits, self.deadline)
    }
}

/// Reads the final response's body into memory and writes the call's
/// result into `out` (left as it is on an error).
async fn collect(
    client: &ClientInner,
    flow: &RequestFlow,
    last: Final,
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
            .await
            .map_err(|f| classify(f, &|| flow.timeout_error()))?,
    };
    release(client, conn, complete.reuse.is_keep_alive());
    flow.finish_into(head, collector.finish()?, out)
}

/// Runs one `my.request` and hands back a successful response's body as a
/// stream (error statuses are collected and reported as usual).
pub(crate) async fn run_stream(
    client: &Arc<ClientInner>,
    opts: &RequestOptions,
) -> Result<StreamResponse, Error> {
    let started = Instant::now();
    let mut flow = RequestFlow::new(&client.ctx, opts, started)?;
    let mut profile = Profile::default();
    let last = drive(
        client,
        &mut flow,
        &mut ResponseBuffers::new(),
        started,
        &mut profile,
    )
    .await?;
    profile.redirects = flow.redirects();
    let Some(decoder) = flow.stream_decoder(&last.head) else {
        let mut unused = Response::default();
        return Err(collect(client, &flow, last, &mut unused)
            .await
            .err()
            .unwrap_or_else(|| {
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
        headers: head.into_js_headers(),
        profile,
        body: BodyReader::new(client.clone(), conn, exchange, decoder, flow.poll_timeout()),
    })
}
