//! Response head (stub).
/// A response head.
pub struct ResponseHead;
