//! `mpnet upload OPTIONS` and `mpnet download OPTIONS` (SPEC §9): the
//! success or error JSON on stdout, a progress bar on stderr when stderr is
//! a terminal. SIGINT, SIGTERM or SIGHUP aborts the call: the command waits
//! for its work to stop (an unfinished download's file removed, SPEC §6),
//! prints the error JSON and exits 130; a second signal exits at once.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use mpnet_core::task::Callbacks;
use mpnet_core::transfer::{self, ProgressEvent};
use mpnet_core::Api;

use crate::app::Flags;
use crate::input::{options_or_exit, print_result, read_options};
use crate::net::{Handle, Net};

/// Exit code of a call stopped by a signal (128 + SIGINT, as shells report).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Waits for `task` to end, aborting it on the first stop signal; gives
/// the result and whether a signal stopped it. `Err` is a usage error.
fn run_to_end<T: 'static>(
    task: Arc<dyn Handle<T>>,
) -> Result<(Result<T, mpnet_core::Error>, bool), String> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let (stopper, seen) = (task.clone(), interrupted.clone());
    ctrlc::set_handler(move || {
        if seen.swap(true, Ordering::SeqCst) {
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
        stopper.abort();
    })
    .map_err(|e| format!("cannot handle stop signals: {e}"))?;
    let result = task.wait_stopped();
    Ok((result, interrupted.load(Ordering::SeqCst)))
}

/// The exit code for a transfer's result.
fn exit_code<T: serde::Serialize>(
    (result, interrupted): (Result<T, mpnet_core::Error>, bool),
    api: Api,
) -> u8 {
    let code = print_result(result, api);
    if interrupted {
        EXIT_INTERRUPTED
    } else {
        code
    }
}

/// A progress bar on stderr, or nothing when stderr is not a terminal.
fn progress_bar() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0);
    let style =
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

fn with_bar<T>(bar: &Option<ProgressBar>) -> Callbacks<T> {
    let Some(bar) = bar.clone() else {
        return Callbacks::new();
    };
    Callbacks::new().progress(move |e: &ProgressEvent| {
        if e.total_bytes_expected_to_write > 0 {
            bar.set_length(e.total_bytes_expected_to_write);
        }
        bar.set_position(e.total_bytes_written);
    })
}

/// `mpnet upload`; `Err` is a usage error.
pub fn upload(flags: &Flags, options: &str) -> Result<u8, String> {
    let ctx = flags.context()?;
    let text = read_options(options)?;
    let opts = match options_or_exit(transfer::upload_options(&text), Api::Upload) {
        Ok(opts) => opts,
        Err(code) => return Ok(code),
    };
    let bar = progress_bar();
    let ended = run_to_end(Net::new(flags.transport, ctx)?.spawn_upload(opts, with_bar(&bar))?)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(exit_code(ended, Api::Upload))
}

/// `mpnet download`; `Err` is a usage error.
pub fn download(flags: &Flags, options: &str) -> Result<u8, String> {
    let ctx = flags.context()?;
    if let Some(dir) = ctx.temp_dir() {
        std::fs::create_dir_all(dir).map_err(|e| format!("--temp-dir {}: {e}", dir.display()))?;
    }
    let text = read_options(options)?;
    let opts = match options_or_exit(transfer::download_options(&text), Api::Download) {
        Ok(opts) => opts,
        Err(code) => return Ok(code),
    };
    let bar = progress_bar();
    let ended = run_to_end(Net::new(flags.transport, ctx)?.spawn_download(opts, with_bar(&bar))?)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(exit_code(ended, Api::Download))
}
