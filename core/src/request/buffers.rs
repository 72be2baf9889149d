//! Recycling a [`Response`]'s buffers for the next `my.request` (the
//! transports' `request_into`): the response-head buffer and its span list
//! (the header object's text and fields) and the body buffer (the data's
//! bytes) are taken apart, emptied, and handed down to where the next
//! response is parsed and collected, so a call whose response fits them
//! allocates nothing for its head or body.
//!
//! ```text
//!  out: Response ──ResponseBuffers::take──► head: HeadBuffers ──► Exchange::try_response_in
//!       ▲                                   body: Vec<u8>     ──► RequestFlow::on_head_in
//!       │                                                          (BodyCollector::new_in)
//!       └──────────── RequestFlow::finish_into(head, body, out) ◄──┘
//! ```
//!
//! Buffers stay bounded: a head buffer (or span list) over
//! [`KEPT_RESPONSE_HEAD_MAX`](crate::http1::KEPT_RESPONSE_HEAD_MAX) and a body buffer over
//! [`KEPT_RESPONSE_BODY_MAX`] are dropped instead of kept, so one large
//! response does not pin its memory for every later call.

use bytes::Bytes;

use super::response::{Response, ResponseData};
use crate::http1::{HeadBuffers, ResponseHead};

/// The largest body buffer [`ResponseBuffers`] keeps (1 MiB); a larger one
/// is dropped.
pub const KEPT_RESPONSE_BODY_MAX: usize = 1 << 20;

/// The reusable buffers of a [`Response`], empty, for the next call to
/// fill: see the module docs.
///
/// ```
/// use mpnet_core::http1::ResponseHead;
/// use mpnet_core::request::{
///     response::classify_into, DataType, Response, ResponseBuffers, ResponseData,
/// };
///
/// let head = || ResponseHead::new(200, "OK", http::Version::HTTP_11, [("A", "1")]);
/// let mut out = Response::default();
/// classify_into(head(), b"hello".to_vec(), DataType::Text, &mut out)?;
/// let ResponseData::Text(text) = &out.data else { unreachable!() };
/// let (ptr, cap) = (text.as_ptr(), text.capacity());
///
/// // Taken apart: `out` is empty, its buffers are kept.
/// let mut bufs = ResponseBuffers::take(&mut out);
/// assert_eq!(out, Response::default());
/// assert_eq!(bufs.body_capacity(), cap);
///
/// // The next body is collected in the same buffer.
/// let mut body = bufs.take_body();
/// body.extend_from_slice(b"world");
/// classify_into(head(), body, DataType::Text, &mut out)?;
/// let ResponseData::Text(text) = &out.data else { unreachable!() };
/// assert_eq!((text.as_str(), text.as_ptr()), ("world", ptr));
/// # Ok::<(), mpnet_core::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct ResponseBuffers {
    /// For the response head (and then the header object).
    head: HeadBuffers,
    /// For the body (and then the data); always empty.
    body: Vec<u8>,
}

impl ResponseBuffers {
    /// No buffers (nothing allocated): a call with them allocates as
    /// `request` does.
    pub fn new() -> Self {
        ResponseBuffers::default()
    }

    /// Takes `out` apart, leaving it [`Response::default()`], and keeps its
    /// buffers within the bounds: the header object's text and span list
    /// (up to [`KEPT_RESPONSE_HEAD_MAX`](crate::http1::KEPT_RESPONSE_HEAD_MAX)
    /// bytes each) and the data's buffer
    /// (up to [`KEPT_RESPONSE_BODY_MAX`]): the bytes of arraybuffer data
    /// when nothing else shares them (a clone of the `Bytes` still alive
    /// means the buffer is not reused, and is not copied either), the
    /// string of text or base64 data. Json data has no buffer to give.
    pub fn take(out: &mut Response) -> Self {
        let Response { headers, data, .. } = std::mem::take(out);
        let body = match data {
            ResponseData::ArrayBuffer(bytes) => unique_vec(bytes),
            ResponseData::Text(s) | ResponseData::Base64(s) => s.into_bytes(),
            ResponseData::Json(_) => Vec::new(),
        };
        ResponseBuffers {
            head: HeadBuffers::from_js_headers(headers),
            body: bounded_body(body),
        }
    }

    /// Where the next response head is parsed (see
    /// [`Exchange::try_response_in`](crate::http1::Exchange::try_response_in)).
    pub fn head(&mut self) -> &mut HeadBuffers {
        &mut self.head
    }

