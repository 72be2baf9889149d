//! JavaScript's own string conversions, reproduced byte for byte (SPEC §4):
//! `Number.prototype.toString`, `encodeURIComponent`, `JSON.stringify` with
//! JavaScript's property order, and the query-string rule built on them.
//!
//! Values come in as `serde_json::Value` parsed with `preserve_order`, which
//! keeps insertion order the way `JSON.parse` does (a repeated key keeps its
//! first position and takes the last value). Rust strings cannot hold lone
//! surrogates, so every function here is infallible; the JSON bridge refuses
//! lone surrogates before a value reaches this module.

pub mod json;
pub mod number;
pub mod query;
pub mod uri;

pub use json::{ordered_entries, stringify};
pub use number::write_number;
pub use query::{to_query_string, write_query_value};
pub use uri::encode_uri_component;
