//! `my.uploadFile` and `my.downloadFile` (SPEC §5, §6) on this transport:
//! files opened, read ([`BatchedReader`]) and written ([`BatchedFile`]) in
//! batches on smol's blocking-I/O pool (memory does not grow with file
//! size), so the executor never waits on the disk; the core decides
//! everything else.
//!
//! Cancellation is dropping, as for `my.request`: an upload's future
//! dropped (abort) writes nothing more; a download's future dropped removes
//! its unfinished file ([`PartFile`]).

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mpnet_core::http1::{state, AfterHead, Exchange, HeadBuffers};
use mpnet_core::request::{Method, Profile};
use mpnet_core::task::Completion;
use mpnet_core::transfer::{
    download, sandbox, upload, DownloadFlow, DownloadOptions, DownloadResponse, DownloadStep,
    PreparedDownload, PreparedUpload, Progress, Segment, UploadOptions, UploadRequest,
    UploadResponse, UPLOAD_TIMEOUT,
};
use mpnet_core::{AppContext, Error, ErrorKind, Limits};

use crate::batched_file::{BatchedFile, BatchedReader};
use crate::client::ClientInner;
use crate::conn::Conn;
use crate::exchange::{recv_body, recv_body_to, Fail, Sink};
use crate::hop::{classify, open_and_send, release, Hop, Outgoing};

/// Most bytes of an upload's file written to the socket at a time (and
/// so between two progress events).
const FILE_CHUNK: usize = 64 * 1024;

fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::new(ErrorKind::Unknown, format!("no randomness available: {e}")))?;
    Ok(bytes)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The readable folders, canonical, leaving out those that do not exist.
fn canonical_dirs(dirs: &[PathBuf]) -> Vec<PathBuf> {
    dirs.iter()
        .filter_map(|d| fs::canonicalize(d).ok())
        .collect()
}

/// Opens the upload's file after the sandbox checks (on the blocking pool):
/// the real path (links followed) must be inside a readable folder (13) and
/// a regular file (11).
async fn open_upload_file(
    ctx: &AppContext,
    request: &UploadRequest,
) -> Result<(BatchedReader, u64), Error> {
    let dirs = sandbox::readable_dirs(ctx);
    let path = request.path().to_path_buf();
    let (file, len) = smol::unblock(move || {
        let canonical = fs::canonicalize(&path).map_err(|e| sandbox::open_error(&path, &e))?;
        sandbox::check_canonical(&canonical_dirs(&dirs), &canonical)?;
        let meta = fs::metadata(&canonical).map_err(|e| sandbox::open_error(&path, &e))?;
        if !meta.is_file() {
            return Err(sandbox::not_a_file(&path));
        }
        let file = File::open(&canonical).map_err(|e| sandbox::open_error(&path, &e))?;
        Ok::<_, Error>((file, meta.len()))
    })
    .await?;
    Ok((BatchedReader::new(file, len), len))
}

/// What an upload's hop writes: the head, then the multipart body with the
/// file read in chunks, telling the task of progress.
struct SendUpload<'a> {
    prepared: &'a PreparedUpload,
    limits: &'a Limits,
    deadline: Instant,
    file: &'a mut BatchedReader,
    path: &'a Path,
    task: Option<&'a Completion<UploadResponse>>,
}

impl Outgoing for SendUpload<'_> {
    async fn send<'c>(
        &'c mut self,
        conn: &'c mut Conn,
    ) -> Result<Exchange<state::RecvResponse>, Fail> {
        let deadline = self.deadline;
        let exchange = self.prepared.exchange(self.limits);
        conn.write_all(exchange.head(), deadline).await?;
        let mut body = self.prepared.body();
        // SPEC §5: an aborted upload writes nothing more; abort drops
        // this future at its next await.
        loop {
            let written = match body.segment() {
                Segment::Done => break,
                Segment::Bytes(bytes) => {
                    conn.write_all(&bytes, deadline).await?;
                    bytes.len()
                }
                Segment::File { len, .. } => {
                    // 64 KiB pieces of the batch read: progress as often as before.
                    let want = usize::try_from(len).map_or(FILE_CHUNK, |l| l.min(FILE_CHUNK));
                    let piece = self
                        .file
                        .read(want)
                        .await
                        .map_err(|e| Fail::Api(sandbox::read_error(self.path, e)))?;
                    if piece.is_empty() {
                        return Err(Fail::Api(sandbox::read_error(
                            self.path,
                            "the file ended before its length",
                        )));
                    }
                    conn.write_all(piece, deadline).await?;
                    piece.len()
                }
            };
            if let Some(event) = body.advance(written as u64) {
                if let Some(t) = self.task {
                    t.emit_progress(&event);
                }
            }
        }
        conn.flush(deadline).await?;
        Ok(exchange.request_sent())
    }
}

