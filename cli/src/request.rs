//! `mpnet request OPTIONS`: runs `my.request` and prints the success or
//! error JSON (SPEC §9); exit 0 on success, 1 on failure.

use mpnet_core::bridge;
use mpnet_core::request::{RequestOptions, Response};
use mpnet_core::{Api, AppContext, Error};

use crate::app::Flags;
use crate::input::{options_or_exit, print_result, read_options};
use crate::net::Net;
use crate::Transport;

/// Runs the command; `Err` is a usage error.
pub fn run(flags: &Flags, options: &str) -> Result<u8, String> {
    let ctx = flags.context()?;
    let text = read_options(options)?;
    let opts = match options_or_exit(bridge::request_options(&text), Api::Request) {
        Ok(opts) => opts,
        Err(code) => return Ok(code),
    };
    Ok(print_result(
        request(flags.transport, ctx, opts)?,
        Api::Request,
    ))
}

/// Runs one request on the chosen transport. The outer `Err` is a usage
/// error (a context the transport refuses).
pub fn request(
    transport: Transport,
    ctx: AppContext,
    opts: RequestOptions,
) -> Result<Result<Response, Error>, String> {
    Ok(Net::new(transport, ctx)?.request(opts))
}
