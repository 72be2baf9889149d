//! `mpnet upload OPTIONS` and `mpnet download OPTIONS` (SPEC §9): the
//! success or error JSON on stdout, a progress bar on stderr when stderr is
//! a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use mpnet_core::task::Callbacks;
use mpnet_core::transfer::{self, ProgressEvent};
use mpnet_core::Api;

use crate::app::Flags;
use crate::input::{options_or_exit, print_result, read_options};
use crate::net::Net;

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
    let result = Net::new(flags.transport, ctx)?
        .spawn_upload(opts, with_bar(&bar))?
        .wait();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(print_result(result, Api::Upload))
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
    let result = Net::new(flags.transport, ctx)?
        .spawn_download(opts, with_bar(&bar))?
        .wait();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(print_result(result, Api::Download))
}
