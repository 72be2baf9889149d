//! `JSON.stringify`, byte for byte.

use serde_json::{Map, Value};

/// The entries of `map` in JavaScript property order: keys that are array
/// indices (`0` to `4294967294`, canonical decimal, no leading zeros)
/// ascending first, then the other keys in insertion order.
pub fn ordered_entries(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let _ = map;
    todo!()
}

/// Appends `JSON.stringify(value)` exactly as JavaScript prints it (property
/// order, number format, escapes; U+2028/U+2029 kept as they are).
pub fn stringify(value: &Value, out: &mut String) {
    let _ = (value, out);
    todo!()
}
