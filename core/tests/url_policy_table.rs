//! The whitelist against tricky URLs (SPEC §3 domain policy, SPEC §4 codes
//! 2, 11, 15).
//!
//! Each row is a URL, the whitelist it is checked against, and what must
//! happen: allowed (with the host and port the transport will connect to),
//! or refused with the `my.request` error code. A row is evaluated the way a
//! request is: `Target::parse` (a URL error gives its code through
//! `mpnet_core::Error`), then `Target::check_query` (15), then the domain
//! policy (11). Rows with a malformed query use a whitelisted host, so the
//! order of the last two steps does not matter to them.
//!
//! For every allowed row the test also checks the invariant the design
//! rests on: the host the policy accepted is the host that is connected to
//! (`Target::host` / `connect_host`), and that host is literally a
//! whitelisted host or a strict subdomain of a `*.` entry's domain.

use mpnet_core::{Api, DomainPolicy, Error, Host, Limits, OriginPattern, Target};
use proptest::prelude::*;

/// `my.request` code for an origin the domain policy refuses (SPEC §4).
const NOT_ALLOWED: u32 = 11;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Allowed; the transport connects to `host` (DNS/SNI form) on `port`.
    Allowed { host: &'static str, port: u16 },
    /// Refused with this `my.request` error code.
    Refused(u32),
}
use Expect::{Allowed, Refused};

const fn ok(host: &'static str, port: u16) -> Expect {
    Allowed { host, port }
}

/// The whitelist most rows use.
const W: &[&str] = &[
    "https://good.com",
    "https://*.example.com",
    "https://apple.com",
    "https://xn--bcher-kva.example",
    "https://127.0.0.1",
    "https://[::1]:8443",
    "https://ports.com:443",
    "https://alt.com:8443",
];

const IDN_UNICODE_ENTRY: &[&str] = &["https://bücher.example"];

