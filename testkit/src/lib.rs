//! Loopback test kit (stub).
