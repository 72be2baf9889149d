//! `cargo bench -p mpnet-bench [-- options]`: the same suite as the
//! `mpnet-bench` binary (this target re-executes itself for the child
//! processes of the download and upload scenarios, as the binary does).
//!
//! `cargo bench` passes `--bench`; `cargo test --all-targets` runs bench
//! targets without it, and then this only says how to run it: benchmarks
//! are not tests.
#![deny(unsafe_code)]

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let benching = args.iter().any(|a| a == "--bench");
    let child = args.iter().any(|a| a == "--child" || a == "--measure");
    if !benching && !child {
        println!(
            "mpnet-bench: not a test; run `cargo bench -p mpnet-bench` (or the mpnet-bench binary)"
        );
        return;
    }
    args.retain(|a| a != "--bench");
    std::process::exit(mpnet_bench::main_with_args(args));
}
