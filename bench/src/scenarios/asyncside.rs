//! Keep-alive HTTPS GET /1k, async side: mpnet-smol against reqwest.
//!
//! Both run on one thread: reqwest on a current-thread tokio runtime (its
//! connection tasks on the same thread), mpnet-smol under `smol::block_on`
//! (async-io's reactor driven by the same thread). One task, then
//! `threads` concurrent tasks sharing one client. mpnet-smol is behind the
//! `smol` feature; without it the reqwest figures are still measured.

use std::cell::Cell;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

#[cfg(not(feature = "smol"))]
use super::skipped;
use super::{row, take_turns, CpuLog, Ctx, Measure};
use crate::clients::{self, POOL_PER_HOST};

const TARGET: &str = "≥ 1.2x reqwest";

/// `tasks` concurrent loops of `one` until `budget` passes or `max` calls in
/// all; calls per second and the number of timed calls (the warm-up calls,
/// one per task, are counted too, so that a CPU measurement around the
/// whole run divides by every call it saw). Runs on the caller's executor.
async fn rate_tasks<F, Fut>(
    tasks: usize,
    budget: Duration,
    max: u64,
    one: F,
) -> Result<(f64, u64), String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    // Warm up: one request per task, at once, so each task has a connection.
    for r in join_all((0..tasks).map(|_| one())).await {
        r?;
    }
    let done = Cell::new(0u64);
    let start = Instant::now();
    let loops = (0..tasks).map(|_| async {
        while start.elapsed() < budget && done.get() < max {
            one().await?;
            done.set(done.get() + 1);
        }
        Ok::<(), String>(())
    });
    for r in join_all(loops).await {
        r?;
    }
    let rate = done.get() as f64 / start.elapsed().as_secs_f64();
    Ok((rate, done.get() + tasks as u64))
}

/// The number of calls a finished [`rate_tasks`] made (0 if it failed).
fn calls(r: &Result<(f64, u64), String>) -> u64 {
    r.as_ref().map_or(0, |(_, n)| *n)
}

async fn reqwest_get(client: &reqwest::Client, url: &str) -> Result<(), String> {
    let res = client
        .get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| e.to_string())?;
    let body = res.bytes().await.map_err(|e| e.to_string())?;
    if body.len() == 1024 {
        Ok(())
    } else {
        Err(format!("body of {} bytes", body.len()))
    }
}

#[cfg(feature = "smol")]
async fn smol_get(client: &mpnet_smol::Client, url: &str) -> Result<(), String> {
    use mpnet_core::request::{DataType, RequestOptions, ResponseData};
    let res = client
        .request(RequestOptions::new(url).data_type(DataType::ArrayBuffer))
        .await
        .map_err(|e| e.to_string())?;
    match res.data {
        ResponseData::ArrayBuffer(b) if b.len() == 1024 => Ok(()),
        other => Err(format!("unexpected body {other:?}")),
    }
}

fn run(c: &Ctx<'_>, tasks: usize) -> Result<(), String> {
    let cfg = c.config;
    let url = c.server.url("/1k");
    let rq = clients::reqwest_client(c.server, POOL_PER_HOST)?;
    let rt = clients::tokio_current_thread()?;
    let cpu = CpuLog::new(2);
    let reqwest_measure: Measure<'_> = Box::new(|| {
        cpu.around(1, calls, || {
            rt.block_on(rate_tasks(tasks, cfg.budget, cfg.max_requests, || {
                reqwest_get(&rq, &url)
            }))
        })
        .map(|(rate, _)| rate)
    });
    #[cfg(feature = "smol")]
    let series = {
        let smol_client =
            clients::mpnet_smol(c.server, clients::mpnet_pool(), tasks.max(64), &c.dir)?;
        let smol_measure: Measure<'_> = Box::new(|| {
            cpu.around(0, calls, || {
                smol::block_on(rate_tasks(tasks, cfg.budget, cfg.max_requests, || {
                    smol_get(&smol_client, &url)
                }))
            })
            .map(|(rate, _)| rate)
        });
        let mut s = take_turns(
            cfg.runs,
            vec![
                ("mpnet-smol".into(), smol_measure),
                ("reqwest 0.12".into(), reqwest_measure),
            ],
        )
        .into_iter();
        (s.next().unwrap_or_default(), s.next().unwrap_or_default())
    };
    #[cfg(not(feature = "smol"))]
    let series = {
        let mut s =
            take_turns(cfg.runs, vec![("reqwest 0.12".into(), reqwest_measure)]).into_iter();
        let peer = s.next().unwrap_or_default();
        (
            skipped("mpnet-smol", "built without the smol feature"),
            peer,
        )
    };
    let (m, p) = series;
    let what = if tasks == 1 {
        "async keep-alive GET 1 KiB, 1 task".to_string()
    } else {
        format!("async keep-alive GET 1 KiB, {tasks} tasks")
    };
    let (mc, pc) = (cpu.series(0, &m), cpu.series(1, &p));
    c.report.row(row(&what, "req/s", m, Some(p), true, TARGET));
    c.report.row(row(
        &what,
        "client CPU µs/req (the one thread)",
        mc,
        Some(pc),
        false,
        "≤ 0.83x reqwest (= 1.2x rate)",
    ));
    Ok(())
}

/// One task.
pub(crate) fn async_one_task(c: &Ctx<'_>) -> Result<(), String> {
    run(c, 1)
}

/// `threads` concurrent tasks on one thread.
pub(crate) fn async_concurrent(c: &Ctx<'_>) -> Result<(), String> {
    run(c, c.config.threads)
}