#[rustfmt::skip]
const ROWS: &[(&str, &[&str], Expect)] = &[
    // Userinfo is refused outright (SPEC §3), whatever follows it.
    ("https://good.com@evil.com/", W, Refused(2)),
    ("https://good.com:pw@evil.com/", W, Refused(2)),
    ("https://good.com:443@evil.com/", W, Refused(2)),
    ("https://user@good.com/", W, Refused(2)),
    ("https://@good.com/", W, Refused(2)),
    ("https://:@good.com/", W, Refused(2)),
    ("https://a@b@good.com/", W, Refused(2)),
    ("https://good.com%40evil.com/", W, Refused(2)),
    ("https://evil.com#@good.com/", W, Refused(NOT_ALLOWED)),
    ("https://evil.com?@good.com/", W, Refused(NOT_ALLOWED)),
    ("https://evil.com/@good.com/", W, Refused(NOT_ALLOWED)),
    ("https://good.com/?next=@evil.com", W, ok("good.com", 443)),
    // Backslashes end the authority (WHATWG, special schemes).
    ("https://evil.com\\@good.com/", W, Refused(NOT_ALLOWED)),
    ("https://good.com\\.evil.com/", W, ok("good.com", 443)),
    ("https://good.com\\\\.evil.com/", W, ok("good.com", 443)),
    ("https:\\\\good.com/", W, ok("good.com", 443)),
    ("https:\\\\evil.com\\@good.com/", W, Refused(NOT_ALLOWED)),
    ("https://\\evil.com/", W, Refused(NOT_ALLOWED)),
    // IDN and homographs: compared after IDNA to ASCII.
    ("https://\u{430}pple.com/", W, Refused(NOT_ALLOWED)), // Cyrillic а
    ("https://xn--pple-43d.com/", W, Refused(NOT_ALLOWED)),
    ("https://apple.com/", W, ok("apple.com", 443)),
    ("https://bücher.example/", W, ok("xn--bcher-kva.example", 443)),
    ("https://BÜCHER.example/", W, ok("xn--bcher-kva.example", 443)),
    ("https://xn--bcher-kva.example/", IDN_UNICODE_ENTRY, ok("xn--bcher-kva.example", 443)),
    ("https://bücher.example/", IDN_UNICODE_ENTRY, ok("xn--bcher-kva.example", 443)),
    ("https://bucher.example/", IDN_UNICODE_ENTRY, Refused(NOT_ALLOWED)),
    ("https://good\u{3002}com/", W, ok("good.com", 443)), // ideographic full stop
    ("https://good\u{FF0E}com/", W, ok("good.com", 443)), // full-width full stop
    ("https://good\u{FF61}com/", W, ok("good.com", 443)), // half-width ideographic full stop
    ("https://\u{FF47}\u{FF4F}\u{FF4F}\u{FF44}.com/", W, ok("good.com", 443)), // full-width letters
    ("https://\u{24D6}ood.com/", W, ok("good.com", 443)), // circled g
    ("https://go\u{AD}od.com/", W, ok("good.com", 443)), // soft hyphen, ignored by IDNA
    ("https://good.com\u{200B}/", W, ok("good.com", 443)), // zero-width space, ignored by IDNA
    ("https://good.com\u{3000}/", W, Refused(2)), // ideographic space maps to a space
    ("https://xn--a.com/", W, Refused(2)), // invalid punycode
    // Trailing dot and case.
    ("https://good.com./", W, ok("good.com", 443)),
    ("https://GOOD.COM/", W, ok("good.com", 443)),
    ("https://Good.Com./x", W, ok("good.com", 443)),
    ("https://good.com../", W, Refused(2)),
    ("https://.good.com/", W, Refused(2)),
    ("https://good..com/", W, Refused(2)),
    // Ports: an entry without a port matches only URLs without one.
    ("https://good.com:443/", W, Refused(NOT_ALLOWED)),
    ("https://good.com:0443/", W, Refused(NOT_ALLOWED)),
    ("https://good.com:8443/", W, Refused(NOT_ALLOWED)),
    ("https://good.com:/", W, ok("good.com", 443)),
    ("https://ports.com/", W, ok("ports.com", 443)),
    ("https://ports.com:443/", W, ok("ports.com", 443)),
    ("https://ports.com:0443/", W, ok("ports.com", 443)),
    ("https://ports.com:8443/", W, Refused(NOT_ALLOWED)),
    ("https://alt.com:8443/", W, ok("alt.com", 8443)),
    ("https://alt.com:08443/", W, ok("alt.com", 8443)),
    ("https://alt.com/", W, Refused(NOT_ALLOWED)),
    ("https://alt.com:443/", W, Refused(NOT_ALLOWED)),
    ("https://good.com:65536/", W, Refused(2)),
    ("https://good.com:-1/", W, Refused(2)),
    ("https://good.com:44a/", W, Refused(2)),
    ("https://good.com:443:443/", W, Refused(2)),
    // IP address forms are normalised before comparing.
    ("https://127.0.0.1/", W, ok("127.0.0.1", 443)),
    ("https://127.1/", W, ok("127.0.0.1", 443)),
    ("https://0x7f.0.0.1/", W, ok("127.0.0.1", 443)),
    ("https://0x7f.1/", W, ok("127.0.0.1", 443)),
    ("https://2130706433/", W, ok("127.0.0.1", 443)),
    ("https://0177.0.0.1/", W, ok("127.0.0.1", 443)),
    ("https://127.0.0.1./", W, ok("127.0.0.1", 443)),
    ("https://127.0.0.1:443/", W, Refused(NOT_ALLOWED)),
    ("https://127.0.0.2/", W, Refused(NOT_ALLOWED)),
    ("https://256.0.0.1/", W, Refused(2)),
    ("https://[::1]/", W, Refused(NOT_ALLOWED)),
    ("https://[::1]:8443/", W, ok("::1", 8443)),
    ("https://[0:0:0:0:0:0:0:1]:8443/", W, ok("::1", 8443)),
    ("https://[::ffff:127.0.0.1]/", W, Refused(NOT_ALLOWED)),
    ("https://[::ffff:127.0.0.1]:8443/", W, Refused(NOT_ALLOWED)),
    ("https://[::1/", W, Refused(2)),
    ("https://::1/", W, Refused(2)),
    // Percent-encoded hosts are decoded, then checked.
    ("https://%67ood.com/", W, ok("good.com", 443)),
    ("https://good%2ecom/", W, ok("good.com", 443)),
    ("https://good%2Ecom/", W, ok("good.com", 443)),
    ("https://a%2eexample.com/", W, ok("a.example.com", 443)),
    ("https://%2e/", W, Refused(2)),
    ("https://good.com%2f.evil.com/", W, Refused(2)),
    ("https://good.com%00/", W, Refused(2)),
    ("https://evil.com%2523/", W, Refused(2)),
    // Control characters are refused wherever they are; outer spaces trimmed.
    ("https://good.com\r\n.evil.com/", W, Refused(2)),
    ("https://good.com\t/", W, Refused(2)),
    ("https://go\tod.com/", W, Refused(2)),
    ("https://go\nod.com/", W, Refused(2)),
    ("https://good.com/\r\nHost: evil.com", W, Refused(2)),
    ("https://good.com/?a=1\r\nX: y", W, Refused(2)),
    ("https://good.com/#\n", W, Refused(2)),
    ("\thttps://good.com/", W, Refused(2)),
    ("https://good.com/\0", W, Refused(2)),
    ("https://good.com/\x7f", W, Refused(2)),
    ("  https://good.com/  ", W, ok("good.com", 443)),
    ("https://good.com /x", W, Refused(2)),
    ("https://good .com/", W, Refused(2)),
    ("https:// good.com/", W, Refused(2)),
    ("https://good.com/a b", W, ok("good.com", 443)),
    ("https://good.com/?a=1 2", W, ok("good.com", 443)),
    ("\u{A0}https://good.com/", W, Refused(2)),
    // Schemes.
    ("javascript:alert(1)", W, Refused(11)),
    ("javascript://good.com/%0aalert(1)", W, Refused(11)),
    ("JavaScript:alert(1)", W, Refused(11)),
    ("ftp://good.com/", W, Refused(11)),
    ("file:///etc/passwd", W, Refused(11)),
    ("data:text/html,hi", W, Refused(11)),
    ("good.com:443", W, Refused(11)), // WHATWG reads `good.com` as a scheme
    ("http://good.com/", W, Refused(NOT_ALLOWED)),
    ("ws://good.com/", W, Refused(NOT_ALLOWED)),
    ("wss://good.com/", W, ok("good.com", 443)),
    ("HTTPS://GOOD.COM/", W, ok("good.com", 443)),
    ("https:good.com", W, ok("good.com", 443)),
    ("https:/good.com", W, ok("good.com", 443)),
    ("https:///good.com", W, ok("good.com", 443)),
    ("https:evil.com", W, Refused(NOT_ALLOWED)),
    ("https:/evil.com", W, Refused(NOT_ALLOWED)),
    ("//evil.com/", W, Refused(2)),
    ("//good.com/", W, Refused(2)),
    ("good.com", W, Refused(2)),
    ("/path", W, Refused(2)),
    ("", W, Refused(2)),
    ("   ", W, Refused(2)),
    ("https://", W, Refused(2)),
    ("https://:443/", W, Refused(2)),
    ("https://?x", W, Refused(2)),
    // Subdomain wildcards: strict subdomains only, domain names only.
    ("https://example.com/", W, Refused(NOT_ALLOWED)),
    ("https://a.example.com/", W, ok("a.example.com", 443)),
    ("https://a.b.example.com/", W, ok("a.b.example.com", 443)),
    ("https://A.EXAMPLE.COM./", W, ok("a.example.com", 443)),
    ("https://a.example\u{3002}com/", W, ok("a.example.com", 443)),
    ("https://xn--80ak6aa92e.example.com/", W, ok("xn--80ak6aa92e.example.com", 443)),
    ("wss://chat.example.com/socket", W, ok("chat.example.com", 443)),
    ("https://badexample.com/", W, Refused(NOT_ALLOWED)),
    ("https://example.com.evil.com/", W, Refused(NOT_ALLOWED)),
    ("https://a.example.com.evil.com/", W, Refused(NOT_ALLOWED)),
    ("https://evil.com/.example.com", W, Refused(NOT_ALLOWED)),
    ("https://evil.com?.example.com", W, Refused(NOT_ALLOWED)),
    ("https://evil.com#.example.com", W, Refused(NOT_ALLOWED)),
    ("https://evil.com\\.example.com", W, Refused(NOT_ALLOWED)),
    ("https://a.example.com:443/", W, Refused(NOT_ALLOWED)),
    ("https://*.example.com/", W, Refused(2)),
    ("https://.example.com/", W, Refused(2)),
    ("https://a.example.com@evil.com/", W, Refused(2)),
    // Malformed percent-encoding in the query (SPEC §4, 15); the path is not checked.
    ("https://good.com/?a=%E4%B8", W, Refused(15)),
    ("https://good.com/?a=%zz", W, Refused(15)),
    ("https://good.com/?a=%FF", W, Refused(15)),
    ("https://good.com/?a=%", W, Refused(15)),
    ("https://good.com/?a=%E4%B8%AD", W, ok("good.com", 443)),
    ("https://good.com/%zz?a=1", W, ok("good.com", 443)),
    ("https://good.com/#%zz", W, ok("good.com", 443)),
];

