//! From options to the exact request that goes on the wire (SPEC §4): URL
//! checks, domain policy, headers, and the encoding of `data`.

use std::ops::Deref;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT_ENCODING, CONTENT_TYPE};
use http::HeaderMap;

use super::options::{Data, Method, RequestOptions};
use crate::http1::{Exchange, RequestHead};
use crate::target::Target;
use crate::{headers, js, Api, AppContext, Error, Limits};

/// The default `Accept-Encoding` (SPEC §4: gzip and deflate are decoded).
pub const DEFAULT_ACCEPT_ENCODING: &str = "gzip, deflate";

/// One request ready to send: method, where, headers and body.
///
/// The request-target and `Host` header of the head are borrowed from the
/// [`Target`] (its text holds both), so preparing a request allocates no
/// strings for them; a request that sets no headers shares its context's
/// default header map.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedRequest {
    method: Method,
    target: Target,
    headers: Headers,
    body: Bytes,
    send_length: bool,
}

impl PreparedRequest {
    /// Checks `opts` in `ctx` and encodes them, in this order: the URL
    /// (2), the scheme and domain policy (11), the headers (2), the data (a
    /// GET's URL with its data must still fit the URL limit: 2), and the
    /// final query's percent-encoding (15).
    ///
    /// The URL is parsed through the context's memo
    /// ([`AppContext::parse_target`]: same result as [`Target::parse`]);
    /// the domain policy is checked every time (SPEC §3).
    pub fn new(ctx: &AppContext, opts: &RequestOptions) -> Result<Self, Error> {
        let mut target = ctx.parse_target(&opts.url)?;
        ctx.check_target(&target, Api::Request)?;
        let headers = if opts.headers.is_empty() {
            Headers::Shared(ctx.default_request_headers(|| request_headers(ctx, &[]))?)
        } else {
            Headers::Own(request_headers(ctx, &opts.headers)?)
        };
        let body = match (opts.method, &opts.data) {
            (_, None) => Bytes::new(),
            (Method::Get, Some(data)) => {
                target.append_query(&query_text(data)?);
                target.check_length_with_data(ctx.limits())?;
                Bytes::new()
            }
            (_, Some(data)) => {
                let form = headers
                    .get(CONTENT_TYPE)
                    .is_some_and(headers::is_form_urlencoded);
                body_bytes(data, form)
            }
        };
        target.check_query()?;
        let send_length = matches!(opts.method, Method::Post | Method::Put) || !body.is_empty();
        Ok(Self::assemble(
            opts.method,
            target,
            headers,
            body,
            send_length,
        ))
    }

    fn assemble(
        method: Method,
        target: Target,
        headers: Headers,
        body: Bytes,
        send_length: bool,
    ) -> Self {
        PreparedRequest {
            method,
            target,
            headers,
            body,
            send_length,
        }
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }
    /// Where the request goes.
    pub fn target(&self) -> &Target {
        &self.target
    }
    /// The headers (without `host` and `content-length`, which the head
    /// writer adds).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    /// The body bytes.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The head of this request for the HTTP/1.1 exchange.
    pub fn head<'a>(&'a self, method: &'a http::Method) -> RequestHead<'a> {
        RequestHead {
            method,
            target: self.target.request_target_str(),
            host: self.target.host_header_str(),
            headers: &self.headers,
            body_len: self.send_length.then_some(self.body.len() as u64),
        }
    }

    /// Starts the HTTP/1.1 exchange for this request.
    pub fn exchange(&self, limits: &Limits) -> Exchange<crate::http1::state::SendRequest> {
        let method = self.method.to_http();
        Exchange::new(&self.head(&method), limits)
    }

    /// [`exchange`](Self::exchange), encoding the head into `buf` (see
    /// [`Exchange::new_in`]: a connection's kept buffer, so a warm request
    /// allocates nothing for its head), with a small body attached to it
    /// ([`Exchange::attach_body`]). Returns the exchange and the body bytes
    /// still to write after [`Exchange::head`]: empty when the body went
    /// with the head or there is none.
    pub fn exchange_in(
        &self,
        limits: &Limits,
        buf: Vec<u8>,
    ) -> (Exchange<crate::http1::state::SendRequest>, &[u8]) {
        let method = self.method.to_http();
        let mut exchange = Exchange::new_in(&self.head(&method), limits, buf);
        let rest: &[u8] = if exchange.attach_body(&self.body) {
            &[]
        } else {
            &self.body
        };
        (exchange, rest)
    }

