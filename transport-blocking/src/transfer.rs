//! `my.uploadFile` and `my.downloadFile` (SPEC §5, §6) on this transport:
//! files opened, read and written in chunks (memory does not grow with file
//! size), the core deciding everything else.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use mpnet_core::http1::HeadBuffers;
use mpnet_core::request::{Method, Profile};
use mpnet_core::task::Completion;
use mpnet_core::transfer::{
    download, sandbox, upload, DownloadFlow, DownloadOptions, DownloadResponse, DownloadStep,
    Segment, UploadOptions, UploadRequest, UploadResponse, UPLOAD_TIMEOUT,
};
use mpnet_core::{AppContext, Error, ErrorKind};

use crate::cancel::Cancel;
use crate::client::ClientInner;
use crate::conn::Conn;
use crate::exchange::{recv_body, Fail};
use crate::hop::{classify, open_and_send, release, Hop};

/// Size of each file read and write.
const FILE_CHUNK: usize = 64 * 1024;

/// Bytes of a download gathered before one write to its file. The buffer
/// writes when the next socket read does not fit, so its writes start at
/// uneven offsets, not on 1 MiB boundaries (which matters in a VM: see
/// `mpnet_core::transfer::download::FILE_WRITE_BATCH`; A/B on the bench VM:
/// a 1,000,000-byte buffer here was no better).
const DOWNLOAD_WRITE_BATCH: usize = 1 << 20;

fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::new(ErrorKind::Unknown, format!("no randomness available: {e}")))?;
    Ok(bytes)
}

/// The readable folders, canonical, leaving out those that do not exist.
fn canonical_dirs(ctx: &AppContext) -> Vec<PathBuf> {
    sandbox::readable_dirs(ctx)
        .iter()
        .filter_map(|d| fs::canonicalize(d).ok())
        .collect()
}

/// Opens the upload's file after the sandbox checks: the real path (links
/// followed) must be inside a readable folder (13) and a regular file (11).
fn open_upload_file(ctx: &AppContext, request: &UploadRequest) -> Result<(File, u64), Error> {
    let path = request.path();
    let canonical = fs::canonicalize(path).map_err(|e| sandbox::open_error(path, &e))?;
    sandbox::check_canonical(&canonical_dirs(ctx), &canonical)?;
    let meta = fs::metadata(&canonical).map_err(|e| sandbox::open_error(path, &e))?;
    if !meta.is_file() {
        return Err(sandbox::not_a_file(path));
    }
    let file = File::open(&canonical).map_err(|e| sandbox::open_error(path, &e))?;
    Ok((file, meta.len()))
}

/// Runs one upload to its result, telling `task` of progress and the
/// response head.
pub(crate) fn upload_file(
    client: &ClientInner,
    opts: &UploadOptions,
    cancel: &Cancel,
    task: Option<&Completion<UploadResponse>>,
) -> Result<UploadResponse, Error> {
    let started = Instant::now();
    let deadline = started + UPLOAD_TIMEOUT;
    let ctx = &client.ctx;
    let request = UploadRequest::new(ctx, opts)?;
    let (mut file, len) = open_upload_file(ctx, &request)?;
    let prepared = request.prepare(len, random()?)?;
    let timeout = upload::timed_out;
    let hop = Hop {
        target: prepared.target(),
        method: Method::Post,
        deadline,
        timeout: &timeout,
    };
    let limits = ctx.limits();
    let mut send = |conn: &mut Conn| {
        let exchange = prepared.exchange(limits);
        conn.write_all(exchange.head(), deadline)?;
        let mut body = prepared.body();
        let mut chunk = vec![0u8; FILE_CHUNK];
        loop {
            if cancel.is_cancelled() {
                // SPEC §5: an aborted upload writes nothing more.
                return Err(Fail::Api(upload::aborted()));
            }
            let written = match body.segment() {
                Segment::Done => break,
                Segment::Bytes(bytes) => {
                    conn.write_all(&bytes, deadline)?;
                    bytes.len()
                }
                Segment::File { len, .. } => {
                    let want = chunk.len().min(usize::try_from(len).unwrap_or(usize::MAX));
                    let n = file
                        .read(&mut chunk[..want])
                        .map_err(|e| Fail::Api(sandbox::read_error(request.path(), e)))?;
                    if n == 0 {
                        return Err(Fail::Api(sandbox::read_error(
                            request.path(),
                            "the file ended before its length",
                        )));
                    }
                    conn.write_all(&chunk[..n], deadline)?;
                    n
                }
            };
            if let Some(event) = body.advance(written as u64) {
                if let Some(t) = task {
                    t.emit_progress(&event);
                }
            }
        }
        conn.flush(deadline)?;
        Ok(exchange.request_sent())
    };
    let mut profile = Profile::default();
    let (mut conn, head, exchange) = open_and_send(
        client,
        &hop,
        cancel,
        started,
        &mut profile,
        &mut send,
        &mut HeadBuffers::new(),
    )?;
    if let Some(t) = task {
        t.emit_headers(&prepared.headers_received(&head));
    }
    let mut collector = prepared.body_collector(&head, limits)?;
    let complete = match exchange.into_body(&head).map_err(Error::from)? {
        mpnet_core::http1::AfterHead::Done(c) => c,
        mpnet_core::http1::AfterHead::Body(b) => {
            recv_body(&mut conn, b, deadline, |d| collector.push(d))
                .map_err(|f| classify(f, &timeout))?
        }
    };
    release(client, conn, complete.reuse.is_keep_alive(), cancel);
    prepared.finish(&head, collector.finish()?)
}

