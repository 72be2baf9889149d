//! A URL parsed once into the form every later step uses (SPEC §3, §4): the
//! host the domain policy checks is the host the transport connects to, the
//! Host header names and the TLS SNI carries, because all of them are read
//! from this one value.
//!
//! Parsing follows the WHATWG URL standard (through the `url` crate), so a
//! URL means here what it means in a JavaScript runtime: `https:evil.com`,
//! `https:/evil.com` and `https:\\evil.com` all name host `evil.com`; a
//! backslash ends the authority (`https://evil.com\@good.com/` is host
//! `evil.com`, path `/@good.com/`); hosts are percent-decoded, mapped by
//! IDNA to ASCII (`bücher.example` → `xn--bcher-kva.example`,
//! `example。com` → `example.com`) and IPv4 addresses in any WHATWG form
//! (`0x7f.1`, `2130706433`, `127.1`) become dotted quads.
//!
//! On top of that standard, mpnet is stricter where the wire needs it:
//!
//! - control characters (C0, including TAB, CR, LF, NUL, and DEL) anywhere in
//!   the input are refused, never silently removed as WHATWG does;
//! - an `@` anywhere in the authority (userinfo, even an empty one) is
//!   refused (SPEC §3);
//! - a domain host may hold only ASCII letters, digits, `-`, `_` and `.`
//!   after IDNA, and no empty label (`a..b`, `.a`); one trailing dot (the DNS
//!   root) is removed for checking, connecting, the Host header and SNI;
//! - the port written in the input is remembered even when it equals the
//!   scheme's default (`https://a.com:443`), because the whitelist's port
//!   rule depends on it (SPEC §3);
//! - the query is kept as written (the `url` crate would re-encode `'` as
//!   `%27`); only bytes that cannot go on the wire are percent-encoded
//!   (SPEC §4).

use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::error::{Error, ErrorKind};
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
    /// The scheme named `name` (ASCII case-insensitive), if mpnet speaks it.
    pub fn from_name(name: &str) -> Option<Scheme> {
        [Scheme::Http, Scheme::Https, Scheme::Ws, Scheme::Wss]
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A normalised host: lower case, IDNA to ASCII, no trailing dot.
///
/// Cheap to clone: a domain is a shared `Arc<str>` (read it with
/// [`Host::domain`] or `&**d`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A domain name in ASCII (punycode for IDN), lower case, no trailing dot.
    Domain(Arc<str>),
    /// An IPv4 address (any of the WHATWG forms, normalised).
    Ipv4(Ipv4Addr),
    /// An IPv6 address.
    Ipv6(Ipv6Addr),
}

impl Host {
    /// Normalises a host the `url` crate parsed (already percent-decoded,
    /// lower case, IDNA to ASCII): removes one trailing dot and refuses
    /// empty labels and characters that do not belong in a DNS name.
    /// [`Target`] and the whitelist entries of [`crate::policy`] both use
    /// this, so a URL and an entry that name the same host compare equal.
    pub(crate) fn from_url_host(host: url::Host<&str>) -> Result<Host, UrlError> {
        match host {
            url::Host::Ipv4(a) => Ok(Host::Ipv4(a)),
            url::Host::Ipv6(a) => Ok(Host::Ipv6(a)),
            url::Host::Domain(d) => {
                let d = d.strip_suffix('.').unwrap_or(d);
                if d.is_empty() {
                    return Err(UrlError::Unparseable("the host is empty".into()));
                }
                if d.split('.').any(str::is_empty) {
                    return Err(UrlError::Unparseable(format!(
                        "host `{d}` has an empty label"
                    )));
                }
                if let Some(c) = d
                    .chars()
                    .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
                {
                    return Err(UrlError::Unparseable(format!(
                        "host `{d}` holds `{c}`, which is not allowed in a domain name"
                    )));
                }
                // The `url` crate already lower-cases domains; copy once.
                let domain: Arc<str> = if d.bytes().any(|b| b.is_ascii_uppercase()) {
                    Arc::from(d.to_ascii_lowercase())
                } else {
                    Arc::from(d)
                };
                Ok(Host::Domain(domain))
            }
        }
    }

    /// The domain name, when this host is one (not an IP address).
    pub fn domain(&self) -> Option<&str> {
        match self {
            Host::Domain(d) => Some(d),
            Host::Ipv4(_) | Host::Ipv6(_) => None,
        }
    }

