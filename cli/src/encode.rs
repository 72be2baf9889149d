//! `mpnet encode OPTIONS`: the exact request `my.request` would send, after
//! every check a real request makes (SPEC §9), with no network.

use mpnet_core::bridge;
use mpnet_core::request::PreparedRequest;
use mpnet_core::Api;

use crate::app::Flags;
use crate::input::{options_or_exit, print_result, read_options};

/// Runs the command; `Err` is a usage error.
pub fn run(flags: &Flags, options: &str) -> Result<u8, String> {
    let ctx = flags.context()?;
    let text = read_options(options)?;
    let opts = match options_or_exit(bridge::request_options(&text), Api::Request) {
        Ok(opts) => opts,
        Err(code) => return Ok(code),
    };
    let view = PreparedRequest::new(&ctx, &opts).map(|p| p.wire_view(ctx.limits()));
    Ok(print_result(view, Api::Request))
}
