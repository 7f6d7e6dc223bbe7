//! The writer thread: drains the queue, chains and frames records, writes each batch with one
//! call, and group-commits (fsync, then checkpoint, then wake the waiters).

use std::{
    fs::File,
    io::Write,
    path::PathBuf,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use tokio::{
    runtime::Runtime,
    sync::{mpsc, oneshot},
};
use zta_core::AuditError;

use crate::{
    checkpoint::CheckpointWriter,
    format::{LINE_OVERHEAD, chain_hash, create_options, digits, encode_line, segment_name},
    recovery::Resume,
};

/// Told when a record (or everything before a flush) is durable, or why it never will be.
pub(crate) type Waiter = oneshot::Sender<Result<(), AuditError>>;

/// What the sink sends the writer.
#[derive(Debug)]
pub(crate) enum Msg {
    /// A serialized record, with a waiter when the caller wants it durable.
    Record { bytes: Vec<u8>, done: Option<Waiter> },
    /// Commit everything before this.
    Flush(Waiter),
    /// Write everything queued, commit, stop.
    Close(Waiter),
    /// Park the writer until `resume` is dropped (tests only).
    #[cfg(feature = "test-hooks")]
    Pause { parked: oneshot::Sender<()>, resume: std::sync::mpsc::Receiver<()> },
}

/// State shared by the sink and the writer.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Set once when the writer stops on an error; every later append fails with it.
    pub(crate) failed: OnceLock<String>,
    /// Rung by whoever queued something that wants a commit now (a `Flushed` record, a flush,
    /// a close), so the writer stops lingering.
    pub(crate) urgent: tokio::sync::Notify,
    /// Set when the sink is closing or dropped: the writer stops lingering.
    pub(crate) closing: std::sync::atomic::AtomicBool,
    /// Record buffers the writer is done with, for appenders to fill again. Without it each
    /// record is allocated on the appender's thread and freed on the writer's, which costs
    /// more than serializing it.
    pool: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl Shared {
    /// Asks the writer to commit without waiting for the flush interval.
    pub(crate) fn hurry(&self) {
        self.urgent.notify_one();
    }

    /// An empty record buffer: a spent one if any is pooled.
    pub(crate) fn buffer(&self) -> Vec<u8> {
        self.pool.lock().ok().and_then(|mut pool| pool.pop()).unwrap_or_else(|| Vec::with_capacity(768))
    }

    /// Gives spent record buffers back (up to [`POOL_BUFFERS`]; the rest are freed).
    fn recycle(&self, spent: &mut Vec<Vec<u8>>) {
        if let Ok(mut pool) = self.pool.lock() {
            while pool.len() < POOL_BUFFERS
                && let Some(mut buffer) = spent.pop()
            {
                if buffer.capacity() <= MAX_POOLED_BYTES {
                    buffer.clear();
                    pool.push(buffer);
                }
            }
        }
        spent.clear();
    }

    /// Tells the writer the sink is going away, so it never lingers again.
    pub(crate) fn closing(&self) {
        self.closing.store(true, std::sync::atomic::Ordering::Release);
        self.urgent.notify_one();
    }
}

/// Largest batch buffer kept between batches.
const KEEP_BUFFER: usize = 16 << 20;

/// Record buffers kept for reuse (at most about 3 MiB of them).
const POOL_BUFFERS: usize = 4096;

/// Largest record buffer kept for reuse.
const MAX_POOLED_BYTES: usize = 768;

pub(crate) struct Writer {
    dir: PathBuf,
    dir_handle: File,
    file: File,
    file_no: u64,
    file_len: u64,
    max_file_bytes: u64,
    max_batch: usize,
    flush_interval: Duration,
    seq: u64,
    prev: [u8; 32],
    last_record_file_no: u64,
    committed_seq: u64,
    /// Bytes written since the last fsync.
    unsynced: bool,
    /// When the oldest uncommitted record was written.
    dirty_since: Option<Instant>,
    batch: Vec<u8>,
    /// Record buffers written out, to go back to the pool.
    spent: Vec<Vec<u8>>,
    waiters: Vec<Waiter>,
    /// `close()` callers, told once the writer has stopped and released the lock.
    closers: Vec<Waiter>,
    checkpoint: CheckpointWriter,
    shared: Arc<Shared>,
    /// Held (locked) while the writer runs.
    lock: Option<File>,
}

pub(crate) struct WriterSettings {
    pub(crate) dir: PathBuf,
    pub(crate) dir_handle: File,
    pub(crate) lock: File,
    pub(crate) max_file_bytes: u64,
    pub(crate) max_batch: usize,
    pub(crate) flush_interval: Duration,
    pub(crate) checkpoint: CheckpointWriter,
    pub(crate) shared: Arc<Shared>,
}

/// Sets the failure flag if the writer thread ends any other way than through [`Writer::run`]'s
/// normal return (a panic).
struct ExitGuard(Option<Arc<Shared>>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            let _ = shared.failed.set("audit writer stopped unexpectedly".into());
            tracing::error!("audit writer stopped unexpectedly; the sink refuses further records");
        }
    }
}

