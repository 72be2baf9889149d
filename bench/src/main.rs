//! `mpnet-bench`: see the library docs (`src/lib.rs`) for the options.
#![deny(unsafe_code)]

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(mpnet_bench::main_with_args(args));
}
