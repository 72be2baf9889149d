//! Dropping a request future at any await point cancels it cleanly: no
//! panic, its connection closed rather than pooled (so the pool never holds
//! a half-read connection), and the client works on.
//!
//! Requests run one after another on one client, so the pool holds at most
//! one connection: after a completed request exactly one (the server keeps
//! connections alive), after a dropped one none.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use async_io::Timer;
use common::{ctx, json};
use futures_lite::future;
use mpnet_core::request::{DataType, RequestOptions, ResponseData};
use mpnet_smol::Client;
use mpnet_testkit::{pseudo_random_bytes, HttpsServer, TestCa, DEFAULT_SEED};

const RACES_MS: [u64; 16] = [0, 1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 75, 100, 150, 250, 400];

/// Whether a response's data is the endpoint's.
type Check = fn(&ResponseData) -> bool;

/// The endpoints raced: a slow head, a body paced over ~200 ms, a large
/// body, a quick one.
fn endpoints(server: &HttpsServer) -> Vec<(RequestOptions, Check)> {
    vec![
        (
            RequestOptions::new(server.url("/delay/0.1")),
            |d| matches!(d, ResponseData::Json(v) if v["url"].is_string()),
        ),
        (
            RequestOptions::new(server.url("/stream-bytes/40000?chunk_size=1000&chunk_delay_ms=5"))
                .data_type(DataType::ArrayBuffer),
            |d| *d == ResponseData::ArrayBuffer(pseudo_random_bytes(DEFAULT_SEED, 40000).into()),
        ),
        (
            RequestOptions::new(server.url("/bytes/100000")).data_type(DataType::ArrayBuffer),
            |d| *d == ResponseData::ArrayBuffer(pseudo_random_bytes(DEFAULT_SEED, 100000).into()),
        ),
        (
            RequestOptions::new(server.url("/get?x=1")),
            |d| matches!(d, ResponseData::Json(v) if v["args"]["x"] == "1"),
        ),
    ]
}

#[test]
fn dropped_at_any_point_against_timers() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    let client = Client::new(ctx(&ca, 10)).unwrap();
    let (mut dropped, mut completed) = (0, 0);
    smol::block_on(async {
        for (opts, check) in endpoints(&server) {
            for ms in RACES_MS {
                let call = async { Some(client.request(opts.clone()).await) };
                let timer = async {
                    Timer::after(Duration::from_millis(ms)).await;
                    None
                };
                match future::or(call, timer).await {
                    None => {
                        dropped += 1;
                        assert_eq!(client.idle_connections(), 0, "dropped after {ms} ms");
                    }
                    Some(result) => {
                        completed += 1;
                        let r = result.unwrap_or_else(|e| panic!("after {ms} ms: {e}"));
                        assert!(check(&r.data), "{} after {ms} ms", opts.url);
                        assert_eq!(client.idle_connections(), 1, "completed after {ms} ms");
                    }
                }
            }
            // The client works on, with correct data.
            let r = client.request(opts.clone()).await.unwrap();
            assert!(check(&r.data));
            assert_eq!(client.idle_connections(), 1);
        }
    });
    assert!(
        dropped >= 16 && completed >= 16,
        "{dropped} dropped, {completed} completed"
    );
    let r = smol::block_on(client.request(RequestOptions::new(server.url("/get?y=2")))).unwrap();
    assert_eq!(json(&r)["args"]["y"], "2");
}

/// Polls the future `n` times with a no-op waker (no executor at all),
/// sleeping 1 ms between polls, then drops it: `n` = 0, 1, 2, 3, 4, 6, 8,
/// 12, ... (each step about 1.5 times the last) up to the first that
/// completes, for each endpoint.
#[test]
fn dropped_after_n_polls() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    let client = Client::new(ctx(&ca, 10)).unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    for (opts, check) in endpoints(&server) {
        let give_up = Instant::now() + Duration::from_secs(20);
        let mut n = 0;
        loop {
            assert!(Instant::now() < give_up, "{} never completed", opts.url);
            let idle_before = client.idle_connections();
            let mut fut: Pin<Box<_>> = Box::pin(client.request(opts.clone()));
            let mut done = None;
            for i in 0..n {
                if i > 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
                if let Poll::Ready(r) = fut.as_mut().poll(&mut cx) {
                    done = Some(r);
                    break;
                }
            }
            drop(fut);
            match done {
                // A future never polled did nothing; one polled took the
                // pooled connection (if any) and closed it when dropped.
                None if n == 0 => assert_eq!(client.idle_connections(), idle_before),
                None => assert_eq!(client.idle_connections(), 0, "after {n} polls"),
                Some(r) => {
                    assert!(check(&r.unwrap().data));
                    assert_eq!(client.idle_connections(), 1);
                    break;
                }
            }
            n = if n < 4 { n + 1 } else { n + n / 2 };
        }
    }
}

/// A request dropped while it waits for a slot of the in-flight bound
/// gives its place up; the others go on.
#[test]
fn dropped_while_waiting_for_a_slot() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    let client = Client::new(ctx(&ca, 1)).unwrap();
    smol::block_on(async {
        let first = client.request(RequestOptions::new(server.url("/delay/0.2")));
        let waiting = async {
            let queued = client.request(RequestOptions::new(server.url("/get")));
            // Loses the race while it waits for the only slot.
            let raced = future::or(async { Some(queued.await) }, async {
                Timer::after(Duration::from_millis(50)).await;
                None
            });
            assert!(raced.await.is_none());
            client
                .request(RequestOptions::new(server.url("/get?after=1")))
                .await
        };
        let (a, b) = future::zip(first, waiting).await;
        assert_eq!(a.unwrap().status, 200);
        assert_eq!(json(&b.unwrap())["args"]["after"], "1");
    });
}
