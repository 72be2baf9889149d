//! The conformance table of `my.uploadFile` and `my.downloadFile` (SPEC §5,
//! §6), run unchanged by every transport: real files, real loopback
//! servers, every error code, progress rules, and "nothing left behind".

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mpnet_core::transfer::{
    DownloadOptions, DownloadResponse, ProgressEvent, UploadOptions, UploadResponse,
};
use mpnet_core::{Api, AppContext, Error};
use mpnet_testkit::{download_content, pseudo_random_bytes, RawServer, Step, DEFAULT_SEED};

use crate::{Control, Env};

/// What a call gave, with everything its listeners saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Every progress event, in order.
    pub progress: Vec<ProgressEvent>,
    /// How many times `onHeadersReceived` fired.
    pub headers_received: usize,
    /// The progress listener panics after recording (an app's listener
    /// that fails).
    pub progress_listener_panics: bool,
}

/// Shared recorder the transports' listeners write to.
pub type Recorder = Arc<Mutex<Seen>>;

/// What the transports' `onProgressUpdate` listener does with `event`:
/// records it, then panics if the case asked for a failing listener.
pub fn record_progress(seen: &Recorder, event: &ProgressEvent) {
    let panics = {
        let mut s = seen.lock().unwrap_or_else(|p| p.into_inner());
        s.progress.push(*event);
        s.progress_listener_panics
    };
    if panics {
        panic!("the app's progress listener failed");
    }
}

/// What a transport must offer to run the transfer table.
pub trait TransferTransport: Sync {
    /// The transport's name, for reports.
    fn name(&self) -> &'static str;
    /// Runs `my.uploadFile` with listeners that record into `seen`, and
    /// returns once its work has stopped (`wait_stopped`).
    fn upload(
        &self,
        ctx: &AppContext,
        opts: UploadOptions,
        control: Control,
        seen: Recorder,
    ) -> Result<UploadResponse, Error>;
    /// Runs `my.downloadFile` with listeners that record into `seen`, and
    /// returns once its work has stopped (`wait_stopped`: an aborted
    /// download's unfinished file removed).
    fn download(
        &self,
        ctx: &AppContext,
        opts: DownloadOptions,
        control: Control,
        seen: Recorder,
    ) -> Result<DownloadResponse, Error>;
}

/// Folders for one case: files to upload and the temp folder for downloads.
struct Dirs {
    root: PathBuf,
}