    /// Whether this is a loopback address (127.0.0.0/8, `::1`, or an
    /// IPv4-mapped `::ffff:127.x.y.z`) or `localhost` / `*.localhost`.
    pub fn is_loopback(&self) -> bool {
        match self {
            Host::Domain(d) => is_localhost_name(d),
            Host::Ipv4(a) => a.is_loopback(),
            Host::Ipv6(a) => {
                a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        }
    }

    /// The host for DNS and TLS SNI: the domain, or the address without
    /// brackets.
    pub fn connect_name(&self) -> String {
        match self {
            Host::Domain(d) => d.to_string(),
            Host::Ipv4(a) => a.to_string(),
            Host::Ipv6(a) => a.to_string(),
        }
    }
}

/// `localhost` or a name under it (`a.localhost`), which always means this
/// machine (RFC 6761 §6.3).
fn is_localhost_name(name: &str) -> bool {
    name == "localhost" || name.ends_with(".localhost")
}

/// The addresses of a connect host ([`Target::connect_host`]) that need no
/// resolver: an IP address is itself, and `localhost` and `*.localhost` are
/// `127.0.0.1` then `::1` (RFC 6761 §6.3, as browsers do), so a loopback
/// name that `allow_insecure_loopback` lets through plain text can never
/// reach another machine. `None`: ask the resolver.
///
/// ```
/// use mpnet_core::target::addresses_without_lookup;
/// let a = addresses_without_lookup("api.localhost", 8080).unwrap();
/// assert_eq!(a[0].to_string(), "127.0.0.1:8080");
/// assert_eq!(a[1].to_string(), "[::1]:8080");
/// assert!(addresses_without_lookup("example.com", 443).is_none());
/// ```
pub fn addresses_without_lookup(host: &str, port: u16) -> Option<Vec<std::net::SocketAddr>> {
    use std::net::{IpAddr, SocketAddr};
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(vec![SocketAddr::new(ip, port)]);
    }
    is_localhost_name(&host.to_ascii_lowercase()).then(|| {
        vec![
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port),
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port),
        ]
    })
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
    TooLong {
        /// The URL's length in bytes.
        len: usize,
        /// The limit, `Limits::max_url_bytes`.
        max: usize,
    },
    /// The URL with a GET's data added to its query is longer than
    /// `Limits::max_url_bytes` (SPEC §4: the limit is on what is sent).
    TooLongWithData {
        /// The length in bytes of the URL with the data added.
        len: usize,
        /// The limit, `Limits::max_url_bytes`.
        max: usize,
    },
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

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::Empty => f.write_str("url is empty"),
            UrlError::TooLong { len, max } => {
                write!(f, "url is {len} bytes, over the limit of {max}")
            }
            UrlError::TooLongWithData { len, max } => write!(
                f,
                "url with the data added to its query is {len} bytes, over the limit of {max}"
            ),
            UrlError::ControlCharacter => f.write_str(
                "url contains a control character (TAB, CR, LF, NUL, DEL or another); \
                 percent-encode it",
            ),
            UrlError::Unparseable(reason) => write!(f, "url cannot be parsed: {reason}"),
            UrlError::UnsupportedScheme(scheme) => write!(
                f,
                "url scheme `{scheme}` is not supported (only https, wss, http, ws)"
            ),
            UrlError::Userinfo => f.write_str(
                "url carries userinfo (`user:password@` before the host), which is not allowed",
            ),
            UrlError::MalformedPercent(what) => {
                write!(f, "url query has malformed percent-encoding: {what}")
            }
        }
    }
}

impl std::error::Error for UrlError {}

impl From<UrlError> for Error {
    /// SPEC §4: empty, too long and unparseable URLs are bad options (code
    /// 2 for `my.request`); an unsupported scheme is refused like a
    /// non-HTTPS origin (11); malformed percent-encoding in the query is 15.
    /// The socket codes 3, 4, 5 of SPEC §7 come from the same kinds.
    fn from(e: UrlError) -> Error {
        let kind = match &e {
            UrlError::Empty => ErrorKind::EmptyUrl,
            UrlError::TooLong { .. } | UrlError::TooLongWithData { .. } => {
                ErrorKind::InvalidOptions
            }
            UrlError::ControlCharacter | UrlError::Unparseable(_) | UrlError::Userinfo => {
                ErrorKind::InvalidUrl
            }
            UrlError::UnsupportedScheme(_) => ErrorKind::UnsupportedScheme,
            UrlError::MalformedPercent(_) => ErrorKind::MalformedQuery,
        };
        Error::new(kind, e.to_string())
    }
}

/// A parsed, normalised URL. See the module docs.
///
/// Cheap to clone: the text is one shared `Arc<str>` (the
/// [`Display`](fmt::Display) form, `scheme://host[:port]/path[?query]`)
/// and the path, query, request-target and `Host` header are ranges of it,
/// so a clone allocates nothing. [`Target::append_query`] and
/// [`Target::with_scheme`] build a new text (copy on write); other clones
/// are not affected.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    scheme: Scheme,
    host: Host,
    port: u16,
    explicit_port: Option<u16>,
    /// `scheme://host[:port]/path[?query]`, exactly what `Display` writes.
    text: Arc<str>,
    /// Where the path starts in `text` (the end of `host[:port]`).
    path_start: usize,
    /// Where the query starts in `text` (just after its `?`), if any.
    query_start: Option<usize>,
}

impl fmt::Debug for Target {
    /// The parts, as the fields of earlier versions printed them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("scheme", &self.scheme)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("explicit_port", &self.explicit_port)
            .field("path", &self.path())
            .field("query", &self.query())
            .finish()
    }
}

impl Target {
    /// Parses `input` (absolute URL). Refuses control characters, userinfo,
    /// URLs over `limits.max_url_bytes`, and schemes other than
    /// http/https/ws/wss. The fragment is dropped. The query is kept as
    /// written, except that bytes that cannot go on the wire (space, controls
    /// other than the refused ones, `"`, `<`, `>`, non-ASCII) are
    /// percent-encoded.
    ///
    /// Errors, in the order they are checked: [`UrlError::Empty`] (empty or
    /// only ASCII white space), [`UrlError::TooLong`] (`input.len()` over the
    /// limit), [`UrlError::ControlCharacter`] (any byte below 0x20, or 0x7F),
    /// [`UrlError::Unparseable`] (no scheme, i.e. relative),
    /// [`UrlError::UnsupportedScheme`], [`UrlError::Userinfo`] (an `@` in the
    /// authority), [`UrlError::Unparseable`] (anything WHATWG refuses, and
    /// hosts with empty labels or non-DNS characters). Leading and trailing
    /// spaces are removed.
    pub fn parse(input: &str, limits: &Limits) -> Result<Target, UrlError> {
        let s = precheck(input, limits)?;
        let Some(name) = leading_scheme(s) else {
            return Err(UrlError::Unparseable(
                "no scheme: an absolute URL such as https://host/path is required".into(),
            ));
        };
        let scheme = supported_scheme(name)?;
        let raw = scan_raw(&s[name.len() + 1..], true);
        refuse_userinfo(raw.authority)?;
        let url = url::Url::parse(s).map_err(|e| UrlError::Unparseable(e.to_string()))?;
        let target = Target::build(&url, raw, None)?;
        if target.scheme != scheme {
            return Err(inconsistent("scheme"));
        }
        Ok(target)
    }

