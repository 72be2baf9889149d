//! # mpnet-bench
//!
//! mpnet side by side with the crates people would use instead (issue 8),
//! in one run, against one loopback HTTPS server that is none of the
//! clients under test (hyper 1 + tokio-rustls, [`server`]).
//!
//! ```text
//! mpnet-bench [--quick] [--runs N] [--budget-ms MS] [--only a,b,...]
//!             [--download-size BYTES] [--upload-size BYTES] [--threads N]
//! cargo bench -p mpnet-bench [-- same options]
//! ```
//!
//! Every figure is the median of `--runs` runs (default 5); the clients of
//! one scenario take turns within each run, so a noisy neighbour slows
//! them alike, and the ratio `mpnet / peer` is the figure to read.
//!
//! | module | job |
//! |---|---|
//! | `server` | the loopback HTTPS server and its endpoints |
//! | `clients` | how each client under test is set up |
//! | `scenarios` | one function per scenario |
//! | `child` | child processes: peak RSS of a download or upload |
//! | `alloc_count` | the counting global allocator (the one `unsafe` module) |
//! | `report` | medians, ratios, the table |
#![deny(unsafe_code)]

pub mod alloc_count;
pub mod child;
pub mod clients;
mod probe;
pub mod report;
pub mod scenarios;
pub mod server;

use std::time::Duration;

/// What to run and how long.
#[derive(Debug, Clone)]
pub struct Config {
    /// Runs per figure (the median is reported).
    pub runs: usize,
    /// Time budget of one client in one run of a rate scenario.
    pub budget: Duration,
    /// Most requests of one client in one run of a rate scenario.
    pub max_requests: u64,
    /// Threads (or tasks) of the concurrent scenarios.
    pub threads: usize,
    /// Bytes downloaded to a file.
    pub download_size: u64,
    /// Bytes uploaded as multipart.
    pub upload_size: u64,
    /// Only these scenarios, when given.
    pub only: Option<Vec<String>>,
}

impl Config {
    /// The full suite: 5 runs, 1 s per client and run, 1 GiB down, 256 MiB up.
    pub fn full() -> Config {
        Config {
            runs: 5,
            budget: Duration::from_millis(1000),
            max_requests: 1_000_000,
            threads: 16,
            download_size: 1 << 30,
            upload_size: 256 << 20,
            only: None,
        }
    }

    /// A short suite: still 5 runs, but 0.25 s budgets, 64 MiB down and
    /// 32 MiB up.
    pub fn quick() -> Config {
        Config {
            budget: Duration::from_millis(250),
            download_size: 64 << 20,
            upload_size: 32 << 20,
            ..Config::full()
        }
    }

    /// Whether scenario `name` is selected.
    pub fn wants(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|list| list.iter().any(|n| n == name))
    }
}

/// The names `--only` accepts, in the order they run.
pub const SCENARIOS: [&str; 12] = [
    "parse",
    "allocs",
    "keepalive",
    "keepalive16",
    "json",
    "async",
    "async16",
    "tls",
    "download",
    "upload",
    "wss",
    "breakdown",
];

const USAGE: &str = "\
usage: mpnet-bench [--quick] [--runs N] [--budget-ms MS] [--only a,b,...]
                   [--download-size BYTES] [--upload-size BYTES] [--threads N]
scenarios: parse allocs keepalive keepalive16 json async async16 tls download upload wss breakdown
(internal: --measure -- CMD..., --child download|upload CLIENT ...)";

fn parse_args(args: &[String]) -> Result<Config, String> {
    let mut config = if args.iter().any(|a| a == "--quick") {
        Config::quick()
    } else {
        Config::full()
    };
    let mut it = args.iter();
    let number = |v: Option<&String>, what: &str| -> Result<u64, String> {
        v.ok_or(format!("{what} needs a value"))?
            .parse::<u64>()
            .map_err(|e| format!("{what}: {e}"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => {}
            // `cargo bench` passes this to harness = false targets.
            "--bench" => {}
            "--runs" => config.runs = number(it.next(), "--runs")?.max(1) as usize,
            "--budget-ms" => {
                config.budget = Duration::from_millis(number(it.next(), "--budget-ms")?.max(1))
            }
            "--threads" => config.threads = number(it.next(), "--threads")?.max(1) as usize,
            "--download-size" => config.download_size = number(it.next(), "--download-size")?,
            "--upload-size" => config.upload_size = number(it.next(), "--upload-size")?,
            "--only" => {
                let list: Vec<String> = it
                    .next()
                    .ok_or("--only needs a value")?
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                if let Some(bad) = list.iter().find(|n| !SCENARIOS.contains(&n.as_str())) {
                    return Err(format!("unknown scenario {bad:?}"));
                }
                config.only = Some(list);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(config)
}

/// The entry point of the binary and of `cargo bench`: `args` without the
/// program name. Returns the process exit code.
pub fn main_with_args(args: Vec<String>) -> i32 {
    match args.first().map(String::as_str) {
        Some("--measure") => return child::measure_main(&args[1..]),
        Some("--child") => return child::child_main(&args[1..]),
        _ => {}
    }
    let config = match parse_args(&args) {
        Ok(c) => c,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("mpnet-bench: {e}");
            }
            eprintln!("{USAGE}");
            return 2;
        }
    };
    match scenarios::run_all(&config) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("mpnet-bench: {e}");
            1
        }
    }
}
