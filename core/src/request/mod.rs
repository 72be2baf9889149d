//! my.request (SPEC §4).
