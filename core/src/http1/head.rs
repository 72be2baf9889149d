//! Request head writer (stub).
/// A request head.
pub struct RequestHead;
