//! The exchange type-state (stub).
/// Exchange states.
pub mod state {
    /// Sending the request.
    pub struct SendRequest;
    /// Waiting for the response head.
    pub struct RecvResponse;
    /// Reading the body.
    pub struct RecvBody;
}
/// An HTTP/1.1 exchange in state `S`.
pub struct Exchange<S>(std::marker::PhantomData<S>);
/// What follows the head.
pub enum AfterHead {
    /// A body follows.
    Body(Exchange<state::RecvBody>),
    /// No body.
    Done(Complete),
}
/// A finished exchange.
pub struct Complete {
    /// Whether the connection may be reused.
    pub reuse: ConnectionReuse,
}
/// Keep or close.
pub enum ConnectionReuse {
    /// Back to the pool.
    KeepAlive,
    /// Close it.
    Close,
}
