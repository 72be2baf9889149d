//! Async transport for mpnet: drives `mpnet-core` with futures built on async-io.
#![forbid(unsafe_code)]
