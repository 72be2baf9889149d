//! Keep-alive HTTPS requests, blocking side: mpnet-blocking against ureq 3.
//!
//! - GET /1k, one thread: `dataType: arraybuffer` (the bytes as they are)
//!   against ureq's `read_to_vec`.
//! - The same with `threads` threads sharing one client.
//! - POST of a 1 KiB JSON document with `dataType: json` (the answer
//!   parsed) against ureq's `send_json` + `read_json::<Value>`.

use std::sync::Arc;

use mpnet_core::request::{DataType, Method, RequestOptions, ResponseData};

use super::{row, take_turns, ConnCount, CpuLog, Ctx, Measure, ThreadsCpu};
use crate::clients::{self, POOL_PER_HOST};

const TARGET: &str = "≥ 1.2x ureq";

/// One mpnet-blocking GET /1k, body checked.
pub(crate) fn mpnet_get(client: &mpnet_blocking::Client, url: &str) -> Result<(), String> {
    let res = client
        .request(RequestOptions::new(url).data_type(DataType::ArrayBuffer))
        .map_err(|e| e.to_string())?;
    match res.data {
        ResponseData::ArrayBuffer(b) if b.len() == 1024 => Ok(()),
        other => Err(format!("unexpected body {other:?}")),
    }
}

/// One ureq GET /1k, body checked.
pub(crate) fn ureq_get(agent: &ureq::Agent, url: &str) -> Result<(), String> {
    let mut res = agent.get(url).call().map_err(|e| e.to_string())?;
    let body = res.body_mut().read_to_vec().map_err(|e| e.to_string())?;
    if body.len() == 1024 {
        Ok(())
    } else {
        Err(format!("body of {} bytes", body.len()))
    }
}

/// One mpnet-blocking POST of `doc` with `dataType: json` (the document
/// shared, not copied, as ureq's `send_json(&doc)` borrows it).
pub(crate) fn mpnet_post_json(
    client: &mpnet_blocking::Client,
    url: &str,
    doc: &Arc<serde_json::Value>,
) -> Result<(), String> {
    let res = client
        .request(
            RequestOptions::new(url)
                .method(Method::Post)
                .json(Arc::clone(doc))
                .data_type(DataType::Json),
        )
        .map_err(|e| e.to_string())?;
    match res.data {
        ResponseData::Json(serde_json::Value::Object(_)) => Ok(()),
        other => Err(format!("unexpected data {other:?}")),
    }
}

/// One ureq POST of `doc` as JSON, the answer parsed.
pub(crate) fn ureq_post_json(
    agent: &ureq::Agent,
    url: &str,
    doc: &serde_json::Value,
) -> Result<(), String> {
    let mut res = agent.post(url).send_json(doc).map_err(|e| e.to_string())?;
    let v: serde_json::Value = res.body_mut().read_json().map_err(|e| e.to_string())?;
    if v.is_object() {
        Ok(())
    } else {
        Err("the answer is not an object".into())
    }
}

