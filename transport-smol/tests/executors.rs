//! The request future needs no particular executor: the same calls under
//! `smol::block_on`, `futures_lite::future::block_on`, a multi-threaded
//! `smol::Executor`, a tokio runtime, and a bare poll loop with a no-op
//! waker. Spawned requests also run on a host's own executor.

mod common;

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use common::{ctx, json};
use mpnet_core::request::{RequestOptions, Response};
use mpnet_core::{AppContext, Error};
use mpnet_smol::{Callbacks, Client};
use mpnet_testkit::{HttpsServer, TestCa};

fn assert_send<T: Send>(_: &T) {}

async fn echo(client: &Client, server: &HttpsServer, n: usize) -> Result<Response, Error> {
    let r = client
        .request(RequestOptions::new(server.url(&format!("/get?n={n}"))))
        .await?;
    assert_eq!(json(&r)["args"]["n"], n.to_string());
    Ok(r)
}

struct Setup {
    _ca: TestCa,
    server: HttpsServer,
    ctx: AppContext,
}

fn setup() -> Setup {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    let ctx = ctx(&ca, 10);
    Setup {
        _ca: ca,
        server,
        ctx,
    }
}

#[test]
fn the_request_future_is_send() {
    let s = setup();
    let client = Client::new(s.ctx).unwrap();
    let fut = client.request(RequestOptions::new(s.server.url("/get")));
    assert_send(&fut);
    let stream = client.request_stream(RequestOptions::new(s.server.url("/get")));
    assert_send(&stream);
    let task = client.spawn_request(RequestOptions::new(s.server.url("/get")), Callbacks::new());
    assert_send(&task.result());
    task.abort();
}

#[test]
fn under_smol_block_on() {
    let s = setup();
    let client = Client::new(s.ctx).unwrap();
    smol::block_on(async {
        for n in 0..5 {
            echo(&client, &s.server, n).await.unwrap();
        }
    });
    assert_eq!(s.server.connections_accepted(), 1);
}

#[test]
fn under_futures_lite_block_on() {
    let s = setup();
    let client = Client::new(s.ctx).unwrap();
    futures_lite::future::block_on(async {
        for n in 0..5 {
            echo(&client, &s.server, n).await.unwrap();
        }
    });
    assert_eq!(s.server.connections_accepted(), 1);
}

#[test]
fn on_a_multi_threaded_smol_executor() {
    let s = setup();
    let client = Client::new(s.ctx).unwrap();
    let ex = Arc::new(smol::Executor::new());
    let (stop, stopped) = async_channel::unbounded::<()>();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (ex, stopped) = (ex.clone(), stopped.clone());
            std::thread::spawn(move || smol::block_on(ex.run(stopped.recv())))
        })
        .collect();
    let url = s.server.url("/get");
    let tasks: Vec<_> = (0..40)
        .map(|n| {
            let (client, url) = (client.clone(), url.clone());
            ex.spawn(async move {
                let r = client
                    .request(RequestOptions::new(format!("{url}?n={n}")))
                    .await
                    .unwrap();
                assert_eq!(json(&r)["args"]["n"], n.to_string());
                std::thread::current().id()
            })
        })
        .collect();
    let ids: Vec<_> = smol::block_on(async {
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await);
        }
        ids
    });
    assert_eq!(ids.len(), 40);
    drop(stop);
    for t in threads {
        let _ = t.join().unwrap();
    }
    let accepted = s.server.connections_accepted();
    eprintln!("40 requests on 4 threads: {accepted} connections");
    assert!(accepted <= 20, "{accepted} connections");
}

#[test]
fn inside_a_tokio_runtime() {
    let s = setup();
    let client = Client::new(s.ctx).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = s.server.url("/get");
    rt.block_on(async {
        let handles: Vec<_> = (0..20)
            .map(|n| {
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move {
                    let r = client
                        .request(RequestOptions::new(format!("{url}?n={n}")))
                        .await
                        .unwrap();
                    assert_eq!(json(&r)["args"]["n"], n.to_string());
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
        // A tokio timer racing the request: the future is dropped cleanly.
        let idle = client.idle_connections();
        let slow = client.request(RequestOptions::new(s.server.url("/delay/2")));
        let raced = tokio::time::timeout(Duration::from_millis(50), slow).await;
        assert!(raced.is_err());
        // The dropped request's connection was closed, not pooled.
        assert_eq!(client.idle_connections(), idle.saturating_sub(1));
        echo(&client, &s.server, 99).await.unwrap();
    });
}

#[tokio::test(flavor = "current_thread")]
async fn inside_tokio_test_current_thread() {
    let s = setup();
    let client = Client::new(s.ctx).unwrap();
    for n in 0..3 {
        echo(&client, &s.server, n).await.unwrap();
    }
    let task = client.spawn_request(RequestOptions::new(s.server.url("/get")), Callbacks::new());
    assert_eq!(task.result().await.unwrap().status, 200);
}

#[test]
fn polled_by_hand_with_a_noop_waker() {
    let s = setup();
    let client = Client::new(s.ctx).unwrap();
    let mut fut = std::pin::pin!(echo(&client, &s.server, 7));
    let mut cx = Context::from_waker(Waker::noop());
    let give_up = Instant::now() + Duration::from_secs(10);
    let result = loop {
        if let Poll::Ready(r) = fut.as_mut().poll(&mut cx) {
            break r;
        }
        assert!(Instant::now() < give_up, "no progress");
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(result.unwrap().status, 200);
}

#[test]
fn spawned_requests_on_the_hosts_executor() {
    let s = setup();
    let ex = Arc::new(smol::Executor::new());
    let client = Client::new(s.ctx).unwrap().with_executor(ex.clone());
    let tasks: Vec<_> = (0..10)
        .map(|n| {
            client.spawn_request(
                RequestOptions::new(s.server.url(&format!("/get?n={n}"))),
                Callbacks::new(),
            )
        })
        .collect();
    smol::block_on(ex.run(async {
        for (n, t) in tasks.iter().enumerate() {
            let r = t.result().await.unwrap();
            assert_eq!(json(&r)["args"]["n"], n.to_string());
        }
    }));
}

#[test]
fn a_task_dropped_by_its_executor_still_completes_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let s = setup();
    let ex = Arc::new(smol::Executor::new());
    let client = Client::new(s.ctx).unwrap().with_executor(ex.clone());
    let completes = Arc::new(AtomicUsize::new(0));
    let c = completes.clone();
    let task = client.spawn_request(
        RequestOptions::new(s.server.url("/delay/5")),
        Callbacks::new().complete(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        }),
    );
    // Run the executor briefly (the request starts), then drop it (the
    // client holds it too).
    smol::block_on(ex.run(async_io::Timer::after(Duration::from_millis(100))));
    drop(client);
    drop(ex);
    let e = task.wait().unwrap_err();
    assert_eq!(e.code(mpnet_core::Api::Request), 12, "{e}");
    assert_eq!(completes.load(Ordering::SeqCst), 1);
}
