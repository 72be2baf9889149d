//! The query string of SPEC §4: `encodeURIComponent(k)=encodeURIComponent(v)&...`.

use std::fmt::Write as _;

use serde_json::Value;

use super::json::{ordered_entries, stringify};
use super::number::write_number;
use super::uri::encode_uri_component;

/// Appends the text a value becomes in a query string, before encoding:
/// strings as they are, numbers as JavaScript prints them, `true`/`false`,
/// `null` as `null`, objects and arrays as `JSON.stringify` prints them.
pub fn write_query_value(value: &Value, out: &mut String) {
    // SPEC §4, "Values".
    match value {
        Value::String(s) => out.push_str(s),
        Value::Number(n) => write_number(n, out),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Null => out.push_str("null"),
        Value::Array(_) | Value::Object(_) => stringify(value, out),
    }
}

/// The query string of an object or array (keys in JavaScript property order,
/// array elements under their indices). Any other value gives the empty
/// string. `{}` and `[]` give the empty string.
#[must_use]
pub fn to_query_string(value: &Value) -> String {
    let mut out = String::new();
    // Scratch buffers, reused for every pair.
    let mut text = String::new();
    match value {
        Value::Object(map) => {
            for (key, item) in ordered_entries(map) {
                push_pair(key, item, &mut text, &mut out);
            }
        }
        Value::Array(items) => {
            // `Object.keys(array)`: the indices, ascending.
            let mut key = String::new();
            for (i, item) in items.iter().enumerate() {
                key.clear();
                // Writing into a `String` cannot fail.
                let _ = write!(key, "{i}");
                push_pair(&key, item, &mut text, &mut out);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
    out
}

/// Appends `[&]encodeURIComponent(key)=encodeURIComponent(text of value)`,
/// with `&` only between pairs; `text` is scratch space.
fn push_pair(key: &str, value: &Value, text: &mut String, out: &mut String) {
    if !out.is_empty() {
        out.push('&');
    }
    encode_uri_component(key, out);
    out.push('=');
    text.clear();
    write_query_value(value, text);
    encode_uri_component(text, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::js::json::tests::{arb_key, arb_leaf, arb_value};
    use proptest::prelude::*;

    fn qs(text: &str) -> String {
        to_query_string(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn known_javascript_outputs() {
        // Expected values are what node 20 prints for
        // `Object.keys(o).map(k => encodeURIComponent(k) + '=' +
        //   encodeURIComponent(typeof o[k] === 'object' && o[k] !== null
        //     ? JSON.stringify(o[k]) : String(o[k]))).join('&')`.
        let cases = [
            (
                r#"{"a":1,"b":"x y","c":true,"d":null,"e":[1,"2",{"z":0}],"f":{"2":1,"1":2},"g":1.0,"h":-0,"i":1e21,"j":0.1}"#,
                "a=1&b=x%20y&c=true&d=null&e=%5B1%2C%222%22%2C%7B%22z%22%3A0%7D%5D&f=%7B%221%22%3A2%2C%222%22%3A1%7D&g=1&h=0&i=1e%2B21&j=0.1",
            ),
            (
                r#"{"b":1,"10":2,"2":3,"01":4,"中文":"值😀","a&b=c":"'!~*()","":""}"#,
                "2=3&10=2&b=1&01=4&%E4%B8%AD%E6%96%87=%E5%80%BC%F0%9F%98%80&a%26b%3Dc='!~*()&=",
            ),
            (
                r#"["x",[1,2],{"k":"v"},false,1e-7]"#,
                "0=x&1=%5B1%2C2%5D&2=%7B%22k%22%3A%22v%22%7D&3=false&4=1e-7",
            ),
            (
                r#"{"__proto__":{"a":1},"s":"\u2028\n%20+"}"#,
                "__proto__=%7B%22a%22%3A1%7D&s=%E2%80%A8%0A%2520%2B",
            ),
            ("{}", ""),
            ("[]", ""),
            (r#"{"a":""}"#, "a="),
            (r#"{"a":{}}"#, "a=%7B%7D"),
            ("[[]]", "0=%5B%5D"),
            // Not an object or array: nothing.
            ("null", ""),
            ("true", ""),
            ("12", ""),
            (r#""a=b""#, ""),
        ];
        for (text, expected) in cases {
            assert_eq!(qs(text), expected, "input {text}");
        }
    }

    #[test]
    fn query_values() {
        let text = |json: &str| {
            let mut out = String::new();
            write_query_value(&serde_json::from_str(json).unwrap(), &mut out);
            out
        };
        assert_eq!(text(r#""a b""#), "a b");
        assert_eq!(text("1.50"), "1.5");
        assert_eq!(text("true"), "true");
        assert_eq!(text("false"), "false");
        assert_eq!(text("null"), "null");
        assert_eq!(
            text(r#"{"b":[1,{"1":2,"0":3}]}"#),
            r#"{"b":[1,{"0":3,"1":2}]}"#
        );
    }

    /// Percent-decoding; `+` stays `+` (encodeURIComponent never writes one
    /// for a space).
    fn percent_decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    fn expected_pairs(value: &Value) -> Vec<(String, String)> {
        let text = |v: &Value| {
            let mut out = String::new();
            write_query_value(v, &mut out);
            out
        };
        match value {
            Value::Object(map) => ordered_entries(map)
                .into_iter()
                .map(|(k, v)| (k.clone(), text(v)))
                .collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), text(v)))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn decoded_pairs(query: &str) -> Vec<(String, String)> {
        if query.is_empty() {
            return Vec::new();
        }
        query
            .split('&')
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap();
                (percent_decode(k), percent_decode(v))
            })
            .collect()
    }

    fn arb_container() -> impl Strategy<Value = Value> {
        prop_oneof![
            prop::collection::vec((arb_key(), arb_value()), 0..8)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            prop::collection::vec(arb_value(), 0..8).prop_map(Value::Array),
        ]
    }

    proptest! {
        #[test]
        fn decodes_back_to_keys_and_texts(value in arb_container()) {
            let query = to_query_string(&value);
            // Only unreserved characters, escapes and the separators.
            prop_assert!(query.bytes().all(|b| b.is_ascii_alphanumeric()
                || b"-_.!~*'()%=&".contains(&b)), "{}", query);
            prop_assert_eq!(decoded_pairs(&query), expected_pairs(&value));
        }

        #[test]
        fn scalars_give_nothing(value in arb_leaf()) {
            prop_assert_eq!(to_query_string(&value), "");
        }
    }
}