/// Redirect hops resolved against `https://good.com/a/b?x=1`; each resolved
/// hop passes the same policy (SPEC §3: every redirect hop).
#[rustfmt::skip]
const REDIRECTS: &[(&str, Expect)] = &[
    ("/c", ok("good.com", 443)),
    ("c?y='2'", ok("good.com", 443)),
    ("", ok("good.com", 443)),
    ("#f", ok("good.com", 443)),
    ("//evil.com/", Refused(NOT_ALLOWED)),
    ("/\\evil.com/", Refused(NOT_ALLOWED)),
    ("\\\\evil.com/", Refused(NOT_ALLOWED)),
    ("\\/evil.com/", Refused(NOT_ALLOWED)),
    ("https:evil.com", ok("good.com", 443)), // same scheme: a relative path
    ("https://evil.com/", Refused(NOT_ALLOWED)),
    ("http:evil.com", Refused(NOT_ALLOWED)), // other scheme: an authority
    ("http://good.com/", Refused(NOT_ALLOWED)),
    ("//a.example.com/x", ok("a.example.com", 443)),
    ("//good.com:443/", Refused(NOT_ALLOWED)),
    ("https://good.com@evil.com/", Refused(2)),
    ("//u@good.com/", Refused(2)),
    ("/a\tb", Refused(2)),
    ("javascript:alert(1)", Refused(11)),
    ("ftp://good.com/", Refused(11)),
    ("/x?a=%E4%B8", Refused(15)),
];