    /// The request for the next hop of a redirect (SPEC §4): 303, and 301/302
    /// after a POST, become GET without a body; 307/308 keep method and
    /// body. `Authorization` and `Cookie` are dropped when the origin changes.
    pub fn redirected(&self, status: u16, next: Target) -> PreparedRequest {
        let to_get = status == 303 || (matches!(status, 301 | 302) && self.method == Method::Post);
        let mut headers = HeaderMap::clone(&self.headers);
        let same_origin = next.scheme() == self.target.scheme()
            && next.host() == self.target.host()
            && next.port() == self.target.port();
        if !same_origin {
            headers.remove(http::header::AUTHORIZATION);
            headers.remove(http::header::COOKIE);
        }
        if to_get {
            headers.remove(CONTENT_TYPE);
            Self::assemble(
                Method::Get,
                next,
                Headers::Own(headers),
                Bytes::new(),
                false,
            )
        } else {
            Self::assemble(
                self.method,
                next,
                Headers::Own(headers),
                self.body.clone(),
                self.send_length,
            )
        }
    }
}

/// The headers a request sends (SPEC §3, §4): the caller's, checked, the
/// default `content-type`, the referer, the user agent, then
/// `accept-encoding` unless the caller set one.
fn request_headers(ctx: &AppContext, caller: &[(String, String)]) -> Result<HeaderMap, Error> {
    let mut headers = headers::build(ctx, caller, Some("application/json"))?;
    if !headers.contains_key(ACCEPT_ENCODING) {
        headers.insert(
            ACCEPT_ENCODING,
            HeaderValue::from_static(DEFAULT_ACCEPT_ENCODING),
        );
    }
    Ok(headers)
}

/// A request's header map: the context's shared defaults (no caller
/// headers: no map is built per request), or the request's own.
#[derive(Debug, Clone)]
enum Headers {
    Shared(Arc<HeaderMap>),
    Own(HeaderMap),
}

impl Deref for Headers {
    type Target = HeaderMap;
    fn deref(&self) -> &HeaderMap {
        match self {
            Headers::Shared(map) => map,
            Headers::Own(map) => map,
        }
    }
}

impl PartialEq for Headers {
    /// Equal maps, shared or not.
    fn eq(&self, other: &Headers) -> bool {
        **self == **other
    }
}

/// The text `data` adds to a GET's query (SPEC §4).
fn query_text(data: &Data) -> Result<String, Error> {
    match data {
        Data::Json(v) => Ok(js::to_query_string(v)),
        Data::Text(s) => Ok(s.clone()),
        Data::Bytes(_) => Err(Error::invalid(
            "binary data cannot be sent with GET: use POST or PUT",
        )),
    }
}

/// The body `data` becomes for POST/PUT/DELETE (SPEC §4).
fn body_bytes(data: &Data, form: bool) -> Bytes {
    match data {
        Data::Json(v) if form => Bytes::from(js::to_query_string(v)),
        Data::Json(v) => {
            // Room for a typical document up front, not a dozen regrowths.
            let mut out = String::with_capacity(512);
            js::stringify(v, &mut out);
            Bytes::from(out)
        }
        Data::Text(s) => Bytes::from(s.clone()),
        Data::Bytes(b) => b.clone(),
    }
}

/// What a request puts on the wire, as `mpnet encode` prints it (SPEC §9):
/// read back from the very head bytes the exchange would write.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WireView {
    /// The method.
    pub method: String,
    /// The full URL requested (fragment dropped, data appended).
    pub url: String,
    /// Every header line of the head, in order, including `host` and
    /// `content-length`.
    #[serde(serialize_with = "serialize_pairs")]
    pub headers: Vec<(String, String)>,
    /// The body, base64.
    pub body: String,
}

fn serialize_pairs<S: serde::Serializer>(
    pairs: &[(String, String)],
    s: S,
) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&crate::error::HeaderObject(pairs), s)
}

impl PreparedRequest {
    /// The request as it goes on the wire; see [`WireView`].
    pub fn wire_view(&self, limits: &Limits) -> WireView {
        use base64::Engine as _;
        let exchange = self.exchange(limits);
        let mut slots = vec![httparse::EMPTY_HEADER; self.headers.len() + 8];
        let mut req = httparse::Request::new(&mut slots);
        let mut headers = Vec::new();
        // The head was written by our own writer from checked parts, so it
        // always parses; should it not, the view shows no headers rather
        // than panicking.
        if let Ok(httparse::Status::Complete(_)) = req.parse(exchange.head()) {
            headers = req
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
        }
        WireView {
            method: self.method.as_str().to_string(),
            url: self.target.to_string(),
            headers,
            body: base64::engine::general_purpose::STANDARD.encode(&self.body),
        }
    }
}
