//! `mpnet`: the mini-program network API from a terminal (SPEC §9).
//!
//! Every subcommand takes its options as the JSON a mini-program passes
//! (inline, `@FILE`, or `-` for stdin) and prints the success or error JSON
//! the mini-program would see. Exit codes: 0 success, 1 the call failed (the
//! error JSON is on stdout), 2 usage error (message on stderr).
#![forbid(unsafe_code)]

/// `println!` for stdout that ignores a closed stdout (`mpnet ... | head`)
/// instead of panicking; the command goes on and exits as it would have.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod app;
mod encode;
mod input;
mod net;
mod request;
mod serve;
mod socket;
mod tour;
mod transfer;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit code for a usage error (SPEC §9).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a call that failed.
pub const EXIT_FAILED: u8 = 1;

/// The mini-program network API (my.request, my.uploadFile, my.downloadFile,
/// my.connectSocket) from a terminal.
#[derive(Debug, Parser)]
#[command(name = "mpnet", version, about)]
pub struct Cli {
    #[command(flatten)]
    flags: app::Flags,
    #[command(subcommand)]
    command: Command,
}

/// Which transport runs the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Transport {
    /// std::net and threads.
    #[default]
    Blocking,
    /// async-io/smol futures.
    Smol,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print exactly the request my.request would send, after every check a
    /// real request makes (no network).
    Encode {
        /// The my.request options: JSON, @FILE, or - for stdin.
        options: String,
    },
    /// Run my.uploadFile (progress bar on stderr when it is a terminal).
    Upload {
        /// The my.uploadFile options: JSON, @FILE, or - for stdin.
        options: String,
    },
    /// Run my.downloadFile (progress bar on stderr when it is a terminal).
    Download {
        /// The my.downloadFile options: JSON, @FILE, or - for stdin.
        options: String,
    },
    /// Connect a WebSocket: stdin lines are commands, stdout lines events.
    Socket {
        /// The my.connectSocket options: JSON, @FILE, or - for stdin.
        options: String,
    },
    /// The seed's examples, run against the embedded loopback server, on
    /// both transports (or the one named by --transport).
    Tour,
    /// Serve the loopback HTTPS test server (httpbin-like endpoints).
    Serve {
        /// The port (0: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Run my.request and print the success or error JSON.
    Request {
        /// The my.request options: JSON, @FILE, or - for stdin.
        options: String,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let mut cli = cli;
    cli.flags.transport = cli.flags.transport_given.unwrap_or_default();
    let result = match &cli.command {
        Command::Encode { options } => encode::run(&cli.flags, options),
        Command::Request { options } => request::run(&cli.flags, options),
        Command::Serve { port } => serve::run(*port),
        Command::Tour => tour::run(&match cli.flags.transport_given {
            Some(t) => vec![t],
            None => vec![Transport::Blocking, Transport::Smol],
        }),
        Command::Socket { options } => socket::run(&cli.flags, options),
        Command::Upload { options } => transfer::upload(&cli.flags, options),
        Command::Download { options } => transfer::download(&cli.flags, options),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(usage) => {
            eprintln!("mpnet: {usage}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
