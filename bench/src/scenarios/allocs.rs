//! Allocations per request on a warm keep-alive connection, counted by the
//! counting global allocator ([`crate::alloc_count`]) on the requesting
//! thread only (the server's threads are not counted).
//!
//! - `allocs`: whole requests (GET /1k and POST JSON), mpnet against its
//!   peers. The blocking clients do all their work on the calling thread;
//!   reqwest on a current-thread runtime does too; mpnet-smol under
//!   `smol::block_on` does, except what async-io's reactor thread may do.
//! - `breakdown`: the same GET and POST through mpnet-core's phases alone,
//!   no sockets, so the allocations of the core and of the transport can be
//!   told apart.

use std::time::Instant;

use bytes::Bytes;
use mpnet_core::http1::AfterHead;
use mpnet_core::request::{
    DataType, Method, RequestFlow, RequestOptions, Response, ResponseBuffers, ResponseData, Step,
};

use super::keepalive::{json_doc, mpnet_get, mpnet_post_json, ureq_get, ureq_post_json};
use super::{row, Ctx};
use crate::alloc_count::{counting, Counts};
use crate::clients::{self, POOL_PER_HOST};
use crate::report::Series;

/// Requests counted per run, after [`WARM`] uncounted ones.
const COUNTED: u64 = 500;
const WARM: u64 = 50;

type Request<'a> = Box<dyn FnMut() -> Result<(), String> + 'a>;

