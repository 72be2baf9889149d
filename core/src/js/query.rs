//! The query string of SPEC §4: `encodeURIComponent(k)=encodeURIComponent(v)&...`.

use serde_json::Value;

/// Appends the text a value becomes in a query string, before encoding:
/// strings as they are, numbers as JavaScript prints them, `true`/`false`,
/// `null` as `null`, objects and arrays as `JSON.stringify` prints them.
pub fn write_query_value(value: &Value, out: &mut String) {
    let _ = (value, out);
    todo!()
}

/// The query string of an object or array (keys in JavaScript property order,
/// array elements under their indices). Any other value gives the empty
/// string. `{}` and `[]` give the empty string.
pub fn to_query_string(value: &Value) -> String {
    let _ = value;
    todo!()
}
