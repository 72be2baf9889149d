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
