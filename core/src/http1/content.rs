//! Content-Encoding decoding (stub).
/// Decodes gzip/deflate bodies.
pub struct ContentDecoder;
