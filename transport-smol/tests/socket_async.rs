//! Sockets from async code and on a host's executor: `connected().await`,
//! listeners that send from inside a delivery, and an executor dropped
//! with the socket open (its error and close events are still delivered,
//! in order).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_io::Timer;
use mpnet_conformance::socket::{check_order, log_close, log_error, log_message, log_open, Log};
use mpnet_core::ws::listeners::{MessageListener, SocketListeners};
use mpnet_core::ws::{CloseOptions, ConnectOptions, MessageData, SendOptions};
use mpnet_core::Api;
use mpnet_smol::{Callbacks, Client, SocketTask};
use mpnet_testkit::{HttpsServer, TestCa};
use serde_json::Value;

fn assert_send<T: Send>(_: &T) {}

fn echo_url(server: &HttpsServer) -> String {
    server.url("/ws").replacen("https://", "wss://", 1)
}

fn logging(log: &Log) -> SocketListeners {
    let (a, b, c, d) = (log.clone(), log.clone(), log.clone(), log.clone());
    let mut l = SocketListeners::default();
    l.open.on(Arc::new(move || log_open(&a)));
    l.message.on(Arc::new(move |m| log_message(&b, m)));
    l.error.on(Arc::new(move |e| log_error(&c, e)));
    l.close
        .on(Arc::new(move |code, reason| log_close(&d, code, reason)));
    l
}

fn events(log: &Log) -> Vec<Value> {
    log.lock().unwrap().clone()
}

fn wait_for(log: &Log, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let l = events(log);
        if pred(&l) {
            return l;
        }
        assert!(Instant::now() < end, "waiting for {what}: {l:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn count(l: &[Value], event: &str) -> usize {
    l.iter().filter(|v| v["event"] == event).count()
}

#[test]
fn connected_awaited_on_the_hosts_executor() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    let ex = Arc::new(smol::Executor::new());
    let client = Client::new(common::ctx(&ca, 10))
        .unwrap()
        .with_executor(ex.clone());
    let log = Log::default();
    let task = client.connect_socket_with(
        ConnectOptions::new(echo_url(&server)).multiple(true),
        Callbacks::new(),
        logging(&log),
    );
    assert_send(&task.connected());
    smol::block_on(ex.run(async {
        task.connected().await.expect("connected");
        for i in 0..100 {
            task.send(&SendOptions::text(format!("m{i}"))).unwrap();
        }
        while count(&events(&log), "message") < 100 {
            Timer::after(Duration::from_millis(2)).await;
        }
        task.close(&CloseOptions::default()).unwrap();
        while count(&events(&log), "close") == 0 {
            Timer::after(Duration::from_millis(2)).await;
        }
    }));
    let l = events(&log);
    check_order(&l).unwrap();
    let texts: Vec<&str> = l.iter().filter_map(|v| v["data"].as_str()).collect();
    let want: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, want);
}

#[test]
fn a_listener_may_send_from_inside_a_delivery() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    let client = Client::new(common::ctx(&ca, 10)).unwrap();
    let log = Log::default();
    let me: Arc<Mutex<Option<SocketTask>>> = Arc::default();
    let handle = me.clone();
    // Each echo comes back one longer, until 50 bytes.
    let ping_pong: Arc<MessageListener> = Arc::new(move |m: &MessageData| {
        let text = m.js_data();
        if text.len() < 50 {
            let task = handle.lock().unwrap().clone().expect("task");
            task.send(&SendOptions::text(format!("{text}x"))).unwrap();
        }
    });
    let mut listeners = logging(&log);
    listeners.message.on(ping_pong);
    let task = client.connect_socket_with(
        ConnectOptions::new(echo_url(&server)).multiple(true),
        Callbacks::new(),
        listeners,
    );
    *me.lock().unwrap() = Some(task.clone());
    task.wait_connected().unwrap();
    task.send(&SendOptions::text("x")).unwrap();
    wait_for(&log, "50 messages", |l| count(l, "message") == 50);
    task.close(&CloseOptions::default()).unwrap();
    let l = wait_for(&log, "close", |l| count(l, "close") == 1);
    check_order(&l).unwrap();
    me.lock().unwrap().take();
}

#[test]
fn an_executor_dropped_with_the_socket_open_still_ends_it() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    let ex = Arc::new(smol::Executor::new());
    let client = Client::new(common::ctx(&ca, 10))
        .unwrap()
        .with_executor(ex.clone());
    let log = Log::default();
    let task = client.connect_socket_with(
        ConnectOptions::new(echo_url(&server)).multiple(true),
        Callbacks::new(),
        logging(&log),
    );
    smol::block_on(ex.run(async {
        task.connected().await.expect("connected");
        task.send(&SendOptions::text("before")).unwrap();
        while count(&events(&log), "message") == 0 {
            Timer::after(Duration::from_millis(2)).await;
        }
    }));
    // The client holds the executor too.
    drop(client);
    drop(ex);
    let l = events(&log);
    check_order(&l).unwrap();
    let error = l
        .iter()
        .find(|v| v["event"] == "error")
        .expect("an error event");
    assert_eq!(error["error"], 1, "{error}");
    let e = task.send(&SendOptions::text("after")).unwrap_err();
    assert_eq!(e.code(Api::Socket), 10, "{e}");
}

#[test]
fn a_connect_dropped_by_its_executor_fails() {
    let ca = TestCa::new();
    let hang = mpnet_testkit::RawServer::start(vec![mpnet_testkit::Step::Hang]);
    let ex = Arc::new(smol::Executor::new());
    let client = Client::new(common::ctx(&ca, 10))
        .unwrap()
        .with_executor(ex.clone());
    let fails = Arc::new(Mutex::new(Vec::new()));
    let f = fails.clone();
    let task = client.connect_socket(
        ConnectOptions::new(format!("wss://127.0.0.1:{}/ws", hang.port())),
        Callbacks::new().fail(move |e| f.lock().unwrap().push(e.code(Api::Socket))),
    );
    smol::block_on(ex.run(Timer::after(Duration::from_millis(100))));
    drop(client);
    drop(ex);
    let e = task.wait_connected().unwrap_err();
    assert_eq!(e.code(Api::Socket), 1, "{e}");
    assert_eq!(*fails.lock().unwrap(), [1]);
}