fn policy(entries: &[&str]) -> DomainPolicy {
    DomainPolicy::whitelist(entries).unwrap_or_else(|e| panic!("{e}"))
}

fn code(e: mpnet_core::UrlError) -> u32 {
    Error::from(e).code(Api::Request)
}

/// What evaluating a row gave.
#[derive(Debug)]
enum Got {
    /// Allowed: the target, whose connect host and port are compared.
    Allowed(Target),
    /// Refused with this code.
    Refused(u32),
}

impl Got {
    fn is(&self, expect: Expect) -> bool {
        match (self, expect) {
            // The host accepted is the host connected to: both are read from `t`.
            (Got::Allowed(t), Allowed { host, port }) => {
                t.connect_host() == host && t.port() == port
            }
            (Got::Refused(a), Refused(b)) => *a == b,
            _ => false,
        }
    }
}

/// Evaluates a parsed (or resolved) target the way a request does.
fn evaluate(parsed: Result<Target, mpnet_core::UrlError>, entries: &[&str]) -> Got {
    let t = match parsed {
        Ok(t) => t,
        Err(e) => return Got::Refused(code(e)),
    };
    if let Err(e) = t.check_query() {
        return Got::Refused(code(e));
    }
    if !policy(entries).allows(&t) {
        return Got::Refused(NOT_ALLOWED);
    }
    Got::Allowed(t)
}

