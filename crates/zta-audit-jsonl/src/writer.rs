//! The writer thread: drains the queue, chains and frames records, writes each batch with one
//! call, and group-commits (fsync, then checkpoint, then wake the waiters).

use std::{
    fs::File,
    io::Write,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::runtime::Runtime;
use zta_core::AuditError;

use crate::{
    anchor::Anchor,
    checkpoint::CheckpointWriter,
    format::{LINE_OVERHEAD, chain_hash, create_options, digits, encode_line, segment_name},
    lost::{self, RecordId, queued_ids, record_id},
    queue::{Queue, Shared, Waiter},
    recovery::Resume,
};

/// Largest batch buffer kept between batches.
const KEEP_BUFFER: usize = 16 << 20;
/// Most pending record ids kept room for between fsyncs.
const KEEP_IDS: usize = 1 << 16;
/// Most records written but not fsynced (their ids take 36 bytes each).
const MAX_PENDING_IDS: usize = 1 << 20;

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
    /// The last seq known durable (written and fsynced).
    synced_seq: u64,
    /// The ids of the records after `synced_seq`: what a failure now would lose.
    pending_ids: Vec<RecordId>,
    /// Bytes written since the last fsync.
    unsynced: bool,
    /// When the oldest uncommitted record was written.
    dirty_since: Option<Instant>,
    batch: Vec<u8>,
    /// The buffers swapped with the queue's at each take.
    taken: Queue,
    waiters: Vec<Waiter>,
    /// `close()` callers, told once the writer has stopped and released the lock.
    closers: Vec<Waiter>,
    checkpoint: CheckpointWriter,
    /// Where committed checkpoints are published, if anywhere.
    anchor: Option<Anchor>,
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
    pub(crate) anchor: Option<Anchor>,
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
            let left = shared.stop();
            for w in left.waiters.into_iter().chain(left.closers) {
                let _ = w.send(Err(shared.closed_error()));
            }
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
            synced_seq: resume.seq,
            pending_ids: Vec::new(),
            unsynced: false,
            dirty_since: None,
            batch: Vec::with_capacity(1 << 20),
            taken: Queue::default(),
            waiters: Vec::new(),
            closers: Vec::new(),
            checkpoint: s.checkpoint,
            anchor: s.anchor,
            shared: s.shared,
            lock: Some(s.lock),
        }
    }

    /// The thread body: serve until closed; on an error, fail closed and report what was lost.
    pub(crate) fn run(mut self, rt: Runtime) {
        let mut guard = ExitGuard(Some(self.shared.clone()));
        let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.serve(&rt)));
        let failure = match served {
            Ok(Ok(())) => None,
            Ok(Err(msg)) => Some(msg),
            Err(_) => Some("audit writer panicked".to_owned()),
        };
        let mut result = match &failure {
            // Closed, or failed closed by the anchor after committing everything it took.
            None => self.shared.closed_outcome(),
            Some(msg) => Err(self.fail(msg.clone())),
        };
        guard.0 = None;
        let left = self.shared.stop();
        self.closers.extend(left.closers);
        for w in left.waiters {
            let _ = w.send(Err(self.shared.closed_error()));
        }
        // Records accepted after the last take (before the failure flag stopped new ones) are
        // lost too.
        queued_ids(&left.bytes, &left.ends, 0, &mut self.pending_ids);
        if failure.is_some() || !self.pending_ids.is_empty() {
            let msg = failure.as_deref().unwrap_or("the writer stopped with records it had not written");
            lost::report(&self.dir, msg, self.synced_seq, &self.pending_ids);
        }
        if let Some(anchor) = self.anchor.take()
            && let Err(e) = anchor.finish()
            && result.is_ok()
        {
            result = Err(AuditError::write(e));
        }
        // Unlock before telling `close()` callers, so the directory can be reopened at once.
        drop(self.lock.take());
        for w in self.closers.drain(..) {
            let _ = w.send(result.clone());
        }
    }

    fn serve(&mut self, rt: &Runtime) -> Result<(), String> {
        loop {
            self.shared.take(&mut self.taken);
            self.write_taken()?;
            self.waiters.append(&mut self.taken.waiters);
            self.closers.append(&mut self.taken.closers);
            #[cfg(feature = "test-hooks")]
            if let Some(pause) = self.taken.pause.take() {
                self.write_out()?;
                let _ = pause.parked.send(());
                let _ = pause.resume.recv();
            }
            if self.unsynced && self.dirty_since.is_none() {
                self.dirty_since = Some(Instant::now());
            }
            let due = self.dirty_since.is_some_and(|t| t.elapsed() >= self.flush_interval);
            if self.taken.urgent || self.taken.closing || due {
                self.commit()?;
            }
            if self.taken.closing {
                // Closing refuses new records under the queue's lock, so this take was the last.
                return Ok(());
            }
            // An interval too long to add to a time never comes due.
            match self.dirty_since.and_then(|since| since.checked_add(self.flush_interval)) {
                None => {
                    if !self.shared.idle() {
                        rt.block_on(self.shared.wake.notified());
                    }
                }
                // Linger until the group commit is due: records pile up into one batch, and
                // appenders never wake this thread. Whoever cannot wait rings `wake`.
                Some(deadline) => {
                    if !self.shared.hurry() && Instant::now() < deadline {
                        let deadline = tokio::time::Instant::from_std(deadline);
                        let wake = &self.shared.wake;
                        rt.block_on(async {
                            tokio::select! {
                                () = tokio::time::sleep_until(deadline) => {}
                                () = wake.notified() => {}
                            }
                        });
                    }
                }
            }
        }
    }

    /// Chains and writes the records just taken, `max_batch` to a write.
    fn write_taken(&mut self) -> Result<(), String> {
        let bytes = std::mem::take(&mut self.taken.bytes);
        let ends = std::mem::take(&mut self.taken.ends);
        let mut written = Ok(());
        let mut start = 0;
        let mut chained = 0;
        for &end in &ends {
            written = match bytes.get(start..end) {
                Some(record) => self.append(record),
                None => Err("queued record out of bounds".into()),
            };
            if written.is_ok() {
                chained += 1;
                if chained % self.max_batch == 0 {
                    written = self.write_out();
                }
            }
            if written.is_err() {
                // Taken but never chained: lost with the rest.
                queued_ids(&bytes, &ends, chained, &mut self.pending_ids);
                break;
            }
            start = end;
        }
        // The buffers go back either way, for the next take.
        self.taken.bytes = bytes;
        self.taken.ends = ends;
        self.taken.bytes.clear();
        self.taken.ends.clear();
        if self.taken.bytes.capacity() > KEEP_BUFFER {
            self.taken.bytes.shrink_to(1 << 20);
        }
        written?;
        self.write_out()
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
        self.pending_ids.push(record_id(record));
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
        // With a long flush interval, an fsync now and then bounds the ids kept for a loss
        // report (the checkpoint still waits for the commit).
        if self.pending_ids.len() >= MAX_PENDING_IDS {
            self.sync()?;
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

    /// Fsyncs what was written; every record chained so far (callers write out first) is then
    /// durable.
    fn sync(&mut self) -> Result<(), String> {
        if self.unsynced {
            self.file
                .sync_data()
                .map_err(|e| format!("cannot sync `{}`: {e}", self.current_path().display()))?;
            self.unsynced = false;
        }
        self.synced_seq = self.seq;
        self.pending_ids.clear();
        if self.pending_ids.capacity() > KEEP_IDS {
            self.pending_ids.shrink_to(KEEP_IDS);
        }
        Ok(())
    }

    /// Group commit: write, fsync, checkpoint, then tell the waiters.
    fn commit(&mut self) -> Result<(), String> {
        self.write_out()?;
        self.sync()?;
        if self.seq != self.committed_seq {
            let checkpoint = self
                .checkpoint
                .write(self.seq, &self.prev, &segment_name(self.last_record_file_no))
                .map_err(|e| format!("cannot write the checkpoint in `{}`: {e}", self.dir.display()))?;
            self.shared.committed(self.seq - self.committed_seq);
            self.committed_seq = self.seq;
            if let Some(anchor) = &self.anchor {
                anchor.offer(checkpoint);
            }
        }
        self.dirty_since = None;
        for w in self.waiters.drain(..) {
            let _ = w.send(Ok(()));
        }
        Ok(())
    }

    /// Stops for good: every later append fails, and every waiter, queued or pending, is told.
    /// (The caller reports what was lost.)
    fn fail(&mut self, msg: String) -> AuditError {
        let _ = self.shared.failed.set(msg.clone());
        // Before the waiters hear of it (stopping clears it again, after any late append).
        self.shared.lost_queued();
        let err = AuditError::write(msg);
        for w in self.waiters.drain(..).chain(self.taken.waiters.drain(..)) {
            let _ = w.send(Err(err.clone()));
        }
        self.closers.append(&mut self.taken.closers);
        err
    }
}