/// Runs one upload to its result, telling `task` of progress and the
/// response head.
pub(crate) async fn upload_file(
    client: &ClientInner,
    opts: &UploadOptions,
    task: Option<&Completion<UploadResponse>>,
) -> Result<UploadResponse, Error> {
    let started = Instant::now();
    let deadline = started + UPLOAD_TIMEOUT;
    let ctx = &client.ctx;
    let request = UploadRequest::new(ctx, opts)?;
    let (mut file, len) = open_upload_file(ctx, &request).await?;
    let prepared = request.prepare(len, random()?)?;
    let timeout = upload::timed_out;
    let hop = Hop {
        target: prepared.target(),
        method: Method::Post,
        deadline,
        timeout: &timeout,
    };
    let limits = ctx.limits();
    let mut send = SendUpload {
        prepared: &prepared,
        limits,
        deadline,
        file: &mut file,
        path: request.path(),
        task,
    };
    let mut profile = Profile::default();
    let (mut conn, head, exchange) = open_and_send(
        client,
        &hop,
        started,
        &mut profile,
        &mut send,
        &mut HeadBuffers::new(),
    )
    .await?;
    if let Some(t) = task {
        t.emit_headers(&prepared.headers_received(&head));
    }
    let mut collector = prepared.body_collector(&head, limits)?;
    let complete = match exchange.into_body(&head).map_err(Error::from)? {
        AfterHead::Done(c) => c,
        AfterHead::Body(b) => recv_body(&mut conn, b, deadline, |d| collector.push(d))
            .await
            .map_err(|f| classify(f, &timeout))?,
    };
    release(client, conn, complete.reuse.is_keep_alive());
    prepared.finish(&head, collector.finish()?)
}

/// What a download's hop writes: the head only.
struct SendDownload<'a> {
    request: &'a PreparedDownload,
    limits: &'a Limits,
    deadline: Instant,
}

impl Outgoing for SendDownload<'_> {
    async fn send<'c>(
        &'c mut self,
        conn: &'c mut Conn,
    ) -> Result<Exchange<state::RecvResponse>, Fail> {
        let exchange = self.request.exchange(self.limits);
        conn.write_all(exchange.head(), self.deadline).await?;
        conn.flush(self.deadline).await?;
        Ok(exchange.request_sent())
    }
}

/// The temporary file of a download. Removed unless renamed into place,
/// also when the download's future is dropped mid-way (abort, an executor
/// shutting down): `Drop` removes it with `std::fs::remove_file`, a
/// metadata operation short enough for an executor thread. Creating and
/// renaming run on the blocking pool under a lock `Drop` takes too, so a
/// create or rename that finishes after the future was dropped cannot
/// leave a file behind.
struct PartFile {
    temp: PathBuf,
    state: Arc<Mutex<PartState>>,
    kept: bool,
}

#[derive(Default)]
struct PartState {
    /// The download's future is gone: create and rename do nothing more.
    dropped: bool,
    created: bool,
    /// Renamed into place, and not yet handed to the caller.
    renamed_to: Option<PathBuf>,
}

impl PartFile {
    fn new(temp: PathBuf) -> Self {
        PartFile {
            temp,
            state: Arc::default(),
            kept: false,
        }
    }

