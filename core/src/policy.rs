//! The domain policy of SPEC §3: a whitelist of origins, or allow-any.
//!
//! Entries and URLs are compared on the same normalised values: an entry is
//! parsed by [`Target::parse`], so its host goes through exactly the
//! normalisation a URL's host does (lower case, percent-decoding, IDNA to
//! ASCII, WHATWG IPv4 forms, trailing dot removed), and a URL is allowed
//! only when the host [`Target::host`] reports (the one the transport
//! connects to) is an entry's host or, for `*.` entries, a strict subdomain
//! of it.
//!
//! Port rule (SPEC §3): an entry with no port matches only URLs with no
//! port written (`https://a.com` does not match `https://a.com:443`); an
//! entry with a port matches URLs whose port is that port, counting a URL
//! without a written port as its scheme's default port (so the entry
//! `https://a.com:443` matches both `https://a.com` and `https://a.com:443`).

use std::fmt;
use std::str::FromStr;

use crate::target::{Host, Scheme, Target};
use crate::Limits;

/// One whitelist entry: `https://api.example.com`, `https://api.example.com:8443`,
/// or `https://*.example.com` (every subdomain, not the domain itself).
/// `wss://` entries are the same as `https://` ones; `http://`/`ws://`
/// entries match plain URLs (useful only with the loopback switch).
///
/// ```
/// use mpnet_core::{Limits, OriginPattern, Target};
/// let entry: OriginPattern = "https://*.example.com".parse().unwrap();
/// let url = Target::parse("wss://chat.example.com/s", &Limits::default()).unwrap();
/// assert!(entry.matches(&url));
/// let apex = Target::parse("https://example.com/", &Limits::default()).unwrap();
/// assert!(!entry.matches(&apex));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    /// The scheme as written; only its family (secure or plain) matters.
    scheme: Scheme,
    /// The host; for a wildcard entry, the domain after `*.`.
    host: Host,
    /// `*.` entry: matches strict subdomains of `host`.
    wildcard: bool,
    /// The port written in the entry, if any.
    port: Option<u16>,
}

/// Why a whitelist entry could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPatternError(pub String);

impl std::fmt::Display for OriginPatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid whitelist entry: {}", self.0)
    }
}
impl std::error::Error for OriginPatternError {}

impl FromStr for OriginPattern {
    type Err = OriginPatternError;

    /// Parses `scheme://[*.]host[:port][/]`: scheme `https`, `wss`, `http`
    /// or `ws`; the host a domain (IDN allowed), an IPv4 address in any
    /// WHATWG form or `[IPv6]`. Refused: no `://`, userinfo, a path other
    /// than `/`, a query, a fragment, a backslash, an empty host, and `*.`
    /// before an IP address. Surrounding spaces are ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let entry = s.trim_matches(' ');
        let fail = |why: &str| Err(OriginPatternError(format!("`{entry}`: {why}")));
        let Some((scheme_name, rest)) = entry.split_once("://") else {
            return fail("expected an origin such as https://api.example.com");
        };
        let Some(scheme) = Scheme::from_name(scheme_name) else {
            return fail("the scheme must be https, wss, http or ws");
        };
        let (wildcard, rest) = match rest.strip_prefix("*.") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        if rest.contains('\\') {
            return fail("a backslash is not allowed");
        }
        if rest.contains('?') || rest.contains('#') {
            return fail("an origin has no query or fragment");
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.contains('@') {
            return fail("userinfo (`user@`) is not allowed");
        }
        if !(path.is_empty() || path == "/") {
            return fail("an origin has no path");
        }
        if authority.is_empty() || authority.starts_with(':') {
            return fail("the host is empty");
        }
        let target = Target::parse(&format!("{scheme_name}://{authority}/"), &Limits::default())
            .map_err(|e| OriginPatternError(format!("`{entry}`: {e}")))?;
        let host = target.host().clone();
        if wildcard && !matches!(host, Host::Domain(_)) {
            return fail("`*.` applies to domain names only, not IP addresses");
        }
        Ok(OriginPattern {
            scheme,
            host,
            wildcard,
            port: target.explicit_port(),
        })
    }
}

