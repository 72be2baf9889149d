//! The Autobahn test suite's client: runs every case of a `wstest -m
//! fuzzingserver` against one mpnet transport, echoing each message back.
//!
//! ```text
//! cargo run --release -p mpnet-cli --example autobahn_client -- --transport blocking ws://127.0.0.1:9001
//! ```
//! (`scripts/autobahn` starts the server, runs this, and checks the report.)

use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mpnet_core::task::Callbacks;
use mpnet_core::ws::listeners::SocketListeners;
use mpnet_core::ws::{ConnectOptions, MessageData, SendOptions};
use mpnet_core::{AppContext, Limits};

/// Runs one connection: URL, whether to echo; gives the messages received.
type Runner = dyn Fn(&str, bool) -> Vec<MessageData>;

/// What one case's socket reports back to the driver.
enum Seen {
    Message(MessageData),
    Closed,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let transport = args
        .iter()
        .position(|a| a == "--transport")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "blocking".into());
    let base = args
        .last()
        .cloned()
        .unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let agent = format!("mpnet-{transport}");
    let mut limits = Limits::default();
    limits.max_message_bytes = 64 << 20;
    let ctx = AppContext::builder("autobahn", "1")
        .allow_any_origin()
        .allow_insecure_loopback(true)
        .limits(limits)
        .build()
        .expect("context");
    let runner: Box<Runner> = match transport.as_str() {
        "blocking" => {
            let client = mpnet_blocking::Client::new(ctx).expect("client");
            Box::new(move |url, echo| {
                run_task(url, echo, |opts, listeners| {
                    client.connect_socket_with(opts, Callbacks::new(), listeners)
                })
            })
        }
        "smol" => {
            let client = mpnet_smol::Client::new(ctx).expect("client");
            Box::new(move |url, echo| {
                run_task(url, echo, |opts, listeners| {
                    client.connect_socket_with(opts, Callbacks::new(), listeners)
                })
            })
        }
        other => panic!("unknown transport {other}"),
    };
    let count = runner(&format!("{base}/getCaseCount"), false)
        .first()
        .and_then(|m| m.js_data().parse::<u32>().ok())
        .expect("case count");
    for case in 1..=count {
        runner(&format!("{base}/runCase?case={case}&agent={agent}"), true);
        if case % 50 == 0 {
            eprintln!("{agent}: {case}/{count}");
        }
    }
    runner(&format!("{base}/updateReports?agent={agent}"), false);
    eprintln!("{agent}: ran {count} cases");
}

/// What a transport's socket task offers the driver.
trait Task: Clone + Send + Sync + 'static {
    fn send(&self, opts: &SendOptions) -> Result<(), mpnet_core::Error>;
    fn wait_connected(&self) -> Result<(), mpnet_core::Error>;
}

impl Task for mpnet_blocking::SocketTask {
    fn send(&self, opts: &SendOptions) -> Result<(), mpnet_core::Error> {
        mpnet_blocking::SocketTask::send(self, opts)
    }
    fn wait_connected(&self) -> Result<(), mpnet_core::Error> {
        mpnet_blocking::SocketTask::wait_connected(self)
    }
}

impl Task for mpnet_smol::SocketTask {
    fn send(&self, opts: &SendOptions) -> Result<(), mpnet_core::Error> {
        mpnet_smol::SocketTask::send(self, opts)
    }
    fn wait_connected(&self) -> Result<(), mpnet_core::Error> {
        mpnet_smol::SocketTask::wait_connected(self)
    }
}

/// Connects a task to `url`, echoes messages when `echo` (from the message
/// listener itself, so the answer goes out before the next frame is read),
/// and returns the messages once the socket has closed.
fn run_task<T: Task>(
    url: &str,
    echo: bool,
    connect: impl FnOnce(ConnectOptions, SocketListeners) -> T,
) -> Vec<MessageData> {
    let (tx, rx) = mpsc::channel();
    let cell: Arc<OnceLock<T>> = Arc::default();
    let mut listeners = SocketListeners::default();
    let (t1, t2, me) = (tx.clone(), tx, cell.clone());
    listeners.message.on(Arc::new(move |m: &MessageData| {
        if echo {
            let task = me.wait();
            let opts = match m {
                MessageData::Text(t) => SendOptions::text(t.clone()),
                MessageData::Binary(_) => SendOptions::base64(m.js_data()),
            };
            let _ = task.send(&opts);
        }
        let _ = t1.send(Seen::Message(m.clone()));
    }));
    listeners.close.on(Arc::new(move |_, _| {
        let _ = t2.send(Seen::Closed);
    }));
    let opts = ConnectOptions::new(url)
        .multiple(true)
        .timeout(Duration::from_secs(10));
    let task = connect(opts, listeners);
    let _ = cell.set(task.clone());
    if task.wait_connected().is_err() {
        return Vec::new();
    }
    let mut messages = Vec::new();
    while let Ok(seen) = rx.recv_timeout(Duration::from_secs(60)) {
        match seen {
            Seen::Message(m) => messages.push(m),
            Seen::Closed => break,
        }
    }
    messages
}