/// The invariant for an allowed target, checked independently of
/// `OriginPattern::matches`: the connect host (without brackets, no trailing
/// dot) is an entry's host, or a strict subdomain of a `*.` entry's domain.
fn assert_whitelisted(label: &str, t: &Target, entries: &[&str]) {
    let connect = t.connect_host();
    assert!(
        !connect.ends_with('.'),
        "{label}: trailing dot in {connect}"
    );
    assert_eq!(
        t.host().to_string().trim_matches(['[', ']']),
        connect,
        "{label}"
    );
    let host_header = t.host_header();
    assert!(
        host_header.starts_with(&t.host().to_string()),
        "{label}: {host_header}"
    );
    let found = entries.iter().any(|e| {
        let p: OriginPattern = e.parse().unwrap_or_else(|err| panic!("{err}"));
        let entry_host = p.host().connect_name();
        if p.is_wildcard() {
            matches!(t.host(), Host::Domain(_))
                && connect.len() > entry_host.len() + 1
                && connect.ends_with(&format!(".{entry_host}"))
        } else {
            connect == entry_host
        }
    });
    assert!(found, "{label}: {connect} is not a whitelisted host");
    // The URL as requested names the same host and port again.
    let again = Target::parse(&t.to_string(), &Limits::default())
        .unwrap_or_else(|e| panic!("{label}: {t} does not re-parse: {e}"));
    assert_eq!(
        (again.host(), again.port()),
        (t.host(), t.port()),
        "{label}"
    );
}

