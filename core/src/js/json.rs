//! `JSON.stringify`, byte for byte.

use serde_json::{Map, Value};

use super::number::write_number;

/// The largest array index, `2^32 - 2` (ECMA-262 "array index").
const MAX_ARRAY_INDEX: u64 = 4_294_967_294;

/// `Some(i)` if `key` is an array index in canonical form: `"0"`, or a
/// non-zero digit followed by digits, with a value of at most `2^32 - 2`.
/// `"01"`, `"-1"`, `"+1"`, `"1.0"` and `"4294967295"` are not indices.
fn array_index(key: &str) -> Option<u32> {
    let bytes = key.as_bytes();
    // "4294967294" has 10 digits; anything longer cannot be an index.
    if bytes.is_empty() || bytes.len() > 10 {
        return None;
    }
    if bytes.len() > 1 && bytes[0] == b'0' {
        return None;
    }
    let mut value: u64 = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u64::from(b - b'0');
    }
    if value > MAX_ARRAY_INDEX {
        return None;
    }
    u32::try_from(value).ok()
}

/// The entries of `map` in JavaScript property order: keys that are array
/// indices (`0` to `4294967294`, canonical decimal, no leading zeros)
/// ascending first, then the other keys in insertion order.
#[must_use]
pub fn ordered_entries(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    // SPEC §4 / ECMA-262 `OrdinaryOwnPropertyKeys`: array-index keys first,
    // ascending, then the other string keys in creation order.
    let mut indexed: Vec<(u32, &String, &Value)> = Vec::new();
    let mut named: Vec<(&String, &Value)> = Vec::with_capacity(map.len());
    for (key, value) in map {
        match array_index(key) {
            Some(i) => indexed.push((i, key, value)),
            None => named.push((key, value)),
        }
    }
    if indexed.is_empty() {
        return named;
    }
    // Keys are unique, so their indices are too: an unstable sort is exact.
    indexed.sort_unstable_by_key(|&(i, _, _)| i);
    let mut entries = Vec::with_capacity(map.len());
    entries.extend(indexed.into_iter().map(|(_, k, v)| (k, v)));
    entries.extend(named);
    entries
}

/// Appends `JSON.stringify(value)` exactly as JavaScript prints it (property
/// order, number format, escapes; U+2028/U+2029 kept as they are).
pub fn stringify(value: &Value, out: &mut String) {
    // SPEC §4: "an object or array is serialised exactly as `JSON.stringify`
    // would (same key order, number format and escapes)".
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            // JSON.stringify writes a non-finite number as `null`; a
            // serde_json Number is always finite, but keep the rule.
            if n.as_f64().is_some_and(|f| !f.is_finite()) {
                out.push_str("null");
            } else {
                write_number(n, out);
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                stringify(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            let mut entry = |i: usize, key: &str, item: &Value| {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                stringify(item, out);
            };
            // Without array-index keys, JavaScript order is insertion order:
            // no need to sort (or allocate) anything.
            if map.keys().any(|k| array_index(k).is_some()) {
                for (i, (key, item)) in ordered_entries(map).into_iter().enumerate() {
                    entry(i, key, item);
                }
            } else {
                for (i, (key, item)) in map.iter().enumerate() {
                    entry(i, key, item);
                }
            }
            out.push('}');
        }
    }
}

/// The escape `JSON.stringify` writes for byte `b` (ECMA-262 `QuoteJSONString`),
/// or `None` if `b` is written as it is. Bytes of multi-byte UTF-8
/// characters are all >= 0x80 and so are never escaped: U+007F, U+2028,
/// U+2029 and everything else beyond U+001F stay raw.
fn escape(b: u8) -> Option<&'static str> {
    const CONTROL: [&str; 32] = [
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
        "\\b", "\\t", "\\n", "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f", "\\u0010", "\\u0011",
        "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019",
        "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
    ];
    match b {
        b'"' => Some("\\\""),
        b'\\' => Some("\\\\"),
        0x00..=0x1f => Some(CONTROL[usize::from(b)]),
        _ => None,
    }
}