impl fmt::Display for OriginPattern {
    /// The normalised entry: `scheme://[*.]host[:port]` (`host` in ASCII,
    /// IPv6 in brackets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme)?;
        if self.wildcard {
            f.write_str("*.")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

impl OriginPattern {
    /// Whether `target` is of this origin (SPEC §3 port and subdomain rules;
    /// `wss` checked as `https`, `ws` as `http`).
    ///
    /// - scheme: same family (`https`/`wss` or `http`/`ws`);
    /// - host: equal to the entry's; for `*.example.com`, a domain ending in
    ///   `.example.com` with at least one more label (`a.example.com`,
    ///   `a.b.example.com`; never `example.com` or `badexample.com`);
    /// - port: an entry with no port needs a target with no written port; an
    ///   entry with port `P` needs `target.port() == P` (written, or the
    ///   scheme's default when none is written).
    pub fn matches(&self, target: &Target) -> bool {
        if self.scheme.is_secure() != target.scheme().is_secure() {
            return false;
        }
        let host_ok = if self.wildcard {
            match (target.host(), &self.host) {
                (Host::Domain(t), Host::Domain(suffix)) => t
                    .strip_suffix(&**suffix)
                    .and_then(|sub| sub.strip_suffix('.'))
                    .is_some_and(|sub| !sub.is_empty()),
                _ => false,
            }
        } else {
            target.host() == &self.host
        };
        let port_ok = match self.port {
            None => target.explicit_port().is_none(),
            Some(p) => target.port() == p,
        };
        host_ok && port_ok
    }

    /// The scheme as written in the entry.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }
    /// The normalised host (for a `*.` entry, the domain after `*.`).
    pub fn host(&self) -> &Host {
        &self.host
    }
    /// Whether this is a `*.` entry (strict subdomains of [`Self::host`]).
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }
    /// The port written in the entry, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
}

/// Which origins an app may reach. There is no default: the host chooses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainPolicy {
    /// Any origin (the IDE's "ignore domain check", for development).
    AllowAny,
    /// Only the listed origins.
    Whitelist(Vec<OriginPattern>),
}

impl DomainPolicy {
    /// Whether `target`'s origin is allowed.
    pub fn allows(&self, target: &Target) -> bool {
        match self {
            DomainPolicy::AllowAny => true,
            DomainPolicy::Whitelist(entries) => entries.iter().any(|e| e.matches(target)),
        }
    }

