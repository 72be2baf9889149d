//! Replays the fuzz corpora on stable, in `cargo test`: every file under
//! `fuzz/corpus/<target>/` (the committed seeds) and
//! `fuzz/regressions/<target>/` (every input a fuzzer ever found failing)
//! goes through the same invariant check the cargo-fuzz target `<target>`
//! runs (`fuzz/src/checks.rs`, included here as a module).
//!
//! A failing input is reported with its path; all files are run before the
//! test fails, so one report lists every failure.

#[path = "../../fuzz/src/checks.rs"]
mod checks;

use std::panic;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            // README/.gitkeep files document the folder; they are not inputs.
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.') && !name.eq_ignore_ascii_case("README.md")
        })
        .collect();
    out.sort();
    out
}

/// Runs every corpus and regression file of `target` through its check.
fn replay(target: &str) {
    let check = checks::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("no check named {target}"));
    let root = fuzz_dir();
    let corpus = files(&root.join("corpus").join(target));
    assert!(!corpus.is_empty(), "fuzz/corpus/{target} has no seed files");
    let regressions = files(&root.join("regressions").join(target));
    let mut failed = Vec::new();
    for path in corpus.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if panic::catch_unwind(|| check(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs break an invariant (the panic messages above say which):\n  {}",
        failed.len(),
        corpus.len() + regressions.len(),
        failed.join("\n  ")
    );
}

#[test]
fn every_target_has_a_replay_test() {
    let names: Vec<&str> = checks::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "response_split",
            "chunked",
            "content_decoder",
            "encoders",
            "url_policy",
            "options_json",
            "ws_frames",
            "ws_lifecycle",
            "multipart",
            "ws_handshake",
            "tls_session",
            "tls_records"
        ]
    );
}

#[test]
fn response_split() {
    replay("response_split");
}

#[test]
fn chunked() {
    replay("chunked");
}

#[test]
fn content_decoder() {
    replay("content_decoder");
}

#[test]
fn encoders() {
    replay("encoders");
}

#[test]
fn url_policy() {
    replay("url_policy");
}

#[test]
fn options_json() {
    replay("options_json");
}

#[test]
fn ws_frames() {
    replay("ws_frames");
}

#[test]
fn ws_lifecycle() {
    replay("ws_lifecycle");
}

#[test]
fn multipart() {
    replay("multipart");
}

#[test]
fn ws_handshake() {
    replay("ws_handshake");
}

#[test]
fn tls_session() {
    replay("tls_session");
}

#[test]
fn tls_records() {
    replay("tls_records");
}