impl Dirs {
    fn new(tag: &str) -> Dirs {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let root = std::env::temp_dir().join(format!(
            "mpnet-conf-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(root.join("files/sub")).expect("files dir");
        std::fs::create_dir_all(root.join("temp")).expect("temp dir");
        std::fs::create_dir_all(root.join("outside")).expect("outside dir");
        Dirs { root }
    }
    fn files(&self) -> PathBuf {
        self.root.join("files")
    }
    fn temp(&self) -> PathBuf {
        self.root.join("temp")
    }
    fn ctx(&self, env: &Env) -> AppContext {
        self.builder(env).allow_any_origin().build().expect("ctx")
    }
    fn builder(&self, env: &Env) -> mpnet_core::AppContextBuilder {
        env.builder().read_dir(self.files()).temp_dir(self.temp())
    }
    fn temp_entries(&self) -> Vec<String> {
        std::fs::read_dir(self.temp())
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks the progress rules of SPEC §5: non-decreasing, integer percent,
/// the last event 100 with written == expected == `total`.
fn check_progress(seen: &Seen, total: u64) -> Result<(), String> {
    let last = seen.progress.last().ok_or("no progress event")?;
    if last.progress != 100 || last.total_bytes_written != last.total_bytes_expected_to_write {
        return Err(format!("last progress event {last:?}"));
    }
    if last.total_bytes_written != total {
        return Err(format!(
            "last event says {} bytes, expected {total}",
            last.total_bytes_written
        ));
    }
    for w in seen.progress.windows(2) {
        if w[1].progress < w[0].progress || w[1].total_bytes_written < w[0].total_bytes_written {
            return Err(format!("progress went back: {:?} then {:?}", w[0], w[1]));
        }
    }
    Ok(())
}

fn code<T: std::fmt::Debug>(r: &Result<T, Error>, api: Api) -> Result<u32, String> {
    match r {
        Err(e) => Ok(e.code(api)),
        Ok(v) => Err(format!("succeeded: {v:?}")),
    }
}

fn expect_code<T: std::fmt::Debug>(
    r: &Result<T, Error>,
    api: Api,
    want: u32,
) -> Result<(), String> {
    let got = code(r, api)?;
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "error {got} ({}) instead of {want}",
            r.as_ref().err().map(|e| e.message()).unwrap_or("")
        ))
    }
}

type CaseFn<T> = fn(&T, &Env) -> Result<(), String>;

/// Runs every upload and download case against `transport` and panics with
/// the list of failures, if any.
pub fn run_all<T: TransferTransport>(transport: &T) {
    let env = Env::start();
    let cases: Vec<(&str, CaseFn<T>)> = vec![
        (
            "upload: text file with formData echoes fields and digest",
            upload_text,
        ),
        (
            "upload: 3 MiB binary file keeps every byte, progress to 100",
            upload_binary,
        ),
        ("upload: missing file is 11", |t, env| {
            let d = Dirs::new("u-missing");
            let r = t.upload(
                &d.ctx(env),
                UploadOptions::new(env.https.url("/upload"), "nope.txt", "file"),
                Control::None,
                rec(),
            );
            expect_code(&r, Api::Upload, 11)
        }),
        ("upload: a folder is not a file: 11", |t, env| {
            let d = Dirs::new("u-dir");
            let r = t.upload(
                &d.ctx(env),
                UploadOptions::new(env.https.url("/upload"), "sub", "file"),
                Control::None,
                rec(),
            );
            expect_code(&r, Api::Upload, 11)
        }),
        ("upload: paths outside the read folders are 13", |t, env| {
            let d = Dirs::new("u-outside");
            std::fs::write(d.root.join("outside/secret.txt"), "secret")
                .map_err(|e| e.to_string())?;
            #[cfg(unix)]
            std::os::unix::fs::symlink(
                d.root.join("outside/secret.txt"),
                d.files().join("link.txt"),
            )
            .map_err(|e| e.to_string())?;
            let outside = d.root.join("outside/secret.txt");
            let mut paths = vec![
                "../outside/secret.txt".to_string(),
                "sub/../../outside/secret.txt".into(),
                outside.display().to_string(),
                "/etc/passwd".into(),
            ];
            if cfg!(unix) {
                paths.push("link.txt".into());
            }
            for p in paths {
                let r = t.upload(
                    &d.ctx(env),
                    UploadOptions::new(env.https.url("/upload"), p.clone(), "file"),
                    Control::None,
                    rec(),
                );
                expect_code(&r, Api::Upload, 13).map_err(|e| format!("{p}: {e}"))?;
            }
            Ok(())
        }),
        ("upload: origin not allowed is 13", |t, env| {
            let d = Dirs::new("u-origin");
            std::fs::write(d.files().join("a.txt"), "a").map_err(|e| e.to_string())?;
            let ctx = d
                .builder(env)
                .whitelist(["https://api.example.com"])
                .map_err(|e| e.to_string())?
                .build()
                .map_err(|e| e.to_string())?;
            let r = t.upload(
                &ctx,
                UploadOptions::new(env.https.url("/upload"), "a.txt", "file"),
                Control::None,
                rec(),
            );
            expect_code(&r, Api::Upload, 13)
        }),
        ("upload: status 500 is 12", |t, env| {
            let d = Dirs::new("u-500");
            std::fs::write(d.files().join("a.txt"), "a").map_err(|e| e.to_string())?;
            let r = t.upload(
                &d.ctx(env),
                UploadOptions::new(env.https.url("/status/500"), "a.txt", "file"),
                Control::None,
                rec(),
            );
            expect_code(&r, Api::Upload, 12)
        }),
        ("upload: refused port is 12", |t, env| {
            let d = Dirs::new("u-refused");
            std::fs::write(d.files().join("a.txt"), "a").map_err(|e| e.to_string())?;
            let url = format!("https://127.0.0.1:{}/upload", mpnet_testkit::refused_port());
            let r = t.upload(
                &d.ctx(env),
                UploadOptions::new(url, "a.txt", "file"),
                Control::None,
                rec(),
            );
            expect_code(&r, Api::Upload, 12)
        }),
        ("upload: abort stops writing and is 12", upload_abort),
        (
            "download: file by name, extension from the URL, progress to 100",
            download_named,
        ),
        ("download: /bytes/N digest matches", |t, env| {
            let d = Dirs::new("d-bytes");
            let seen = rec();
            let r = t
                .download(
                    &d.ctx(env),
                    DownloadOptions::new(env.https.url("/bytes/200000")),
                    Control::None,
                    seen.clone(),
                )
                .map_err(|e| format!("failed: {} {}", e.code(Api::Download), e.message()))?;
            let got = std::fs::read(&r.ap_file_path).map_err(|e| e.to_string())?;
            ensure(
                got == pseudo_random_bytes(DEFAULT_SEED, 200_000),
                "bytes differ",
            )?;
            let seen = seen.lock().map_err(|e| e.to_string())?;
            check_progress(&seen, 200_000)
        }),
        (
            "download: unknown length: progress stays 0 until the end",
            |t, env| {
                let d = Dirs::new("d-chunked");
                let seen = rec();
                let r = t
                    .download(
                        &d.ctx(env),
                        DownloadOptions::new(
                            env.https.url("/stream-bytes/150000?chunk_size=10000"),
                        ),
                        Control::None,
                        seen.clone(),
                    )
                    .map_err(|e| format!("failed: {e}"))?;
                ensure(
                    std::fs::metadata(&r.ap_file_path)
                        .map(|m| m.len())
                        .unwrap_or(0)
                        == 150_000,
                    "size",
                )?;
                let seen = seen.lock().map_err(|e| e.to_string())?;
                check_progress(&seen, 150_000)?;
                let early = &seen.progress[..seen.progress.len() - 1];
                ensure(
                    early
                        .iter()
                        .all(|e| e.progress == 0 && e.total_bytes_expected_to_write == 0),
                    "early events not 0",
                )
            },
        ),
        ("download: 404 is 12 and leaves nothing", |t, env| {
            let d = Dirs::new("d-404");
            let r = t.download(
                &d.ctx(env),
                DownloadOptions::new(env.https.url("/status/404")),
                Control::None,
                rec(),
            );
            expect_code(&r, Api::Download, 12)?;
            ensure(
                d.temp_entries().is_empty(),
                &format!("left {:?}", d.temp_entries()),
            )
        }),
        (
            "download: reset mid-body is 12 and leaves nothing",
            |t, env| {
                let d = Dirs::new("d-reset");
                let r = t.download(
                    &d.ctx(env),
                    DownloadOptions::new(env.https.url("/drop-mid-body")),
                    Control::None,
                    rec(),
                );
                expect_code(&r, Api::Download, 12)?;
                ensure(
                    d.temp_entries().is_empty(),
                    &format!("left {:?}", d.temp_entries()),
                )
            },
        ),
        ("download: timeout is 12 and leaves nothing", |t, env| {
            let d = Dirs::new("d-timeout");
            let url = env
                .https
                .url("/download/slow.bin?size=100000&chunk_size=1000&chunk_delay_ms=50");
            let started = Instant::now();
            let r = t.download(
                &d.ctx(env),
                DownloadOptions::new(url).timeout(Duration::from_millis(700)),
                Control::None,
                rec(),
            );
            expect_code(&r, Api::Download, 12)?;
            ensure(
                started.elapsed() < Duration::from_millis(1100),
                &format!("took {:?}", started.elapsed()),
            )?;
            ensure(
                d.temp_entries().is_empty(),
                &format!("left {:?}", d.temp_entries()),
            )
        }),
        ("download: abort is 12 and leaves nothing", |t, env| {
            let d = Dirs::new("d-abort");
            let url = env
                .https
                .url("/download/slow.bin?size=100000&chunk_size=1000&chunk_delay_ms=50");
            let r = t.download(
                &d.ctx(env),
                DownloadOptions::new(url),
                Control::AbortAfter(Duration::from_millis(300)),
                rec(),
            );
            expect_code(&r, Api::Download, 12)?;
            // The transports wait for the call's work to stop
            // (`wait_stopped`): the unfinished file is gone by now.
            ensure(
                d.temp_entries().is_empty(),
                &format!("left {:?}", d.temp_entries()),
            )
        }),
        (
            "download: a progress listener that panics ends the call (12), leaves nothing",
            |t, env| {
                let d = Dirs::new("d-panic");
                let seen = rec();
                seen.lock().unwrap().progress_listener_panics = true;
                let started = Instant::now();
                let r = t.download(
                    &d.ctx(env),
                    DownloadOptions::new(env.https.url("/download/a.bin?size=300000")),
                    Control::None,
                    seen.clone(),
                );
                expect_code(&r, Api::Download, 12)?;
                ensure(
                    started.elapsed() < Duration::from_secs(5),
                    &format!("took {:?}", started.elapsed()),
                )?;
                let progress = seen.lock().unwrap().progress.len();
                ensure(progress == 1, &format!("{progress} progress events"))?;
                ensure(
                    d.temp_entries().is_empty(),
                    &format!("left {:?}", d.temp_entries()),
                )
            },
        ),
        ("download: http:// is 20", |t, env| {
            let d = Dirs::new("d-http");
            let r = t.download(
                &d.ctx(env),
                DownloadOptions::new(env.http.url("/bytes/10")),
                Control::None,
                rec(),
            );
            expect_code(&r, Api::Download, 20)
        }),
        ("download: origin not allowed is 13", |t, env| {
            let d = Dirs::new("d-origin");
            let ctx = d
                .builder(env)
                .whitelist(["https://api.example.com"])
                .map_err(|e| e.to_string())?
                .build()
                .map_err(|e| e.to_string())?;
            let r = t.download(
                &ctx,
                DownloadOptions::new(env.https.url("/bytes/10")),
                Control::None,
                rec(),
            );
            expect_code(&r, Api::Download, 13)
        }),
    ];
    let mut failures = Vec::new();
    for (name, case) in cases {
        let verdict = case(transport, &env);
        println!(
            "[{}] {:<64} {}",
            transport.name(),
            name,
            if verdict.is_ok() { "ok" } else { "FAILED" }
        );
        if let Err(why) = verdict {
            failures.push(format!("{name}: {why}"));
        }
    }
    assert!(
        failures.is_empty(),
        "[{}] {} transfer failures:\n{}",
        transport.name(),
        failures.len(),
        failures.join("\n")
    );
}

fn rec() -> Recorder {
    Arc::new(Mutex::new(Seen::default()))
}

fn ensure(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

fn upload_text<T: TransferTransport>(t: &T, env: &Env) -> Result<(), String> {
    let d = Dirs::new("u-text");
    let content = "hello 支付宝\n".repeat(100);
    std::fs::write(d.files().join("note.txt"), &content).map_err(|e| e.to_string())?;
    let mut form = serde_json::Map::new();
    form.insert("from".into(), "支付宝".into());
    form.insert("n".into(), serde_json::json!(1.0));
    form.insert("obj".into(), serde_json::json!({"a": [1, 2]}));
    let seen = rec();
    let r = t
        .upload(
            &d.ctx(env),
            UploadOptions::new(env.https.url("/upload"), "note.txt", "file").form_data(form),
            Control::None,
            seen.clone(),
        )
        .map_err(|e| format!("failed: {} {}", e.code(Api::Upload), e.message()))?;
    ensure(
        r.status_code == "200",
        &format!("statusCode {}", r.status_code),
    )?;
    let echo: serde_json::Value =
        serde_json::from_str(&r.data).map_err(|e| format!("data not JSON: {e}"))?;
    ensure(
        echo["form"] == serde_json::json!({"from": "支付宝", "n": "1", "obj": "{\"a\":[1,2]}"}),
        &format!("form {}", echo["form"]),
    )?;
    let file = &echo["files"]["file"];
    ensure(
        file["filename"] == "note.txt",
        &format!("filename {}", file["filename"]),
    )?;
    ensure(
        file["contentType"] == "text/plain",
        &format!("contentType {}", file["contentType"]),
    )?;
    ensure(file["size"] == content.len(), "size")?;
    ensure(file["sha256"] == sha256_hex(content.as_bytes()), "sha256")?;
    let seen = seen.lock().map_err(|e| e.to_string())?;
    ensure(
        seen.headers_received == 1,
        &format!("onHeadersReceived fired {} times", seen.headers_received),
    )?;
    let total = echo["contentLength"].as_u64().ok_or("contentLength")?;
    check_progress(&seen, total)
}

fn upload_binary<T: TransferTransport>(t: &T, env: &Env) -> Result<(), String> {
    let d = Dirs::new("u-bin");
    let content = pseudo_random_bytes(42, 3 << 20);
    std::fs::write(d.files().join("sub/blob.png"), &content).map_err(|e| e.to_string())?;
    let seen = rec();
    let r = t
        .upload(
            &d.ctx(env),
            UploadOptions::new(env.https.url("/upload"), "sub/blob.png", "photo"),
            Control::None,
            seen.clone(),
        )
        .map_err(|e| format!("failed: {} {}", e.code(Api::Upload), e.message()))?;
    let echo: serde_json::Value = serde_json::from_str(&r.data).map_err(|e| e.to_string())?;
    let file = &echo["files"]["photo"];
    ensure(
        file["filename"] == "blob.png" && file["contentType"] == "image/png",
        &format!("{file}"),
    )?;
    ensure(file["sha256"] == sha256_hex(&content), "sha256")?;
    let total = echo["contentLength"].as_u64().ok_or("contentLength")?;
    let seen = seen.lock().map_err(|e| e.to_string())?;
    ensure(
        seen.progress.len() > 10,
        &format!("only {} progress events", seen.progress.len()),
    )?;
    check_progress(&seen, total)
}

fn upload_abort<T: TransferTransport>(t: &T, env: &Env) -> Result<(), String> {
    let d = Dirs::new("u-abort");
    std::fs::write(d.files().join("big.bin"), pseudo_random_bytes(1, 64 << 20))
        .map_err(|e| e.to_string())?;
    // A server that reads the head and then nothing: the upload stalls on a
    // full socket buffer until it is aborted.
    let server = RawServer::start_tls(env.ca.leaf(), vec![Step::read_head(), Step::Hang]);
    let started = Instant::now();
    let r = t.upload(
        &d.ctx(env),
        UploadOptions::new(server.url("/upload"), "big.bin", "file"),
        Control::AbortAfter(Duration::from_millis(300)),
        rec(),
    );
    expect_code(&r, Api::Upload, 12)?;
    ensure(
        started.elapsed() < Duration::from_secs(3),
        &format!("abort took {:?}", started.elapsed()),
    )?;
    let msg = r.err().map(|e| e.message().to_string()).unwrap_or_default();
    ensure(
        msg.contains("abort"),
        &format!("message {msg:?} does not say aborted"),
    )?;
    std::thread::sleep(Duration::from_millis(200));
    let before = server.received(0).map(|b| b.len()).unwrap_or(0);
    std::thread::sleep(Duration::from_millis(300));
    let after = server.received(0).map(|b| b.len()).unwrap_or(0);
    ensure(
        before == after,
        &format!("still writing after abort: {before} then {after} bytes"),
    )
}

fn download_named<T: TransferTransport>(t: &T, env: &Env) -> Result<(), String> {
    let d = Dirs::new("d-named");
    let seen = rec();
    let r = t
        .download(
            &d.ctx(env),
            DownloadOptions::new(env.https.url("/download/photo.jpg?size=300000")),
            Control::None,
            seen.clone(),
        )
        .map_err(|e| format!("failed: {} {}", e.code(Api::Download), e.message()))?;
    let path = Path::new(&r.ap_file_path);
    ensure(
        path.starts_with(d.temp()),
        &format!("{} is not in the temp folder", path.display()),
    )?;
    ensure(
        path.extension().is_some_and(|e| e == "jpg"),
        &format!("extension of {}", path.display()),
    )?;
    let got = std::fs::read(path).map_err(|e| e.to_string())?;
    ensure(
        got == download_content("photo.jpg", 300_000),
        "content differs",
    )?;
    ensure(
        d.temp_entries().len() == 1,
        &format!("temp holds {:?}", d.temp_entries()),
    )?;
    let seen = seen.lock().map_err(|e| e.to_string())?;
    check_progress(&seen, 300_000)
}
