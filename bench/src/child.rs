//! Child processes, for the peak RSS of a download or an upload.
//!
//! Each transfer runs in a process of its own, under a fresh intermediate:
//!
//! ```text
//! mpnet-bench (server, table)
//!   └─ mpnet-bench --measure -- CMD...          waits, then getrusage(RUSAGE_CHILDREN)
//!        └─ CMD: mpnet-bench --child download mpnet-blocking ...   (or curl ...)
//! ```
//!
//! `RUSAGE_CHILDREN`'s `ru_maxrss` is the largest peak of the children a
//! process has waited for, so the intermediate, whose only child is CMD,
//! reads exactly CMD's peak RSS. Wall time is measured around CMD the same
//! way for every client (process start included, a few ms). `nix` gives
//! `getrusage` behind a safe API, so no `unsafe` is needed here.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mpnet_core::transfer::{DownloadOptions, UploadOptions};

/// What one measured child did.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// From spawn to exit.
    pub wall: Duration,
    /// Peak resident set size, KiB.
    pub maxrss_kib: u64,
    /// CPU time used (user + system).
    pub cpu: Duration,
}

/// The intermediate (`--measure -- CMD...`): runs CMD, prints
/// `wall_ns=N maxrss_kib=N cpu_us=N code=N` on stdout, exits with CMD's
/// code.
pub fn measure_main(args: &[String]) -> i32 {
    let cmd: Vec<&String> = args.iter().skip_while(|a| *a == "--").collect();
    let Some((program, rest)) = cmd.split_first() else {
        eprintln!("--measure needs a command");
        return 2;
    };
    let start = Instant::now();
    let status = Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status();
    let wall = start.elapsed();
    let code = match status {
        Ok(s) => s.code().unwrap_or(-1),
        Err(e) => {
            eprintln!("--measure: cannot run {program}: {e}");
            return 2;
        }
    };
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN);
    let maxrss = usage.as_ref().map(|u| u.max_rss()).unwrap_or(-1);
    let micros = |t: nix::sys::time::TimeVal| t.tv_sec() * 1_000_000 + t.tv_usec();
    let cpu_us = usage
        .as_ref()
        .map(|u| micros(u.user_time()) + micros(u.system_time()))
        .unwrap_or(-1);
    println!(
        "wall_ns={} maxrss_kib={maxrss} cpu_us={cpu_us} code={code}",
        wall.as_nanos()
    );
    let _ = std::io::stdout().flush();
    code
}

/// Runs `cmd` under a fresh `--measure` intermediate (see the module docs).
pub fn measure(cmd: &[String]) -> Result<Measured, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let out = Command::new(exe)
        .arg("--measure")
        .arg("--")
        .args(cmd)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start the measuring child: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> Option<i128> {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
    };
    let code = field("code").ok_or_else(|| format!("no measurement in {text:?}"))?;
    if code != 0 {
        return Err(format!(
            "{} exited with {code}",
            cmd.first().map_or("?", |s| s.as_str())
        ));
    }
    let wall = field("wall_ns").unwrap_or(0);
    let rss = field("maxrss_kib").unwrap_or(-1);
    let cpu = field("cpu_us").unwrap_or(-1);
    Ok(Measured {
        wall: Duration::from_nanos(u64::try_from(wall).unwrap_or(0)),
        maxrss_kib: u64::try_from(rss).unwrap_or(0),
        cpu: Duration::from_micros(u64::try_from(cpu).unwrap_or(0)),
    })
}

/// The command line that re-executes this binary as a child client.
pub fn self_command(args: &[&str]) -> Result<Vec<String>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut cmd = vec![exe.to_string_lossy().into_owned(), "--child".to_string()];
    cmd.extend(args.iter().map(|s| s.to_string()));
    Ok(cmd)
}

/// The child clients (`--child ...`):
///
/// ```text
/// --child download CLIENT URL CA_PEM DIR SIZE   (the file is left in DIR)
/// --child upload   CLIENT URL CA_PEM FILE
/// ```
///
/// CLIENT is `mpnet-blocking`, `mpnet-smol` (feature `smol`) or `reqwest`. Exits 0 when the transfer
/// completed with the expected size.
pub fn child_main(args: &[String]) -> i32 {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match a.as_slice() {
        ["download", client, url, ca, dir, size] => size
            .parse::<u64>()
            .map_err(|e| e.to_string())
            .and_then(|size| download(client, url, Path::new(ca), Path::new(dir), size)),
        ["upload", client, url, ca, file] => upload(client, url, Path::new(ca), Path::new(file)),
        _ => Err(format!("bad --child arguments {a:?}")),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("child {a:?}: {e}");
            1
        }
    }
}

