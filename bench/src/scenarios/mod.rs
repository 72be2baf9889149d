//! The scenarios, one function each, and the loops they share.
//!
//! Every loop is bounded twice: by a time budget and by a request count.
//! Nothing here asserts on time: a client that fails is reported as failed
//! in the table, and the other rows still run.

mod allocs;
mod asyncside;
mod keepalive;
mod parse;
mod tls;
mod transfer;
mod wss;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::report::{Report, Row, Series};
use crate::server::Server;
use crate::Config;

/// What every scenario gets.
pub(crate) struct Ctx<'a> {
    pub config: &'a Config,
    pub server: &'a Server,
    pub report: &'a Report,
    /// A scratch folder (read and temp folder of the mpnet contexts).
    pub dir: PathBuf,
}

/// A scratch folder removed on drop.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts the server and runs every selected scenario; prints the table.
pub fn run_all(config: &Config) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("mpnet-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let scratch = ScratchDir(dir.canonicalize().map_err(|e| e.to_string())?);
    let server = Server::start().map_err(|e| format!("server: {e}"))?;
    let report = Report::default();
    let ctx = Ctx {
        config,
        server: &server,
        report: &report,
        dir: scratch.0.clone(),
    };
    let probe = |when: &str| {
        match crate::probe::loopback_round_trip() {
        Ok(rtt) => format!(
            "machine: loopback TCP round trip (1 byte, two threads, median of 2000) {:.1} µs {when}",
            rtt.as_secs_f64() * 1e6
        ),
        Err(e) => format!("machine: {e}"),
    }
    };
    let at_start = probe("at the start");
    println!(
        "mpnet-bench: server {} ; {} runs per figure, {} ms per client and run, {} threads; \
         download {} B, upload {} B; {at_start}",
        server.origin(),
        config.runs,
        config.budget.as_millis(),
        config.threads,
        config.download_size,
        config.upload_size
    );
    report.note(at_start);
    print!("{}", crate::report::HEADER);
    type Scenario = fn(&Ctx<'_>) -> Result<(), String>;
    let all: [(&str, Scenario); 12] = [
        ("parse", parse::head_parsing),
        ("allocs", allocs::allocations_per_request),
        ("breakdown", allocs::core_breakdown),
        ("keepalive", keepalive::keepalive_one_thread),
        ("keepalive16", keepalive::keepalive_concurrent),
        ("json", keepalive::post_json),
        ("async", asyncside::async_one_task),
        ("async16", asyncside::async_concurrent),
        ("tls", tls::tls_setup),
        ("download", transfer::download),
        ("upload", transfer::upload),
        ("wss", wss::wss_echo),
    ];
    for (name, scenario) in all {
        if !config.wants(name) {
            continue;
        }
        if let Err(e) = scenario(&ctx) {
            report.note(format!("{name}: could not run: {e}"));
        }
    }
    report.note(probe("at the end"));
    println!("\n## Results\n\n{}", report.render());
    drop(server);
    Ok(())
}

/// A client's measurement for one run.
pub(crate) type Measure<'a> = Box<dyn FnMut() -> Result<f64, String> + 'a>;

/// Runs every client `runs` times, taking turns within each run (the order
/// reversed every other run), and collects their series. A client that
/// fails once is not run again.
///
/// For profiling one client alone, `MPNET_BENCH_CLIENT=TEXT` skips every
/// client whose label does not contain TEXT.
pub(crate) fn take_turns(runs: usize, clients: Vec<(String, Measure<'_>)>) -> Vec<Series> {
    let only = std::env::var("MPNET_BENCH_CLIENT").ok();
    let mut series: Vec<Series> = clients
        .iter()
        .map(|(l, _)| match &only {
            Some(o) if !l.contains(o.as_str()) => skipped(l, "MPNET_BENCH_CLIENT"),
            _ => Series::new(l),
        })
        .collect();
    let mut fns: Vec<Measure<'_>> = clients.into_iter().map(|(_, f)| f).collect();
    for run in 0..runs {
        let order: Vec<usize> = if run % 2 == 0 {
            (0..fns.len()).collect()
        } else {
            (0..fns.len()).rev().collect()
        };
        for i in order {
            if series[i].failed.is_some() {
                continue;
            }
            match fns[i]() {
                Ok(v) => {
                    if std::env::var_os("MPNET_BENCH_SAMPLES").is_some() {
                        eprintln!("  sample: {} run {run}: {v:.1}", series[i].label);
                    }
                    series[i].samples.push(v)
                }
                Err(e) => series[i].failed = Some(format!("failed: {e}")),
            }
        }
    }
    series
}

/// A series that did not run, with why.
pub(crate) fn skipped(label: &str, why: &str) -> Series {
    Series {
        label: label.into(),
        samples: Vec::new(),
        failed: Some(format!("skipped: {why}")),
    }
}

/// Calls `f` until `budget` passes or `max` calls are made; returns calls
/// per second.
pub(crate) fn rate_single(
    budget: Duration,
    max: u64,
    mut f: impl FnMut() -> Result<(), String>,
) -> Result<f64, String> {
    let start = Instant::now();
    let mut n = 0u64;
    while n < max && start.elapsed() < budget {
        f()?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// On-CPU time (`/proc/self/task/*/schedstat`) of this process's threads:
/// the bench server's (`bench-server*`) when `server`, else every other
/// one (the clients', their helper threads included).
pub(crate) fn process_cpu(server: bool) -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let mut ns = 0u64;
    for task in tasks.flatten() {
        let dir = task.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.starts_with("bench-server") != server {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("schedstat")).unwrap_or_default();
        ns += stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Duration::from_nanos(ns)
}

/// CPU time (user + system) the calling thread has used so far.
pub(crate) fn thread_cpu() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    let Ok(u) = getrusage(UsageWho::RUSAGE_THREAD) else {
        return Duration::ZERO;
    };
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
    };
    tv(u.user_time()) + tv(u.system_time())
}

/// Per-client logs of the requesting thread's CPU time per call: a figure
/// that the other engineers' compilers on the same cores disturb far less
/// than wall-clock rates (it leaves out the server's threads, and counts
/// the kernel's loopback work done on the client's behalf).
pub(crate) struct CpuLog {
    per_call_us: Vec<std::cell::RefCell<Vec<f64>>>,
}

impl CpuLog {
    /// Logs for `clients` clients.
    pub(crate) fn new(clients: usize) -> Self {
        CpuLog {
            per_call_us: (0..clients).map(|_| Default::default()).collect(),
        }
    }

    /// [`rate_single`], logging client `i`'s CPU microseconds per call.
    pub(crate) fn rate(
        &self,
        i: usize,
        budget: Duration,
        max: u64,
        mut f: impl FnMut() -> Result<(), String>,
    ) -> Result<f64, String> {
        let cpu = thread_cpu();
        let start = Instant::now();
        let mut n = 0u64;
        while n < max && start.elapsed() < budget {
            f()?;
            n += 1;
        }
        let elapsed = start.elapsed();
        let used = thread_cpu().saturating_sub(cpu);
        if let (Some(log), true) = (self.per_call_us.get(i), n > 0) {
            log.borrow_mut().push(used.as_secs_f64() * 1e6 / n as f64);
        }
        Ok(n as f64 / elapsed.as_secs_f64())
    }

    /// Runs `f`, which makes `calls()` calls in all, and logs client `i`'s
    /// CPU microseconds per call (for loops that are not [`rate`]'s, such as
    /// an executor's `block_on`).
    ///
    /// [`rate`]: Self::rate
    pub(crate) fn around<T>(
        &self,
        i: usize,
        calls: impl FnOnce(&T) -> u64,
        f: impl FnOnce() -> T,
    ) -> T {
        let cpu = thread_cpu();
        let out = f();
        let used = thread_cpu().saturating_sub(cpu);
        let n = calls(&out);
        if let (Some(log), true) = (self.per_call_us.get(i), n > 0) {
            log.borrow_mut().push(used.as_secs_f64() * 1e6 / n as f64);
        }
        out
    }

    /// Client `i`'s series, with the failure of its rate series if any.
    pub(crate) fn series(&self, i: usize, like: &Series) -> Series {
        logged_series(&self.per_call_us, i, like)
    }
}

/// Client `i`'s logged values as a series labelled as `like`, with the
/// failure of `like` (its rate series) if any.
pub(crate) fn logged_series(
    logs: &[std::cell::RefCell<Vec<f64>>],
    i: usize,
    like: &Series,
) -> Series {
    Series {
        label: like.label.clone(),
        samples: logs.get(i).map(|l| l.borrow().clone()).unwrap_or_default(),
        failed: like.failed.clone(),
    }
}

/// Per-client logs of the bench server's CPU microseconds per call.
pub(crate) struct ServerCpu(Vec<std::cell::RefCell<Vec<f64>>>);

impl ServerCpu {
    /// Logs for `clients` clients.
    pub(crate) fn new(clients: usize) -> Self {
        ServerCpu((0..clients).map(|_| Default::default()).collect())
    }

    /// Runs `f`, which counts its calls in the counter it is given, and
    /// logs the server threads' CPU per call for client `i`.
    pub(crate) fn around<T>(&self, i: usize, f: impl FnOnce(&mut u64) -> T) -> T {
        let before = process_cpu(true);
        let mut count = 0u64;
        let out = f(&mut count);
        let used = process_cpu(true).saturating_sub(before);
        if let (Some(log), true) = (self.0.get(i), count > 0) {
            log.borrow_mut()
                .push(used.as_secs_f64() * 1e6 / count as f64);
        }
        out
    }

    /// Client `i`'s series, labelled as `like`.
    pub(crate) fn series(&self, i: usize, like: &Series) -> Series {
        logged_series(&self.0, i, like)
    }
}

/// Per-client logs, for a scenario of several client threads, of the CPU
/// microseconds per call of the client threads together and of the bench
/// server's threads: where a rate bound by two shared vCPUs goes.
pub(crate) struct ThreadsCpu {
    client_us: Vec<std::cell::RefCell<Vec<f64>>>,
    server: ServerCpu,
}

impl ThreadsCpu {
    /// Logs for `clients` clients.
    pub(crate) fn new(clients: usize) -> Self {
        ThreadsCpu {
            client_us: (0..clients).map(|_| Default::default()).collect(),
            server: ServerCpu::new(clients),
        }
    }

    /// [`rate_threads`] for client `i`, logging its CPU per call: the sum of
    /// its threads' own (each over its timed calls) and the server threads'
    /// over the whole run.
    pub(crate) fn rate(
        &self,
        i: usize,
        threads: usize,
        warm: usize,
        budget: Duration,
        max: u64,
        f: &(dyn Fn() -> Result<(), String> + Sync),
    ) -> Result<f64, String> {
        let client_ns = AtomicU64::new(0);
        let done = AtomicU64::new(0);
        let rate = self.server.around(i, |count| {
            let rate = rate_threads(threads, warm, budget, max, f, &done, Some(&client_ns));
            *count = done.load(Ordering::Relaxed);
            rate
        })?;
        let calls = done.load(Ordering::Relaxed);
        if let (Some(log), true) = (self.client_us.get(i), calls > 0) {
            log.borrow_mut()
                .push(client_ns.load(Ordering::Relaxed) as f64 / 1e3 / calls as f64);
        }
        Ok(rate)
    }

    /// Client `i`'s client-threads CPU per call, labelled as `like`.
    pub(crate) fn client_series(&self, i: usize, like: &Series) -> Series {
        logged_series(&self.client_us, i, like)
    }

    /// Client `i`'s server-threads CPU per call, labelled as `like`.
    pub(crate) fn server_series(&self, i: usize, like: &Series) -> Series {
        self.server.series(i, like)
    }
}

/// `threads` threads call `f` (each first `warm` times untimed, then until
/// `budget` passes or `max` calls in all, counted in `done`); returns calls
/// per second in all. With `cpu_ns`, each thread adds its CPU time over its
/// timed calls to it.
fn rate_threads(
    threads: usize,
    warm: usize,
    budget: Duration,
    max: u64,
    f: &(dyn Fn() -> Result<(), String> + Sync),
    done: &AtomicU64,
    cpu_ns: Option<&AtomicU64>,
) -> Result<f64, String> {
    let barrier = Barrier::new(threads + 1);
    let (elapsed, errors) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<(), String> {
                    let mut warmed = Ok(());
                    for _ in 0..warm {
                        if let Err(e) = f() {
                            warmed = Err(e);
                            break;
                        }
                    }
                    barrier.wait();
                    warmed?;
                    let start = Instant::now();
                    let cpu = thread_cpu();
                    let mut ran = Ok(());
                    while start.elapsed() < budget && done.load(Ordering::Relaxed) < max {
                        ran = f();
                        if ran.is_err() {
                            break;
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(total) = cpu_ns {
                        let used = thread_cpu().saturating_sub(cpu);
                        total.fetch_add(
                            u64::try_from(used.as_nanos()).unwrap_or(u64::MAX),
                            Ordering::Relaxed,
                        );
                    }
                    ran
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let errors: Vec<String> = handles
            .into_iter()
            .filter_map(|h| h.join().unwrap_or(Err("a thread panicked".into())).err())
            .collect();
        (start.elapsed(), errors)
    });
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    Ok(done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64())
}

/// Counts the connections the server accepted while each client ran, so
/// the table can say whether a client really kept its connections alive.
pub(crate) struct ConnCount<'a> {
    server: &'a Server,
    opened: Vec<std::cell::Cell<u64>>,
}

impl<'a> ConnCount<'a> {
    /// Counters for `clients` clients.
    pub(crate) fn new(server: &'a Server, clients: usize) -> Self {
        ConnCount {
            server,
            opened: (0..clients).map(|_| std::cell::Cell::new(0)).collect(),
        }
    }

    /// Runs `f`, adding the connections opened meanwhile to client `i`.
    pub(crate) fn around<T>(&self, i: usize, f: impl FnOnce() -> T) -> T {
        let before = self.server.connections();
        let out = f();
        let opened = self.server.connections() - before;
        if let Some(c) = self.opened.get(i) {
            c.set(c.get() + opened);
        }
        out
    }

    /// A note with the connections each client opened in its timed runs.
    pub(crate) fn note(&self, c: &Ctx<'_>, what: &str, labels: &[&str]) {
        let parts: Vec<String> = labels
            .iter()
            .zip(&self.opened)
            .map(|(l, n)| format!("{l} {}", n.get()))
            .collect();
        c.report.note(format!(
            "{what}: connections opened during the timed runs: {}",
            parts.join(", ")
        ));
    }
}

/// A row of mpnet against a peer.
pub(crate) fn row(
    scenario: &str,
    unit: &str,
    mpnet: Series,
    peer: Option<Series>,
    higher_is_better: bool,
    target: &str,
) -> Row {
    Row {
        scenario: scenario.into(),
        unit: unit.into(),
        mpnet,
        peer,
        higher_is_better,
        target: target.into(),
    }
}
