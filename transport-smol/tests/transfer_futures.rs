//! The transfer futures ([`Client::upload_file`], [`Client::download_file`])
//! are `Send` and run wherever they are awaited; a download future dropped
//! at any await point leaves nothing behind in the temp folder (its
//! unfinished file is removed, also mid-create and mid-rename), and the
//! client works on.

use std::path::PathBuf;
use std::time::Duration;

use async_io::Timer;
use futures_lite::future;
use mpnet_core::transfer::{DownloadOptions, UploadOptions};
use mpnet_core::AppContext;
use mpnet_smol::{Callbacks, Client};
use mpnet_testkit::{download_content, HttpsServer, TestCa};

fn assert_send<T: Send>(_: &T) {}

/// A folder of files to upload and a temp folder for downloads.
struct Dirs {
    root: PathBuf,
}

impl Dirs {
    fn new(tag: &str) -> Dirs {
        let root = std::env::temp_dir().join(format!("mpnet-smol-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("files")).unwrap();
        std::fs::create_dir_all(root.join("temp")).unwrap();
        Dirs { root }
    }
    fn files(&self) -> PathBuf {
        self.root.join("files")
    }
    fn temp(&self) -> PathBuf {
        self.root.join("temp")
    }
    fn temp_entries(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.temp())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    }
    fn ctx(&self, ca: &TestCa) -> AppContext {
        AppContext::builder("2021000000000000", "1.0.0")
            .allow_any_origin()
            .add_roots_pem(&ca.cert_pem())
            .expect("test CA")
            .use_web_pki_roots(false)
            .read_dir(self.files())
            .temp_dir(self.temp())
            .build()
            .expect("context")
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[test]
fn the_transfer_futures_are_send() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    let dirs = Dirs::new("send");
    let client = Client::new(dirs.ctx(&ca)).unwrap();
    let up = client.upload_file(UploadOptions::new(server.url("/upload"), "a.txt", "file"));
    assert_send(&up);
    let down = client.download_file(DownloadOptions::new(server.url("/bytes/10")));
    assert_send(&down);
    let task = client.spawn_download(
        DownloadOptions::new(server.url("/bytes/10")),
        Callbacks::new(),
    );
    assert_send(&task.result());
    task.abort();
}

#[test]
fn upload_and_download_awaited_directly() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    let dirs = Dirs::new("direct");
    std::fs::write(dirs.files().join("note.txt"), "hello 支付宝").unwrap();
    let client = Client::new(dirs.ctx(&ca)).unwrap();
    let up = smol::block_on(client.upload_file(UploadOptions::new(
        server.url("/upload"),
        "note.txt",
        "file",
    )))
    .unwrap();
    assert_eq!(up.status_code, "200");
    let echo: serde_json::Value = serde_json::from_str(&up.data).unwrap();
    assert_eq!(echo["files"]["file"]["size"], "hello 支付宝".len());
    let down = future::block_on(client.download_file(DownloadOptions::new(
        server.url("/download/photo.jpg?size=200000"),
    )))
    .unwrap();
    assert_eq!(
        std::fs::read(&down.ap_file_path).unwrap(),
        download_content("photo.jpg", 200_000)
    );
    assert_eq!(dirs.temp_entries(), [PathBuf::from(&down.ap_file_path)]);
}

#[test]
fn a_dropped_download_leaves_nothing_behind() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    let dirs = Dirs::new("dropped");
    let client = Client::new(dirs.ctx(&ca)).unwrap();
    // About 200 ms of body in 100 paced chunks, then a quick one.
    let urls = [
        server.url("/download/slow.bin?size=100000&chunk_size=1000&chunk_delay_ms=2"),
        server.url("/download/quick.bin?size=300000"),
    ];
    let (mut dropped, mut completed) = (0, 0);
    smol::block_on(async {
        for url in &urls {
            for ms in [0, 1, 2, 3, 5, 8, 12, 20, 30, 50, 80, 120, 200, 300, 500] {
                let call = async { Some(client.download_file(DownloadOptions::new(url)).await) };
                let timer = async {
                    Timer::after(Duration::from_millis(ms)).await;
                    None
                };
                match future::or(call, timer).await {
                    None => {
                        dropped += 1;
                        let left = dirs.temp_entries();
                        assert!(left.is_empty(), "dropped after {ms} ms: left {left:?}");
                    }
                    Some(result) => {
                        completed += 1;
                        let r = result.unwrap_or_else(|e| panic!("after {ms} ms: {e}"));
                        assert_eq!(dirs.temp_entries(), [PathBuf::from(&r.ap_file_path)]);
                        std::fs::remove_file(&r.ap_file_path).unwrap();
                    }
                }
            }
        }
        // The client works on.
        let r = client
            .download_file(DownloadOptions::new(&urls[1]))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read(&r.ap_file_path).unwrap(),
            download_content("quick.bin", 300_000)
        );
    });
    assert!(dropped >= 5, "only {dropped} dropped");
    assert!(completed >= 2, "only {completed} completed");
}
