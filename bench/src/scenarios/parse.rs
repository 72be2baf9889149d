//! Response head parsing: mpnet's `http1::Exchange::try_response` on a
//! typical response head against `httparse` alone (a stack array of 64
//! header slots, the head borrowed, nothing copied).
//!
//! The exchange is made once, outside the loop (`try_response` on a final
//! head leaves it as it was), so the loop times the parse alone: httparse
//! plus what mpnet adds (its slot array, the owned `ResponseHead`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use mpnet_core::http1::{Exchange, RequestHead};
use mpnet_core::Limits;

use super::{row, take_turns, Ctx, Measure};

/// A typical response head of an API server behind nginx: 10 fields,
/// 400-odd bytes.
pub const TYPICAL_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx/1.24.0\r\n\
Date: Tue, 14 May 2024 08:00:00 GMT\r\n\
Content-Type: application/json; charset=utf-8\r\n\
Content-Length: 1024\r\n\
Connection: keep-alive\r\n\
Cache-Control: no-cache, no-store, must-revalidate\r\n\
ETag: \"5f2b-1a2b3c4d5e6f\"\r\n\
Vary: Accept-Encoding\r\n\
X-Request-Id: 7d1c0a9e-3b8f-4e5a-9c2d-1f0e6a7b8c9d\r\n\
Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n\
\r\n";

/// Runs `f` in batches until `budget`; nanoseconds per call.
fn ns_per_call(budget: Duration, mut f: impl FnMut() -> Result<(), String>) -> Result<f64, String> {
    const BATCH: u64 = 1000;
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget && n < 100_000_000 {
        for _ in 0..BATCH {
            f()?;
        }
        n += BATCH;
    }
    Ok(start.elapsed().as_nanos() as f64 / n as f64)
}

/// The head-parsing scenario.
pub(crate) fn head_parsing(c: &Ctx<'_>) -> Result<(), String> {
    let cfg = c.config;
    let budget = cfg.budget / 2;
    let headers = http::HeaderMap::new();
    let request = RequestHead {
        method: &http::Method::GET,
        target: "/1k",
        host: "127.0.0.1",
        headers: &headers,
        body_len: None,
    };
    let limits = Limits::default();
    let mut exchange = Exchange::new(&request, &limits).request_sent();
    let mut mpnet_parse = || -> Result<(), String> {
        match exchange.try_response(black_box(TYPICAL_HEAD)) {
            Ok((n, Some(head))) if n == TYPICAL_HEAD.len() => {
                black_box(head);
                Ok(())
            }
            other => Err(format!("unexpected parse {other:?}")),
        }
    };
    let httparse_parse = || -> Result<(), String> {
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut res = httparse::Response::new(&mut slots);
        match res.parse(black_box(TYPICAL_HEAD)) {
            Ok(httparse::Status::Complete(n)) if n == TYPICAL_HEAD.len() => {
                black_box(&res);
                Ok(())
            }
            other => Err(format!("unexpected parse {other:?}")),
        }
    };
    let clients: Vec<(String, Measure<'_>)> = vec![
        (
            "mpnet try_response".into(),
            Box::new(|| ns_per_call(budget, &mut mpnet_parse)),
        ),
        (
            "httparse alone".into(),
            Box::new(|| ns_per_call(budget, httparse_parse)),
        ),
    ];
    let mut s = take_turns(cfg.runs, clients).into_iter();
    let (m, p) = (s.next().unwrap_or_default(), s.next());
    c.report.row(row(
        &format!("response head parse (10 fields, {} B)", TYPICAL_HEAD.len()),
        "ns/head",
        m,
        p,
        false,
        "info (lower is better)",
    ));
    Ok(())
}
