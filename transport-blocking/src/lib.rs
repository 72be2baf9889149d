//! Blocking transport for mpnet: drives `mpnet-core` over `std::net` and rustls.
#![forbid(unsafe_code)]
