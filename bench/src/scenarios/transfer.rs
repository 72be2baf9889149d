//! Download to a file and multipart upload of a file: MB/s (10^6 bytes per
//! second, wall time of the child process) and peak RSS, each client in a
//! child process of its own (see [`crate::child`]).
//!
//! | client | download | upload |
//! |---|---|---|
//! | mpnet-blocking | `download_file` | `upload_file` |
//! | mpnet-smol (feature `smol`) | `download_file` under `smol::block_on` | `upload_file` under `smol::block_on` |
//! | curl (the command) | `curl -o FILE` | `curl -F file=@FILE` |
//! | reqwest | `chunk()` loop into a `std::fs::File` | `multipart::Form::file` (streamed) |
//!
//! Each mpnet transport is compared with each peer.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{row, skipped, take_turns, Ctx, Measure};
use crate::child::{measure, self_command, Measured};
use crate::report::Series;

fn curl_available() -> bool {
    Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What one client's child processes used, run by run.
#[derive(Default)]
struct Usage {
    /// Peak RSS, MiB.
    rss: Vec<f64>,
    /// CPU seconds per GiB moved.
    cpu: Vec<f64>,
}

/// Runs `cmd` measured; returns MB/s for `bytes`, and logs its peak RSS
/// and CPU time in `usage`.
fn run_measured(cmd: &[String], bytes: u64, usage: &mut Usage) -> Result<f64, String> {
    let Measured {
        wall,
        maxrss_kib,
        cpu,
    } = measure(cmd)?;
    usage.rss.push(maxrss_kib as f64 / 1024.0);
    usage
        .cpu
        .push(cpu.as_secs_f64() / (bytes as f64 / f64::from(1u32 << 30)));
    Ok(bytes as f64 / wall.as_secs_f64() / 1e6)
}

fn write_ca(c: &Ctx<'_>) -> Result<String, String> {
    let path = c.dir.join("ca.pem");
    c.server
        .ca()
        .write_pem(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path.to_string_lossy().into_owned())
}

/// Rows: MB/s, peak RSS and CPU of mpnet against each peer.
fn rows(c: &Ctx<'_>, what: &str, speed: Vec<Series>, usage: Vec<Usage>, speed_target: &str) {
    let series = |pick: fn(&Usage) -> &Vec<f64>| -> Vec<Series> {
        speed
            .iter()
            .zip(&usage)
            .map(|(s, u)| Series {
                label: s.label.clone(),
                samples: pick(u).clone(),
                failed: s.failed.clone(),
            })
            .collect()
    };
    let rss = series(|u| &u.rss);
    let cpu = series(|u| &u.cpu);
    let is_mpnet = |s: &Series| s.label.starts_with("mpnet");
    for m in (0..speed.len()).filter(|&i| is_mpnet(&speed[i])) {
        for p in (0..speed.len()).filter(|&i| !is_mpnet(&speed[i])) {
            let target = if speed[p].label == "curl" {
                speed_target
            } else {
                "info"
            };
            c.report.row(row(
                what,
                "MB/s",
                speed[m].clone(),
                Some(speed[p].clone()),
                true,
                target,
            ));
            c.report.row(row(
                what,
                "peak RSS MiB",
                rss[m].clone(),
                Some(rss[p].clone()),
                false,
                "mpnet < 32 MiB",
            ));
            c.report.row(row(
                what,
                "client CPU s/GiB",
                cpu[m].clone(),
                Some(cpu[p].clone()),
                false,
                "info",
            ));
        }
    }
}

/// The series in the order of the usage slots (mpnet-blocking, mpnet-smol,
/// curl, reqwest), with a skipped series where a client did not run.
fn fill_gaps(mut speed: Vec<Series>, has_curl: bool) -> Vec<Series> {
    if !cfg!(feature = "smol") {
        speed.insert(1, skipped("mpnet-smol", "built without the smol feature"));
    }
    if !has_curl {
        speed.insert(2, skipped("curl", "no curl on PATH"));
    }
    speed
}

/// The download scenario.
pub(crate) fn download(c: &Ctx<'_>) -> Result<(), String> {
    let size = c.config.download_size;
    let url = c.server.url(&format!("/bytes/{size}"));
    let ca = write_ca(c)?;
    // Downloads land in their own folder, emptied after every measurement
    // by this process (not by the measured child).
    let dl = c.dir.join("downloads");
    std::fs::create_dir_all(&dl).map_err(|e| format!("{}: {e}", dl.display()))?;
    let clear = || {
        if let Ok(entries) = std::fs::read_dir(&dl) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    };
    let dir = dl.to_string_lossy().into_owned();
    let size_s = size.to_string();
    let curl_out = dl.join("curl-download.bin");
    let mut usage: Vec<Usage> = (0..4).map(|_| Usage::default()).collect();
    let [r_mpnet, r_smol, r_curl, r_reqwest] = &mut usage[..] else {
        return Err("usage slots".into());
    };
    let mpnet_cmd = self_command(&["download", "mpnet-blocking", &url, &ca, &dir, &size_s])?;
    let smol_cmd = self_command(&["download", "mpnet-smol", &url, &ca, &dir, &size_s])?;
    let reqwest_cmd = self_command(&["download", "reqwest", &url, &ca, &dir, &size_s])?;
    let curl_cmd: Vec<String> = [
        "curl",
        "-sS",
        "--fail",
        "--noproxy",
        "*",
        "--cacert",
        &ca,
        "-o",
        &curl_out.to_string_lossy(),
        &url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let has_curl = curl_available();
    let mut clients: Vec<(String, Measure<'_>)> = vec![(
        "mpnet-blocking".into(),
        Box::new(|| {
            let speed = run_measured(&mpnet_cmd, size, r_mpnet);
            clear();
            speed
        }),
    )];
    if cfg!(feature = "smol") {
        clients.push((
            "mpnet-smol".into(),
            Box::new(|| {
                let speed = run_measured(&smol_cmd, size, r_smol);
                clear();
                speed
            }),
        ));
    }
    if has_curl {
        clients.push((
            "curl".into(),
            Box::new(|| {
                let speed = run_measured(&curl_cmd, size, r_curl);
                let len = std::fs::metadata(&curl_out).map(|m| m.len()).unwrap_or(0);
                clear();
                match speed {
                    Ok(s) if len == size => Ok(s),
                    Ok(_) => Err(format!("curl wrote {len} bytes, wanted {size}")),
                    Err(e) => Err(e),
                }
            }),
        ));
    }
    clients.push((
        "reqwest 0.12".into(),
        Box::new(|| {
            let speed = run_measured(&reqwest_cmd, size, r_reqwest);
            clear();
            speed
        }),
    ));
    let speed = fill_gaps(take_turns(c.config.runs, clients), has_curl);
    let what = format!("download {} MiB to a file", size >> 20);
    rows(c, &what, speed, usage, "≥ 1.0x curl");
    Ok(())
}

/// Writes the upload's file once: `size` bytes of a non-repeating pattern.
fn make_upload_file(path: &Path, size: u64) -> Result<(), String> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() == size) {
        return Ok(());
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| e.to_string())?);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for b in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let bytes = x.to_le_bytes();
            b.copy_from_slice(&bytes[..b.len()]);
        }
        let n = usize::try_from(left).map_or(block.len(), |l| l.min(block.len()));
        f.write_all(&block[..n]).map_err(|e| e.to_string())?;
        left -= n as u64;
    }
    f.flush().map_err(|e| e.to_string())
}

