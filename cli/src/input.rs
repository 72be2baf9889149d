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
pub fn print_json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string(value) {
        Ok(line) => println!("{line}"),
        Err(e) => eprintln!("mpnet: could not serialise the result: {e}"),
    }
}