    /// Resolves a redirect `Location` against this URL and parses the result
    /// with the same rules as [`Target::parse`].
    ///
    /// Resolution is WHATWG's (`//host/p`, `/\host`, `\\host` and
    /// `https://host` replace the origin; `/p`, `p`, `../p`, `?q` keep it).
    /// The port written in `location` (or, when `location` keeps the origin,
    /// this URL's written port) and the query as written in `location` (or
    /// this URL's query when `location` is empty or only a fragment) carry
    /// over unchanged. The resolved URL must fit `limits.max_url_bytes`.
    pub fn join(&self, location: &str, limits: &Limits) -> Result<Target, UrlError> {
        if location.len() > limits.max_url_bytes {
            return Err(UrlError::TooLong {
                len: location.len(),
                max: limits.max_url_bytes,
            });
        }
        if location.bytes().any(is_control) {
            return Err(UrlError::ControlCharacter);
        }
        let loc = location.trim_matches(' ');
        let raw = match leading_scheme(loc) {
            Some(name) => {
                let scheme = supported_scheme(name)?;
                // WHATWG: a different special scheme always starts an
                // authority; the same scheme continues as a relative URL.
                scan_raw(&loc[name.len() + 1..], scheme != self.scheme)
            }
            None => scan_raw(loc, false),
        };
        refuse_userinfo(raw.authority)?;
        let base = url::Url::parse(&self.text)
            .map_err(|e| UrlError::Unparseable(format!("redirect base: {e}")))?;
        let url = base
            .join(loc)
            .map_err(|e| UrlError::Unparseable(e.to_string()))?;
        let target = Target::build(&url, raw, Some(self))?;
        let len = target.text.len();
        if len > limits.max_url_bytes {
            return Err(UrlError::TooLong {
                len,
                max: limits.max_url_bytes,
            });
        }
        Ok(target)
    }

