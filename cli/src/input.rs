//! Reading the OPTIONS argument: inline JSON, `@FILE`, or `-` for stdin.

use std::io::Read;

/// The options text named by `arg` (SPEC §9). Errors are usage errors.
pub fn read_options(arg: &str) -> Result<String, String> {
    if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("reading options from stdin: {e}"))?;
        Ok(text)
    } else if let Some(path) = arg.strip_prefix('@') {
        std::fs::read_to_string(path).map_err(|e| format!("reading options from {path}: {e}"))
    } else {
        Ok(arg.to_string())
    }
}

/// Prints one JSON value on its own line to stdout.
/// As `JSON.stringify` in the mini-program would (SPEC §8): numbers as
/// JavaScript writes them (`100`, not `100.0`; `0` for `-0`) and
/// integer-like keys first.
pub fn print_json<T: serde::Serialize>(value: &T) {
    match serde_json::to_value(value) {
        Ok(v) => outln!("{}", js_text(&v)),
        Err(e) => eprintln!("mpnet: could not serialise the result: {e}"),
    }
}

/// `JSON.stringify(value)`.
pub fn js_text(value: &serde_json::Value) -> String {
    let mut out = String::new();
    mpnet_core::js::stringify(value, &mut out);
    out
}

/// The options, or the exit code after reporting why they are refused:
/// not a JSON object is a usage error (exit 2, stderr); an options error is
/// the error JSON on stdout (exit 1).
pub fn options_or_exit<T>(
    parsed: Result<T, mpnet_core::bridge::BridgeError>,
    api: mpnet_core::Api,
) -> Result<T, u8> {
    use mpnet_core::bridge::BridgeError;
    match parsed {
        Ok(opts) => Ok(opts),
        Err(BridgeError::Syntax(m)) => {
            eprintln!("mpnet: options are not a JSON object: {m}");
            Err(crate::EXIT_USAGE)
        }
        Err(BridgeError::Options(e)) => {
            print_json(&e.to_js(api));
            Err(crate::EXIT_FAILED)
        }
    }
}

/// Prints a call's result: the success JSON (exit 0) or the error JSON
/// (exit 1).
pub fn print_result<T: serde::Serialize>(
    result: Result<T, mpnet_core::Error>,
    api: mpnet_core::Api,
) -> u8 {
    match result {
        Ok(value) => {
            print_json(&value);
            0
        }
        Err(e) => {
            print_json(&e.to_js(api));
            crate::EXIT_FAILED
        }
    }
}