/// Allocations and bytes per request of each client, `runs` times.
fn count_runs(runs: usize, mut clients: Vec<(String, Request<'_>)>) -> Vec<(Series, Series)> {
    let mut out: Vec<(Series, Series)> = clients
        .iter()
        .map(|(l, _)| (Series::new(l), Series::new(l)))
        .collect();
    for _ in 0..runs {
        for (i, (_, f)) in clients.iter_mut().enumerate() {
            if out[i].0.failed.is_some() {
                continue;
            }
            let mut go = || -> Result<Counts, String> {
                for _ in 0..WARM {
                    f()?;
                }
                let before = Counts::now();
                for _ in 0..COUNTED {
                    f()?;
                }
                Ok(Counts::since(before))
            };
            match go() {
                Ok(c) => {
                    out[i].0.samples.push(c.allocs as f64 / COUNTED as f64);
                    out[i].1.samples.push(c.bytes as f64 / COUNTED as f64);
                }
                Err(e) => {
                    out[i].0.failed = Some(if e.starts_with("skipped") {
                        e
                    } else {
                        format!("failed: {e}")
                    });
                    out[i].1.failed = out[i].0.failed.clone();
                }
            }
        }
    }
    out
}

/// The `allocs` scenario.
pub(crate) fn allocations_per_request(c: &Ctx<'_>) -> Result<(), String> {
    let runs = c.config.runs;
    let get_url = c.server.url("/1k");
    let json_url = c.server.url("/echo-json");
    let doc = json_doc()?;
    let mpnet = clients::mpnet_blocking(c.server, clients::mpnet_pool(), 64, &c.dir)?;
    let agent = clients::ureq_agent(c.server, POOL_PER_HOST);
    let rq = clients::reqwest_client(c.server, POOL_PER_HOST)?;
    let rt = clients::tokio_current_thread()?;
    let reqwest_get = || -> Result<(), String> {
        rt.block_on(async {
            let body = rq
                .get(get_url.as_str())
                .send()
                .await
                .map_err(|e| e.to_string())?
                .bytes()
                .await
                .map_err(|e| e.to_string())?;
            if body.len() == 1024 {
                Ok(())
            } else {
                Err(format!("body of {} bytes", body.len()))
            }
        })
    };
    #[cfg(feature = "smol")]
    let smol_client = clients::mpnet_smol(c.server, clients::mpnet_pool(), 64, &c.dir)?;
    let mut clients: Vec<(String, Request<'_>)> = vec![
        (
            "mpnet-blocking".into(),
            Box::new(|| mpnet_get(&mpnet, &get_url)),
        ),
        ("ureq 3".into(), Box::new(|| ureq_get(&agent, &get_url))),
        (
            "mpnet-blocking".into(),
            Box::new(|| mpnet_post_json(&mpnet, &json_url, &doc)),
        ),
        (
            "ureq 3 + serde_json".into(),
            Box::new(|| ureq_post_json(&agent, &json_url, &doc)),
        ),
        ("reqwest 0.12".into(), Box::new(reqwest_get)),
    ];
    // request_into: the options made once and borrowed, the response's
    // buffers reused from one call to the next.
    let get_opts = RequestOptions::new(get_url.as_str()).data_type(DataType::ArrayBuffer);
    let mut into_out = Response::default();
    let mpnet_ref = &mpnet;
    clients.push((
        "mpnet-blocking request_into".into(),
        Box::new(move || {
            mpnet_ref
                .request_into(&get_opts, &mut into_out)
                .map_err(|e| e.to_string())?;
            check_1k(&into_out.data)
        }),
    ));
    #[cfg(feature = "smol")]
    clients.push((
        "mpnet-smol".into(),
        Box::new(|| {
            smol::block_on(async {
                use mpnet_core::request::ResponseData;
                let res = smol_client
                    .request(RequestOptions::new(get_url.as_str()).data_type(DataType::ArrayBuffer))
                    .await
                    .map_err(|e| e.to_string())?;
                match res.data {
                    ResponseData::ArrayBuffer(b) if b.len() == 1024 => Ok(()),
                    other => Err(format!("unexpected body {other:?}")),
                }
            })
        }),
    ));
    #[cfg(feature = "smol")]
    {
        let opts = RequestOptions::new(get_url.as_str()).data_type(DataType::ArrayBuffer);
        let mut out = Response::default();
        let smol_client = &smol_client;
        clients.push((
            "mpnet-smol request_into".into(),
            Box::new(move || {
                smol::block_on(smol_client.request_into(&opts, &mut out))
                    .map_err(|e| e.to_string())?;
                check_1k(&out.data)
            }),
        ));
    }
    #[cfg(not(feature = "smol"))]
    for label in ["mpnet-smol", "mpnet-smol request_into"] {
        clients.push((
            label.into(),
            Box::new(|| Err("skipped: built without the smol feature".into())),
        ));
    }
    // The same GET over plain HTTP: mpnet's own code apart from TLS.
    let plain_url = c.server.plain_url("/1k");
    let plain_ctx = mpnet_core::AppContext::builder("2021000000000000", "1.0.0")
        .whitelist([c.server.plain_url("")])
        .map_err(|e| e.to_string())?
        .allow_insecure_loopback(true)
        .use_web_pki_roots(false)
        .build()
        .map_err(|e| e.to_string())?;
    let plain_mpnet = mpnet_blocking::Client::with_pool(plain_ctx, clients::mpnet_pool())
        .map_err(|e| e.to_string())?;
    let plain_opts = RequestOptions::new(plain_url.as_str()).data_type(DataType::ArrayBuffer);
    let mut plain_out = Response::default();
    clients.push((
        "mpnet-blocking request_into".into(),
        Box::new(move || {
            plain_mpnet
                .request_into(&plain_opts, &mut plain_out)
                .map_err(|e| e.to_string())?;
            check_1k(&plain_out.data)
        }),
    ));
    let plain_ureq = &agent;
    let plain_ureq_url = plain_url.clone();
    clients.push((
        "ureq 3".into(),
        Box::new(move || ureq_get(plain_ureq, &plain_ureq_url)),
    ));
    let mut s = count_runs(runs, clients).into_iter();
    let mut next = || s.next().unwrap_or_default();
    let (m_get, m_get_b) = next();
    let (u_get, u_get_b) = next();
    let (m_json, m_json_b) = next();
    let (u_json, u_json_b) = next();
    let (r_get, r_get_b) = next();
    let (mi_get, mi_get_b) = next();
    let (s_get, s_get_b) = next();
    let (si_get, si_get_b) = next();
    let (pi_get, pi_get_b) = next();
    let (pu_get, pu_get_b) = next();
    let report = c.report;
    let what = "allocations per warm keep-alive GET 1 KiB";
    report.row(row(
        what,
        "allocs/req",
        m_get,
        Some(u_get.clone()),
        false,
        "mpnet = 0",
    ));
    report.row(row(
        what,
        "bytes/req",
        m_get_b,
        Some(u_get_b.clone()),
        false,
        "info",
    ));
    // None: TLS 1.3 records are sealed and opened in place by the core's
    // record layer (`mpnet_core::tls_record`), not by rustls 0.23, which
    // allocates a buffer for each record either way.
    report.row(row(
        what,
        "allocs/req",
        mi_get,
        Some(u_get.clone()),
        false,
        "mpnet = 0",
    ));
    report.row(row(
        what,
        "bytes/req",
        mi_get_b,
        Some(u_get_b),
        false,
        "info",
    ));
    let what = "allocations per POST 1 KiB JSON (decode included)";
    report.row(row(what, "allocs/req", m_json, Some(u_json), false, "info"));
    report.row(row(
        what,
        "bytes/req",
        m_json_b,
        Some(u_json_b),
        false,
        "info",
    ));
    let what = "allocations per warm keep-alive GET 1 KiB, async";
    report.row(row(
        what,
        "allocs/req",
        s_get,
        Some(r_get.clone()),
        false,
        "mpnet = 0",
    ));
    report.row(row(
        what,
        "bytes/req",
        s_get_b,
        Some(r_get_b.clone()),
        false,
        "info",
    ));
    // What is left (about one request in a hundred) is async-io's reactor.
    report.row(row(
        what,
        "allocs/req",
        si_get,
        Some(r_get),
        false,
        "mpnet = 0 (async-io: a timer now and then)",
    ));
    report.row(row(
        what,
        "bytes/req",
        si_get_b,
        Some(r_get_b),
        false,
        "info",
    ));
    let what = "allocations per warm keep-alive GET 1 KiB, plain HTTP";
    report.row(row(
        what,
        "allocs/req",
        pi_get,
        Some(pu_get),
        false,
        "mpnet = 0",
    ));
    report.row(row(
        what,
        "bytes/req",
        pi_get_b,
        Some(pu_get_b),
        false,
        "info",
    ));
    Ok(())
}

/// The 1 KiB body of `/1k`, as arraybuffer data.
fn check_1k(data: &ResponseData) -> Result<(), String> {
    match data {
        ResponseData::ArrayBuffer(b) if b.len() == 1024 => Ok(()),
        other => Err(format!("unexpected body {other:?}")),
    }
}

/// One phase of the core: its label and what it allocated.
struct Phase {
    label: &'static str,
    counts: Counts,
}

/// The head hyper's server sends for `/1k`.
const HYPER_1K_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n\
content-length: 1024\r\ndate: Tue, 14 May 2024 08:00:00 GMT\r\n\r\n";

/// One request through the core's phases, no I/O; what each allocated.
/// With `into`, as `request_into` runs it: the options made once and
/// borrowed, the head parsed and the body collected in the buffers of the
/// previous response (`ResponseBuffers`), the result written into it.
fn core_phases(
    ctx: &mpnet_core::AppContext,
    make_opts: &dyn Fn() -> RequestOptions,
    head_bytes: &[u8],
    body: &[u8],
    into: Option<&mut Response>,
) -> Result<Vec<Phase>, String> {
    let mut phases = Vec::new();
    let mut phase = |label, counts| phases.push(Phase { label, counts });
    let (opts, n) = counting(make_opts);
    let recycled = into.is_some();
    if recycled {
        phase(
            "caller: RequestOptions (made once, borrowed)",
            Counts::default(),
        );
    } else {
        phase("caller: RequestOptions (url String, data)", n);
    }
    let mut fresh = Response::default();
    let out = into.unwrap_or(&mut fresh);
    let (mut bufs, n) = counting(|| ResponseBuffers::take(out));
    if recycled {
        phase(
            "core: ResponseBuffers::take (the last response's buffers)",
            n,
        );
    }
    let (flow, n) = counting(|| RequestFlow::new(ctx, &opts, Instant::now()));
    let mut flow = flow.map_err(|e| e.to_string())?;
    phase(
        "core: RequestFlow::new (parse URL, policy, headers, encode)",
        n,
    );
    // The connection's kept head buffer, as a previous request left it.
    let (warm, _) = flow.request().exchange_in(ctx.limits(), Vec::new());
    let kept = warm.request_sent_keeping_buffer().1;
    let (ex, n) = counting(|| flow.request().exchange_in(ctx.limits(), kept).0);
    phase(
        "core: exchange_in() (head into the connection's kept buffer)",
        n,
    );
    let mut ex = ex.request_sent();
    let (head, n) = counting(|| ex.try_response_in(head_bytes, bufs.head()));
    let head = match head {
        Ok((_, Some(h))) => h,
        other => return Err(format!("head did not parse: {other:?}")),
    };
    phase("core: try_response_in (ResponseHead)", n);
    let (step, n) = counting(|| flow.on_head_in(ctx, &head, &mut bufs));
    let mut collector = match step.map_err(|e| e.to_string())? {
        Step::ReadBody(c) => c,
        Step::Redirect { .. } => return Err("unexpected redirect".into()),
    };
    phase("core: on_head_in (BodyCollector)", n);
    let (collected, n) = counting(|| -> Result<Vec<u8>, String> {
        let mut b = match ex.into_body(&head).map_err(|e| e.to_string())? {
            AfterHead::Body(b) => b,
            AfterHead::Done(_) => return collector.finish().map_err(|e| e.to_string()),
        };
        let chunk = b.read(body).map_err(|e| e.to_string())?;
        collector
            .push(&body[chunk.data])
            .map_err(|e| e.to_string())?;
        collector.finish().map_err(|e| e.to_string())
    });
    let collected = collected?;
    phase("core: into_body + read + collect", n);
    let (res, n) = counting(|| flow.finish_into(head, collected, out));
    res.map_err(|e| e.to_string())?;
    phase("core: finish_into (js_headers, dataType decode)", n);
    drop(fresh);
    Ok(phases)
}

/// The `breakdown` scenario: allocations of each core phase.
pub(crate) fn core_breakdown(c: &Ctx<'_>) -> Result<(), String> {
    let ctx = clients::mpnet_ctx(c.server, 64, &c.dir)?;
    let get_url = c.server.url("/1k");
    let json_url = c.server.url("/echo-json");
    let doc = json_doc()?;
    let json_head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         date: Tue, 14 May 2024 08:00:00 GMT\r\n\r\n",
        crate::server::json_1k().len()
    );
    let get_opts = || RequestOptions::new(get_url.as_str()).data_type(DataType::ArrayBuffer);
    let post_opts = || {
        RequestOptions::new(json_url.as_str())
            .method(Method::Post)
            .json(std::sync::Arc::clone(&doc))
            .data_type(DataType::Json)
    };
    let one_k = [b'x'; 1024];
    let json_body: Bytes = crate::server::json_1k().clone();
    for (what, opts, head, body, into) in [
        (
            "GET 1 KiB arraybuffer",
            &get_opts as &dyn Fn() -> RequestOptions,
            HYPER_1K_HEAD,
            &one_k[..],
            false,
        ),
        (
            "GET 1 KiB arraybuffer, request_into",
            &get_opts,
            HYPER_1K_HEAD,
            &one_k[..],
            true,
        ),
        (
            "POST 1 KiB JSON",
            &post_opts,
            json_head.as_bytes(),
            &json_body[..],
            false,
        ),
    ] {
        // Warm once (lazy statics, first-use caches; for request_into, the
        // response whose buffers are reused), then count.
        let mut out = Response::default();
        core_phases(&ctx, opts, head, body, into.then_some(&mut out))?;
        let phases = core_phases(&ctx, opts, head, body, into.then_some(&mut out))?;
        let total: u64 = phases.iter().map(|p| p.counts.allocs).sum();
        for p in phases {
            let mut s = Series::new(p.label);
            s.samples.push(p.counts.allocs as f64);
            c.report.row(row(
                &format!("core phases of a {what} (no I/O)"),
                "allocs",
                s,
                None,
                false,
                &format!("{} bytes", p.counts.bytes),
            ));
        }
        c.report.note(format!(
            "breakdown: the core's phases of a {what} allocate {total} times in all; the rest \
             of the per-request figure is the transport's"
        ));
    }
    Ok(())
}
