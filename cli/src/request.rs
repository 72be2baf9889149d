//! `mpnet request OPTIONS`: runs `my.request` and prints the success or
//! error JSON (SPEC §9); exit 0 on success, 1 on failure.

use mpnet_core::bridge::{self, BridgeError};
use mpnet_core::request::{RequestOptions, Response};
use mpnet_core::{Api, AppContext, Error};

use crate::app::Flags;
use crate::input::{print_json, read_options};
use crate::{Transport, EXIT_FAILED, EXIT_USAGE};

/// Runs the command; `Err` is a usage error.
pub fn run(flags: &Flags, options: &str) -> Result<u8, String> {
    let ctx = flags.context()?;
    let text = read_options(options)?;
    let opts = match bridge::request_options(&text) {
        Ok(opts) => opts,
        Err(BridgeError::Syntax(m)) => {
            eprintln!("mpnet: options are not a JSON object: {m}");
            return Ok(EXIT_USAGE);
        }
        Err(BridgeError::Options(e)) => {
            print_json(&e.to_js(Api::Request));
            return Ok(EXIT_FAILED);
        }
    };
    match request(flags.transport, ctx, opts)? {
        Ok(response) => {
            print_json(&response);
            Ok(0)
        }
        Err(e) => {
            print_json(&e.to_js(Api::Request));
            Ok(EXIT_FAILED)
        }
    }
}

/// Runs one request on the chosen transport. The outer `Err` is a usage
/// error (a context the transport refuses).
pub fn request(
    transport: Transport,
    ctx: AppContext,
    opts: RequestOptions,
) -> Result<Result<Response, Error>, String> {
    match transport {
        Transport::Blocking => {
            let client = mpnet_blocking::Client::new(ctx).map_err(|e| e.to_string())?;
            Ok(client.request(opts))
        }
        Transport::Smol => Err("the smol transport is not available in this build".into()),
    }
}
