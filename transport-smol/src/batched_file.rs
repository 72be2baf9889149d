//! A download's file, written on smol's blocking pool in large batches.
//!
//! The body arrives in pieces of a TLS record or a socket read (a few KiB
//! to 16 KiB). Handing each piece to the blocking pool (`smol::Unblock`'s
//! pipe) wakes a pool thread per piece: tens of thousands of thread
//! hand-offs per GiB. Here pieces are gathered into a [`BATCH`]-byte buffer
//! and each full buffer is written by one `smol::unblock` call, while the
//! next buffer fills: at most one write in flight, two buffers in all
//! (memory does not grow with the file), one hand-off per batch.
//!
//! Errors (disk full) are reported by the next [`write_all`] or by
//! [`close`], which waits for every write. Dropping the writer drops the
//! write in flight's result; the file is closed when that write ends.
//!
//! [`write_all`]: BatchedFile::write_all
//! [`close`]: BatchedFile::close

use std::fs::File;
use std::io::{self, Write};

use smol::Task;

/// Bytes gathered before one write to the file.
pub(crate) const BATCH: usize = 1 << 20;

/// What a write on the blocking pool gives back: the file, its buffer
/// (emptied, for the next batch) and the outcome.
type Written = (File, Vec<u8>, io::Result<()>);

/// A file written in batches on the blocking pool. See the module docs.
pub(crate) struct BatchedFile {
    /// The batch being gathered.
    filling: Vec<u8>,
    /// The file, when no write is in flight.
    idle: Option<File>,
    /// The write in flight, if any.
    in_flight: Option<Task<Written>>,
}

impl BatchedFile {
    /// Writes to `file`, which must be open for writing.
    pub(crate) fn new(file: File) -> Self {
        BatchedFile {
            filling: Vec::with_capacity(BATCH),
            idle: Some(file),
            in_flight: None,
        }
    }

    /// Takes all of `data`; full batches go to the file as they fill. An
    /// error is that of an earlier write.
    pub(crate) async fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let room = BATCH.saturating_sub(self.filling.len());
            let (now, rest) = data.split_at(room.min(data.len()));
            self.filling.extend_from_slice(now);
            data = rest;
            if self.filling.len() >= BATCH {
                self.send().await?;
            }
        }
        Ok(())
    }

    /// Writes what was gathered and waits for every write to end: `Ok`
    /// means every byte given to [`write_all`](Self::write_all) is in the
    /// file.
    pub(crate) async fn close(&mut self) -> io::Result<()> {
        if !self.filling.is_empty() {
            self.send().await?;
        }
        self.settle().await.map(drop)
    }

    /// Starts writing the gathered batch once the write in flight is done.
    async fn send(&mut self) -> io::Result<()> {
        let spare = self.settle().await?;
        let mut file = self
            .idle
            .take()
            .ok_or_else(|| io::Error::other("the file was lost by an earlier write"))?;
        let mut batch = std::mem::replace(&mut self.filling, spare);
        self.in_flight = Some(smol::unblock(move || {
            let outcome = file.write_all(&batch);
            batch.clear();
            (file, batch, outcome)
        }));
        Ok(())
    }

    /// Waits for the write in flight, if any, and returns an empty buffer
    /// for the next batch (its buffer, or a new one the first time).
    async fn settle(&mut self) -> io::Result<Vec<u8>> {
        match self.in_flight.take() {
            Some(task) => {
                let (file, buf, outcome) = task.await;
                self.idle = Some(file);
                outcome.map(|()| buf)
            }
            None => Ok(Vec::with_capacity(BATCH)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str) -> (std::path::PathBuf, File) {
        let path =
            std::env::temp_dir().join(format!("mpnet-batched-{}-{name}", std::process::id()));
        let file = File::create(&path).unwrap_or_else(|e| panic!("{e}"));
        (path, file)
    }

    /// Pieces of every size, across batch boundaries, land in order.
    #[test]
    fn pieces_land_in_order_across_batches() {
        let (path, file) = temp_file("order");
        let mut want = Vec::new();
        smol::block_on(async {
            let mut w = BatchedFile::new(file);
            let mut n = 0u32;
            for size in [1, 7, 16 * 1024, BATCH - 3, 5, BATCH, 2 * BATCH + 11, 0, 1] {
                let piece: Vec<u8> = (0..size)
                    .map(|_| {
                        n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                        (n >> 16) as u8
                    })
                    .collect();
                w.write_all(&piece).await.unwrap_or_else(|e| panic!("{e}"));
                want.extend_from_slice(&piece);
            }
            w.close().await.unwrap_or_else(|e| panic!("{e}"));
        });
        let got = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        let _ = std::fs::remove_file(&path);
        assert_eq!(got.len(), want.len());
        assert!(got == want, "the file differs from what was written");
    }

    /// A write that fails (a file opened read-only) is reported, by a later
    /// `write_all` or by `close`, never lost.
    #[test]
    fn a_failed_write_is_reported() {
        let (path, file) = temp_file("error");
        drop(file);
        let read_only = File::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let outcome = smol::block_on(async {
            let mut w = BatchedFile::new(read_only);
            let mut first_error = None;
            for _ in 0..3 {
                if let Err(e) = w.write_all(&vec![1u8; BATCH]).await {
                    first_error = Some(e);
                    break;
                }
            }
            match first_error {
                Some(e) => Err(e),
                None => w.close().await,
            }
        });
        let _ = std::fs::remove_file(&path);
        assert!(outcome.is_err(), "writing to a read-only file must fail");
    }
}
