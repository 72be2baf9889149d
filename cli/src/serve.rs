//! `mpnet serve [--port N]`: the test kit's loopback HTTPS server with a CA
//! made at start (SPEC §9). Prints one JSON line
//! `{"https": URL, "wss": URL, "caFile": PATH}` and serves until stopped.
//! Stopped by SIGINT, SIGTERM or SIGHUP, it removes the folder of the CA
//! file and exits with 0.

use std::io::Write;

use mpnet_testkit::{serve_https, TestCa};

/// Runs the server until the process is stopped; `Err` is a usage error.
pub fn run(port: u16) -> Result<u8, String> {
    let ca = TestCa::new();
    // Listening first: a port in use is a usage error with nothing written.
    let server =
        serve_https(port, &ca).map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let dir = std::env::temp_dir().join(format!("mpnet-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let ca_file = dir.join("ca.pem");
    let cleanup = dir.clone();
    let ready = ca
        .write_pem(&ca_file)
        .map_err(|e| format!("{}: {e}", ca_file.display()))
        .and_then(|()| {
            ctrlc::set_handler(move || {
                let _ = std::fs::remove_dir_all(&cleanup);
                std::process::exit(0);
            })
            .map_err(|e| format!("cannot handle stop signals: {e}"))
        });
    if let Err(e) = ready {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    let line = serde_json::json!({
        "https": format!("https://127.0.0.1:{}", server.port()),
        "wss": format!("wss://127.0.0.1:{}/ws", server.port()),
        "caFile": ca_file,
    });
    outln!("{line}");
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
