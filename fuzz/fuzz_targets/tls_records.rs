//! Fuzz target `tls_records`: the invariants are in `checks::tls_records` (fuzz/src/checks.rs),
//! shared with the regression replay in core/tests/fuzz_regressions.rs.
#![no_main]

#[path = "../src/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::tls_records(data));