    /// Takes the head buffers of `head` back when none are kept: a
    /// redirect's head hands them on to the next hop's.
    pub fn recycle_head(&mut self, head: ResponseHead) {
        self.head.refill(head);
    }

    /// The body buffer, empty, to collect the next body in; none is kept
    /// after this.
    pub fn take_body(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.body)
    }

    /// The capacity of the kept body buffer.
    pub fn body_capacity(&self) -> usize {
        self.body.capacity()
    }

    /// The capacities of the kept head buffers (see
    /// [`HeadBuffers::capacity`]).
    pub fn head_capacity(&self) -> (usize, usize) {
        self.head.capacity()
    }
}

/// `bytes` as a `Vec` without copying when it is the only handle on its
/// buffer; otherwise nothing (dropping this handle only).
fn unique_vec(bytes: Bytes) -> Vec<u8> {
    if bytes.is_unique() {
        // bytes 1.12: a unique handle gives its buffer back as it is
        // (`From<Bytes> for Vec<u8>` copies only a shared one).
        Vec::from(bytes)
    } else {
        Vec::new()
    }
}

/// `body`, emptied, unless over [`KEPT_RESPONSE_BODY_MAX`].
fn bounded_body(mut body: Vec<u8>) -> Vec<u8> {
    if body.capacity() > KEPT_RESPONSE_BODY_MAX {
        return Vec::new();
    }
    body.clear();
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::{AfterHead, Exchange, RequestHead, KEPT_RESPONSE_HEAD_MAX};
    use crate::request::response::{classify_into, BodyCollector};
    use crate::request::DataType;
    use crate::{Error, JsHeaders, Limits};
    use proptest::prelude::*;

    /// One exchange over `wire` (a whole response), the head parsed and
    /// the body collected in `out`'s buffers, the result written into
    /// `out`, as a transport's `run_into` does.
    fn exchange_into(wire: &[u8], data_type: DataType, out: &mut Response) -> Result<(), Error> {
        let bufs = ResponseBuffers::take(out);
        exchange_with(wire, data_type, bufs, out)
    }

    /// [`exchange_into`] with buffers already taken from `out`.
    fn exchange_with(
        wire: &[u8],
        data_type: DataType,
        mut bufs: ResponseBuffers,
        out: &mut Response,
    ) -> Result<(), Error> {
        let headers = http::HeaderMap::new();
        let request = RequestHead {
            method: &http::Method::GET,
            target: "/",
            host: "example.com",
            headers: &headers,
            body_len: None,
        };
        let mut recv = Exchange::new(&request, &Limits::default()).request_sent();
        let mut input = wire;
        let head = loop {
            match recv.try_response_in(input, bufs.head())? {
                (n, Some(head)) => {
                    input = &input[n..];
                    break head;
                }
                (0, None) => return Err(recv.handle_eof().into()),
                (n, None) => input = &input[n..],
            }
        };
        let mut collector =
            BodyCollector::new_in(&head, Limits::default().max_body_bytes, bufs.take_body())?;
        if let AfterHead::Body(mut body) = recv.into_body(&head)? {
            while !body.is_finished() {
                let chunk = body.read(input)?;
                collector.push(&input[chunk.data.clone()])?;
                input = &input[chunk.consumed..];
                if chunk.need_more() {
                    body.handle_eof()?;
                }
            }
        }
        classify_into(head, collector.finish()?, data_type, out)
    }

    /// The same exchange into a new response, as `request` runs it.
    fn exchange_fresh(wire: &[u8], data_type: DataType) -> Result<Response, Error> {
        let mut out = Response::default();
        exchange_into(wire, data_type, &mut out).map(|()| out)
    }

    fn wire(status: u16, fields: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
        let mut w = format!("HTTP/1.1 {status} Reason\r\n").into_bytes();
        for (name, value) in fields {
            w.extend_from_slice(name.as_bytes());
            w.extend_from_slice(b": ");
            w.extend_from_slice(value);
            w.extend_from_slice(b"\r\n");
        }
        w.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        w.extend_from_slice(body);
        w
    }

    fn body_ptr(r: &Response) -> *const u8 {
        match &r.data {
            ResponseData::ArrayBuffer(b) => b.as_ptr(),
            ResponseData::Text(s) | ResponseData::Base64(s) => s.as_ptr(),
            ResponseData::Json(_) => std::ptr::null(),
        }
    }

    #[test]
    fn recycled_responses_equal_fresh_ones_across_shapes() {
        let big_fields: Vec<(String, Vec<u8>)> = (0..30)
            .map(|i| (format!("X-Field-{i}"), vec![b'v'; 50]))
            .collect();
        let big: Vec<(&str, &[u8])> = big_fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let cases: Vec<(Vec<u8>, DataType)> = vec![
            (wire(200, &big, &[7; 2000]), DataType::ArrayBuffer),
            // Smaller head and body, repeated names joined, a non-UTF-8 value.
            (
                wire(
                    200,
                    &[
                        ("Set-Cookie", b"a=1"),
                        ("X-Raw", b"\xff\xfe"),
                        ("set-cookie", b"b=2"),
                    ],
                    b"short",
                ),
                DataType::ArrayBuffer,
            ),
            (
                wire(200, &[("A", b"1")], "中文 text".as_bytes()),
                DataType::Text,
            ),
            (
                wire(200, &[("A", b"1")], b"\x00\x01\x02\xff"),
                DataType::Base64,
            ),
            (wire(200, &[], br#"{"a":[1,2]}"#), DataType::Json),
            (
                wire(404, &[("X", b"\xe4\xb8")], b"not found"),
                DataType::ArrayBuffer,
            ),
            (wire(200, &[("A", b"1")], b"\xff"), DataType::Text),
            (wire(204, &[("A", b"1"), ("a", b"2")], b""), DataType::Text),
            (wire(200, &big, &[9; 100]), DataType::ArrayBuffer),
        ];
        let mut out = Response::default();
        for round in 0..2 {
            for (i, (w, dt)) in cases.iter().enumerate() {
                let fresh = exchange_fresh(w, *dt);
                let recycled = exchange_into(w, *dt, &mut out);
                match (&fresh, &recycled) {
                    (Ok(f), Ok(())) => assert_eq!(&out, f, "round {round} case {i}"),
                    (Err(f), Err(r)) => {
                        assert_eq!(r, f, "round {round} case {i}");
                        assert_eq!(out, Response::default(), "an error leaves `out` empty");
                    }
                    _ => panic!("round {round} case {i}: {fresh:?} vs {recycled:?}"),
                }
            }
        }
    }

    #[test]
    fn the_same_response_again_reuses_every_buffer() {
        for dt in [DataType::ArrayBuffer, DataType::Text, DataType::Base64] {
            let w = wire(
                200,
                &[("Set-Cookie", b"a"), ("set-cookie", b"b"), ("X", b"\xff")],
                b"hello",
            );
            let expected = exchange_fresh(&w, dt).unwrap();
            let mut out = Response::default();
            exchange_into(&w, dt, &mut out).unwrap();
            let ptr = body_ptr(&out);
            let mut kept = None;
            for _ in 0..3 {
                let bufs = ResponseBuffers::take(&mut out);
                let caps = (bufs.head_capacity(), bufs.body_capacity());
                assert!(
                    caps.0 .0 > 0 && caps.0 .1 > 0 && caps.1 > 0,
                    "{dt:?}: {caps:?}"
                );
                assert_eq!(*kept.get_or_insert(caps), caps, "{dt:?}: nothing grew");
                exchange_with(&w, dt, bufs, &mut out).unwrap();
                assert_eq!(out, expected);
                assert_eq!(body_ptr(&out), ptr, "{dt:?}: the body buffer is reused");
            }
        }
    }

    #[test]
    fn take_keeps_only_buffers_nothing_else_holds() {
        let arraybuffer = |b: Bytes| Response {
            data: ResponseData::ArrayBuffer(b),
            ..Response::default()
        };
        // Unique: the same allocation comes back, emptied.
        let v = vec![1u8; 100];
        let ptr = v.as_ptr();
        let mut out = arraybuffer(Bytes::from(v));
        let mut bufs = ResponseBuffers::take(&mut out);
        assert_eq!(out, Response::default());
        let body = bufs.take_body();
        assert_eq!((body.as_ptr(), body.len(), body.capacity()), (ptr, 0, 100));
        // Shared with a clone the caller kept: neither reused nor copied.
        let kept = Bytes::from(vec![2u8; 100]);
        let mut out = arraybuffer(kept.clone());
        assert_eq!(ResponseBuffers::take(&mut out).body_capacity(), 0);
        assert_eq!(kept, vec![2u8; 100]);
        // Static bytes are not unique.
        let mut out = arraybuffer(Bytes::from_static(b"abc"));
        assert_eq!(ResponseBuffers::take(&mut out).body_capacity(), 0);
        // Text and base64 strings are reused; json has no buffer.
        let mut out = Response {
            data: ResponseData::Base64(String::with_capacity(40)),
            ..Response::default()
        };
        assert_eq!(ResponseBuffers::take(&mut out).body_capacity(), 40);
        let mut out = Response {
            data: ResponseData::Json(serde_json::json!({"a": "b"})),
            ..Response::default()
        };
        assert_eq!(ResponseBuffers::take(&mut out).body_capacity(), 0);
    }

    #[test]
    fn big_buffers_are_dropped_not_kept() {
        let text = |cap: usize| Response {
            data: ResponseData::Text(String::with_capacity(cap)),
            ..Response::default()
        };
        let mut at_bound = text(KEPT_RESPONSE_BODY_MAX);
        assert_eq!(
            ResponseBuffers::take(&mut at_bound).body_capacity(),
            KEPT_RESPONSE_BODY_MAX
        );
        let mut over = text(KEPT_RESPONSE_BODY_MAX + 1);
        assert_eq!(ResponseBuffers::take(&mut over).body_capacity(), 0);

        // A one-off 2 MiB arraybuffer response: its buffer is not kept, and
        // the next (small) response gets a small one.
        let big = wire(200, &[], &vec![1u8; 2 << 20]);
        let mut out = Response::default();
        exchange_into(&big, DataType::ArrayBuffer, &mut out).unwrap();
        assert_eq!(ResponseBuffers::take(&mut out.clone()).body_capacity(), 0);
        exchange_into(&wire(200, &[], b"small"), DataType::ArrayBuffer, &mut out).unwrap();
        assert_eq!(ResponseBuffers::take(&mut out).body_capacity(), 5);

        // A head over 16 KiB: its buffer is dropped too.
        let value = vec![b'h'; KEPT_RESPONSE_HEAD_MAX];
        let huge_head = wire(200, &[("X-Big", &value)], b"x");
        let mut out = Response::default();
        exchange_into(&huge_head, DataType::Text, &mut out).unwrap();
        assert_eq!(
            out.header("x-big").map(str::len),
            Some(KEPT_RESPONSE_HEAD_MAX)
        );
        assert_eq!(ResponseBuffers::take(&mut out).head_capacity().0, 0);
        let headers: JsHeaders = [("A", "b")].into_iter().collect();
        let mut small = Response {
            headers,
            ..Response::default()
        };
        assert!(ResponseBuffers::take(&mut small).head_capacity().0 > 0);
    }

    /// A response as the proptest makes it: status, fields, body, dataType.
    type Generated = (u16, Vec<(String, Vec<u8>)>, Vec<u8>, DataType);

    fn response() -> impl Strategy<Value = Generated> {
        let status = prop::sample::select(vec![200u16, 201, 204, 304, 404, 429, 500]);
        let name = prop::sample::select(vec!["A", "a", "Set-Cookie", "set-cookie", "X-Long-Name"]);
        let value = prop::collection::vec(
            prop::sample::select(vec![b'x', b' ', b',', 0xc3, 0xa9, 0xff, 0xe4, 0xb8, 0xad]),
            0..40,
        );
        let fields = prop::collection::vec((name.prop_map(str::to_string), value), 0..12);
        let body = prop_oneof![
            prop::collection::vec(any::<u8>(), 0..600),
            "[a-z中 ]{0,50}".prop_map(String::into_bytes),
            Just(br#"{"k": [1, "v"]}"#.to_vec()),
        ];
        let data_type = prop::sample::select(vec![
            DataType::Json,
            DataType::Text,
            DataType::Base64,
            DataType::ArrayBuffer,
        ]);
        (status, fields, body, data_type)
    }

    proptest! {
        /// Any series of responses through one recycled `out` gives, call
        /// by call, what fresh responses give.
        #[test]
        fn a_series_through_recycled_buffers_matches_fresh_ones(
            series in prop::collection::vec(response(), 1..8),
        ) {
            let mut out = Response::default();
            for (status, fields, body, data_type) in &series {
                let fields: Vec<(&str, &[u8])> =
                    fields.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
                let w = wire(*status, &fields, body);
                let fresh = exchange_fresh(&w, *data_type);
                let recycled = exchange_into(&w, *data_type, &mut out);
                match fresh {
                    Ok(f) => {
                        prop_assert!(recycled.is_ok());
                        prop_assert_eq!(&out, &f);
                    }
                    Err(f) => {
                        prop_assert_eq!(recycled, Err(f));
                        prop_assert_eq!(&out, &Response::default());
                    }
                }
            }
        }
    }
}
