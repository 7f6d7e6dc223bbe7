//! The queue between appenders and the writer thread: one byte buffer that appenders serialize
//! records into, under a lock the writer takes once per batch to swap the buffer out.
//!
//! A record costs an appender one uncontended lock and its serialization: no allocation, no
//! message, and no cache line the writer touches per record (a channel message per record
//! made the writer's core and the appender's trade several lines for each one).

use std::{
    sync::{
        Mutex, MutexGuard, OnceLock,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use tokio::sync::{Notify, oneshot};
use zta_core::{AuditError, AuditRecord};

use crate::timer::Deadlines;

/// Told when a record (or everything before a flush) is durable, or why it never will be.
pub(crate) type Waiter = oneshot::Sender<Result<(), AuditError>>;

/// State shared by the sink and the writer.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Set once when the writer stops on an error; every later append fails with it.
    pub(crate) failed: OnceLock<String>,
    queue: Mutex<Queue>,
    /// Rung when the writer should take the queue now: records arrived while it was idle,
    /// someone wants a commit, the queue is full, or the sink is closing.
    pub(crate) wake: Notify,
    /// Rung when the writer has taken the queue (there is room) or stopped.
    room: Notify,
    capacity: usize,
    /// Records accepted and not yet committed (queued, or written and not yet fsynced and
    /// checkpointed): added by appenders, taken off by the writer at each commit.
    queued: AtomicU64,
}

/// What appenders have queued since the writer last took it.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    /// The records' JSON, back to back.
    pub(crate) bytes: Vec<u8>,
    /// Where each record ends in `bytes`.
    pub(crate) ends: Vec<usize>,
    /// Waiting for the commit that covers everything queued so far.
    pub(crate) waiters: Vec<Waiter>,
    /// Someone is waiting for a commit.
    pub(crate) urgent: bool,
    /// The sink is closing: no more records; the writer writes what is queued and stops.
    pub(crate) closing: bool,
    /// `close()` callers, told once the writer has stopped.
    pub(crate) closers: Vec<Waiter>,
    /// The writer has stopped and takes nothing more.
    stopped: bool,
    /// The writer waits for `wake` with nothing to commit; the next record must ring it.
    idle: bool,
    /// Asks the writer to park (tests only).
    #[cfg(feature = "test-hooks")]
    pub(crate) pause: Option<Pause>,
}

/// A request to park the writer until `resume` is dropped (tests only).
#[cfg(feature = "test-hooks")]
#[derive(Debug)]
pub(crate) struct Pause {
    pub(crate) parked: oneshot::Sender<()>,
    pub(crate) resume: std::sync::mpsc::Receiver<()>,
}

fn hurry(q: &Queue, capacity: usize) -> bool {
    let hurry = q.urgent || q.closing || q.ends.len() >= capacity;
    #[cfg(feature = "test-hooks")]
    let hurry = hurry || q.pause.is_some();
    hurry
}

/// Why a record was not queued.
pub(crate) enum Refused {
    /// The queue holds `capacity` records.
    Full,
    /// The sink is closing, closed or failed.
    Error(AuditError),
}

