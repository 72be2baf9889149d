//! `mpnet socket OPTIONS` (SPEC §9): connects the app socket (a socket
//! task with `"multiple": true`), then each stdin line is a command
//! (`{"send": {...}}`, `{"close": {...}}` or `{"wait": {...}}`) and each
//! event is a JSON line on stdout; commands are read only once the open
//! event is printed. Exits 0 once stdin has ended and the socket is
//! closed; 1 when the connect fails (options refused included: a `fail`
//! event too).
//!
//! `{"wait": {"messages": N, "timeout": MS}}` (N 1 and no timeout by
//! default) holds the next command until N messages have arrived since the
//! open or the last wait (counting those that came before the wait was
//! read), the socket has closed, or MS milliseconds have passed (a
//! `waitTimeout` line then says how many came). A script piped in thus
//! gets its answers before stdin ends, which closes the socket.

use std::io::{BufRead, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

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

/// How far the socket came, and how many messages it has received.
#[derive(Default, Clone, Copy)]
struct Progress {
    stage: Stage,
    messages: u64,
}

/// Prints event lines one at a time and remembers how far the socket came.
#[derive(Default)]
struct Output {
    progress: Mutex<Progress>,
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
    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn reached(&self, stage: Stage) {
        let mut now = self.progress();
        now.stage = now.stage.max(stage);
        self.changed.notify_all();
    }
    fn received(&self) {
        self.progress().messages += 1;
        self.changed.notify_all();
    }
    /// Waits until the socket has come at least as far as `stage`.
    fn wait_for(&self, stage: Stage) {
        let mut now = self.progress();
        while now.stage < stage {
            now = self.changed.wait(now).unwrap_or_else(|p| p.into_inner());
        }
    }
    /// Waits until `count` messages have arrived in all, the socket has
    /// closed, or `deadline` passes; gives how many have arrived.
    fn wait_messages(&self, count: u64, deadline: Option<Instant>) -> u64 {
        let mut now = self.progress();
        while now.messages < count && now.stage < Stage::Closed {
            now = match deadline {
                None => self.changed.wait(now).unwrap_or_else(|p| p.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    self.changed
                        .wait_timeout(now, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
        now.messages
    }
}

/// One stdin command.
enum Command {
    Send(SendOptions),
    Close(CloseOptions),
    /// Until this many more messages arrive, or the timeout.
    Wait {
        messages: u64,
        timeout: Option<Duration>,
    },
}

/// `{"wait": {"messages": N, "timeout": MS}}`: N a positive integer (1 by
/// default), MS a non-negative number of milliseconds (none by default).
fn wait_command(v: &Value) -> Result<Command, String> {
    let map = v
        .as_object()
        .ok_or(r#""wait" takes an object: {"wait": {}} for one message"#)?;
    if let Some(key) = map.keys().find(|k| *k != "messages" && *k != "timeout") {
        return Err(format!(
            r#""wait" has no option {key:?} (messages, timeout)"#
        ));
    }
    let messages = match map.get("messages") {
        None => 1,
        Some(n) => n
            .as_u64()
            .filter(|n| *n > 0)
            .ok_or(r#""messages" is a positive integer"#)?,
    };
    let timeout = match map.get("timeout") {
        None => None,
        Some(ms) => {
            let ms = ms
                .as_f64()
                .filter(|ms| ms.is_finite() && *ms >= 0.0)
                .ok_or(r#""timeout" is a number of milliseconds, 0 or more"#)?;
            Some(Duration::try_from_secs_f64(ms / 1000.0).map_err(|e| e.to_string())?)
        }
    };
    Ok(Command::Wait { messages, timeout })
}

fn parse_command(line: &str) -> Result<Command, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let obj = v.as_object().ok_or("a command is a JSON object")?;
    if let Some(Value::Object(send)) = obj.get("send") {
        return ws::options::send_options_from(send)
            .map(Command::Send)
            .map_err(|e| e.to_string());
    }
    if let Some(wait) = obj.get("wait") {
        return wait_command(wait);
    }
    if let Some(close) = obj.get("close") {
        let map = close
            .as_object()
            .ok_or(r#""close" takes an object: {"close": {}} for the defaults"#)?;
        return ws::options::close_options_from(map)
            .map(Command::Close)
            .map_err(|e| e.to_string());
    }
    Err(r#"expected {"send": {...}}, {"close": {...}} or {"wait": {...}}"#.into())
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
        o2.line(&json!({"event": "message", "data": m.js_data(), "isBuffer": m.is_buffer()}));
        o2.received();
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
    // Messages waited for so far (`wait` counts from here).
    let mut awaited = 0u64;
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
            Ok(Command::Wait { messages, timeout }) => {
                let want = awaited.saturating_add(messages);
                let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
                let got = out.wait_messages(want, deadline);
                if got < want && out.progress().stage < Stage::Closed {
                    out.line(&json!({
                        "event": "waitTimeout",
                        "expected": messages,
                        "received": got - awaited,
                    }));
                }
                awaited = got.min(want);
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