#[test]
fn whitelist_table() {
    let limits = Limits::default();
    let mut failures = Vec::new();
    for (url, entries, expect) in ROWS {
        let got = evaluate(Target::parse(url, &limits), entries);
        if !got.is(*expect) {
            failures.push(format!("{url:?}: expected {expect:?}, got {got:?}"));
            continue;
        }
        if let Got::Allowed(t) = got {
            assert_whitelisted(&format!("{url:?}"), &t, entries);
        }
    }
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn redirect_table() {
    let limits = Limits::default();
    let base = Target::parse("https://good.com/a/b?x=1", &limits).unwrap_or_else(|e| panic!("{e}"));
    let mut failures = Vec::new();
    for (location, expect) in REDIRECTS {
        let got = evaluate(base.join(location, &limits), W);
        if !got.is(*expect) {
            failures.push(format!("{location:?}: expected {expect:?}, got {got:?}"));
            continue;
        }
        if let Got::Allowed(t) = got {
            assert_whitelisted(&format!("redirect {location:?}"), &t, W);
        }
    }
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn url_length_limit_is_code_2() {
    let limits = Limits::default();
    let long = format!("https://good.com/{}", "a".repeat(9000));
    let err = Target::parse(&long, &limits).err();
    let e = err.map(Error::from);
    assert_eq!(e.as_ref().map(|e| e.code(Api::Request)), Some(2));
    assert_eq!(
        e.as_ref().map(|e| e.message().to_string()),
        Some(format!(
            "url is {} bytes, over the limit of 8192",
            long.len()
        ))
    );
    let fits = format!("https://good.com/{}", "a".repeat(8192 - 17));
    assert_eq!(fits.len(), 8192);
    assert!(Target::parse(&fits, &limits).is_ok());
}

/// Pieces that make URLs near the interesting edges more likely than
/// uniformly random strings do.
const PIECES: &[&str] = &[
    "https:",
    "wss:",
    "http:",
    "HTTPS:",
    "//",
    "/",
    "\\",
    "example.com",
    "EXAMPLE.com",
    "evil.com",
    "good",
    "@",
    ":",
    "443",
    "0443",
    "8443",
    "",
    ".",
    "%2e",
    "%65",
    "%40",
    "?",
    "#",
    "[::1]",
    "127.1",
    "\u{3002}",
    "\u{FF0E}",
    "xn--",
    "ü",
    "\u{430}",
    " ",
    "\t",
    "*.",
    "a.",
    "&",
    "%",
    "'",
    "%zz",
    "\u{200B}",
    "\u{AD}",
];

/// Ways of writing `example.com` (and near misses).
const HOSTS: &[&str] = &[
    "example.com",
    "EXAMPLE.com.",
    "%65xample.com",
    "example\u{3002}com",
    "example%2ecom",
    "ex\u{AD}ample.com",
    "a.example.com",
    "example.com.evil.com",
    "exampl\u{0435}.com",
];

fn pieces(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..max).prop_map(|v| v.concat())
}

fn url_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(https?|wss?)://[a-zA-Z0-9.:@/\\\\%?#\\[\\]* -]{0,40}",
        pieces(10),
        // Near `https://example.com`, with noise around the host.
        (pieces(3), prop::sample::select(HOSTS), pieces(4))
            .prop_map(|(a, h, b)| format!("https:{a}{h}{b}")),
        (pieces(2), prop::sample::select(HOSTS), pieces(3))
            .prop_map(|(a, h, b)| format!("{a}//{h}{b}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// `Target::parse` never panics; whatever a whitelist of
    /// `https://example.com` allows connects to `example.com:443`.
    #[test]
    fn parse_never_panics_and_whitelist_holds(s in url_like()) {
        let limits = Limits::default();
        let only = policy(&["https://example.com"]);
        if let Ok(t) = Target::parse(&s, &limits) {
            let _ = t.check_query();
            let _ = (t.request_target(), t.host_header(), t.to_string(), t.is_loopback());
            if only.allows(&t) {
                prop_assert_eq!(t.connect_host(), "example.com");
                prop_assert_eq!(t.port(), 443);
                prop_assert_eq!(t.explicit_port(), None);
                prop_assert_eq!(t.host_header(), "example.com");
            }
            // Display re-parses to the same host, port, path and query.
            let again = Target::parse(&t.to_string(), &limits);
            prop_assert!(again.is_ok(), "{} from {:?} does not re-parse", t, s);
            if let Ok(again) = again {
                prop_assert_eq!(again.host(), t.host());
                prop_assert_eq!(again.port(), t.port());
                prop_assert_eq!(again.path(), t.path());
                prop_assert_eq!(again.query(), t.query());
            }
        }
    }

    /// Resolving any Location never panics, and what the whitelist allows
    /// connects to `example.com:443`.
    #[test]
    fn join_never_panics_and_whitelist_holds(s in url_like()) {
        let limits = Limits::default();
        let only = policy(&["https://example.com"]);
        let base = Target::parse("https://example.com/a/b?q=1", &limits);
        prop_assert!(base.is_ok());
        if let Ok(base) = base {
            if let Ok(t) = base.join(&s, &limits) {
                if only.allows(&t) {
                    prop_assert_eq!(t.connect_host(), "example.com");
                    prop_assert_eq!(t.port(), 443);
                }
            }
        }
    }

    /// `append_query` keeps text as written apart from wire-unsafe bytes.
    #[test]
    fn append_query_is_wire_safe(s in any::<String>()) {
        let limits = Limits::default();
        let t0 = Target::parse("https://example.com/p?x", &limits);
        prop_assert!(t0.is_ok());
        if let Ok(mut t) = t0 {
            t.append_query(&s);
            let rt = t.request_target();
            prop_assert!(rt.bytes().all(|b| b > 0x20 && b < 0x7F && !b"\"#<>".contains(&b)));
            if s.is_empty() {
                prop_assert_eq!(rt, "/p?x");
            } else {
                prop_assert!(rt.starts_with("/p?x&"));
            }
        }
    }
}
