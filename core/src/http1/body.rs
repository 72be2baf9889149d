//! Body framing (stub).
/// A piece of body read from the caller's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyChunk {
    /// Bytes of input consumed.
    pub consumed: usize,
    /// Where the body data lies within the input (zero-copy).
    pub data: std::ops::Range<usize>,
}
