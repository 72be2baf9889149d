//! 1,000 requests from 100 concurrent tasks on ONE thread, bounded to 10 in
//! flight: all answered correctly, connections reused.

mod common;

use std::time::Instant;

use common::{ctx, json};
use mpnet_core::pool::PoolConfig;
use mpnet_core::request::RequestOptions;
use mpnet_smol::Client;
use mpnet_testkit::{HttpsServer, TestCa};
use smol::LocalExecutor;

#[test]
fn thousand_requests_from_a_hundred_tasks_on_one_thread() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    // The pool keeps as many idle connections per origin as may be in
    // flight: with the default (8 idle for 10 in flight) a burst of 10
    // completions evicts 2 connections that the next requests then open
    // again (about 55 connections for 1000 requests instead of 10).
    let pool = PoolConfig {
        max_idle_per_origin: 10,
        ..PoolConfig::default()
    };
    let client = Client::with_pool(ctx(&ca, 10), pool).unwrap();
    let ex = LocalExecutor::new();
    let started = Instant::now();
    let answered = smol::block_on(ex.run(async {
        let tasks: Vec<_> = (0..100)
            .map(|t| {
                let (client, server) = (&client, &server);
                ex.spawn(async move {
                    for i in 0..10 {
                        let n = t * 10 + i;
                        let r = client
                            .request(RequestOptions::new(
                                server.url(&format!("/get?n={n}&t={t}")),
                            ))
                            .await
                            .unwrap_or_else(|e| panic!("request {n}: {e}"));
                        let args = &json(&r)["args"];
                        assert_eq!(args["n"], n.to_string());
                        assert_eq!(args["t"], t.to_string());
                    }
                    10
                })
            })
            .collect();
        let mut answered = 0;
        for task in tasks {
            answered += task.await;
        }
        answered
    }));
    let accepted = server.connections_accepted();
    eprintln!(
        "1000 requests, 100 tasks, one thread: {:?}, {accepted} connections",
        started.elapsed()
    );
    assert_eq!(answered, 1000);
    assert_eq!(server.requests_served(), 1000);
    assert!(accepted <= 12, "{accepted} connections for 1000 requests");
}