impl Writer {
    pub(crate) fn new(s: WriterSettings, resume: Resume) -> Self {
        Self {
            dir: s.dir,
            dir_handle: s.dir_handle,
            file: resume.file,
            file_no: resume.file_no,
            file_len: resume.file_len,
            max_file_bytes: s.max_file_bytes,
            max_batch: s.max_batch,
            flush_interval: s.flush_interval,
            seq: resume.seq,
            prev: resume.prev,
            last_record_file_no: resume.last_record_file_no,
            committed_seq: resume.seq,
            unsynced: false,
            dirty_since: None,
            batch: Vec::with_capacity(1 << 20),
            spent: Vec::new(),
            waiters: Vec::new(),
            closers: Vec::new(),
            checkpoint: s.checkpoint,
            shared: s.shared,
            lock: Some(s.lock),
        }
    }

    /// The thread body: serve until closed or every sender is gone; on an error, fail closed.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Msg>, rt: Runtime) {
        let mut guard = ExitGuard(Some(self.shared.clone()));
        let result = match self.serve(&mut rx, &rt) {
            Ok(()) => Ok(()),
            Err(msg) => Err(self.fail(msg, &mut rx, &rt)),
        };
        guard.0 = None;
        // Unlock before telling `close()` callers, so the directory can be reopened at once.
        drop(self.lock.take());
        for w in self.closers.drain(..) {
            let _ = w.send(result.clone());
        }
    }

    fn serve(&mut self, rx: &mut mpsc::Receiver<Msg>, rt: &Runtime) -> Result<(), String> {
        loop {
            let first = match self.dirty_since {
                None => rt.block_on(rx.recv()),
                // An interval too long to add to a time never comes due.
                Some(since) => match since.checked_add(self.flush_interval) {
                    None => rt.block_on(rx.recv()),
                    Some(deadline) => {
                        if Instant::now() >= deadline {
                            self.commit()?;
                            continue;
                        }
                        // With nothing queued, linger until the group commit is due without
                        // listening on the queue: records pile up into one batch and appenders
                        // never have to wake this thread. Whoever needs durability now rings
                        // `urgent`. With records waiting, go straight on.
                        let deadline = tokio::time::Instant::from_std(deadline);
                        let shared = &self.shared;
                        if rx.is_empty() && !shared.closing.load(std::sync::atomic::Ordering::Acquire) {
                            rt.block_on(async {
                                tokio::select! {
                                    () = tokio::time::sleep_until(deadline) => {}
                                    () = shared.urgent.notified() => {}
                                }
                            });
                        }
                        match rx.try_recv() {
                            Ok(msg) => Some(msg),
                            Err(mpsc::error::TryRecvError::Empty) => {
                                self.commit()?;
                                continue;
                            }
                            Err(mpsc::error::TryRecvError::Disconnected) => None,
                        }
                    }
                },
            };
            // None: closed and drained, or every sender dropped.
            let Some(first) = first else { break };
            let mut urgent = false;
            let mut taken = 0usize;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Record { bytes, done } => {
                        // Keep the waiter first, so that a failure below reaches it as such.
                        if let Some(w) = done {
                            self.waiters.push(w);
                            urgent = true;
                        }
                        self.append(&bytes)?;
                        self.spent.push(bytes);
                        taken += 1;
                    }
                    Msg::Flush(w) => {
                        self.waiters.push(w);
                        urgent = true;
                    }
                    Msg::Close(w) => {
                        // Refuse new records; keep going until what is queued is written.
                        rx.close();
                        self.closers.push(w);
                        urgent = true;
                    }
                    #[cfg(feature = "test-hooks")]
                    Msg::Pause { parked, resume } => {
                        self.write_out()?;
                        let _ = parked.send(());
                        let _ = resume.recv();
                    }
                }
                if taken < self.max_batch {
                    next = rx.try_recv().ok();
                }
            }
            self.write_out()?;
            self.shared.recycle(&mut self.spent);
            if self.unsynced && self.dirty_since.is_none() {
                self.dirty_since = Some(Instant::now());
            }
            let due = self.dirty_since.is_some_and(|t| t.elapsed() >= self.flush_interval);
            if urgent || due {
                self.commit()?;
            }
        }
        self.commit()
    }

    /// Chains one record and adds its line to the batch, rotating first if it would not fit.
    fn append(&mut self, record: &[u8]) -> Result<(), String> {
        let seq = self.seq + 1;
        let hash = chain_hash(seq, &self.prev, record);
        let line_len = (LINE_OVERHEAD + digits(seq) + record.len()) as u64;
        let used = self.file_len + self.batch.len() as u64;
        if used > 0 && used + line_len > self.max_file_bytes {
            self.rotate()?;
        }
        encode_line(&mut self.batch, seq, &self.prev, &hash, record);
        self.seq = seq;
        self.prev = hash;
        self.last_record_file_no = self.file_no;
        Ok(())
    }

    fn current_path(&self) -> PathBuf {
        self.dir.join(segment_name(self.file_no))
    }

    /// Writes the batch with one call.
    fn write_out(&mut self) -> Result<(), String> {
        if self.batch.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(&self.batch) {
            return Err(format!("cannot write `{}`: {e}", self.current_path().display()));
        }
        self.file_len += self.batch.len() as u64;
        self.unsynced = true;
        self.batch.clear();
        if self.batch.capacity() > KEEP_BUFFER {
            self.batch.shrink_to(1 << 20);
        }
        Ok(())
    }

    /// Finishes the current segment (written and synced) and starts the next.
    fn rotate(&mut self) -> Result<(), String> {
        self.write_out()?;
        self.sync()?;
        let next = self.file_no + 1;
        let path = self.dir.join(segment_name(next));
        let file = create_options()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| format!("cannot create `{}`: {e}", path.display()))?;
        self.dir_handle.sync_all().map_err(|e| format!("cannot sync `{}`: {e}", self.dir.display()))?;
        self.file = file;
        self.file_no = next;
        self.file_len = 0;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), String> {
        if self.unsynced {
            self.file
                .sync_data()
                .map_err(|e| format!("cannot sync `{}`: {e}", self.current_path().display()))?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Group commit: write, fsync, checkpoint, then tell the waiters.
    fn commit(&mut self) -> Result<(), String> {
        self.write_out()?;
        self.sync()?;
        if self.seq != self.committed_seq {
            self.checkpoint
                .write(self.seq, &self.prev, &segment_name(self.last_record_file_no))
                .map_err(|e| format!("cannot write the checkpoint in `{}`: {e}", self.dir.display()))?;
            self.committed_seq = self.seq;
        }
        self.dirty_since = None;
        for w in self.waiters.drain(..) {
            let _ = w.send(Ok(()));
        }
        Ok(())
    }

    /// Stops for good: every later append fails, and every waiter, queued or pending, is told.
    fn fail(&mut self, msg: String, rx: &mut mpsc::Receiver<Msg>, rt: &Runtime) -> AuditError {
        tracing::error!(error = %msg, "audit writer failed; the sink refuses further records");
        let _ = self.shared.failed.set(msg.clone());
        let err = AuditError::Write(msg);
        for w in self.waiters.drain(..) {
            let _ = w.send(Err(err.clone()));
        }
        rx.close();
        while let Some(m) = rt.block_on(rx.recv()) {
            match m {
                Msg::Record { done: Some(w), .. } | Msg::Flush(w) => {
                    let _ = w.send(Err(err.clone()));
                }
                Msg::Close(w) => self.closers.push(w),
                Msg::Record { done: None, .. } => {}
                #[cfg(feature = "test-hooks")]
                Msg::Pause { parked, .. } => {
                    let _ = parked.send(());
                }
            }
        }
        err
    }
}
