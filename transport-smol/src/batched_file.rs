//! Files read and written on smol's blocking pool in large batches: a
//! download's file ([`BatchedFile`]) and an upload's ([`BatchedReader`]).
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
//! Reading is the mirror image: one batch is read ahead on the blocking
//! pool while the previous one goes to the socket, straight from the
//! buffer the file was read into.
//!
//! [`write_all`]: BatchedFile::write_all
//! [`close`]: BatchedFile::close

use std::fs::File;
use std::io::{self, Read as _, Write};

use mpnet_core::transfer::download::FILE_WRITE_BATCH;
use smol::Task;

/// Bytes gathered before one write to the file, and read at once for an
/// upload ([`FILE_WRITE_BATCH`]: not a power of two, see there).
pub(crate) const BATCH: usize = FILE_WRITE_BATCH;

/// A read or write of one batch on the blocking pool. It gives back the
/// file, the buffer (for a write: emptied, for the next batch; for a read:
/// the batch read) and the outcome.
type PoolIo = Task<(File, Vec<u8>, io::Result<()>)>;

/// Waits for `task`, puts its file back in `idle` and gives its buffer, or
/// its error.
async fn land(task: PoolIo, idle: &mut Option<File>) -> io::Result<Vec<u8>> {
    let (file, buf, outcome) = task.await;
    *idle = Some(file);
    outcome.map(|()| buf)
}

/// A file written in batches on the blocking pool. See the module docs.
pub(crate) struct BatchedFile {
    /// The batch being gathered.
    filling: Vec<u8>,
    /// The file, when no write is in flight.
    idle: Option<File>,
    /// The write in flight, if any.
    in_flight: Option<PoolIo>,
}

impl BatchedFile {
    /// Writes to `file`, which must be open for writing.
    pub(crate) fn new(file: File) -> Self {
        BatchedFile {
            // Grown as bytes come (a small download holds only its size).
            filling: Vec::new(),
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
    /// for the next batch (its buffer; the first time, an empty one that
    /// grows as bytes come).
    async fn settle(&mut self) -> io::Result<Vec<u8>> {
        match self.in_flight.take() {
            Some(task) => land(task, &mut self.idle).await,
            None => Ok(Vec::new()),
        }
    }
}

/// The first `len` bytes of a file, read in batches on the blocking pool,
/// one batch ahead of the caller. See the module docs.
pub(crate) struct BatchedReader {
    /// The batch being handed out, and how much of it was.
    current: Vec<u8>,
    taken: usize,
    /// The file, when no read is in flight.
    idle: Option<File>,
    /// The read of the next batch, if started.
    in_flight: Option<PoolIo>,
    /// Bytes of the file not yet asked of the blocking pool.
    unread: u64,
}

impl BatchedReader {
    /// Reads the first `len` bytes of `file` (open for reading, at its
    /// start).
    pub(crate) fn new(file: File, len: u64) -> Self {
        BatchedReader {
            current: Vec::new(),
            taken: 0,
            idle: Some(file),
            in_flight: None,
            unread: len,
        }
    }

    /// The next bytes of the file, at most `max`, and at least one while
    /// any of the `len` bytes are left (empty after them). A file shorter
    /// than `len` is an `UnexpectedEof` error.
    pub(crate) async fn read(&mut self, max: usize) -> io::Result<&[u8]> {
        if self.taken >= self.current.len() {
            let spent = std::mem::take(&mut self.current);
            self.current = self.next_batch(spent).await?;
            self.taken = 0;
        }
        let start = self.taken;
        let end = start + max.min(self.current.len() - start);
        self.taken = end;
        Ok(self.current.get(start..end).unwrap_or_default())
    }

    /// The batch after the current one (waiting for its read, or reading
    /// it now the first time), with the read of the following batch started
    /// into `spent`'s memory.
    async fn next_batch(&mut self, spent: Vec<u8>) -> io::Result<Vec<u8>> {
        let Some(task) = self
            .in_flight
            .take()
            .or_else(|| self.start_read(Vec::new()))
        else {
            return Ok(Vec::new());
        };
        let batch = land(task, &mut self.idle).await?;
        self.in_flight = self.start_read(spent);
        Ok(batch)
    }

    /// Starts reading the next batch into `buf` (cleared first); `None`
    /// when all `len` bytes were asked for already (or the file is lost to
    /// an earlier failed read).
    fn start_read(&mut self, mut buf: Vec<u8>) -> Option<PoolIo> {
        if self.unread == 0 {
            return None;
        }
        let mut file = self.idle.take()?;
        let want = usize::try_from(self.unread).map_or(BATCH, |u| u.min(BATCH));
        self.unread -= want as u64;
        Some(smol::unblock(move || {
            buf.clear();
            buf.resize(want, 0);
            let outcome = file.read_exact(&mut buf).map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file ended before its length",
                ),
                _ => e,
            });
            (file, buf, outcome)
        }))
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

    /// The reader hands out exactly the first `len` bytes, in order, in
    /// pieces of at most `max`, across batch boundaries.
    #[test]
    fn reader_hands_out_the_first_len_bytes() {
        let (path, mut file) = temp_file("read");
        let data: Vec<u8> = (0..(2 * BATCH + 12_345)).map(|i| (i % 251) as u8).collect();
        file.write_all(&data).unwrap_or_else(|e| panic!("{e}"));
        drop(file);
        for (len, max) in [(data.len(), 64 * 1024), (BATCH + 1, 1000), (10, 3), (0, 5)] {
            let file = File::open(&path).unwrap_or_else(|e| panic!("{e}"));
            let got = smol::block_on(async {
                let mut r = BatchedReader::new(file, len as u64);
                let mut got = Vec::new();
                loop {
                    let piece = r.read(max).await.unwrap_or_else(|e| panic!("{e}"));
                    if piece.is_empty() {
                        break got;
                    }
                    assert!(piece.len() <= max);
                    got.extend_from_slice(piece);
                }
            });
            assert!(got == data[..len], "len {len}, max {max}");
        }
        let _ = std::fs::remove_file(&path);
    }

    /// A file shorter than the length asked for is an error, not a short
    /// body.
    #[test]
    fn reader_refuses_a_short_file() {
        let (path, mut file) = temp_file("short");
        file.write_all(&[7u8; 100])
            .unwrap_or_else(|e| panic!("{e}"));
        drop(file);
        let file = File::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let outcome = smol::block_on(async {
            let mut r = BatchedReader::new(file, 101);
            loop {
                match r.read(1 << 20).await {
                    Ok([]) => break Ok(()),
                    Ok(_) => {}
                    Err(e) => break Err(e),
                }
            }
        });
        let _ = std::fs::remove_file(&path);
        let err = outcome.expect_err("a short file must fail");
        assert_eq!(err.to_string(), "the file ended before its length");
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