/// The upload scenario.
pub(crate) fn upload(c: &Ctx<'_>) -> Result<(), String> {
    let size = c.config.upload_size;
    let url = c.server.url("/upload");
    let ca = write_ca(c)?;
    let file = c.dir.join("upload.bin");
    make_upload_file(&file, size)?;
    let file_s = file.to_string_lossy().into_owned();
    let mut usage: Vec<Usage> = (0..4).map(|_| Usage::default()).collect();
    let [r_mpnet, r_smol, r_curl, r_reqwest] = &mut usage[..] else {
        return Err("usage slots".into());
    };
    let mpnet_cmd = self_command(&["upload", "mpnet-blocking", &url, &ca, &file_s])?;
    let smol_cmd = self_command(&["upload", "mpnet-smol", &url, &ca, &file_s])?;
    let reqwest_cmd = self_command(&["upload", "reqwest", &url, &ca, &file_s])?;
    let answer = c.dir.join("curl-upload-answer.json");
    let form = format!("file=@{file_s}");
    let curl_cmd: Vec<String> = [
        "curl",
        "-sS",
        "--fail",
        "--noproxy",
        "*",
        "--cacert",
        &ca,
        "-F",
        &form,
        "-o",
        &answer.to_string_lossy(),
        &url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let has_curl = curl_available();
    let mut clients: Vec<(String, Measure<'_>)> = vec![(
        "mpnet-blocking".into(),
        Box::new(|| run_measured(&mpnet_cmd, size, r_mpnet)),
    )];
    if cfg!(feature = "smol") {
        clients.push((
            "mpnet-smol".into(),
            Box::new(|| run_measured(&smol_cmd, size, r_smol)),
        ));
    }
    if has_curl {
        clients.push((
            "curl".into(),
            Box::new(|| {
                let speed = run_measured(&curl_cmd, size, r_curl)?;
                let body = std::fs::read_to_string(&answer).unwrap_or_default();
                let _ = std::fs::remove_file(&answer);
                crate::child::check_upload_answer(&body, size)?;
                Ok(speed)
            }),
        ));
    }
    clients.push((
        "reqwest 0.12".into(),
        Box::new(|| run_measured(&reqwest_cmd, size, r_reqwest)),
    ));
    let speed = fill_gaps(take_turns(c.config.runs, clients), has_curl);
    let what = format!("upload {} MiB multipart", size >> 20);
    rows(c, &what, speed, usage, "≥ 1.0x curl");
    let _ = std::fs::remove_file(&file);
    Ok(())
}
