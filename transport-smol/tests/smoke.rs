//! The blocking transport's smoke test, in async form, plus the timing
//! profile and the retry of an idempotent request on a fresh connection.

mod common;

use std::time::Duration;

use common::{ctx, json};
use mpnet_core::request::{DataType, Method, RequestOptions};
use mpnet_core::Api;
use mpnet_smol::Client;
use mpnet_testkit::{HttpsServer, RawServer, Step, TestCa};

#[test]
fn post_json_roundtrip_and_reuse() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    let client = Client::new(ctx(&ca, 10)).unwrap();
    smol::block_on(async {
        for _ in 0..3 {
            let res = client
                .request(
                    RequestOptions::new(server.url("/post"))
                        .method(Method::Post)
                        .json(serde_json::json!({"from": "支付宝", "n": 1})),
                )
                .await
                .unwrap();
            assert_eq!(res.status, 200);
            assert_eq!(json(&res)["json"]["from"], "支付宝");
        }
        assert_eq!(server.connections_accepted(), 1);
        let e = client
            .request(RequestOptions::new(server.url("/status/404")).data_type(DataType::Text))
            .await
            .unwrap_err();
        assert_eq!(e.code(Api::Request), 19);
        let r = client
            .request(RequestOptions::new(server.url("/gzip")))
            .await
            .unwrap();
        assert_eq!(json(&r)["gzipped"], true);
        let r = client
            .request(RequestOptions::new(server.url("/redirect/3")))
            .await
            .unwrap();
        assert_eq!(r.profile.redirects, 3);
    });
}

#[test]
fn profile_records_every_phase() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    let client = Client::new(ctx(&ca, 10)).unwrap();
    smol::block_on(async {
        let first = client
            .request(RequestOptions::new(server.url("/get")))
            .await
            .unwrap();
        let p = first.profile;
        assert!(!p.reused);
        let phases = [p.dns, p.connect, p.tls, p.request_sent, p.first_byte, p.done];
        let phases: Vec<Duration> = phases.iter().map(|d| d.expect("phase")).collect();
        assert!(phases.windows(2).all(|w| w[0] <= w[1]), "{p:?}");
        let second = client
            .request(RequestOptions::new(server.url("/get")))
            .await
            .unwrap();
        let p = second.profile;
        assert!(p.reused);
        assert_eq!((p.dns, p.connect, p.tls), (None, None, None));
        assert!(p.first_byte.is_some() && p.done.is_some());
    });
}

/// The server answers once, then closes the kept-alive connection when the
/// next request arrives: a GET is sent again on a fresh connection, a POST
/// is not (core's `may_retry_on_fresh`).
#[test]
fn idempotent_requests_are_retried_once_on_a_fresh_connection() {
    let ca = TestCa::new();
    let ok = "HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n\"ok\"";
    let answer_then_drop = vec![
        Step::read_head(),
        Step::write(ok),
        Step::read_head(),
        Step::Close,
    ];
    let server = RawServer::builder()
        .tls(ca.leaf())
        .script(answer_then_drop)
        .start();
    let client = Client::new(ctx(&ca, 10)).unwrap();
    smol::block_on(async {
        let get = || RequestOptions::new(server.url("/x"));
        client.request(get()).await.unwrap();
        let r = client.request(get()).await.unwrap();
        assert!(!r.profile.reused, "answered on the fresh connection");
        assert_eq!(server.connections_accepted(), 2);
        let post = RequestOptions::new(server.url("/x"))
            .method(Method::Post)
            .text("once");
        let e = client.request(post).await.unwrap_err();
        assert_eq!(e.code(Api::Request), 12, "{e}");
        assert_eq!(server.connections_accepted(), 2, "POST is not resent");
    });
}
