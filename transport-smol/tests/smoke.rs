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
        let phases = [
            p.dns,
            p.connect,
            p.tls,
            p.request_sent,
            p.first_byte,
            p.done,
        ];
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

#[test]
fn body_as_a_stream() {
    use futures_lite::AsyncReadExt;
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    let client = Client::new(ctx(&ca, 10)).unwrap();
    smol::block_on(async {
        for path in ["/stream-bytes/300000", "/bytes/300000"] {
            let mut res = client
                .request_stream(RequestOptions::new(server.url(path)))
                .await
                .unwrap();
            assert_eq!(res.status, 200);
            let mut got = Vec::new();
            let mut buf = [0u8; 1000];
            loop {
                let n = res.body.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(
                got,
                mpnet_testkit::pseudo_random_bytes(mpnet_testkit::DEFAULT_SEED, 300000),
                "{path}"
            );
        }
        let mut res = client
            .request_stream(RequestOptions::new(server.url("/gzip")))
            .await
            .unwrap();
        let mut text = String::new();
        res.body.read_to_string(&mut text).await.unwrap();
        assert!(text.contains("\"gzipped\": true"), "{text}");
        // Every body was read to its end, so one connection served all three.
        assert_eq!(server.connections_accepted(), 1);
        assert_eq!(client.idle_connections(), 1);
        let e = client
            .request_stream(RequestOptions::new(server.url("/status/404")))
            .await
            .unwrap_err();
        assert_eq!(e.code(Api::Request), 19);
        // A reader dropped half-way closes its connection instead of pooling it.
        let mut res = client
            .request_stream(RequestOptions::new(server.url("/bytes/300000")))
            .await
            .unwrap();
        let _ = res.body.read(&mut [0u8; 10]).await.unwrap();
        drop(res);
        assert_eq!(client.idle_connections(), 0);
        client
            .request(RequestOptions::new(server.url("/get")))
            .await
            .unwrap();
        assert_eq!(server.connections_accepted(), 2);
    });
}

#[test]
fn a_streamed_body_past_the_deadline_times_out() {
    use futures_lite::AsyncReadExt;
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    let client = Client::new(ctx(&ca, 10)).unwrap();
    smol::block_on(async {
        let opts = RequestOptions::new(
            server.url("/stream-bytes/100000?chunk_size=1000&chunk_delay_ms=20"),
        )
        .timeout(Duration::from_millis(300));
        let mut res = client.request_stream(opts).await.unwrap();
        let started = std::time::Instant::now();
        let mut all = Vec::new();
        let e = res.body.read_to_end(&mut all).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_millis(600));
        // Reading again still reports the timeout rather than waiting.
        let e = res.body.read(&mut [0u8; 10]).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    });
}
