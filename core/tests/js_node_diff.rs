//! Differential test of `mpnet_core::js` against node (SPEC §4: the encoding
//! of `data` must be byte-identical to what a JavaScript runtime produces
//! from the same `JSON.parse`d input).
//!
//! Thousands of random JSON texts are generated from a fixed seed. One node
//! process computes, for each, `JSON.stringify(JSON.parse(t))` and the query
//! string; the results must equal `js::stringify` and `js::to_query_string`
//! of `serde_json::from_str(t)`. Integers between 2^53 and the `u64`/`i64`
//! limits are never generated: printing them exactly is the one allowed
//! difference.
//!
//! Without `node` on PATH the test is skipped with a message, unless `CI` is
//! set, in which case it fails.

use std::io::Write as _;
use std::process::{Command, Stdio};

use mpnet_core::js::{stringify, to_query_string};
use serde_json::Value;

/// For each input line (a JSON string holding a JSON text), one output line:
/// `[JSON.stringify(o), query]` or `{"error": message}`.
const NODE_SCRIPT: &str = r#"
const q = o => Object.keys(o).map(k => encodeURIComponent(k) + '=' +
  encodeURIComponent(typeof o[k] === 'object' && o[k] !== null
    ? JSON.stringify(o[k]) : String(o[k]))).join('&');
const out = [];
for (const line of require('fs').readFileSync(0, 'utf8').split('\n')) {
  if (line === '') continue;
  try {
    const o = JSON.parse(JSON.parse(line));
    const query = typeof o === 'object' && o !== null ? q(o) : '';
    out.push(JSON.stringify([JSON.stringify(o), query]));
  } catch (e) {
    out.push(JSON.stringify({ error: String(e) }));
  }
}
process.stdout.write(out.join('\n') + '\n');
"#;

mod common;
use common::jsgen::{cases, node_available};

#[test]
fn js_module_matches_node() {
    if !node_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "`node` is not on PATH but CI is set: the differential test must run in CI"
        );
        eprintln!("SKIPPED js_node_diff: `node` is not on PATH (install node to run it)");
        return;
    }

    let texts = cases();
    let mut input = String::new();
    for text in &texts {
        // Each text as a JSON string: one line, whatever it contains.
        input.push_str(&serde_json::to_string(text).unwrap());
        input.push('\n');
    }

    let mut child = Command::new("node")
        .arg("-e")
        .arg(NODE_SCRIPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node");
    let mut stdin = child.stdin.take().unwrap();
    // Write from another thread so a full stdout pipe cannot deadlock us.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("run node");
    writer.join().unwrap().expect("write to node");
    assert!(
        output.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("node output is UTF-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), texts.len(), "one node result per case");

    let mut failures = Vec::new();
    let mut queries = 0;
    for (text, line) in texts.iter().zip(&lines) {
        let result: Value = serde_json::from_str(line).unwrap();
        let (Some(js_json), Some(js_query)) = (result[0].as_str(), result[1].as_str()) else {
            panic!("node could not handle {text:?}: {line}");
        };
        let value: Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("serde_json rejects {text:?}: {e}"));
        let mut ours = String::new();
        stringify(&value, &mut ours);
        if ours != js_json {
            failures.push(format!(
                "stringify {text:?}\n  node: {js_json}\n  rust: {ours}"
            ));
        }
        let query = to_query_string(&value);
        if !js_query.is_empty() {
            queries += 1;
        }
        if query != js_query {
            failures.push(format!(
                "query {text:?}\n  node: {js_query}\n  rust: {query}"
            ));
        }
    }
    eprintln!(
        "js_node_diff: compared {} cases with node ({} non-empty query strings)",
        texts.len(),
        queries
    );
    assert!(
        failures.is_empty(),
        "{} mismatches with node, first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(10)].join("\n")
    );
}