/// The 1 KiB JSON document, parsed.
pub(crate) fn json_doc() -> Result<Arc<serde_json::Value>, String> {
    serde_json::from_slice(crate::server::json_1k())
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// Keep-alive GET /1k, one client thread.
pub(crate) fn keepalive_one_thread(c: &Ctx<'_>) -> Result<(), String> {
    let cfg = c.config;
    let url = c.server.url("/1k");
    let mpnet = clients::mpnet_blocking(c.server, clients::mpnet_pool(), 64, &c.dir)?;
    let agent = clients::ureq_agent(c.server, POOL_PER_HOST);
    let warm = |f: &dyn Fn() -> Result<(), String>| (0..20).try_for_each(|_| f());
    warm(&|| mpnet_get(&mpnet, &url))?;
    warm(&|| ureq_get(&agent, &url))?;
    let conns = ConnCount::new(c.server, 2);
    let cpu = CpuLog::new(2);
    let clients: Vec<(String, Measure<'_>)> = vec![
        (
            "mpnet-blocking".into(),
            Box::new(|| {
                conns.around(0, || {
                    cpu.rate(0, cfg.budget, cfg.max_requests, || mpnet_get(&mpnet, &url))
                })
            }),
        ),
        (
            "ureq 3".into(),
            Box::new(|| {
                conns.around(1, || {
                    cpu.rate(1, cfg.budget, cfg.max_requests, || ureq_get(&agent, &url))
                })
            }),
        ),
    ];
    let mut s = take_turns(cfg.runs, clients).into_iter();
    let (m, p) = (s.next().unwrap_or_default(), s.next().unwrap_or_default());
    let what = "keep-alive GET 1 KiB, 1 thread";
    conns.note(c, what, &["mpnet-blocking", "ureq 3"]);
    let (mc, pc) = (cpu.series(0, &m), cpu.series(1, &p));
    c.report.row(row(what, "req/s", m, Some(p), true, TARGET));
    c.report.row(row(
        what,
        "client CPU µs/req",
        mc,
        Some(pc),
        false,
        "≤ 0.83x ureq (= 1.2x rate)",
    ));
    Ok(())
}

/// Keep-alive GET /1k, `threads` threads sharing one client; also mpnet
/// as `Client::new` makes it (default pool, in-flight bound of 10, which
/// makes 6 of 16 threads wait their turn).
pub(crate) fn keepalive_concurrent(c: &Ctx<'_>) -> Result<(), String> {
    let cfg = c.config;
    let n = cfg.threads;
    let url = c.server.url("/1k");
    let mpnet = clients::mpnet_blocking(c.server, clients::mpnet_pool(), n.max(64), &c.dir)?;
    let ctx_default =
        clients::mpnet_ctx(c.server, mpnet_core::context::DEFAULT_MAX_IN_FLIGHT, &c.dir)?;
    let mpnet_default = mpnet_blocking::Client::new(ctx_default).map_err(|e| e.to_string())?;
    let agent = clients::ureq_agent(c.server, POOL_PER_HOST);
    let mget = |cl: &mpnet_blocking::Client| {
        let url = url.clone();
        let cl = cl.clone();
        move || mpnet_get(&cl, &url)
    };
    let f_mpnet = mget(&mpnet);
    let f_default = mget(&mpnet_default);
    let f_ureq = || ureq_get(&agent, &url);
    let cpu = ThreadsCpu::new(3);
    let clients: Vec<(String, Measure<'_>)> = vec![
        (
            "mpnet-blocking".into(),
            Box::new(|| cpu.rate(0, n, 3, cfg.budget, cfg.max_requests, &f_mpnet)),
        ),
        (
            "ureq 3".into(),
            Box::new(|| cpu.rate(1, n, 3, cfg.budget, cfg.max_requests, &f_ureq)),
        ),
        (
            "mpnet-blocking, defaults".into(),
            Box::new(|| cpu.rate(2, n, 3, cfg.budget, cfg.max_requests, &f_default)),
        ),
    ];
    let mut s = take_turns(cfg.runs, clients).into_iter();
    let (m, p, d) = (
        s.next().unwrap_or_default(),
        s.next().unwrap_or_default(),
        s.next().unwrap_or_default(),
    );
    let scenario = format!("keep-alive GET 1 KiB, {n} threads");
    let (mc, pc) = (cpu.client_series(0, &m), cpu.client_series(1, &p));
    let (ms, ps) = (cpu.server_series(0, &m), cpu.server_series(1, &p));
    c.report
        .row(row(&scenario, "req/s", m, Some(p.clone()), true, TARGET));
    c.report.row(row(
        &format!("{scenario} (mpnet Client::new defaults: 10 in flight)"),
        "req/s",
        d,
        Some(p),
        true,
        "info",
    ));
    c.report.row(row(
        &scenario,
        "client CPU µs/req (all client threads)",
        mc,
        Some(pc),
        false,
        "info",
    ));
    c.report.row(row(
        &scenario,
        "server CPU µs/req (the bench server's threads)",
        ms,
        Some(ps),
        false,
        "info",
    ));
    Ok(())
}

/// POST 1 KiB JSON, `dataType: json`, one thread.
pub(crate) fn post_json(c: &Ctx<'_>) -> Result<(), String> {
    let cfg = c.config;
    let url = c.server.url("/echo-json");
    let doc = json_doc()?;
    let mpnet = clients::mpnet_blocking(c.server, clients::mpnet_pool(), 64, &c.dir)?;
    let agent = clients::ureq_agent(c.server, POOL_PER_HOST);
    for _ in 0..20 {
        mpnet_post_json(&mpnet, &url, &doc)?;
        ureq_post_json(&agent, &url, &doc)?;
    }
    let cpu = CpuLog::new(2);
    let clients: Vec<(String, Measure<'_>)> = vec![
        (
            "mpnet-blocking".into(),
            Box::new(|| {
                cpu.rate(0, cfg.budget, cfg.max_requests, || {
                    mpnet_post_json(&mpnet, &url, &doc)
                })
            }),
        ),
        (
            "ureq 3 + serde_json".into(),
            Box::new(|| {
                cpu.rate(1, cfg.budget, cfg.max_requests, || {
                    ureq_post_json(&agent, &url, &doc)
                })
            }),
        ),
    ];
    let mut s = take_turns(cfg.runs, clients).into_iter();
    let (m, p) = (s.next().unwrap_or_default(), s.next().unwrap_or_default());
    let what = "POST 1 KiB JSON, dataType json, 1 thread";
    let (mc, pc) = (cpu.series(0, &m), cpu.series(1, &p));
    c.report.row(row(what, "req/s", m, Some(p), true, TARGET));
    c.report.row(row(
        what,
        "client CPU µs/req",
        mc,
        Some(pc),
        false,
        "≤ 0.83x ureq (= 1.2x rate)",
    ));
    Ok(())
}
