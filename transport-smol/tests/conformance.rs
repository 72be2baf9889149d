//! The shared conformance table (mpnet-conformance), run on this transport.

use std::time::Duration;

use mpnet_conformance::{Control, EachResult, Transport};
use mpnet_core::request::{RequestOptions, Response};
use mpnet_core::{AppContext, Error};
use mpnet_smol::{Callbacks, Client, PageId};

/// The transport, its clients polling for up to the given time before a
/// read waits (`Client::set_read_spin`; `None`: the default).
struct Smol(Option<Duration>);

impl Smol {
    fn client(&self, ctx: &AppContext) -> Client {
        let client = Client::new(ctx.clone()).expect("client");
        if let Some(spin) = self.0 {
            client.set_read_spin(spin);
        }
        client
    }
}

impl Transport for Smol {
    fn name(&self) -> &'static str {
        if self.0.is_some_and(|d| d.is_zero()) {
            "smol, no read poll"
        } else {
            "smol"
        }
    }

    fn request(
        &self,
        ctx: &AppContext,
        opts: RequestOptions,
        control: Control,
    ) -> Result<Response, Error> {
        let client = self.client(ctx);
        let page = PageId(7);
        let task = client.spawn_request_on_page(page, opts, Callbacks::new());
        match control {
            Control::None => {}
            Control::AbortAfter(d) => {
                std::thread::sleep(d);
                task.abort();
            }
            Control::PageGoneAfter(d) => {
                std::thread::sleep(d);
                client.page_gone(page);
            }
        }
        task.wait()
    }

    fn request_many(
        &self,
        ctx: &AppContext,
        opts: Vec<RequestOptions>,
    ) -> Vec<Result<Response, Error>> {
        let client = self.client(ctx);
        futures_lite::future::block_on(async {
            let mut results = Vec::new();
            for o in opts {
                results.push(client.request(o).await);
            }
            results
        })
    }

    fn request_into_many(
        &self,
        ctx: &AppContext,
        opts: &[RequestOptions],
        out: &mut Response,
        each: &mut EachResult<'_>,
    ) {
        let client = self.client(ctx);
        futures_lite::future::block_on(async {
            for (i, o) in opts.iter().enumerate() {
                let result = client.request_into(o, out).await;
                each(i, result, out);
            }
        })
    }
}

#[test]
fn request_into_matches_request() {
    mpnet_conformance::run_request_into(&Smol(None));
}

#[test]
fn conformance_table() {
    mpnet_conformance::run_all(&Smol(None));
}

/// The same table with every read waiting at once (`set_read_spin(0)`):
/// both ways a read can wait behave alike.
#[test]
fn conformance_table_without_the_read_poll() {
    mpnet_conformance::run_all(&Smol(Some(Duration::ZERO)));
}

#[test]
fn complete_runs_exactly_once_even_when_aborted_late() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let env = mpnet_conformance::Env::start();
    let client = Client::new(env.ctx()).unwrap();
    let completes = Arc::new(AtomicUsize::new(0));
    let c = completes.clone();
    let task = client.spawn_request(
        RequestOptions::new(env.https.url("/get")),
        Callbacks::new().complete(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        }),
    );
    let result = task.wait();
    assert!(result.is_ok());
    task.abort();
    task.abort();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(completes.load(Ordering::SeqCst), 1);
    assert!(
        task.wait().is_ok(),
        "abort after completion changes nothing"
    );
}

#[test]
fn httpbin_interop() {
    mpnet_conformance::httpbin::run_interop(&Smol(None));
}