/// Appends `s` as a JSON string literal the way `JSON.stringify` quotes it.
fn write_string(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    // Copy runs of raw bytes in one go; every escaped byte is ASCII, so the
    // run boundaries are char boundaries.
    let mut run_start = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if let Some(esc) = escape(b) {
            out.push_str(&s[run_start..i]);
            out.push_str(esc);
            run_start = i + 1;
        }
    }
    out.push_str(&s[run_start..]);
    out.push('"');
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn js(text: &str) -> String {
        let v: Value = serde_json::from_str(text).unwrap();
        let mut out = String::new();
        stringify(&v, &mut out);
        out
    }

    fn keys(text: &str) -> Vec<String> {
        let v: Value = serde_json::from_str(text).unwrap();
        let map = v.as_object().unwrap();
        ordered_entries(map)
            .into_iter()
            .map(|(k, _)| k.clone())
            .collect()
    }

    #[test]
    fn array_indices() {
        assert_eq!(array_index("0"), Some(0));
        assert_eq!(array_index("10"), Some(10));
        assert_eq!(array_index("4294967294"), Some(4_294_967_294));
        assert_eq!(array_index("4294967295"), None);
        assert_eq!(array_index("9999999999"), None);
        assert_eq!(array_index("10000000000"), None);
        for not in [
            "", "01", "00", "-1", "-0", "+1", "1.0", "1e3", " 1", "1 ", "a", "\u{0661}",
        ] {
            assert_eq!(array_index(not), None, "{not:?}");
        }
    }

    #[test]
    fn property_order() {
        // node 20: Object.keys(JSON.parse(text))
        assert_eq!(
            keys(
                r#"{"b":1,"4294967295":2,"4294967294":3,"1":4,"01":5,"-1":6,"0":7,"9007199254740991":8}"#
            ),
            [
                "0",
                "1",
                "4294967294",
                "b",
                "4294967295",
                "01",
                "-1",
                "9007199254740991"
            ]
        );
        assert_eq!(keys(r#"{"10":1,"2":2,"a":3,"1":4}"#), ["1", "2", "10", "a"]);
        assert_eq!(keys("{}"), Vec::<String>::new());
    }

    #[test]
    fn known_javascript_outputs() {
        // Expected values are what node 20 prints for
        // `JSON.stringify(JSON.parse(text))`.
        let cases = [
            ("null", "null"),
            ("true", "true"),
            ("false", "false"),
            ("[]", "[]"),
            ("{}", "{}"),
            (" [ 1 , 2.0 , -0 , 1e21 , 1E-7 ] ", "[1,2,0,1e+21,1e-7]"),
            (
                r#"{"b":1,"4294967295":2,"4294967294":3,"1":4,"01":5,"-1":6,"0":7}"#,
                r#"{"0":7,"1":4,"4294967294":3,"b":1,"4294967295":2,"01":5,"-1":6}"#,
            ),
            (r#"{"__proto__":1,"a":2,"a":3,"b":4}"#, r#"{"__proto__":1,"a":3,"b":4}"#),
            (r#"{"a":{"2":[{"1":0,"0":1}],"1":null}}"#, r#"{"a":{"1":null,"2":[{"0":1,"1":0}]}}"#),
            (
                r#"["\u2028\u2029\u007f\u0000\u001f\b\f\n\r\t\"\\\/", "\u000B\u001A"]"#,
                "[\"\u{2028}\u{2029}\u{7f}\\u0000\\u001f\\b\\f\\n\\r\\t\\\"\\\\/\",\"\\u000b\\u001a\"]",
            ),
            (r#""\ud83d\ude00 中文 é""#, "\"\u{1f600} 中文 é\""),
            ("123456789012345678901", "123456789012345680000"),
            ("0.30000000000000004", "0.30000000000000004"),
        ];
        for (text, expected) in cases {
            assert_eq!(js(text), expected, "input {text}");
        }
    }

    /// Equal as JSON values, numbers compared by f64 value, object entries
    /// by key regardless of order.
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                    return x == y;
                }
                if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                    return x == y;
                }
                x.as_f64() == y.as_f64()
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
            }
            _ => a == b,
        }
    }

    pub(crate) fn arb_key() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[0-9]{1,11}",
            Just("4294967294".to_string()),
            Just("4294967295".to_string()),
            Just("__proto__".to_string()),
            "[a-z]{0,3}",
        ]
    }

    pub(crate) fn arb_leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[\\x00-\\x1f\"\\\\\u{7f}\u{2028}\u{2029}a]{0,8}".prop_map(Value::String),
        ]
    }

    pub(crate) fn arb_value() -> impl Strategy<Value = Value> {
        arb_leaf().prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((arb_key(), inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn stringify_parses_back(v in arb_value()) {
            let mut out = String::new();
            stringify(&v, &mut out);
            let back: Value = serde_json::from_str(&out).unwrap();
            prop_assert!(same(&v, &back), "{} -> {}", v, out);
            // The output is compact and has no raw control characters.
            prop_assert!(!out.bytes().any(|b| b < 0x20));
        }

        #[test]
        fn order_is_indices_then_insertion(entries in prop::collection::vec((arb_key(), any::<bool>()), 0..12)) {
            let map: Map<String, Value> =
                entries.into_iter().map(|(k, b)| (k, Value::Bool(b))).collect();
            let ordered = ordered_entries(&map);
            prop_assert_eq!(ordered.len(), map.len());
            let split = ordered.iter().take_while(|(k, _)| array_index(k).is_some()).count();
            let (idx, rest) = ordered.split_at(split);
            // Indices ascending, no index among the rest.
            let nums: Vec<u32> = idx.iter().filter_map(|(k, _)| array_index(k)).collect();
            prop_assert!(nums.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(rest.iter().all(|(k, _)| array_index(k).is_none()));
            // The rest keep the map's insertion order.
            let expected: Vec<&String> = map.keys().filter(|k| array_index(k).is_none()).collect();
            let got: Vec<&String> = rest.iter().map(|(k, _)| *k).collect();
            prop_assert_eq!(got, expected);
            // Each key with its own value.
            prop_assert!(ordered.iter().all(|(k, v)| map.get(*k) == Some(*v)));
        }
    }
}
