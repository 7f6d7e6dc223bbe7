//! The sink: the async face of the writer thread.

use std::{
    fmt,
    fs::{self, File},
    path::{Path, PathBuf},
    sync::Arc,
    thread::JoinHandle,
    time::Duration,
};

use async_trait::async_trait;
use tokio::sync::oneshot;
use zta_core::{AuditError, AuditRecord, AuditSink, Durability};

use crate::{
    Error, JsonlConfig, OnFull, Recovery,
    anchor::{Anchor, newest_in_file},
    checkpoint::{Checkpoint, CheckpointReadError, CheckpointWriter, Signer, read_stored},
    format::{create_dir, create_options},
    queue::{Refused, Shared},
    recovery::recover,
    timer::Deadlines,
    verify::{RollbackProblem, VerifyError},
    writer::{Writer, WriterSettings},
};

/// The lock file that keeps a second writer out.
const LOCK_FILE: &str = "audit.lock";

/// The embedded audit sink: a hash-chained JSON Lines log with group commit and a checkpoint.
/// See the [crate docs](crate) for the format and the guarantees.
///
/// Dropping the sink writes and commits whatever is queued, and waits for that.
pub struct JsonlSink {
    shared: Arc<Shared>,
    on_full: OnFull,
    full_wait: Duration,
    /// Ends waits on a full queue (`on_full: wait` only).
    deadlines: Option<Deadlines>,
    dir: PathBuf,
    recovery: Option<Recovery>,
    writer: Option<JoinHandle<()>>,
}

impl fmt::Debug for JsonlSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonlSink")
            .field("dir", &self.dir)
            .field("on_full", &self.on_full)
            .field("failed", &self.shared.failed.get())
            .finish_non_exhaustive()
    }
}

