//! `encodeURIComponent`.

/// `true` for the bytes `encodeURIComponent` leaves as they are (SPEC §4):
/// `A-Z a-z 0-9 - _ . ! ~ * ' ( )`. All of them are ASCII.
const UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            );
        b += 1;
    }
    table
};

/// Upper-case hex digits, as `encodeURIComponent` writes them (SPEC §4).
const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Appends `s` encoded as `encodeURIComponent` does: only
/// `A-Z a-z 0-9 - _ . ! ~ * ' ( )` stay as they are; every other UTF-8 byte
/// becomes upper-case `%XX`.
pub fn encode_uri_component(s: &str, out: &mut String) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len());
    // Copy runs of unreserved bytes in one go. A non-empty run starts and
    // ends next to an unreserved byte, which is ASCII, so both ends are char
    // boundaries. (An empty run may sit inside a multi-byte character: it
    // must not be sliced.)
    let mut run_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if UNRESERVED[usize::from(b)] {
            continue;
        }
        if run_start < i {
            out.push_str(&s[run_start..i]);
        }
        out.push('%');
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
        run_start = i + 1;
    }
    if run_start < bytes.len() {
        out.push_str(&s[run_start..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(s: &str) -> String {
        let mut out = String::new();
        encode_uri_component(s, &mut out);
        out
    }

    #[test]
    fn known_javascript_outputs() {
        // Expected values are what node 20 prints for `encodeURIComponent(s)`.
        assert_eq!(enc(""), "");
        assert_eq!(
            enc("AZaz09-_.!~*'()"),
            "AZaz09-_.!~*'()",
            "the unreserved set stays as it is"
        );
        assert_eq!(
            enc("a b&=+/?#\u{e9}\u{4e2d}\u{1f600}!~*()'\u{7f}-_."),
            "a%20b%26%3D%2B%2F%3F%23%C3%A9%E4%B8%AD%F0%9F%98%80!~*()'%7F-_."
        );
        assert_eq!(enc("%20"), "%2520");
        assert_eq!(enc("\0\n\r\t"), "%00%0A%0D%09");
        assert_eq!(enc("\u{2028}\u{2029}"), "%E2%80%A8%E2%80%A9");
        assert_eq!(enc("\u{10ffff}"), "%F4%8F%BF%BF");
        assert_eq!(enc("{\"a\":[1,2]}"), "%7B%22a%22%3A%5B1%2C2%5D%7D");
        assert_eq!(
            enc("\"#$&+,/:;<=>?@[\\]^`{|}"),
            "%22%23%24%26%2B%2C%2F%3A%3B%3C%3D%3E%3F%40%5B%5C%5D%5E%60%7B%7C%7D"
        );
    }

    #[test]
    fn appends() {
        let mut out = String::from("x=");
        encode_uri_component("a b", &mut out);
        assert_eq!(out, "x=a%20b");
    }

    /// The definition, one byte at a time.
    fn reference(s: &str) -> String {
        const KEEP: &str =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()";
        let mut out = String::new();
        for b in s.bytes() {
            if KEEP.as_bytes().contains(&b) {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    proptest! {
        #[test]
        fn matches_the_definition(s in any::<String>()) {
            prop_assert_eq!(enc(&s), reference(&s));
        }

        #[test]
        fn matches_the_definition_ascii(s in "[ -~]{0,40}") {
            prop_assert_eq!(enc(&s), reference(&s));
        }
    }
}
