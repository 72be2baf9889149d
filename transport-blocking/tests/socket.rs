//! The shared socket table (mpnet-conformance::socket), run on this transport.

use std::sync::{Arc, Mutex};

use mpnet_blocking::{Callbacks, Client, SocketTask};
use mpnet_conformance::socket::{
    log_close, log_error, log_message, log_open, Log, SocketHandle, SocketTransport,
};
use mpnet_core::ws::listeners::SocketListeners;
use mpnet_core::ws::{CloseOptions, ConnectOptions, SendOptions};
use mpnet_core::{Api, AppContext, Error};
use serde_json::json;

/// The transport; its clients poll for up to the given time before a
/// read waits (`Client::set_read_spin`; `None`: the default).
struct Blocking(Option<std::time::Duration>);

struct Task(SocketTask);

impl SocketHandle for Task {
    fn send(&self, opts: &SendOptions) -> Result<(), Error> {
        self.0.send(opts)
    }
    fn close(&self, opts: &CloseOptions) -> Result<(), Error> {
        self.0.close(opts)
    }
}

impl SocketTransport for Blocking {
    type Client = Client;

    fn name(&self) -> &'static str {
        if self.0.is_some_and(|d| d.is_zero()) {
            "blocking, no read poll"
        } else {
            "blocking"
        }
    }

    fn client(&self, ctx: &AppContext, log: Log) -> Client {
        let client = Client::new(ctx.clone()).expect("client");
        if let Some(spin) = self.0 {
            client.set_read_spin(spin);
        }
        let (a, b, c, d) = (log.clone(), log.clone(), log.clone(), log);
        client.on_socket_open(Arc::new(move || log_open(&a)));
        client.on_socket_message(Arc::new(move |m| log_message(&b, m)));
        client.on_socket_error(Arc::new(move |e| log_error(&c, e)));
        client.on_socket_close(Arc::new(move |code, reason| log_close(&d, code, reason)));
        client
    }

    fn connect(&self, client: &Client, opts: ConnectOptions) -> Result<(), Error> {
        client
            .connect_socket(opts, Callbacks::new())
            .wait_connected()
    }

    fn connect_nowait(&self, client: &Client, opts: ConnectOptions, log: Log) {
        let (ok, fail) = (log.clone(), log);
        client.connect_socket(
            opts,
            Callbacks::new()
                .success(move |_| ok.lock().unwrap().push(json!({"event": "success"})))
                .fail(move |e| {
                    fail.lock()
                        .unwrap()
                        .push(json!({"event": "fail", "error": e.code(Api::Socket)}))
                }),
        );
    }

    fn send(&self, client: &Client, opts: &SendOptions) -> Result<(), Error> {
        client.send_socket_message(opts)
    }

    fn close(&self, client: &Client, opts: &CloseOptions) -> Result<(), Error> {
        client.close_socket(opts)
    }

    fn answer_messages(&self, client: &Client, answer: &'static str) {
        let held = Arc::new(Mutex::new(Some(client.clone())));
        let on_message = held.clone();
        client.on_socket_message(Arc::new(move |_| {
            let client = on_message.lock().unwrap().clone();
            if let Some(client) = client {
                let _ = client.send_socket_message(&SendOptions::text(answer));
            }
        }));
        client.on_socket_close(Arc::new(move |_, _| {
            held.lock().unwrap().take();
        }));
    }

    fn panic_on_messages(&self, client: &Client) {
        client.on_socket_message(Arc::new(|_| panic!("the app's listener failed")));
    }

    fn task(
        &self,
        client: &Client,
        opts: ConnectOptions,
        log: Log,
    ) -> Result<Box<dyn SocketHandle>, Error> {
        let (a, b, c, d) = (log.clone(), log.clone(), log.clone(), log);
        let mut listeners = SocketListeners::default();
        listeners.open.on(Arc::new(move || log_open(&a)));
        listeners.message.on(Arc::new(move |m| log_message(&b, m)));
        listeners.error.on(Arc::new(move |e| log_error(&c, e)));
        listeners
            .close
            .on(Arc::new(move |code, reason| log_close(&d, code, reason)));
        let task = client.connect_socket_with(opts, Callbacks::new(), listeners);
        task.wait_connected()?;
        Ok(Box::new(Task(task)))
    }
}

#[test]
fn socket_table() {
    mpnet_conformance::socket::run_all(&Blocking(None));
}

/// The same table with every read waiting at once (`set_read_spin(0)`).
#[test]
fn socket_table_without_the_read_poll() {
    mpnet_conformance::socket::run_all(&Blocking(Some(std::time::Duration::ZERO)));
}

#[test]
fn python_and_node_peers() {
    mpnet_conformance::peers::run_ws_interop(&Blocking(None));
}
