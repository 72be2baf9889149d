//! One client over either transport, so every subcommand (and the tour)
//! runs the same code on `--transport blocking` and `--transport smol`.
//! The two crates have the same API; this only forwards.

use std::sync::Arc;

use mpnet_core::request::{RequestOptions, Response};
use mpnet_core::task::Callbacks;
use mpnet_core::transfer::{DownloadOptions, DownloadResponse, UploadOptions, UploadResponse};
use mpnet_core::ws::listeners::SocketListeners;
use mpnet_core::ws::{CloseOptions, ConnectOptions, SendOptions};
use mpnet_core::{AppContext, Error};

use crate::Transport;

/// A client of either transport.
#[derive(Clone)]
pub enum Net {
    /// `mpnet-blocking`.
    Blocking(mpnet_blocking::Client),
    /// `mpnet-smol` (futures run with `smol::block_on`).
    Smol(mpnet_smol::Client),
}

/// A started call that can be aborted and waited for.
pub trait Handle<T>: Send + Sync {
    /// `task.abort()`.
    fn abort(&self);
    /// Waits for the result.
    fn wait(&self) -> Result<T, Error>;
    /// Waits for the result and for the call's work to stop (an aborted
    /// download's unfinished file removed).
    fn wait_stopped(&self) -> Result<T, Error>;
}

impl<T: Clone + Send + 'static> Handle<T> for mpnet_blocking::Task<T> {
    fn abort(&self) {
        mpnet_blocking::Task::abort(self)
    }
    fn wait(&self) -> Result<T, Error> {
        mpnet_blocking::Task::wait(self)
    }
    fn wait_stopped(&self) -> Result<T, Error> {
        mpnet_blocking::Task::wait_stopped(self)
    }
}

impl<T: Clone + Send + 'static> Handle<T> for mpnet_smol::Task<T> {
    fn abort(&self) {
        mpnet_smol::Task::abort(self)
    }
    fn wait(&self) -> Result<T, Error> {
        mpnet_smol::Task::wait(self)
    }
    fn wait_stopped(&self) -> Result<T, Error> {
        mpnet_smol::Task::wait_stopped(self)
    }
}

/// A connected socket (the app socket or a task).
pub trait Socket: Send + Sync {
    /// Waits for the connect's result.
    fn wait_connected(&self) -> Result<(), Error>;
    /// `SocketTask.send`.
    fn send(&self, opts: &SendOptions) -> Result<(), Error>;
    /// `SocketTask.close`.
    fn close(&self, opts: &CloseOptions) -> Result<(), Error>;
}

impl Socket for mpnet_blocking::SocketTask {
    fn wait_connected(&self) -> Result<(), Error> {
        mpnet_blocking::SocketTask::wait_connected(self)
    }
    fn send(&self, opts: &SendOptions) -> Result<(), Error> {
        mpnet_blocking::SocketTask::send(self, opts)
    }
    fn close(&self, opts: &CloseOptions) -> Result<(), Error> {
        mpnet_blocking::SocketTask::close(self, opts)
    }
}

impl Socket for mpnet_smol::SocketTask {
    fn wait_connected(&self) -> Result<(), Error> {
        mpnet_smol::SocketTask::wait_connected(self)
    }
    fn send(&self, opts: &SendOptions) -> Result<(), Error> {
        mpnet_smol::SocketTask::send(self, opts)
    }
    fn close(&self, opts: &CloseOptions) -> Result<(), Error> {
        mpnet_smol::SocketTask::close(self, opts)
    }
}

impl Net {
    /// A client of `transport` for `ctx`. `Err` is a usage error.
    pub fn new(transport: Transport, ctx: AppContext) -> Result<Net, String> {
        Ok(match transport {
            Transport::Blocking => {
                Net::Blocking(mpnet_blocking::Client::new(ctx).map_err(|e| e.to_string())?)
            }
            Transport::Smol => Net::Smol(mpnet_smol::Client::new(ctx).map_err(|e| e.to_string())?),
        })
    }

    /// `my.request`, waiting for the result.
    pub fn request(&self, opts: RequestOptions) -> Result<Response, Error> {
        match self {
            Net::Blocking(c) => c.request(opts),
            Net::Smol(c) => smol::block_on(c.request(opts)),
        }
    }

    /// `my.request` in the callback style.
    pub fn spawn_request(
        &self,
        opts: RequestOptions,
        cb: Callbacks<Response>,
    ) -> Box<dyn Handle<Response>> {
        match self {
            Net::Blocking(c) => Box::new(c.spawn_request(opts, cb)),
            Net::Smol(c) => Box::new(c.spawn_request(opts, cb)),
        }
    }

    /// `my.uploadFile` in the callback style.
    pub fn spawn_upload(
        &self,
        opts: UploadOptions,
        cb: Callbacks<UploadResponse>,
    ) -> Result<Arc<dyn Handle<UploadResponse>>, String> {
        match self {
            Net::Blocking(c) => Ok(Arc::new(c.spawn_upload(opts, cb))),
            Net::Smol(c) => Ok(Arc::new(c.spawn_upload(opts, cb))),
        }
    }

    /// `my.downloadFile` in the callback style.
    pub fn spawn_download(
        &self,
        opts: DownloadOptions,
        cb: Callbacks<DownloadResponse>,
    ) -> Result<Arc<dyn Handle<DownloadResponse>>, String> {
        match self {
            Net::Blocking(c) => Ok(Arc::new(c.spawn_download(opts, cb))),
            Net::Smol(c) => Ok(Arc::new(c.spawn_download(opts, cb))),
        }
    }

    /// `my.connectSocket`, with a task's own listeners registered first.
    pub fn connect_socket(
        &self,
        opts: ConnectOptions,
        cb: Callbacks<()>,
        listeners: SocketListeners,
    ) -> Result<Arc<dyn Socket>, String> {
        match self {
            Net::Blocking(c) => Ok(Arc::new(c.connect_socket_with(opts, cb, listeners))),
            Net::Smol(c) => Ok(Arc::new(c.connect_socket_with(opts, cb, listeners))),
        }
    }
}
