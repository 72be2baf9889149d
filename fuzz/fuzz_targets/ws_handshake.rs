//! Fuzz target `ws_handshake`: the invariants are in `checks::ws_handshake` (fuzz/src/checks.rs),
//! shared with the regression replay in core/tests/fuzz_regressions.rs.
#![no_main]

#[path = "../src/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::ws_handshake(data));
