//! `mpnet socket OPTIONS` (SPEC §9): connects the app socket, then each
//! stdin line is a command (`{"send": {...}}` or `{"close": {...}}`) and
//! each event is a JSON line on stdout. Exits 0 once stdin has ended and the
//! socket is closed; 1 when the connect fails.

use std::io::{BufRead, Write};
use std::sync::{Arc, Condvar, Mutex};

use mpnet_core::task::Callbacks;
use mpnet_core::ws::{self, CloseOptions, SendOptions};
use mpnet_core::{Api, Error};
use serde_json::{json, Value};

use crate::app::Flags;
use crate::input::{options_or_exit, read_options};
use crate::net::Net;
use crate::EXIT_FAILED;

/// Prints event lines one at a time and remembers whether the socket closed.
#[derive(Default)]
struct Output {
    closed: Mutex<bool>,
    changed: Condvar,
    out: Mutex<()>,
}

impl Output {
    fn line(&self, v: &Value) {
        let _guard = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{v}");
        let _ = stdout.flush();
    }
    fn error_line(&self, event: &str, e: &Error) {
        self.line(
            &json!({"event": event, "error": e.code(Api::Socket), "errorMessage": e.message()}),
        );
    }
    fn set_closed(&self) {
        *self.closed.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.changed.notify_all();
    }
    fn wait_closed(&self) {
        let mut closed = self.closed.lock().unwrap_or_else(|p| p.into_inner());
        while !*closed {
            closed = self.changed.wait(closed).unwrap_or_else(|p| p.into_inner());
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
        let empty = serde_json::Map::new();
        let map = close.as_object().unwrap_or(&empty);
        return ws::options::close_options_from(map)
            .map(Command::Close)
            .map_err(|e| e.to_string());
    }
    Err(r#"expected {"send": {...}} or {"close": {...}}"#.into())
}

/// Runs the command; `Err` is a usage error.
pub fn run(flags: &Flags, options: &str) -> Result<u8, String> {
    let ctx = flags.context()?;
    let text = read_options(options)?;
    let opts = match options_or_exit(ws::options::connect_options(&text), Api::Socket) {
        Ok(opts) => opts,
        Err(code) => return Ok(code),
    };
    let client = Net::new(flags.transport, ctx)?;
    let out = Arc::new(Output::default());
    let (o1, o2, o3, o4) = (out.clone(), out.clone(), out.clone(), out.clone());
    client.on_socket_events(
        Arc::new(move || o1.line(&json!({"event": "open"}))),
        Arc::new(move |m| {
            o2.line(&json!({"event": "message", "data": m.js_data(), "isBuffer": m.is_buffer()}))
        }),
        Arc::new(move |e| o3.error_line("error", e)),
        Arc::new(move |code, reason| {
            o4.line(&json!({"event": "close", "code": code, "reason": reason}));
            o4.set_closed();
        }),
    );
    let task = client.connect_socket(opts, Callbacks::new(), Default::default())?;
    if let Err(e) = task.wait_connected() {
        out.error_line("fail", &e);
        return Ok(EXIT_FAILED);
    }
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        match parse_command(&line) {
            Ok(Command::Send(opts)) => {
                if let Err(e) = client.send_socket_message(&opts) {
                    out.error_line("sendFail", &e);
                }
            }
            Ok(Command::Close(opts)) => {
                if let Err(e) = client.close_socket(&opts) {
                    out.error_line("closeFail", &e);
                }
            }
            Err(why) => eprintln!("mpnet socket: ignored command {line:?}: {why}"),
        }
    }
    // stdin ended: close the socket if it is still open, then wait for its
    // close event.
    let _ = client.close_socket(&CloseOptions::default());
    out.wait_closed();
    Ok(0)
}