    /// Builds a target from the `url` crate's parse plus the raw authority
    /// and query text of the same input. `base` is the URL a relative input
    /// was resolved against.
    fn build(url: &url::Url, raw: RawParts<'_>, base: Option<&Target>) -> Result<Target, UrlError> {
        let scheme = supported_scheme(url.scheme())?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Userinfo);
        }
        let host = Host::from_url_host(
            url.host()
                .ok_or_else(|| UrlError::Unparseable("the URL has no host".into()))?,
        )?;
        let explicit_port = match (raw.authority, base) {
            (Some(authority), _) => port_in_authority(authority)?,
            (None, Some(base)) => base.explicit_port,
            (None, None) => return Err(inconsistent("no authority")),
        };
        let port = explicit_port.unwrap_or(scheme.default_port());
        if url.port_or_known_default() != Some(port) {
            return Err(inconsistent("port"));
        }
        let query = match (raw.query, url.query().is_some(), base) {
            (Some(q), true, _) => Some(q),
            (None, false, _) => None,
            // A location that is empty or only a fragment keeps the base's query.
            (None, true, Some(base)) if base.query().is_some() => base.query(),
            _ => return Err(inconsistent("query")),
        };
        Ok(Target::compose(
            scheme,
            host,
            port,
            explicit_port,
            url.path(),
            query,
        ))
    }

    /// Writes the text of a target from its parts. `path` goes in as it is
    /// (the `url` crate's serialisation, or a target's own); `query` goes
    /// through [`push_wire_safe`], which leaves an already wire-safe query
    /// (a target's own) unchanged.
    fn compose(
        scheme: Scheme,
        host: Host,
        port: u16,
        explicit_port: Option<u16>,
        path: &str,
        query: Option<&str>,
    ) -> Target {
        let host_len = host.domain().map_or(47, str::len); // `[v6]` is at most 41
        let mut text = String::with_capacity(
            scheme.as_str().len() + 3 + host_len + 6 + path.len() + 1 + query.map_or(0, str::len),
        );
        text.push_str(scheme.as_str());
        text.push_str("://");
        // Writing into a String cannot fail.
        let _ = write!(text, "{host}");
        if port != scheme.default_port() {
            let _ = write!(text, ":{port}");
        }
        let path_start = text.len();
        text.push_str(path);
        let query_start = query.map(|q| {
            text.push('?');
            let start = text.len();
            push_wire_safe(&mut text, q);
            start
        });
        Target {
            scheme,
            host,
            port,
            explicit_port,
            text: Arc::from(text),
            path_start,
            query_start,
        }
    }

    /// Appends `text` to the query as SPEC §4 says: after `&` when there is a
    /// query, else after `?`; empty `text` appends nothing. Bytes that cannot
    /// go on the wire are percent-encoded; everything else is kept as it is.
    ///
    /// An existing but empty query (`https://h/p?`) gets `text` without a
    /// `&` (`?a=1`). A `#` in `text` is encoded as `%23` (it would otherwise
    /// end the request-target), as are controls, space, `"`, `<`, `>`, DEL
    /// and non-ASCII (UTF-8, upper-case hex).
    ///
    /// The target's text is copied into a new one (copy on write): clones
    /// taken before keep the old query.
    pub fn append_query(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        let mut out = String::with_capacity(self.text.len() + 1 + text.len());
        out.push_str(&self.text);
        let query_start = match self.query_start {
            Some(start) => {
                if start < out.len() {
                    out.push('&');
                }
                start
            }
            None => {
                out.push('?');
                out.len()
            }
        };
        push_wire_safe(&mut out, text);
        self.text = Arc::from(out);
        self.query_start = Some(query_start);
    }

    /// Checks that the URL, once a GET's data is added
    /// ([`append_query`](Self::append_query)), still fits
    /// `limits.max_url_bytes` (SPEC §4).
    pub fn check_length_with_data(&self, limits: &Limits) -> Result<(), UrlError> {
        let len = self.text.len();
        if len > limits.max_url_bytes {
            return Err(UrlError::TooLongWithData {
                len,
                max: limits.max_url_bytes,
            });
        }
        Ok(())
    }

    /// Checks the query's percent-encoding: every `%` is followed by two hex
    /// digits and the decoded bytes are valid UTF-8 (SPEC §4, error 15).
    pub fn check_query(&self) -> Result<(), UrlError> {
        let Some(query) = self.query() else {
            return Ok(());
        };
        let bytes = query.as_bytes();
        let mut decoded = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => {
                        decoded.push(hi << 4 | lo);
                        i += 3;
                        continue;
                    }
                    _ => {
                        let end = (i + 3).min(bytes.len());
                        let shown = String::from_utf8_lossy(&bytes[i..end]);
                        return Err(UrlError::MalformedPercent(format!(
                            "`{shown}` at byte {i} of the query is not `%` and two hex digits"
                        )));
                    }
                }
            }
            decoded.push(bytes[i]);
            i += 1;
        }
        match std::str::from_utf8(&decoded) {
            Ok(_) => Ok(()),
            Err(e) => Err(UrlError::MalformedPercent(format!(
                "the decoded query is not valid UTF-8 (bad sequence after {} decoded bytes)",
                e.valid_up_to()
            ))),
        }
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
    /// The path as the WHATWG serialiser writes it: starts with `/`, dot
    /// segments resolved, unsafe bytes percent-encoded.
    pub fn path(&self) -> &str {
        let end = self.query_start.map_or(self.text.len(), |q| q - 1);
        self.text.get(self.path_start..end).unwrap_or_default()
    }
    /// The query without its `?` (`None` when the URL has no `?`; `Some("")`
    /// for a bare `?`). Never holds `#`, controls, space, `"`, `<`, `>` or
    /// non-ASCII.
    pub fn query(&self) -> Option<&str> {
        self.query_start.and_then(|q| self.text.get(q..))
    }
    /// The host for DNS and TLS SNI: a domain, or an IP address without brackets.
    pub fn connect_host(&self) -> String {
        self.host.connect_name()
    }
    /// `/path?query`, the request-target of the request line. Allocates;
    /// [`Target::request_target_str`] borrows the same text.
    pub fn request_target(&self) -> String {
        self.request_target_str().to_string()
    }
    /// `/path?query`, the request-target of the request line, borrowed:
    /// the same text as [`Target::request_target`].
    pub fn request_target_str(&self) -> &str {
        self.text.get(self.path_start..).unwrap_or_default()
    }
    /// The `Host` header value: the host, with `:port` when the port is not
    /// the scheme's default. Allocates; [`Target::host_header_str`] borrows
    /// the same text.
    pub fn host_header(&self) -> String {
        self.host_header_str().to_string()
    }
    /// The `Host` header value, borrowed: the same text as
    /// [`Target::host_header`].
    pub fn host_header_str(&self) -> &str {
        let start = self.scheme.as_str().len() + 3;
        self.text.get(start..self.path_start).unwrap_or_default()
    }
    /// Whether the host is a loopback address or `localhost`: 127.0.0.0/8,
    /// `::1`, `::ffff:127.x.y.z`, `localhost` and `*.localhost`.
    pub fn is_loopback(&self) -> bool {
        self.host.is_loopback()
    }
    /// The shared text, for tests that check that clones share it.
    #[cfg(test)]
    pub(crate) fn text_arc(&self) -> Arc<str> {
        Arc::clone(&self.text)
    }
    /// Returns a copy with another scheme (for `wss` ↔ `https` checks);
    /// host, port, written port, path and query are kept. Allocates a new
    /// text.
    pub fn with_scheme(&self, scheme: Scheme) -> Target {
        Target::compose(
            scheme,
            self.host.clone(),
            self.port,
            self.explicit_port,
            self.path(),
            self.query(),
        )
    }
}

impl fmt::Display for Target {
    /// The full URL as it will be requested: `scheme://host[:port]/path[?query]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// C0 controls (including TAB, CR, LF, NUL) and DEL.
fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7F
}