/// Removes the temporary file of a download unless it was renamed.
struct PartFile {
    path: PathBuf,
    kept: bool,
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Runs one download to its result: the body is written to a temporary
/// file in the app's temp folder and renamed into place only when complete;
/// on any failure nothing is left behind (SPEC §6).
pub(crate) fn download_file(
    client: &ClientInner,
    opts: &DownloadOptions,
    cancel: &Cancel,
    task: Option<&Completion<DownloadResponse>>,
) -> Result<DownloadResponse, Error> {
    let started = Instant::now();
    let ctx = &client.ctx;
    let mut flow = DownloadFlow::new(ctx, opts, started)?;
    let mut profile = Profile::default();
    let limits = ctx.limits();
    let (mut conn, body, save) = loop {
        let timeout = || flow.timeout_error();
        let request = flow.request();
        let hop = Hop {
            target: request.target(),
            method: Method::Get,
            deadline: flow.poll_timeout(),
            timeout: &timeout,
        };
        let mut send = |conn: &mut Conn| {
            let exchange = request.exchange(limits);
            conn.write_all(exchange.head(), hop.deadline)?;
            conn.flush(hop.deadline)?;
            Ok(exchange.request_sent())
        };
        let (mut conn, head, exchange) = open_and_send(
            client,
            &hop,
            cancel,
            started,
            &mut profile,
            &mut send,
            &mut HeadBuffers::new(),
        )?;
        let step = flow.on_head(ctx, &head)?;
        let deadline = flow.poll_timeout();
        let body = exchange.into_body(&head).map_err(Error::from)?;
        match step {
            DownloadStep::Redirect { drain } => {
                let reusable = drain
                    && match body {
                        mpnet_core::http1::AfterHead::Done(c) => Some(c),
                        mpnet_core::http1::AfterHead::Body(b) => {
                            recv_body(&mut conn, b, deadline, |_| Ok(())).ok()
                        }
                    }
                    .is_some_and(|c| c.reuse.is_keep_alive());
                release(client, conn, reusable, cancel);
            }
            DownloadStep::Save(save) => break (conn, body, save),
        }
    };
    let deadline = flow.poll_timeout();
    let unique = u64::from_le_bytes(random()?);
    let (temp_path, final_path) = save.paths(unique);
    let mut part = PartFile {
        path: temp_path.clone(),
        kept: false,
    };
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp_path)
        .map_err(|e| download::write_error(&temp_path, &e))?;
    // The body arrives a TLS record or a socket read at a time; gathering
    // it into large writes saves a system call per piece.
    let mut file = io::BufWriter::with_capacity(DOWNLOAD_WRITE_BATCH, file);
    let mut progress = save.progress();
    let mut write = |data: &[u8]| -> Result<(), Error> {
        if cancel.is_cancelled() {
            return Err(download::aborted());
        }
        file.write_all(data)
            .map_err(|e| download::write_error(&temp_path, &e))?;
        if let (Some(event), Some(t)) = (progress.advance(data.len() as u64), task) {
            t.emit_progress(&event);
        }
        Ok(())
    };
    let timeout = || flow.timeout_error();
    let complete = match body {
        mpnet_core::http1::AfterHead::Done(c) => c,
        mpnet_core::http1::AfterHead::Body(b) => {
            recv_body(&mut conn, b, deadline, &mut write).map_err(|f| classify(f, &timeout))?
        }
    };
    release(client, conn, complete.reuse.is_keep_alive(), cancel);
    // Writes what is gathered and reports its error (disk full).
    let file = file
        .into_inner()
        .map_err(|e| download::write_error(&temp_path, e.error()))?;
    drop(file);
    if cancel.is_cancelled() {
        return Err(download::aborted());
    }
    fs::rename(&temp_path, &final_path).map_err(|e| download::write_error(&final_path, &e))?;
    if cancel.is_cancelled() {
        // Aborted while renaming: the task already failed, so nothing stays.
        let _ = fs::remove_file(&final_path);
        return Err(download::aborted());
    }
    part.kept = true;
    if let (Some(event), Some(t)) = (progress.finish(), task) {
        t.emit_progress(&event);
    }
    Ok(flow.finish(final_path))
}
