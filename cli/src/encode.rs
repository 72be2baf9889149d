//! `mpnet encode OPTIONS`: the exact request `my.request` would send, after
//! every check a real request makes (SPEC §9), with no network.

use mpnet_core::bridge::{self, BridgeError};
use mpnet_core::request::PreparedRequest;
use mpnet_core::Api;

use crate::app::Flags;
use crate::input::{print_json, read_options};
use crate::{EXIT_FAILED, EXIT_USAGE};

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
    match PreparedRequest::new(&ctx, &opts) {
        Ok(prepared) => {
            print_json(&prepared.wire_view(ctx.limits()));
            Ok(0)
        }
        Err(e) => {
            print_json(&e.to_js(Api::Request));
            Ok(EXIT_FAILED)
        }
    }
}
