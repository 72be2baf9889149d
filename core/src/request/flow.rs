//! One whole `my.request`, across redirects, as data (SPEC §4).
//!
//! ```text
//!  RequestFlow::new(ctx, opts, now) ── checks and encodes (errors 2, 11, 15)
//!        │
//!        ▼
//!  ┌─► request() / exchange() ── the transport connects to target(),
//!  │     writes the head and body, reads the response head
//!  │        │
//!  │   on_head(ctx, head) ──► Step::Redirect ──┐ (the transport discards the
//!  │        │                                  │  body, or closes when
//!  │        ▼                                  │  Step says so)
//!  │   Step::ReadBody(collector) ── body in ───┼─► finish(head, body)
//!  └───────────────────────────────────────────┘      → Response or Error
//! ```
//!
//! For `request_into`, the transport passes a [`ResponseBuffers`] through
//! the same steps: heads are parsed into its head buffers
//! (`Exchange::try_response_in`), [`RequestFlow::on_head_in`] starts the
//! body collector in its body buffer, a redirect's head goes back with
//! [`ResponseBuffers::recycle_head`], and [`RequestFlow::finish_into`]
//! writes the result into the caller's `Response`.
//!
//! The deadline covers the whole call, DNS to last byte (SPEC §4 `timeout`):
//! the transport asks [`RequestFlow::poll_timeout`] for it and reports it
//! with [`RequestFlow::handle_timeout`].

use std::time::Instant;

use super::buffers::ResponseBuffers;
use super::options::{DataType, RequestOptions};
use super::prepare::PreparedRequest;
use super::response::{classify, classify_into, is_success, BodyCollector, Response};
use crate::http1::ContentDecoder;
use crate::http1::ResponseHead;
use crate::{Api, AppContext, Error, ErrorKind};

/// The statuses that redirect (SPEC §4).
const REDIRECT_STATUSES: [u16; 5] = [301, 302, 303, 307, 308];

/// Bodies of redirect responses up to this size are read and discarded so
/// the connection can be reused; larger or unknown ones close it.
pub const REDIRECT_DRAIN_LIMIT: u64 = 64 * 1024;

/// What the transport does after a response head.
#[derive(Debug)]
pub enum Step {
    /// Follow a redirect: discard this response's body (read it to the end
    /// when `drain` is true, else close the connection), then send
    /// [`RequestFlow::request`] again.
    Redirect {
        /// Whether the body is small enough to read and discard.
        drain: bool,
    },
    /// Read the body into the collector, then call [`RequestFlow::finish`].
    ReadBody(BodyCollector),
}

/// A `my.request` in progress. See the module docs.
#[derive(Debug)]
pub struct RequestFlow {
    current: PreparedRequest,
    data_type: DataType,
    deadline: crate::deadline::Deadline,
    redirects: u32,
}

impl RequestFlow {
    /// Checks and encodes `opts`; the deadline is `now + opts.timeout`.
    pub fn new(ctx: &AppContext, opts: &RequestOptions, now: Instant) -> Result<Self, Error> {
        let current = PreparedRequest::new(ctx, opts)?;
        Ok(RequestFlow {
            current,
            data_type: opts.data_type,
            deadline: crate::deadline::Deadline::new("request", now, opts.timeout),
            redirects: 0,
        })
    }

    /// The request to send now (changes after a redirect).
    pub fn request(&self) -> &PreparedRequest {
        &self.current
    }

    /// How many redirects have been followed.
    pub fn redirects(&self) -> u32 {
        self.redirects
    }

    /// When the whole call times out.
    pub fn poll_timeout(&self) -> Instant {
        self.deadline.at()
    }

    /// `Err` (the timeout error) once `now` has reached the deadline.
    pub fn handle_timeout(&self, now: Instant) -> Result<(), Error> {
        self.deadline.check(now)
    }

    /// The error for this call's timeout.
    pub fn timeout_error(&self) -> Error {
        self.deadline.error()
    }

