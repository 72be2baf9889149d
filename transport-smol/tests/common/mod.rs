//! Helpers shared by this crate's integration tests.
#![allow(dead_code)]

use mpnet_core::request::{Response, ResponseData};
use mpnet_core::AppContext;
use mpnet_testkit::TestCa;

/// An app context trusting `ca` only, any origin, at most `max_in_flight`
/// requests in flight.
pub fn ctx(ca: &TestCa, max_in_flight: usize) -> AppContext {
    AppContext::builder("2021000000000000", "1.0.0")
        .allow_any_origin()
        .add_roots_pem(&ca.cert_pem())
        .expect("test CA")
        .use_web_pki_roots(false)
        .max_in_flight(max_in_flight)
        .build()
        .expect("context")
}

/// The JSON data of a response.
pub fn json(r: &Response) -> &serde_json::Value {
    match &r.data {
        ResponseData::Json(v) => v,
        other => panic!("expected json data, got {other:?}"),
    }
}