impl Shared {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            failed: OnceLock::new(),
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            room: Notify::new(),
            capacity,
            queued: AtomicU64::new(0),
        }
    }

    /// The error for a sink that takes nothing more: the writer's failure if it failed.
    pub(crate) fn closed_error(&self) -> AuditError {
        self.failed.get().map_or(AuditError::Closed, |m| AuditError::write(m.clone()))
    }

    /// How a closed sink ended: the writer's failure if it failed.
    pub(crate) fn closed_outcome(&self) -> Result<(), AuditError> {
        self.failed.get().map_or(Ok(()), |m| Err(AuditError::write(m.clone())))
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding the lock leaves a queue that is still consistent (every step
        // under it completes or is undone), so a poisoned lock is used as is.
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether records are taken now: the error every append would get once the writer has
    /// failed or the sink is closing.
    pub(crate) fn taking(&self) -> Result<(), AuditError> {
        let q = self.lock();
        if self.failed.get().is_some() || q.closing || q.stopped {
            return Err(self.closed_error());
        }
        Ok(())
    }

    /// Serializes `record` into the queue; `waiter` (taken only if the record is queued) is
    /// told at its commit.
    pub(crate) fn push(&self, record: &AuditRecord, waiter: &mut Option<Waiter>) -> Result<(), Refused> {
        let mut q = self.lock();
        if self.failed.get().is_some() || q.closing || q.stopped {
            return Err(Refused::Error(self.closed_error()));
        }
        if q.ends.len() >= self.capacity {
            drop(q);
            self.wake.notify_one();
            return Err(Refused::Full);
        }
        let start = q.bytes.len();
        if let Err(e) = record.write_json(&mut q.bytes) {
            q.bytes.truncate(start);
            return Err(Refused::Error(e));
        }
        let end = q.bytes.len();
        q.ends.push(end);
        // Under the lock, so the writer cannot commit it before it is counted.
        self.queued.fetch_add(1, Relaxed);
        let urgent = waiter.is_some();
        if let Some(w) = waiter.take() {
            q.waiters.push(w);
            q.urgent = true;
        }
        let wake = q.idle || urgent;
        q.idle = false;
        drop(q);
        if wake {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Runs `push` until it finds room, waiting for the writer to take the queue between tries,
    /// for at most `full_wait` (then `QueueFull`).
    pub(crate) async fn room(
        &self,
        mut push: impl FnMut() -> Result<(), Refused>,
        full_wait: Duration,
        deadlines: &Deadlines,
    ) -> Result<(), AuditError> {
        // `None` while the queue is full.
        let mut settled = || match push() {
            Ok(()) => Some(Ok(())),
            Err(Refused::Error(e)) => Some(Err(e)),
            Err(Refused::Full) => None,
        };
        if let Some(done) = settled() {
            return done;
        }
        if full_wait.is_zero() {
            return Err(AuditError::QueueFull);
        }
        // Completes when `full_wait` has passed; `None`: never.
        let mut expired = deadlines.after(full_wait);
        loop {
            // Registered before trying again, so a take between the try and the wait is not
            // missed.
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if let Some(done) = settled() {
                return done;
            }
            match expired.as_mut() {
                None => room.await,
                Some(expired) => {
                    tokio::select! {
                        () = &mut room => {}
                        _ = expired => return settled().unwrap_or(Err(AuditError::QueueFull)),
                    }
                }
            }
        }
    }

    /// Queues a commit waiter (a flush). Fails if the writer has stopped.
    pub(crate) fn commit_waiter(&self, waiter: Waiter) -> Result<(), AuditError> {
        let mut q = self.lock();
        if q.stopped {
            return Err(self.closed_error());
        }
        q.waiters.push(waiter);
        q.urgent = true;
        q.idle = false;
        drop(q);
        self.wake.notify_one();
        Ok(())
    }

    /// Starts closing: no more records; `closer` (if any) is told once the writer has stopped.
    /// `false` if the sink was already closing.
    pub(crate) fn close(&self, closer: Option<Waiter>) -> bool {
        let mut q = self.lock();
        let first = !q.closing;
        q.closing = true;
        q.idle = false;
        if let Some(c) = closer {
            if q.stopped {
                let _ = c.send(self.closed_outcome());
            } else {
                q.closers.push(c);
            }
        }
        drop(q);
        self.wake.notify_one();
        self.room.notify_waiters();
        first
    }

    /// Fails the sink from outside the writer (the anchor): later calls are refused with
    /// `msg`; the writer commits what was accepted before and stops.
    pub(crate) fn fail_closed(&self, msg: String) {
        let _ = self.failed.set(msg);
        self.close(None);
    }

    /// Parks the writer (tests only).
    #[cfg(feature = "test-hooks")]
    pub(crate) fn pause(&self, pause: Pause) {
        let mut q = self.lock();
        if !q.stopped {
            q.pause = Some(pause);
            q.idle = false;
        }
        drop(q);
        self.wake.notify_one();
    }

    /// The writer takes everything queued, leaving `spare` (empty) buffers in its place.
    pub(crate) fn take(&self, spare: &mut Queue) {
        let mut q = self.lock();
        std::mem::swap(&mut q.bytes, &mut spare.bytes);
        std::mem::swap(&mut q.ends, &mut spare.ends);
        spare.waiters.append(&mut q.waiters);
        spare.closers.append(&mut q.closers);
        spare.urgent = std::mem::take(&mut q.urgent);
        spare.closing = q.closing;
        #[cfg(feature = "test-hooks")]
        {
            spare.pause = q.pause.take();
        }
        drop(q);
        self.room.notify_waiters();
    }

    /// The writer has nothing to commit and is about to wait for `wake`: `true` if something
    /// arrived meanwhile (take again instead); otherwise the next record rings `wake`.
    pub(crate) fn idle(&self) -> bool {
        let mut q = self.lock();
        let pending = !q.ends.is_empty() || hurry(&q, self.capacity);
        q.idle = !pending;
        pending
    }

    /// Whether the writer must take the queue now rather than linger until its commit is due:
    /// someone waits for a commit, the queue is full, or the sink is closing.
    pub(crate) fn hurry(&self) -> bool {
        hurry(&self.lock(), self.capacity)
    }

    /// Records accepted and not yet committed.
    pub(crate) fn queued(&self) -> u64 {
        self.queued.load(Relaxed)
    }

    /// The writer committed `records` more: they are durable.
    pub(crate) fn committed(&self, records: u64) {
        self.queued.fetch_sub(records, Relaxed);
    }

    /// The writer failed: what it had not committed is lost (and reported so), not queued.
    pub(crate) fn lost_queued(&self) {
        self.queued.store(0, Relaxed);
    }

    /// The writer has stopped: later calls fail at once. Returns what was still queued.
    /// Nothing counts as queued any more: what was not committed is lost (and reported).
    pub(crate) fn stop(&self) -> Queue {
        let mut q = self.lock();
        let left = std::mem::take(&mut *q);
        q.stopped = true;
        self.lost_queued();
        q.closing = left.closing;
        drop(q);
        self.room.notify_waiters();
        left
    }
}