/// Empty, length and control-character checks shared by every entry point;
/// returns the input without leading and trailing spaces.
fn precheck<'a>(input: &'a str, limits: &Limits) -> Result<&'a str, UrlError> {
    if input.bytes().all(|b| b.is_ascii_whitespace()) {
        return Err(UrlError::Empty);
    }
    if input.len() > limits.max_url_bytes {
        return Err(UrlError::TooLong {
            len: input.len(),
            max: limits.max_url_bytes,
        });
    }
    if input.bytes().any(is_control) {
        return Err(UrlError::ControlCharacter);
    }
    Ok(input.trim_matches(' '))
}

/// The scheme at the start of `s` as WHATWG reads it (an ASCII letter, then
/// letters, digits, `+`, `-`, `.`, ended by `:`), without the colon.
fn leading_scheme(s: &str) -> Option<&str> {
    let bytes = s.as_bytes();
    if !bytes.first()?.is_ascii_alphabetic() {
        return None;
    }
    let end = bytes
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))?;
    (bytes[end] == b':').then(|| &s[..end])
}

fn supported_scheme(name: &str) -> Result<Scheme, UrlError> {
    Scheme::from_name(name).ok_or_else(|| UrlError::UnsupportedScheme(name.to_ascii_lowercase()))
}

/// The authority and query of an input as written, located the way the
/// WHATWG parser locates them for a special scheme.
#[derive(Debug, Clone, Copy)]
struct RawParts<'a> {
    /// `host[:port]` (and any userinfo) when the input has an authority.
    authority: Option<&'a str>,
    /// The text between the first `?` and the `#` after the authority.
    query: Option<&'a str>,
}

/// Splits `rest` (the input after `scheme:`, or a relative reference) into
/// raw parts. `authority_always` is true when WHATWG enters the authority
/// after any number of `/` and `\` (an absolute URL with no base, or a
/// different special scheme than the base); otherwise an authority starts
/// only when `rest` begins with two of `/` and `\`.
fn scan_raw(rest: &str, authority_always: bool) -> RawParts<'_> {
    let is_slash = |c: char| c == '/' || c == '\\';
    let mut chars = rest.chars();
    let has_authority = authority_always
        || (chars.next().is_some_and(is_slash) && chars.next().is_some_and(is_slash));
    let (authority, after) = if has_authority {
        let start = rest.trim_start_matches(is_slash);
        let end = start.find(['/', '\\', '?', '#']).unwrap_or(start.len());
        (Some(&start[..end]), &start[end..])
    } else {
        (None, rest)
    };
    let before_fragment = after.split('#').next().unwrap_or("");
    let query = before_fragment.split_once('?').map(|(_, q)| q);
    RawParts { authority, query }
}

fn refuse_userinfo(authority: Option<&str>) -> Result<(), UrlError> {
    match authority {
        Some(a) if a.contains('@') => Err(UrlError::Userinfo),
        _ => Ok(()),
    }
}

/// The port written in a raw authority (`host:port`, `[v6]:port`): the
/// digits after the first `:` outside brackets; an empty port is none.
fn port_in_authority(authority: &str) -> Result<Option<u16>, UrlError> {
    let mut in_brackets = false;
    let mut colon = None;
    for (i, c) in authority.char_indices() {
        match c {
            '[' => in_brackets = true,
            ']' => in_brackets = false,
            ':' if !in_brackets => {
                colon = Some(i);
                break;
            }
            _ => {}
        }
    }
    let Some(colon) = colon else {
        return Ok(None);
    };
    let digits = &authority[colon + 1..];
    if digits.is_empty() {
        return Ok(None);
    }
    let mut port: u32 = 0;
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            return Err(UrlError::Unparseable(format!("invalid port `{digits}`")));
        }
        port = port * 10 + u32::from(b - b'0');
        if port > u32::from(u16::MAX) {
            return Err(UrlError::Unparseable(format!(
                "port `{digits}` is over 65535"
            )));
        }
    }
    // `port` is at most 65535 here.
    Ok(u16::try_from(port).ok())
}

fn inconsistent(what: &str) -> UrlError {
    UrlError::Unparseable(format!(
        "the URL's {what} could not be read consistently; write it in the plain `scheme://host:port/path?query` form"
    ))
}

