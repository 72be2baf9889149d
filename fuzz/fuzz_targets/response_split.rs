//! Fuzz target `response_split`: the invariants are in `checks::response_split` (fuzz/src/checks.rs),
//! shared with the regression replay in core/tests/fuzz_regressions.rs.
#![no_main]

#[path = "../src/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::response_split(data));
