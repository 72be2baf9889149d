//! WSS echo (issue 8: 64 B and 64 KiB messages, against tokio-tungstenite
//! and fastwebsockets). The WebSocket transport is still being built, so
//! this is a placeholder: it measures nothing and claims nothing.

use crate::report::Report;

/// Says that the WSS echo scenario is pending.
pub fn wss_echo_pending(report: &Report) {
    println!("WSS echo: pending (WebSocket transport not built yet)");
    report.note("WSS echo: pending (WebSocket transport not built yet)");
}
