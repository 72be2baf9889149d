use mpnet_blocking::Client;
use mpnet_core::request::{DataType, Method, RequestOptions, ResponseData};
use mpnet_core::{Api, AppContext};
use mpnet_testkit::{HttpsServer, TestCa};

#[test]
fn post_json_roundtrip_and_reuse() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    let ctx = AppContext::builder("app", "1.0")
        .allow_any_origin()
        .add_roots_pem(&ca.cert_pem())
        .unwrap()
        .use_web_pki_roots(false)
        .build()
        .unwrap();
    let client = Client::new(ctx).unwrap();
    for _ in 0..3 {
        let res = client
            .request(
                RequestOptions::new(server.url("/post"))
                    .method(Method::Post)
                    .json(serde_json::json!({"from": "支付宝", "n": 1})),
            )
            .unwrap();
        assert_eq!(res.status, 200);
        let ResponseData::Json(v) = &res.data else {
            panic!()
        };
        assert_eq!(v["json"]["from"], "支付宝");
    }
    assert_eq!(server.connections_accepted(), 1);
    let e = client
        .request(RequestOptions::new(server.url("/status/404")).data_type(DataType::Text))
        .unwrap_err();
    assert_eq!(e.code(Api::Request), 19);
    let r = client
        .request(RequestOptions::new(server.url("/gzip")))
        .unwrap();
    let ResponseData::Json(v) = &r.data else {
        panic!()
    };
    assert_eq!(v["gzipped"], true);
    let r = client
        .request(RequestOptions::new(server.url("/redirect/3")))
        .unwrap();
    assert_eq!(r.profile.redirects, 3);
}

#[test]
fn body_as_a_stream() {
    use std::io::Read;
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    let ctx = AppContext::builder("app", "1.0")
        .allow_any_origin()
        .add_roots_pem(&ca.cert_pem())
        .unwrap()
        .build()
        .unwrap();
    let client = Client::new(ctx).unwrap();
    for path in ["/stream-bytes/300000", "/bytes/300000"] {
        let mut res = client
            .request_stream(RequestOptions::new(server.url(path)))
            .unwrap();
        assert_eq!(res.status, 200);
        let mut got = Vec::new();
        let mut buf = [0u8; 1000];
        loop {
            let n = res.body.read(&mut buf).unwrap();
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
        .unwrap();
    let mut text = String::new();
    res.body.read_to_string(&mut text).unwrap();
    assert!(text.contains("\"gzipped\": true"), "{text}");
    // Every body was read to its end, so one connection served all three.
    assert_eq!(server.connections_accepted(), 1);
    let e = client
        .request_stream(RequestOptions::new(server.url("/status/404")))
        .unwrap_err();
    assert_eq!(e.code(Api::Request), 19);
    // A reader dropped half-way closes its connection instead of pooling it.
    let mut res = client
        .request_stream(RequestOptions::new(server.url("/bytes/300000")))
        .unwrap();
    let _ = res.body.read(&mut [0u8; 10]).unwrap();
    drop(res);
    client
        .request(RequestOptions::new(server.url("/get")))
        .unwrap();
    assert_eq!(server.connections_accepted(), 2);
}