    /// Creates the file (it must not exist yet).
    async fn create(&self) -> io::Result<File> {
        let (state, temp) = (self.state.clone(), self.temp.clone());
        smol::unblock(move || {
            let mut st = lock(&state);
            if st.dropped {
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "download dropped",
                ));
            }
            let file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
            st.created = true;
            Ok(file)
        })
        .await
    }

    /// Renames the file to `final_path`; from then on it is the caller's.
    async fn commit(&mut self, final_path: &Path) -> io::Result<()> {
        let (state, temp, to) = (
            self.state.clone(),
            self.temp.clone(),
            final_path.to_path_buf(),
        );
        smol::unblock(move || {
            let mut st = lock(&state);
            if st.dropped {
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "download dropped",
                ));
            }
            fs::rename(&temp, &to)?;
            st.renamed_to = Some(to);
            Ok(())
        })
        .await?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        let mut st = lock(&self.state);
        st.dropped = true;
        if st.created {
            let _ = fs::remove_file(&self.temp);
        }
        if let Some(renamed) = st.renamed_to.take() {
            let _ = fs::remove_file(renamed);
        }
    }
}

/// A download's body going to its file on the blocking pool, with progress.
struct FileSink<'a> {
    file: BatchedFile,
    path: &'a Path,
    progress: Progress,
    task: Option<&'a Completion<DownloadResponse>>,
}

impl Sink for FileSink<'_> {
    async fn push<'a>(&'a mut self, data: &'a [u8]) -> Result<(), Error> {
        self.file
            .write_all(data)
            .await
            .map_err(|e| download::write_error(self.path, &e))?;
        if let (Some(event), Some(t)) = (self.progress.advance(data.len() as u64), self.task) {
            t.emit_progress(&event);
        }
        Ok(())
    }
}

/// Runs one download to its result: the body is written to a temporary
/// file in the app's temp folder and renamed into place only when complete;
/// on any failure, and when the future is dropped, nothing is left behind
/// (SPEC §6).
pub(crate) async fn download_file(
    client: &ClientInner,
    opts: &DownloadOptions,
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
        let mut send = SendDownload {
            request,
            limits,
            deadline: hop.deadline,
        };
        let (mut conn, head, exchange) = open_and_send(
            client,
            &hop,
            started,
            &mut profile,
            &mut send,
            &mut HeadBuffers::new(),
        )
        .await?;
        let step = flow.on_head(ctx, &head)?;
        let deadline = flow.poll_timeout();
        let body = exchange.into_body(&head).map_err(Error::from)?;
        match step {
            DownloadStep::Redirect { drain } => {
                let reusable = drain
                    && match body {
                        AfterHead::Done(c) => Some(c),
                        AfterHead::Body(b) => {
                            recv_body(&mut conn, b, deadline, |_| Ok(())).await.ok()
                        }
                    }
                    .is_some_and(|c| c.reuse.is_keep_alive());
                release(client, conn, reusable);
            }
            DownloadStep::Save(save) => break (conn, body, save),
        }
    };
    let deadline = flow.poll_timeout();
    let unique = u64::from_le_bytes(random()?);
    let (temp_path, final_path) = save.paths(unique);
    let mut part = PartFile::new(temp_path.clone());
    let file = part
        .create()
        .await
        .map_err(|e| download::write_error(&temp_path, &e))?;
    let mut sink = FileSink {
        file: BatchedFile::new(file),
        path: &temp_path,
        progress: save.progress(),
        task,
    };
    let timeout = || flow.timeout_error();
    let complete = match body {
        AfterHead::Done(c) => c,
        AfterHead::Body(b) => recv_body_to(&mut conn, b, deadline, &mut sink)
            .await
            .map_err(|f| classify(f, &timeout))?,
    };
    release(client, conn, complete.reuse.is_keep_alive());
    let FileSink {
        mut file,
        mut progress,
        ..
    } = sink;
    // Closing writes the last batch, waits for every write and reports
    // their error (disk full).
    file.close()
        .await
        .map_err(|e| download::write_error(&temp_path, &e))?;
    part.commit(&final_path)
        .await
        .map_err(|e| download::write_error(&final_path, &e))?;
    if let (Some(event), Some(t)) = (progress.finish(), task) {
        t.emit_progress(&event);
    }
    Ok(flow.finish(final_path))
}