    /// Decides what follows a final response head: a redirect (checked
    /// against the domain policy and HTTPS rule, error 11; more than
    /// `max_redirects` is error 19) or reading the body.
    pub fn on_head(&mut self, ctx: &AppContext, head: &ResponseHead) -> Result<Step, Error> {
        self.on_head_in(ctx, head, &mut ResponseBuffers::new())
    }

    /// [`on_head`](Self::on_head), collecting the body (if this head is
    /// the final one) in the body buffer `bufs` keeps; a redirect leaves
    /// it there for the next hop.
    pub fn on_head_in(
        &mut self,
        ctx: &AppContext,
        head: &ResponseHead,
        bufs: &mut ResponseBuffers,
    ) -> Result<Step, Error> {
        let location = head
            .header("location")
            .filter(|_| REDIRECT_STATUSES.contains(&head.status));
        let Some(location) = location else {
            let max = ctx.limits().max_body_bytes;
            return Ok(Step::ReadBody(BodyCollector::new_in(
                head,
                max,
                bufs.take_body(),
            )?));
        };
        let max = ctx.limits().max_redirects;
        if self.redirects >= max {
            return Err(Error::new(
                ErrorKind::TooManyRedirects,
                format!("more than {max} redirects"),
            ));
        }
        let location = std::str::from_utf8(location)
            .map_err(|_| Error::new(ErrorKind::Protocol, "redirect Location is not valid UTF-8"))?;
        let next = self
            .current
            .target()
            .join(location, ctx.limits())
            .map_err(|e| {
                // A hop that is not HTTPS is refused like any other (SPEC §4: 11).
                let kind = match e {
                    crate::UrlError::UnsupportedScheme(_) => ErrorKind::NotAllowed,
                    _ => ErrorKind::Protocol,
                };
                Error::new(
                    kind,
                    format!("redirect to an invalid Location {location:?}: {e}"),
                )
            })?;
        ctx.check_target(&next, Api::Request).map_err(|e| {
            // Every refused hop is error 11 (SPEC §4).
            Error::new(
                ErrorKind::NotAllowed,
                format!("redirect refused: {}", e.message()),
            )
        })?;
        self.current = self.current.redirected(head.status, next);
        self.redirects += 1;
        let drain = is_small_body(head);
        Ok(Step::Redirect { drain })
    }

    /// For callers that stream the body instead of collecting it: when the
    /// final head is a success (SPEC §4: 200-299, 304), the decoder for its
    /// Content-Encoding with no in-memory limit (the caller holds no more
    /// than it reads). `None` when the status is an error, whose body is
    /// collected as usual and finished with [`finish`](Self::finish).
    pub fn stream_decoder(&self, head: &ResponseHead) -> Option<ContentDecoder> {
        is_success(head.status)
            .then(|| ContentDecoder::new(head.header("content-encoding"), u64::MAX))
    }

    /// The result of the call from the final head and its whole decoded
    /// body (SPEC §4 success and HTTP errors).
    pub fn finish(&self, head: ResponseHead, body: Vec<u8>) -> Result<Response, Error> {
        classify(head, body, self.data_type)
    }

    /// [`finish`](Self::finish), writing a success into `out` (its status,
    /// headers, data, and an empty profile for the transport to fill),
    /// built in the head's and the body's own buffers: with buffers from
    /// [`ResponseBuffers`] nothing is allocated here but json values. On an
    /// error `out` is left as it was.
    pub fn finish_into(
        &self,
        head: ResponseHead,
        body: Vec<u8>,
        out: &mut Response,
    ) -> Result<(), Error> {
        classify_into(head, body, self.data_type, out)
    }
}

/// Whether a redirect's body is known to be small enough to drain.
fn is_small_body(head: &ResponseHead) -> bool {
    head.header("content-length")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n <= REDIRECT_DRAIN_LIMIT)
}