impl JsonlSink {
    /// Opens (or creates) the log in `config.dir`, recovers it, and starts the writer thread.
    ///
    /// Refuses a directory another sink is writing to, and a log that does not reach its
    /// checkpoint or whose checkpointed records do not verify ([`Error::Integrity`]): that is
    /// what a cut or edited log looks like. A torn tail after the checkpoint (a crash
    /// mid-write) is moved aside and reported by [`recovery`](Self::recovery). With a file
    /// [`anchor`](JsonlConfig::anchor), also refuses a log whose checkpoint is older than the
    /// newest anchored one (it was rolled back).
    pub fn open(config: JsonlConfig) -> Result<Self, Error> {
        config.validate().map_err(Error::Config)?;
        let dir = config.dir.clone();
        let signer = match &config.checkpoint_key_file {
            Some(path) => {
                Some(Signer::load(path).map_err(|reason| Error::Key { path: path.clone(), reason })?)
            }
            None => None,
        };
        create_dir(&dir).map_err(Error::io("create directory", &dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = create_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(Error::io("open", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(Error::Locked { dir }),
            Err(fs::TryLockError::Error(e)) => {
                return Err(Error::Io { action: "lock", path: lock_path, error: e });
            }
        }
        let dir_handle = File::open(&dir).map_err(Error::io("open", &dir))?;
        let key_id = signer.as_ref().map(|s| s.key_id().to_owned());
        let checkpoint =
            CheckpointWriter::new(&dir, dir_handle.try_clone().map_err(Error::io("open", &dir))?, signer);
        if let Some(anchor_file) = config.anchor.as_ref().and_then(|a| a.file.as_deref()) {
            check_anchor(&dir, anchor_file)?;
        }
        let resume = recover(&dir, &dir_handle, &checkpoint)?;
        let recovery = resume.recovery.clone();
        tracing::info!(
            dir = %dir.display(),
            seq = resume.seq,
            checkpoint_key = key_id.as_deref().unwrap_or("none"),
            "audit log opened"
        );

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(Error::io("start the writer runtime for", &dir))?;
        let shared = Arc::new(Shared::new(config.queue_capacity));
        let anchor = match &config.anchor {
            // Anchors what recovery left at once, so a misconfigured anchor fails here and a log
            // reopened after a crash is anchored from the start.
            Some(a) => Some(Anchor::start(a, shared.clone(), read_stored(&dir))?),
            None => None,
        };
        let deadlines = match config.on_full {
            OnFull::Wait => {
                Some(Deadlines::start().map_err(Error::io("start the deadline thread for", &dir))?)
            }
            OnFull::Deny => None,
        };
        let writer = Writer::new(
            WriterSettings {
                dir: dir.clone(),
                dir_handle,
                lock,
                max_file_bytes: config.max_file_bytes,
                max_batch: config.max_batch,
                flush_interval: config.flush_interval,
                checkpoint,
                anchor,
                shared: shared.clone(),
            },
            resume,
        );
        let handle = std::thread::Builder::new()
            .name("zta-audit-writer".into())
            .spawn(move || writer.run(rt))
            .map_err(Error::io("start the writer thread for", &dir))?;
        Ok(Self {
            shared,
            on_full: config.on_full,
            full_wait: config.full_wait,
            deadlines,
            dir,
            recovery,
            writer: Some(handle),
        })
    }

    /// What recovery on open cut off, if anything.
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops taking records, writes and commits everything already taken, stops the writer and
    /// releases the directory. Later appends fail with [`AuditError::Closed`].
    pub async fn close(&self) -> Result<(), AuditError> {
        let (tx, rx) = oneshot::channel();
        if !self.shared.close(Some(tx)) {
            return self.shared.closed_outcome();
        }
        rx.await.unwrap_or_else(|_| Err(self.shared.closed_error()))
    }

    /// Parks the writer until the returned guard is dropped, after it has taken everything
    /// queued before this call. Lets tests fill the queue deterministically.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub async fn pause_writer(&self) -> WriterPause {
        let (parked, parked_rx) = oneshot::channel();
        let (resume_tx, resume) = std::sync::mpsc::channel();
        self.shared.pause(crate::queue::Pause { parked, resume });
        let _ = parked_rx.await;
        WriterPause { _resume: resume_tx }
    }
}

/// Keeps the writer parked while it lives (tests only).
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
#[derive(Debug)]
pub struct WriterPause {
    _resume: std::sync::mpsc::Sender<()>,
}

#[async_trait]
impl AuditSink for JsonlSink {
    /// Serializes the record (a record that cannot be serialized is refused here, not dropped
    /// later), queues it, and with [`Durability::Flushed`] waits for its group commit.
    /// Serializing here spreads that work over the callers' cores; the writer only chains,
    /// writes and commits.
    async fn append(&self, record: AuditRecord, durability: Durability) -> Result<(), AuditError> {
        let (mut waiter, done) = match durability {
            Durability::Queued => (None, None),
            Durability::Flushed => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            }
        };
        let mut push = || self.shared.push(&record, &mut waiter);
        match &self.deadlines {
            None => push().map_err(|refused| match refused {
                Refused::Full => AuditError::QueueFull,
                Refused::Error(e) => e,
            })?,
            Some(deadlines) => self.shared.room(push, self.full_wait, deadlines).await?,
        }
        match done {
            None => Ok(()),
            Some(rx) => rx.await.unwrap_or_else(|_| Err(self.shared.closed_error())),
        }
    }

    /// Waits until every record taken so far is fsynced and in the checkpoint.
    async fn flush(&self) -> Result<(), AuditError> {
        let (tx, rx) = oneshot::channel();
        self.shared.commit_waiter(tx)?;
        rx.await.unwrap_or_else(|_| Err(self.shared.closed_error()))
    }

    /// The writer's failure once it has failed (or `Closed` while closing): every append would
    /// be refused. A full queue is ready: appends wait or are refused one by one.
    async fn ready(&self) -> Result<(), AuditError> {
        self.shared.taking()
    }

    /// Records queued, or written and not yet fsynced and in the checkpoint.
    fn queued(&self) -> Option<u64> {
        Some(self.shared.queued())
    }
}

impl Drop for JsonlSink {
    fn drop(&mut self) {
        // The writer writes and commits what is queued, then returns.
        self.shared.close(None);
        if let Some(handle) = self.writer.take() {
            let _ = handle.join();
        }
    }
}

/// Refuses to open a log whose checkpoint is older than the newest one in its anchor file: a
/// checkpoint is anchored only after it is durable beside the log, so that is a rollback.
fn check_anchor(dir: &Path, anchor_file: &Path) -> Result<(), Error> {
    let anchored = newest_in_file(anchor_file).map_err(Error::io("read the anchor", anchor_file))?;
    let Some(anchored) = anchored else { return Ok(()) };
    let local = match Checkpoint::read(dir) {
        Ok(cp) => cp,
        // Recovery reports an unreadable checkpoint.
        Err((_, CheckpointReadError::Io(_) | CheckpointReadError::Problem(_))) => return Ok(()),
    };
    let (local_seq, local_time) = local.map_or((0, None), |cp| (cp.seq, Some(cp.time)));
    if local_seq < anchored.seq {
        return Err(Error::Integrity {
            dir: dir.to_owned(),
            error: VerifyError::RolledBack {
                anchor: format!("file `{}`", anchor_file.display()),
                anchored_seq: anchored.seq,
                anchored_time: anchored.time,
                problem: RollbackProblem::CheckpointOlder {
                    checkpoint_seq: local_seq,
                    checkpoint_time: local_time,
                },
            },
        });
    }
    Ok(())
}
