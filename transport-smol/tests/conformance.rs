//! The shared conformance table (mpnet-conformance), run on this transport.

use std::time::Duration;

use mpnet_conformance::{Control, EachResult, Transport};
use mpnet_core::request::{RequestOptions, Response};
use mpnet_core::{AppContext, Error};
use mpnet_smol::{Callbacks, Client, PageId};

struct Smol;

impl Transport for Smol {
    fn name(&self) -> &'static str {
        "smol"
    }

    fn request(
        &self,
        ctx: &AppContext,
        opts: RequestOptions,
        control: Control,
    ) -> Result<Response, Error> {
        let client = Client::new(ctx.clone()).expect("client");
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
        let client = Client::new(ctx.clone()).expect("client");
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
        let client = Client::new(ctx.clone()).expect("client");
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
    mpnet_conformance::run_request_into(&Smol);
}

#[test]
fn conformance_table() {
    mpnet_conformance::run_all(&Smol);
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
    mpnet_conformance::httpbin::run_interop(&Smol);
}