/// Appends `text`, percent-encoding the bytes that cannot go on the wire in
/// a request-target: controls, space, DEL, `"`, `#`, `<`, `>` and non-ASCII.
/// Everything else (including `'`, `%`, `{`, `|`, `\`) is kept as written.
fn push_wire_safe(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in text.as_bytes() {
        if b <= 0x20 || b >= 0x7F || matches!(b, b'"' | b'#' | b'<' | b'>') {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xF)]));
        } else {
            out.push(char::from(b));
        }
    }
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Api;

    fn parse(s: &str) -> Result<Target, UrlError> {
        Target::parse(s, &Limits::default())
    }

    fn ok(s: &str) -> Target {
        match parse(s) {
            Ok(t) => t,
            Err(e) => panic!("{s:?}: {e}"),
        }
    }

    #[test]
    fn plain_https_url() {
        let t = ok("https://API.Example.com/a/b?x=1#frag");
        assert_eq!(t.scheme(), Scheme::Https);
        assert_eq!(t.host(), &Host::Domain("api.example.com".into()));
        assert_eq!(t.port(), 443);
        assert_eq!(t.explicit_port(), None);
        assert_eq!(t.path(), "/a/b");
        assert_eq!(t.query(), Some("x=1"));
        assert_eq!(t.request_target(), "/a/b?x=1");
        assert_eq!(t.host_header(), "api.example.com");
        assert_eq!(t.connect_host(), "api.example.com");
        assert_eq!(t.to_string(), "https://api.example.com/a/b?x=1");
    }

    #[test]
    fn empty_and_too_long() {
        assert_eq!(parse(""), Err(UrlError::Empty));
        assert_eq!(parse("   "), Err(UrlError::Empty));
        assert_eq!(parse(" \t\r\n"), Err(UrlError::Empty));
        let limits = Limits {
            max_url_bytes: 20,
            ..Limits::default()
        };
        let long = "https://example.com/abc";
        assert_eq!(
            Target::parse(long, &limits),
            Err(UrlError::TooLong { len: 23, max: 20 })
        );
        assert!(Target::parse("https://a.com/", &limits).is_ok());
    }

    #[test]
    fn control_characters_are_refused_anywhere() {
        for s in [
            "https://a.com/\tx",
            "https://a.\ncom/",
            "https://a.com/?a=\r\nX: y",
            "\thttps://a.com/",
            "https://a.com/\0",
            "https://a.com/\x7f",
            "https://a.com/#\x01",
            "https://a.com/ \n",
        ] {
            assert_eq!(parse(s), Err(UrlError::ControlCharacter), "{s:?}");
        }
    }

    #[test]
    fn spaces_around_are_trimmed_inside_encoded() {
        let t = ok("  https://a.com/a b?c d  ");
        assert_eq!(t.path(), "/a%20b");
        assert_eq!(t.query(), Some("c%20d"));
        assert!(matches!(
            parse("https://a b.com/"),
            Err(UrlError::Unparseable(_))
        ));
    }

    #[test]
    fn schemes() {
        assert_eq!(ok("HTTPS://a.com").scheme(), Scheme::Https);
        assert_eq!(ok("wss://a.com").scheme(), Scheme::Wss);
        assert_eq!(ok("ws://a.com").port(), 80);
        assert_eq!(ok("http://a.com").scheme(), Scheme::Http);
        for (s, name) in [
            ("ftp://a.com/", "ftp"),
            ("javascript:alert(1)", "javascript"),
            ("file:///etc/passwd", "file"),
            ("FILE:///etc/passwd", "file"),
            ("data:text/plain,hi", "data"),
            ("localhost:8080", "localhost"),
        ] {
            assert_eq!(
                parse(s),
                Err(UrlError::UnsupportedScheme(name.into())),
                "{s}"
            );
        }
        for s in ["//evil.com/", "/path", "evil.com", "?q", "1http://a.com"] {
            assert!(matches!(parse(s), Err(UrlError::Unparseable(_))), "{s}");
        }
    }

    #[test]
    fn whatwg_slash_forms_name_the_host() {
        for s in [
            "https:evil.com",
            "https:/evil.com",
            "https:\\\\evil.com",
            "https:///evil.com",
            "https://\\evil.com",
        ] {
            let t = ok(s);
            assert_eq!(t.connect_host(), "evil.com", "{s}");
        }
    }

    #[test]
    fn userinfo_is_refused() {
        for s in [
            "https://user@a.com/",
            "https://user:pw@a.com/",
            "https://:pw@a.com/",
            "https://@a.com/",
            "https://a.com@evil.com/",
            "https://a@b@c.com/",
            "https:a@evil.com",
        ] {
            assert_eq!(parse(s), Err(UrlError::Userinfo), "{s}");
        }
        // An `@` after the authority is path or query, not userinfo.
        let t = ok("https://evil.com\\@good.com/");
        assert_eq!(t.connect_host(), "evil.com");
        assert_eq!(t.path(), "/@good.com/");
        assert_eq!(ok("https://a.com/?u=a@b").query(), Some("u=a@b"));
    }

    #[test]
    fn explicit_ports() {
        let t = ok("https://a.com:443/");
        assert_eq!((t.port(), t.explicit_port()), (443, Some(443)));
        assert_eq!(t.host_header(), "a.com");
        assert_eq!(t.to_string(), "https://a.com/");
        let t = ok("https://a.com:0443/");
        assert_eq!((t.port(), t.explicit_port()), (443, Some(443)));
        let t = ok("https://a.com:/");
        assert_eq!((t.port(), t.explicit_port()), (443, None));
        let t = ok("https://a.com:8443/x");
        assert_eq!((t.port(), t.explicit_port()), (8443, Some(8443)));
        assert_eq!(t.host_header(), "a.com:8443");
        assert_eq!(t.to_string(), "https://a.com:8443/x");
        let t = ok("https://[::1]:8443/");
        assert_eq!(t.host(), &Host::Ipv6(Ipv6Addr::LOCALHOST));
        assert_eq!(t.explicit_port(), Some(8443));
        assert_eq!(t.host_header(), "[::1]:8443");
        assert_eq!(t.connect_host(), "::1");
        assert_eq!(ok("http://a.com:80").explicit_port(), Some(80));
        for s in [
            "https://a.com:65536/",
            "https://a.com:4a/",
            "https://a.com:1:2/",
        ] {
            assert!(matches!(parse(s), Err(UrlError::Unparseable(_))), "{s}");
        }
    }

    #[test]
    fn hosts_are_normalised() {
        assert_eq!(ok("https://Example.COM./").connect_host(), "example.com");
        assert_eq!(ok("https://%65xample.com/").connect_host(), "example.com");
        assert_eq!(ok("https://example%2ecom/").connect_host(), "example.com");
        assert_eq!(
            ok("https://example\u{3002}com/").connect_host(),
            "example.com"
        );
        assert_eq!(
            ok("https://bücher.example/").connect_host(),
            "xn--bcher-kva.example"
        );
        assert_eq!(
            ok("https://\u{430}pple.com/").connect_host(),
            "xn--pple-43d.com"
        );
        for s in [
            "https://127.1/",
            "https://0x7f.0.0.1/",
            "https://2130706433/",
        ] {
            assert_eq!(ok(s).host(), &Host::Ipv4(Ipv4Addr::LOCALHOST), "{s}");
        }
        for s in [
            "https://a..b.com/",
            "https://.a.com/",
            "https://a.com../",
            "https://./",
            "https://*.example.com/",
            "https://a!b.com/",
            "https://xn--a.com/",
            "https:///",
        ] {
            assert!(matches!(parse(s), Err(UrlError::Unparseable(_))), "{s}");
        }
    }

    #[test]
    fn query_kept_as_written() {
        let t = ok("https://a.com/p?x='y'&z=%20{|}\\^`&w=\"<>\"&u=ü#f?g");
        assert_eq!(
            t.query(),
            Some("x='y'&z=%20{|}\\^`&w=%22%3C%3E%22&u=%C3%BC")
        );
        assert_eq!(ok("https://a.com?q").request_target(), "/?q");
        assert_eq!(ok("https://a.com/p?").query(), Some(""));
        assert_eq!(ok("https://a.com/p?").request_target(), "/p?");
        assert_eq!(ok("https://a.com/p#?x").query(), None);
        assert_eq!(ok("https://a.com/p?a?b").query(), Some("a?b"));
        assert_eq!(ok("https://a.com/p\\q?x").path(), "/p/q");
    }

    #[test]
    fn append_query_rules() {
        let mut t = ok("https://a.com/p");
        t.append_query("");
        assert_eq!(t.request_target(), "/p");
        t.append_query("a=1");
        assert_eq!(t.request_target(), "/p?a=1");
        t.append_query("b='x y'#ü");
        assert_eq!(t.request_target(), "/p?a=1&b='x%20y'%23%C3%BC");
        let mut t = ok("https://a.com/p?");
        t.append_query("a=1");
        assert_eq!(t.request_target(), "/p?a=1");
        let mut t = ok("https://a.com/p?x#frag");
        t.append_query("a=%20");
        assert_eq!(t.to_string(), "https://a.com/p?x&a=%20");
        let mut t = ok("https://a.com/p");
        t.append_query("a=\r\n");
        assert_eq!(t.request_target(), "/p?a=%0D%0A");
    }

    #[test]
    fn check_query_percent_rules() {
        for s in [
            "https://a.com/",
            "https://a.com/?a=%E4%B8%AD",
            "https://a.com/?a=%e4%b8%ad&b=%41",
            "https://a.com/?ü",
            "https://a.com/p%zz?a=1",
        ] {
            assert_eq!(ok(s).check_query(), Ok(()), "{s}");
        }
        for s in [
            "https://a.com/?a=%E4%B8",
            "https://a.com/?a=%zz",
            "https://a.com/?a=%",
            "https://a.com/?a=%4",
            "https://a.com/?a=%FF",
            "https://a.com/?a=%C0%80",
        ] {
            assert!(
                matches!(ok(s).check_query(), Err(UrlError::MalformedPercent(_))),
                "{s}"
            );
        }
    }

    #[test]
    fn join_resolves_like_whatwg() {
        let base = ok("https://h.com:8443/a/b?q='1'");
        let l = Limits::default();
        let j = |loc: &str| base.join(loc, &l);
        let t = j("c?x='2'").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.to_string(), "https://h.com:8443/a/c?x='2'");
        assert_eq!(t.explicit_port(), Some(8443));
        let t = j("").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.to_string(), "https://h.com:8443/a/b?q='1'");
        let t = j("#f").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.query(), Some("q='1'"));
        let t = j("/x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.path(), t.query()), ("/x", None));
        let t = j("?z").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.request_target(), "/a/b?z");
        for loc in [
            "//evil.com/",
            "/\\evil.com",
            "\\\\evil.com",
            "https:\\/evil.com",
        ] {
            let t = j(loc).unwrap_or_else(|e| panic!("{loc}: {e}"));
            assert_eq!(t.connect_host(), "evil.com", "{loc}");
            assert_eq!((t.port(), t.explicit_port()), (443, None), "{loc}");
        }
        let t = j("https:foo").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.to_string(), "https://h.com:8443/a/foo");
        let t = j("https:/x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.to_string(), "https://h.com:8443/x");
        let t = j("http:foo").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.to_string(), "http://foo/");
        let t = j("https://other.com:443/p?a=%27").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.explicit_port(), Some(443));
        assert_eq!(t.query(), Some("a=%27"));
        assert_eq!(j("//u@evil.com/"), Err(UrlError::Userinfo));
        assert_eq!(j("/a\tb"), Err(UrlError::ControlCharacter));
        assert_eq!(
            j("javascript:alert(1)"),
            Err(UrlError::UnsupportedScheme("javascript".into()))
        );
        assert_eq!(
            j("ftp://x/"),
            Err(UrlError::UnsupportedScheme("ftp".into()))
        );
        let small = Limits {
            max_url_bytes: 30,
            ..Limits::default()
        };
        assert!(matches!(
            base.join("/a-rather-long-path-here", &small),
            Err(UrlError::TooLong { .. })
        ));
    }

    #[test]
    fn loopback() {
        for s in [
            "http://127.0.0.1/",
            "http://127.2.3.4/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:8080/",
            "http://LOCALHOST./",
            "http://a.localhost/",
        ] {
            assert!(ok(s).is_loopback(), "{s}");
        }
        for s in [
            "http://128.0.0.1/",
            "http://[::2]/",
            "http://localhost.com/",
            "http://notlocalhost/",
        ] {
            assert!(!ok(s).is_loopback(), "{s}");
        }
    }

    #[test]
    fn error_kinds_and_codes() {
        let code = |e: UrlError| Error::from(e).code(Api::Request);
        assert_eq!(code(UrlError::Empty), 2);
        assert_eq!(
            code(UrlError::TooLong {
                len: 9000,
                max: 8192
            }),
            2
        );
        assert_eq!(
            code(UrlError::TooLongWithData {
                len: 9000,
                max: 8192
            }),
            2
        );
        assert_eq!(code(UrlError::ControlCharacter), 2);
        assert_eq!(code(UrlError::Unparseable("x".into())), 2);
        assert_eq!(code(UrlError::Userinfo), 2);
        assert_eq!(code(UrlError::UnsupportedScheme("ftp".into())), 11);
        assert_eq!(code(UrlError::MalformedPercent("x".into())), 15);
        let socket = |e: UrlError| Error::from(e).code(Api::Socket);
        assert_eq!(socket(UrlError::Empty), 3);
        assert_eq!(socket(UrlError::Unparseable("x".into())), 4);
        assert_eq!(socket(UrlError::UnsupportedScheme("ftp".into())), 5);
        let e = Error::from(UrlError::TooLong {
            len: 9000,
            max: 8192,
        });
        assert_eq!(e.message(), "url is 9000 bytes, over the limit of 8192");
    }

    #[test]
    fn borrowed_views_equal_the_owned_ones() {
        for s in [
            "https://api.example.com/a/b?x=1#f",
            "https://a.com:443/",
            "https://a.com:8443/x?",
            "http://127.0.0.1:41257/1k",
            "https://[::1]:8443/p?q",
            "wss://[::ffff:127.0.0.1]/s",
            "https://a.com?q",
            "https://bücher.example/ü?ü",
        ] {
            let t = ok(s);
            let rt = match t.query() {
                Some(q) => format!("{}?{}", t.path(), q),
                None => t.path().to_string(),
            };
            assert_eq!(t.request_target_str(), rt, "{s}");
            assert_eq!(t.request_target(), rt, "{s}");
            let hh = if t.port() == t.scheme().default_port() {
                t.host().to_string()
            } else {
                format!("{}:{}", t.host(), t.port())
            };
            assert_eq!(t.host_header_str(), hh, "{s}");
            assert_eq!(t.host_header(), hh, "{s}");
            assert_eq!(
                t.to_string(),
                format!("{}://{}{}", t.scheme(), hh, rt),
                "{s}"
            );
        }
    }

    #[test]
    fn clones_share_the_text_and_append_query_copies_on_write() {
        let t = ok("https://a.com/p?x=1");
        let mut c = t.clone();
        assert!(Arc::ptr_eq(&t.text_arc(), &c.text_arc()));
        c.append_query("y=2");
        assert!(!Arc::ptr_eq(&t.text_arc(), &c.text_arc()));
        assert_eq!(t.request_target(), "/p?x=1");
        assert_eq!(c.request_target(), "/p?x=1&y=2");
        assert_eq!((c.path(), c.query()), ("/p", Some("x=1&y=2")));
        assert_ne!(t, c);
        // Appending to a target with no query: path unchanged.
        let mut c = ok("https://a.com:8443/p").clone();
        c.append_query("a b");
        assert_eq!((c.path(), c.query()), ("/p", Some("a%20b")));
        assert_eq!(c.host_header_str(), "a.com:8443");
        assert_eq!(c, ok("https://a.com:8443/p?a b"));
    }

    #[test]
    fn host_domain_accessor() {
        assert_eq!(ok("https://A.com./").host().domain(), Some("a.com"));
        assert_eq!(ok("https://127.0.0.1/").host().domain(), None);
        assert_eq!(ok("https://[::1]/").host().domain(), None);
    }

    #[test]
    fn debug_shows_the_parts() {
        let t = ok("https://a.com:8443/p?q=1");
        assert_eq!(
            format!("{t:?}"),
            "Target { scheme: Https, host: Domain(\"a.com\"), port: 8443, \
             explicit_port: Some(8443), path: \"/p\", query: Some(\"q=1\") }"
        );
    }

    #[test]
    fn with_scheme_rewrites_the_default_port() {
        let t = ok("https://a.com/p?x");
        let h = t.with_scheme(Scheme::Http);
        assert_eq!((h.port(), h.explicit_port()), (443, None));
        assert_eq!(h.host_header_str(), "a.com:443");
        assert_eq!(h.to_string(), "http://a.com:443/p?x");
        assert_eq!((h.path(), h.query()), ("/p", Some("x")));
        let w = t.with_scheme(Scheme::Wss);
        assert_eq!(w.to_string(), "wss://a.com/p?x");
        assert_eq!(w.with_scheme(Scheme::Https), t);
    }

    #[test]
    fn with_scheme_and_display_round_trip() {
        let t = ok("wss://a.com:9000/s?x=1");
        let h = t.with_scheme(Scheme::Https);
        assert_eq!(h.to_string(), "https://a.com:9000/s?x=1");
        let again = ok(&t.to_string());
        assert_eq!(again, t);
    }
}