    /// A whitelist parsed from entries such as `"https://api.example.com"`;
    /// the first entry that does not parse is the error.
    pub fn whitelist<I, S>(entries: I) -> Result<DomainPolicy, OriginPatternError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        entries
            .into_iter()
            .map(|e| e.as_ref().parse())
            .collect::<Result<Vec<_>, _>>()
            .map(DomainPolicy::Whitelist)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(s: &str) -> OriginPattern {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn target(s: &str) -> Target {
        Target::parse(s, &Limits::default()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn m(e: &str, t: &str) -> bool {
        entry(e).matches(&target(t))
    }

    #[test]
    fn parses_and_normalises_entries() {
        for (input, shown) in [
            ("https://api.example.com", "https://api.example.com"),
            ("https://API.Example.COM./", "https://api.example.com"),
            (
                "https://api.example.com:8443",
                "https://api.example.com:8443",
            ),
            ("https://api.example.com:443", "https://api.example.com:443"),
            ("https://api.example.com:", "https://api.example.com"),
            ("wss://*.Example.com", "wss://*.example.com"),
            ("http://localhost:8080", "http://localhost:8080"),
            ("https://bücher.example", "https://xn--bcher-kva.example"),
            (
                "https://*.bücher.example",
                "https://*.xn--bcher-kva.example",
            ),
            ("https://[::1]:8443", "https://[::1]:8443"),
            ("https://0x7f.1", "https://127.0.0.1"),
            ("  https://a.com  ", "https://a.com"),
        ] {
            assert_eq!(entry(input).to_string(), shown, "{input}");
        }
        assert!(entry("https://*.a.com").is_wildcard());
        assert_eq!(entry("https://a.com:8443").port(), Some(8443));
    }

    #[test]
    fn refuses_bad_entries() {
        for s in [
            "",
            "api.example.com",
            "ftp://a.com",
            "https://",
            "https:///a.com",
            "https://:443",
            "https://*.",
            "https://u@a.com",
            "https://u:p@a.com",
            "https://a.com/path",
            "https://a.com?x",
            "https://a.com#f",
            "https://a.com\\",
            "https://*.127.0.0.1",
            "https://*.[::1]",
            "https://*",
            "https://a.*.com",
            "https://*example.com",
            "https://a.com:99999",
            "https://a..com",
            "https:a.com",
        ] {
            assert!(
                s.parse::<OriginPattern>().is_err(),
                "{s:?} should be refused"
            );
        }
    }

    #[test]
    fn port_rule_of_spec_3() {
        assert!(m("https://a.com", "https://a.com/x"));
        assert!(!m("https://a.com", "https://a.com:443/"));
        assert!(!m("https://a.com", "https://a.com:0443/"));
        assert!(!m("https://a.com", "https://a.com:8443/"));
        assert!(m("https://a.com", "https://a.com:/"));
        assert!(m("https://a.com:443", "https://a.com/"));
        assert!(m("https://a.com:443", "https://a.com:443/"));
        assert!(!m("https://a.com:443", "https://a.com:8443/"));
        assert!(m("https://a.com:8443", "https://a.com:8443/"));
        assert!(!m("https://a.com:8443", "https://a.com/"));
    }

    #[test]
    fn scheme_families() {
        assert!(m("https://a.com", "wss://a.com/"));
        assert!(m("wss://a.com", "https://a.com/"));
        assert!(!m("https://a.com", "http://a.com/"));
        assert!(!m("https://a.com", "ws://a.com/"));
        assert!(m("http://a.com", "ws://a.com/"));
        assert!(!m("http://a.com", "https://a.com/"));
    }

    #[test]
    fn wildcards() {
        let e = "https://*.example.com";
        assert!(m(e, "https://a.example.com/"));
        assert!(m(e, "https://a.b.example.com/"));
        assert!(m(e, "https://A.EXAMPLE.COM./"));
        assert!(!m(e, "https://example.com/"));
        assert!(!m(e, "https://badexample.com/"));
        assert!(!m(e, "https://example.com.evil.com/"));
        assert!(!m(e, "https://a.example.com:443/"));
        assert!(!m(e, "https://127.0.0.1/"));
        assert!(m("https://*.example.com:8443", "wss://x.example.com:8443/"));
    }

    #[test]
    fn hosts_compare_normalised() {
        assert!(m(
            "https://xn--bcher-kva.example",
            "https://bücher.example/"
        ));
        assert!(m(
            "https://bücher.example",
            "https://xn--bcher-kva.example/"
        ));
        assert!(!m("https://apple.com", "https://\u{430}pple.com/"));
        assert!(m("https://127.0.0.1", "https://2130706433/"));
        assert!(m("https://[::1]", "https://[0:0::1]/"));
        assert!(!m("https://[::1]", "https://127.0.0.1/"));
    }

    #[test]
    fn policy_allows() {
        let p = DomainPolicy::whitelist(["https://a.com", "https://*.b.com:8443"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(p.allows(&target("https://a.com/")));
        assert!(p.allows(&target("wss://x.b.com:8443/")));
        assert!(!p.allows(&target("https://b.com:8443/")));
        assert!(!p.allows(&target("https://c.com/")));
        assert!(DomainPolicy::AllowAny.allows(&target("https://c.com/")));
        assert!(DomainPolicy::whitelist(["https://a.com/x"]).is_err());
        assert!(!DomainPolicy::Whitelist(Vec::new()).allows(&target("https://a.com/")));
    }
}
