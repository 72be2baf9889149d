//! A URL parsed once into the form every later step uses (SPEC §3, §4): the
//! host the domain policy checks is the host the transport connects to, the
//! Host header names and the TLS SNI carries, because all of them are read
//! from this one value.
//!
//! OWNER NOTE (remove when implemented): written by a helper; the signatures
//! below are the contract the rest of core uses.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::Limits;

/// The schemes mpnet speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http` (only with the loopback development switch).
    Http,
    /// `https`.
    Https,
    /// `ws` (only with the loopback development switch).
    Ws,
    /// `wss`.
    Wss,
}

impl Scheme {
    /// `https` and `wss`.
    pub fn is_secure(self) -> bool {
        matches!(self, Scheme::Https | Scheme::Wss)
    }
    /// `ws` and `wss`.
    pub fn is_websocket(self) -> bool {
        matches!(self, Scheme::Ws | Scheme::Wss)
    }
    /// 80 or 443.
    pub fn default_port(self) -> u16 {
        if self.is_secure() {
            443
        } else {
            80
        }
    }
    /// The scheme's name, lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        }
    }
}

/// A normalised host: lower case, IDNA to ASCII, no trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A domain name in ASCII (punycode for IDN), lower case, no trailing dot.
    Domain(String),
    /// An IPv4 address (any of the WHATWG forms, normalised).
    Ipv4(Ipv4Addr),
    /// An IPv6 address.
    Ipv6(Ipv6Addr),
}

impl fmt::Display for Host {
    /// The host as it appears in a URL (IPv6 in brackets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// The URL is empty (or only white space).
    Empty,
    /// The URL is longer than `Limits::max_url_bytes`.
    TooLong { len: usize, max: usize },
    /// The URL holds a control character (CR, LF, NUL, TAB, ...).
    ControlCharacter,
    /// The URL cannot be parsed as an absolute URL with a host.
    Unparseable(String),
    /// The scheme is not http, https, ws or wss.
    UnsupportedScheme(String),
    /// The URL carries userinfo (`user:pass@`), which is refused.
    Userinfo,
    /// The query holds malformed percent-encoding (`%zz`, `%E4%B8`).
    MalformedPercent(String),
}

/// A parsed, normalised URL. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    scheme: Scheme,
    host: Host,
    port: u16,
    explicit_port: Option<u16>,
    path: String,
    query: Option<String>,
}

impl Target {
    /// Parses `input` (absolute URL). Refuses control characters, userinfo,
    /// URLs over `limits.max_url_bytes`, and schemes other than
    /// http/https/ws/wss. The fragment is dropped. The query is kept as
    /// written, except that bytes that cannot go on the wire (space, controls
    /// other than the refused ones, `"`, `<`, `>`, non-ASCII) are
    /// percent-encoded.
    pub fn parse(input: &str, limits: &Limits) -> Result<Target, UrlError> {
        let _ = (input, limits);
        todo!()
    }

    /// Resolves a redirect `Location` against this URL and parses the result
    /// with the same rules as [`Target::parse`].
    pub fn join(&self, location: &str, limits: &Limits) -> Result<Target, UrlError> {
        let _ = (location, limits);
        todo!()
    }

    /// Appends `text` to the query as SPEC §4 says: after `&` when there is a
    /// query, else after `?`; empty `text` appends nothing. Bytes that cannot
    /// go on the wire are percent-encoded; everything else is kept as it is.
    pub fn append_query(&mut self, text: &str) {
        let _ = text;
        todo!()
    }

    /// Checks the query's percent-encoding: every `%` is followed by two hex
    /// digits and the decoded bytes are valid UTF-8 (SPEC §4, error 15).
    pub fn check_query(&self) -> Result<(), UrlError> {
        todo!()
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }
    /// The normalised host; this is the host to connect to and to check.
    pub fn host(&self) -> &Host {
        &self.host
    }
    /// The port to connect to (explicit or the scheme's default).
    pub fn port(&self) -> u16 {
        self.port
    }
    /// The port written in the URL, if any (even when it equals the default).
    pub fn explicit_port(&self) -> Option<u16> {
        self.explicit_port
    }
    /// The host for DNS and TLS SNI: a domain, or an IP address without brackets.
    pub fn connect_host(&self) -> String {
        todo!()
    }
    /// `/path?query`, the request-target of the request line.
    pub fn request_target(&self) -> String {
        todo!()
    }
    /// The `Host` header value: the host, with `:port` when the port is not
    /// the scheme's default.
    pub fn host_header(&self) -> String {
        todo!()
    }
    /// Whether the host is a loopback address or `localhost`.
    pub fn is_loopback(&self) -> bool {
        todo!()
    }
    /// Returns a copy with another scheme (for `wss` ↔ `https` checks).
    pub fn with_scheme(&self, scheme: Scheme) -> Target {
        let mut t = self.clone();
        t.scheme = scheme;
        t
    }
}

impl fmt::Display for Target {
    /// The full URL as it will be requested: `scheme://host[:port]/path[?query]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = f;
        todo!()
    }
}
