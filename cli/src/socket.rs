//! `mpnet socket OPTIONS` (SPEC §9): connects the app socket (a socket
//! task with `"multiple": true`), then each stdin line is a command
//! (`{"send": {...}}` or `{"close": {...}}`) and each event is a JSON line
//! on stdout; commands are read only once the open event is printed. Exits
//! 0 once stdin has ended and the socket is closed; 1 when the connect
//! fails (options refused included: a `fail` event too).

use std::io::{BufRead, Write};
use std::sync::{Arc, Condvar, Mutex};

use mpnet_core::bridge::BridgeError;
use mpnet_core::task::Callbacks;
use mpnet_core::ws::listeners::SocketListeners;
use mpnet_core::ws::{self, CloseOptions, SendOptions};
use mpnet_core::{Api, Error};
use serde_json::{json, Value};

use crate::app::Flags;
use crate::input::read_options;
use crate::net::Net;
use crate::{EXIT_FAILED, EXIT_USAGE};

/// How far the socket has come.
#[derive(Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    #[default]
    Connecting,
    Open,
    Closed,
}

/// Prints event lines one at a time and remembers how far the socket came.
#[derive(Default)]
struct Output {
    stage: Mutex<Stage>,
    changed: Condvar,
    out: Mutex<()>,
}

impl Output {
    fn line(&self, v: &Value) {
        let _guard = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{}", crate::input::js_text(v));
        let _ = stdout.flush();
    }
    fn error_line(&self, event: &str, e: &Error) {
        self.line(
            &json!({"event": event, "error": e.code(Api::Socket), "errorMessage": e.message()}),
        );
    }
    fn reached(&self, stage: Stage) {
        let mut now = self.stage.lock().unwrap_or_else(|p| p.into_inner());
        *now = (*now).max(stage);
        self.changed.notify_all();
    }
    /// Waits until the socket has come at least as far as `stage`.
    fn wait_for(&self, stage: Stage) {
        let mut now = self.stage.lock().unwrap_or_else(|p| p.into_inner());
        while *now < stage {
            now = self.changed.wait(now).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// One stdin command.
enum Command {
    Send(SendOptions),
    Close(CloseOptions),
}

fn parse_command(line: &str) -> Result<Command, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let obj = v.as_object().ok_or("a command is a JSON object")?;
    if let Some(Value::Object(send)) = obj.get("send") {
        return ws::options::send_options_from(send)
            .map(Command::Send)
            .map_err(|e| e.to_string());
    }
    if let Some(close) = obj.get("close") {
        let map = close
            .as_object()
            .ok_or(r#""close" takes an object: {"close": {}} for the defaults"#)?;
        return ws::options::close_options_from(map)
            .map(Command::Close)
            .map_err(|e| e.to_string());
    }
    Err(r#"expected {"send": {...}} or {"close": {...}}"#.into())
}

/// Runs the command; `Err` is a usage error.
pub fn run(flags: &Flags, options: &str) -> Result<u8, String> {
    if options == "-" {
        return Err(
            "socket options cannot come from stdin (`-`): stdin carries \
                    the commands; give them inline or as @FILE"
                .into(),
        );
    }
    let ctx = flags.context()?;
    let text = read_options(options)?;
    let out = Arc::new(Output::default());
    let opts = match ws::options::connect_options(&text) {
        Ok(opts) => opts,
        Err(BridgeError::Syntax(m)) => {
            eprintln!("mpnet: options are not a JSON object: {m}");
            return Ok(EXIT_USAGE);
        }
        Err(BridgeError::Options(e)) => {
            out.error_line("fail", &e);
            return Ok(EXIT_FAILED);
        }
    };
    let client = Net::new(flags.transport, ctx)?;
    // The socket's own listeners: the app socket's and a task's alike.
    let mut listeners = SocketListeners::default();
    let (o1, o2, o3, o4) = (out.clone(), out.clone(), out.clone(), out.clone());
    listeners.open.on(Arc::new(move || {
        o1.line(&json!({"event": "open"}));
        o1.reached(Stage::Open);
    }));
    listeners.message.on(Arc::new(move |m| {
        o2.line(&json!({"event": "message", "data": m.js_data(), "isBuffer": m.is_buffer()}))
    }));
    listeners
        .error
        .on(Arc::new(move |e| o3.error_line("error", e)));
    listeners.close.on(Arc::new(move |code, reason| {
        o4.line(&json!({"event": "close", "code": code, "reason": reason}));
        o4.reached(Stage::Closed);
    }));
    let socket = client.connect_socket(opts, Callbacks::new(), listeners)?;
    if let Err(e) = socket.wait_connected() {
        out.error_line("fail", &e);
        return Ok(EXIT_FAILED);
    }
    // `success` runs just before the open event: commands wait for its line.
    out.wait_for(Stage::Open);
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        match parse_command(&line) {
            Ok(Command::Send(opts)) => {
                if let Err(e) = socket.send(&opts) {
                    out.error_line("sendFail", &e);
                }
            }
            Ok(Command::Close(opts)) => {
                if let Err(e) = socket.close(&opts) {
                    out.error_line("closeFail", &e);
                }
            }
            Err(why) => eprintln!("mpnet socket: ignored command {line:?}: {why}"),
        }
    }
    // stdin ended: close the socket if it is still open, then wait for its
    // close event.
    let _ = socket.close(&CloseOptions::default());
    out.wait_for(Stage::Closed);
    Ok(0)
}