fn origin_of(url: &str) -> Result<&str, String> {
    let rest = url.strip_prefix("https://").ok_or("not an https URL")?;
    let end = rest.find('/').map_or(url.len(), |i| i + "https://".len());
    Ok(&url[..end])
}

/// Checks the downloaded file's size. The parent removes it after the
/// measurement, so that unlinking 1 GiB is not counted as the client's CPU.
fn check_size(path: &Path, size: u64) -> Result<(), String> {
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if len == size {
        Ok(())
    } else {
        Err(format!("downloaded {len} bytes, wanted {size}"))
    }
}

fn download(client: &str, url: &str, ca: &Path, dir: &Path, size: u64) -> Result<(), String> {
    match client {
        "mpnet-blocking" => {
            let c = crate::clients::mpnet_from_pem(origin_of(url)?, ca, dir)?;
            let res = c
                .download_file(DownloadOptions::new(url).timeout(Duration::from_secs(3600)))
                .map_err(|e| e.to_string())?;
            check_size(&res.ap_file_path, size)
        }
        #[cfg(feature = "smol")]
        "mpnet-smol" => {
            let c = crate::clients::mpnet_smol_from_pem(origin_of(url)?, ca, dir)?;
            let res = smol::block_on(
                c.download_file(DownloadOptions::new(url).timeout(Duration::from_secs(3600))),
            )
            .map_err(|e| e.to_string())?;
            check_size(&res.ap_file_path, size)
        }
        "reqwest" => {
            let c = crate::clients::reqwest_from_pem(ca)?;
            let path: PathBuf = dir.join("reqwest-download.bin");
            let rt = crate::clients::tokio_current_thread()?;
            rt.block_on(async {
                let mut res = c
                    .get(url)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| e.to_string())?;
                let mut file = std::fs::File::create(&path).map_err(|e| e.to_string())?;
                while let Some(chunk) = res.chunk().await.map_err(|e| e.to_string())? {
                    file.write_all(&chunk).map_err(|e| e.to_string())?;
                }
                file.flush().map_err(|e| e.to_string())
            })?;
            check_size(&path, size)
        }
        other => Err(format!("no download client {other:?}")),
    }
}

fn upload(client: &str, url: &str, ca: &Path, file: &Path) -> Result<(), String> {
    let size = std::fs::metadata(file).map_err(|e| e.to_string())?.len();
    let body = match client {
        "mpnet-blocking" => {
            let dir = file.parent().ok_or("file has no folder")?;
            let c = crate::clients::mpnet_from_pem(origin_of(url)?, ca, dir)?;
            let res = c
                .upload_file(UploadOptions::new(url, file.to_string_lossy(), "file"))
                .map_err(|e| e.to_string())?;
            res.data
        }
        #[cfg(feature = "smol")]
        "mpnet-smol" => {
            let dir = file.parent().ok_or("file has no folder")?;
            let c = crate::clients::mpnet_smol_from_pem(origin_of(url)?, ca, dir)?;
            let opts = UploadOptions::new(url, file.to_string_lossy(), "file");
            smol::block_on(c.upload_file(opts))
                .map_err(|e| e.to_string())?
                .data
        }
        "reqwest" => {
            let c = crate::clients::reqwest_from_pem(ca)?;
            let rt = crate::clients::tokio_current_thread()?;
            rt.block_on(async {
                let form = reqwest::multipart::Form::new()
                    .file("file", file)
                    .await
                    .map_err(|e| e.to_string())?;
                c.post(url)
                    .multipart(form)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| e.to_string())?
                    .text()
                    .await
                    .map_err(|e| e.to_string())
            })?
        }
        other => return Err(format!("no upload client {other:?}")),
    };
    check_upload_answer(&body, size)
}

/// Checks the server's `{"length":N}`: the multipart body holds the file.
pub fn check_upload_answer(body: &str, size: u64) -> Result<(), String> {
    let n = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("length").and_then(serde_json::Value::as_u64))
        .ok_or_else(|| format!("unexpected upload answer {body:?}"))?;
    if n >= size {
        Ok(())
    } else {
        Err(format!("server got {n} bytes, the file has {size}"))
    }
}
