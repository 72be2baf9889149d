//! The mini-program style on this transport: `abort()` from another thread
//! ends the call at once with 20 and closes its connection; a page going
//! away fails its calls with 1; callbacks run exactly once whoever ends the
//! call; `wait()` and `result().await` see the same result.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ctx;
use mpnet_core::request::RequestOptions;
use mpnet_core::Api;
use mpnet_smol::{Callbacks, Client, PageId};
use mpnet_testkit::{HttpsServer, RawServer, Step, TestCa};

/// Waits up to `limit` for `cond`.
fn eventually(limit: Duration, cond: impl Fn() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

#[test]
fn abort_from_another_thread_ends_at_once_and_closes_the_connection() {
    let ca = TestCa::new();
    // Reads the request, then waits for the client to go away.
    let server = RawServer::builder()
        .tls(ca.leaf())
        .script(vec![Step::read_head(), Step::read_until("never sent")])
        .start();
    let client = Client::new(ctx(&ca, 10)).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s1, s2) = (seen.clone(), seen.clone());
    let task = client.spawn_request(
        RequestOptions::new(server.url("/x")),
        Callbacks::new()
            .fail(move |e| {
                s1.lock()
                    .unwrap()
                    .push(format!("fail {}", e.code(Api::Request)))
            })
            .complete(move |_| s2.lock().unwrap().push("complete".into())),
    );
    assert!(eventually(Duration::from_secs(5), || server
        .received(0)
        .is_some_and(|r| r.ends_with(b"\r\n\r\n"))));
    let aborter = {
        let task = task.clone();
        std::thread::spawn(move || {
            let t = Instant::now();
            task.abort();
            t.elapsed()
        })
    };
    let took = aborter.join().unwrap();
    assert!(took < Duration::from_millis(50), "abort took {took:?}");
    assert_eq!(*seen.lock().unwrap(), vec!["fail 20", "complete"]);
    assert_eq!(task.wait().unwrap_err().code(Api::Request), 20);
    // The I/O is cancelled: the server sees the connection end.
    assert!(eventually(Duration::from_secs(2), || server
        .connections_finished()
        == 1));
}

#[test]
fn page_gone_fails_only_that_pages_requests() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    let client = Client::new(ctx(&ca, 10)).unwrap();
    let slow = || RequestOptions::new(server.url("/delay/1"));
    let a1 = client.spawn_request_on_page(PageId(1), slow(), Callbacks::new());
    let a2 = client.spawn_request_on_page(PageId(1), slow(), Callbacks::new());
    let b = client.spawn_request_on_page(PageId(2), slow(), Callbacks::new());
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    client.page_gone(PageId(1));
    assert_eq!(a1.wait().unwrap_err().code(Api::Request), 1);
    assert_eq!(a2.wait().unwrap_err().code(Api::Request), 1);
    assert!(t.elapsed() < Duration::from_millis(100));
    assert!(!b.is_finished());
    assert_eq!(b.wait().unwrap().status, 200);
}

#[test]
fn callbacks_run_once_when_abort_races_the_result() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    let client = Client::new(ctx(&ca, 10)).unwrap();
    let completes = Arc::new(AtomicUsize::new(0));
    let ends = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..60u64 {
        let (c, e1, e2) = (completes.clone(), ends.clone(), ends.clone());
        let task = client.spawn_request(
            RequestOptions::new(server.url("/get")),
            Callbacks::new()
                .success(move |_| {
                    e1.fetch_add(1, Ordering::SeqCst);
                })
                .fail(move |_| {
                    e2.fetch_add(1, Ordering::SeqCst);
                })
                .complete(move |_| {
                    c.fetch_add(1, Ordering::SeqCst);
                }),
        );
        let t = task.clone();
        // Aborts at spread-out moments, some before and some after the end.
        tasks.push(std::thread::spawn(move || {
            std::thread::sleep(Duration::from_micros(i * 150));
            t.abort();
            t.wait()
        }));
        tasks.push(std::thread::spawn(move || task.wait()));
    }
    for t in tasks {
        let r = t.join().unwrap();
        if let Err(e) = r {
            assert_eq!(e.code(Api::Request), 20, "{e}");
        }
    }
    assert_eq!(completes.load(Ordering::SeqCst), 60);
    assert_eq!(ends.load(Ordering::SeqCst), 60);
    // The client is fine afterwards.
    assert!(smol::block_on(client.request(RequestOptions::new(server.url("/get")))).is_ok());
}

#[test]
fn wait_and_result_see_the_same_result() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    let client = Client::new(ctx(&ca, 10)).unwrap();
    let task = client.spawn_request(
        RequestOptions::new(server.url("/get?k=v")),
        Callbacks::new(),
    );
    let a = smol::block_on(task.result()).unwrap();
    let b = task.wait().unwrap();
    assert_eq!(a.data, b.data);
    let failed = client.spawn_request(RequestOptions::new(""), Callbacks::new());
    assert_eq!(
        smol::block_on(failed.result())
            .unwrap_err()
            .code(Api::Request),
        2
    );
}
