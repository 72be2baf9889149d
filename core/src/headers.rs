//! The request headers a call sends (SPEC §3, §4): the caller's headers,
//! checked and cleaned, plus the ones the library owns.
//!
//! - Names are case-insensitive; a later caller header replaces an earlier
//!   one with the same name.
//! - A name that is not an HTTP token, or a value with CR, LF, NUL or another
//!   control character, is error 2 and nothing is sent, whatever the name
//!   (the reserved ones below included).
//! - `Host`, `Content-Length`, `Transfer-Encoding` and `Connection` are the
//!   library's to set: a caller's are dropped.
//! - `Referer` (any case) from the caller is dropped; the app context's
//!   referer is always sent.
//! - Leading and trailing spaces and tabs of a value are trimmed, as fetch
//!   does; non-ASCII values are sent as their UTF-8 bytes.

use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, REFERER, USER_AGENT};
use http::HeaderMap;

use crate::{AppContext, Error};

/// Header names the library sets itself; a caller's are dropped.
const RESERVED: [&str; 5] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "referer",
];

/// Checks one caller header and converts it. `Ok(None)` for a reserved
/// name whose value is valid: a bad name or value is error 2 whatever the
/// name (SPEC §4), so a reserved header is never a way to slip CR or LF
/// past the check.
pub fn caller_header(name: &str, value: &str) -> Result<Option<(HeaderName, HeaderValue)>, Error> {
    let header_name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| Error::invalid(format!("header name {name:?} is not a valid HTTP token")))?;
    let trimmed = value.trim_matches(|c| c == ' ' || c == '\t');
    if trimmed
        .bytes()
        .any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
    {
        return Err(Error::invalid(format!(
            "header {name:?} has a control character (CR, LF, NUL, ...) in its value"
        )));
    }
    let header_value = HeaderValue::from_bytes(trimmed.as_bytes())
        .map_err(|_| Error::invalid(format!("header {name:?} has an invalid value")))?;
    if RESERVED.contains(&header_name.as_str()) {
        return Ok(None);
    }
    Ok(Some((header_name, header_value)))
}

/// Builds the header map a call sends: the caller's headers (checked, in
/// order), then `content-type` (when `default_content_type` is given and the
/// caller set none), the context's `referer`, and its `user-agent` when the
/// caller set none.
pub fn build(
    ctx: &AppContext,
    caller: &[(String, String)],
    default_content_type: Option<&'static str>,
) -> Result<HeaderMap, Error> {
    let mut map = HeaderMap::with_capacity(caller.len() + 4);
    for (name, value) in caller {
        if let Some((n, v)) = caller_header(name, value)? {
            map.insert(n, v);
        }
    }
    if let Some(ct) = default_content_type {
        if !map.contains_key(CONTENT_TYPE) {
            map.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
        }
    }
    map.insert(REFERER, ctx.referer().clone());
    if let Some(ua) = ctx.user_agent() {
        if !map.contains_key(USER_AGENT) {
            map.insert(USER_AGENT, ua.clone());
        }
    }
    Ok(map)
}

/// Whether a `content-type` value is `application/x-www-form-urlencoded`,
/// case-insensitively, parameters ignored (SPEC §4).
pub fn is_form_urlencoded(content_type: &HeaderValue) -> bool {
    let bytes = content_type.as_bytes();
    let essence = bytes.split(|&b| b == b';').next().unwrap_or_default();
    essence
        .trim_ascii()
        .eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> AppContext {
        AppContext::builder("app1", "0.1")
            .allow_any_origin()
            .user_agent(None)
            .build()
            .unwrap()
    }

    fn names(map: &HeaderMap) -> Vec<String> {
        map.iter().map(|(n, _)| n.to_string()).collect()
    }

    #[test]
    fn default_content_type_and_referer() {
        let map = build(&ctx(), &[], Some("application/json")).unwrap();
        assert_eq!(map[CONTENT_TYPE], "application/json");
        assert_eq!(map[REFERER], "https://urlhost/app1/0.1/page-frame.html");
    }

    #[test]
    fn caller_referer_in_any_case_is_dropped() {
        let caller = vec![
            ("REFERER".to_string(), "https://evil".to_string()),
            ("referer".to_string(), "https://evil2".to_string()),
        ];
        let map = build(&ctx(), &caller, None).unwrap();
        assert_eq!(map.get_all(REFERER).iter().count(), 1);
        assert_eq!(map[REFERER], "https://urlhost/app1/0.1/page-frame.html");
    }

    #[test]
    fn reserved_headers_are_dropped() {
        let caller: Vec<(String, String)> =
            ["Host", "Content-Length", "Transfer-Encoding", "Connection"]
                .iter()
                .map(|n| (n.to_string(), "x".to_string()))
                .collect();
        let map = build(&ctx(), &caller, None).unwrap();
        assert_eq!(names(&map), vec!["referer"]);
    }

    #[test]
    fn injection_and_bad_names_are_error_2() {
        for (n, v) in [
            ("x-a", "1\r\nx-b: 2"),
            ("x-a", "1\nx"),
            ("x-a", "a\0b"),
            ("x a", "1"),
            ("x:a", "1"),
            ("", "1"),
            ("x-a\r\n", "1"),
        ] {
            let err = build(&ctx(), &[(n.into(), v.into())], None).unwrap_err();
            assert_eq!(err.code(crate::Api::Request), 2, "{n:?}: {v:?}");
        }
    }

    #[test]
    fn later_header_wins_case_insensitively_and_values_are_trimmed() {
        let caller = vec![
            ("X-Token".to_string(), "a".to_string()),
            ("x-token".to_string(), "  b\t".to_string()),
        ];
        let map = build(&ctx(), &caller, None).unwrap();
        assert_eq!(map.get_all("x-token").iter().collect::<Vec<_>>(), vec!["b"]);
    }

    #[test]
    fn form_content_type_matching() {
        for v in [
            "application/x-www-form-urlencoded",
            "Application/X-WWW-Form-Urlencoded; charset=utf-8",
            " application/x-www-form-urlencoded ;charset=utf-8",
        ] {
            assert!(
                is_form_urlencoded(&HeaderValue::from_str(v).unwrap()),
                "{v}"
            );
        }
        for v in [
            "application/json",
            "application/x-www-form-urlencodedx",
            "text/plain",
        ] {
            assert!(
                !is_form_urlencoded(&HeaderValue::from_str(v).unwrap()),
                "{v}"
            );
        }
    }
}
