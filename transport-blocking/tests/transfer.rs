//! The shared upload/download table (mpnet-conformance::transfer), run on
//! this transport.

use mpnet_blocking::{Callbacks, Client, Task};
use mpnet_conformance::transfer::{record_progress, Recorder, TransferTransport};
use mpnet_conformance::Control;
use mpnet_core::transfer::{DownloadOptions, DownloadResponse, UploadOptions, UploadResponse};
use mpnet_core::{AppContext, Error};

struct Blocking;

fn with_recorder<T: Clone>(seen: &Recorder) -> Callbacks<T> {
    let (p, h) = (seen.clone(), seen.clone());
    Callbacks::new()
        .progress(move |e| record_progress(&p, e))
        .headers_received(move |_| h.lock().unwrap().headers_received += 1)
}

fn control<T: Clone>(task: &Task<T>, control: Control) {
    match control {
        Control::None | Control::PageGoneAfter(_) => {}
        Control::AbortAfter(d) => {
            std::thread::sleep(d);
            task.abort();
        }
    }
}

impl TransferTransport for Blocking {
    fn name(&self) -> &'static str {
        "blocking"
    }

    fn upload(
        &self,
        ctx: &AppContext,
        opts: UploadOptions,
        c: Control,
        seen: Recorder,
    ) -> Result<UploadResponse, Error> {
        let client = Client::new(ctx.clone()).expect("client");
        let task = client.spawn_upload(opts, with_recorder(&seen));
        control(&task, c);
        task.wait_stopped()
    }

    fn download(
        &self,
        ctx: &AppContext,
        opts: DownloadOptions,
        c: Control,
        seen: Recorder,
    ) -> Result<DownloadResponse, Error> {
        let client = Client::new(ctx.clone()).expect("client");
        let task = client.spawn_download(opts, with_recorder(&seen));
        control(&task, c);
        task.wait_stopped()
    }
}

#[test]
fn transfer_table() {
    mpnet_conformance::transfer::run_all(&Blocking);
}

#[test]
fn httpbin_transfer_interop() {
    mpnet_conformance::httpbin::run_transfer_interop(&Blocking);
}
