//! `cargo bench -p mpnet-bench [-- options]`: the same suite as the
//! `mpnet-bench` binary (this target re-executes itself for the child
//! processes of the download and upload scenarios, as the binary does).
#![deny(unsafe_code)]

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(mpnet_bench::main_with_args(args));
}
