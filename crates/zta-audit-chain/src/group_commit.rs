//! The group-commit writer of the audit sinks (PostgreSQL, SQLite, NATS JetStream).
//!
//! Appends go into a bounded queue; one task takes them in batches (up to a size, waiting up
//! to a delay for more when nobody waits for the batch) and hands each to a [`BatchStore`],
//! which stores it as a whole (a transaction; on NATS, a publish acknowledged message by
//! message). A `Flushed` append and a flush return once their batch is stored.
//!
//! While it waits for more, the task does not listen to the queue: waking it for every
//! `Queued` append would cost the appender (the guard's request path) a thread wake-up each.
//! Only the first record of a batch, whatever someone waits for (a `Flushed` append, a
//! flush, a close), and an append that leaves a full batch in the queue wake it.
//!
//! A batch that fails fails its waiting `Flushed` appends and flushes (so a required sink
//! denies), and the ids of its queued records are logged as lost; queued records taken after
//! it are dropped until a flush, which fails, so that a sender that appends again (a spool)
//! keeps its order. The store decides whether it can go on ([`BatchStore::stopped`]).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use async_trait::async_trait;
use tokio::{
    sync::{Notify, mpsc, oneshot},
    task::JoinHandle,
};
use uuid::Uuid;
use zta_core::{AuditError, Durability};

/// Where a [`GroupCommit`] stores its batches.
#[async_trait]
pub trait BatchStore: Send + 'static {
    /// A record made ready for storing (serialized on the appender's task).
    type Row: Send + 'static;

    /// The record id of `row`, logged when its batch is lost.
    fn record_id(row: &Self::Row) -> Uuid;

    /// Stores `rows`, in order after what is stored, as a whole. An error must never
    /// follow a commit the store knows landed.
    async fn commit(&mut self, rows: Vec<Self::Row>) -> Result<(), AuditError>;

    /// Whether the last failed commit stopped the store for good: then every later append
    /// fails.
    fn stopped(&self) -> bool {
        false
    }

    /// Releases the store after its last batch.
    async fn close(self);
}

/// How a [`GroupCommit`] batches.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// Records stored in one batch at most (at least 1).
    pub batch_size: usize,
    /// How long the writer waits for more records to fill a batch when nobody waits for it.
    pub max_delay: Duration,
    /// Records queued before `append` waits (at least 1).
    pub queue_capacity: usize,
}

type Reply = oneshot::Sender<Result<(), AuditError>>;

enum Job<R> {
    Record { row: R, done: Option<Reply> },
    Flush(Reply),
    Close(Reply),
}

/// The queue and the writer task in front of a [`BatchStore`].
pub struct GroupCommit<R> {
    jobs: mpsc::Sender<Job<R>>,
    task: Mutex<Option<JoinHandle<()>>>,
    /// Records queued and not yet settled (stored, or lost with a failed batch).
    queued: Arc<AtomicU64>,
    /// Cuts the writer's wait for more records short: someone waits for the batch, or a full
    /// batch waits in the queue.
    urgent: Arc<Notify>,
    /// Records in the queue that make a full batch (or fill the queue).
    full_batch: usize,
}

impl<R: Send + 'static> GroupCommit<R> {
    /// Starts the writer task of `store`. `label` names the store in errors and logs (e.g.
    /// "`zta_audit` (writer `gw-1`)").
    pub fn start<S: BatchStore<Row = R>>(store: S, batching: Batching, label: String) -> Self {
        let (jobs, queue) = mpsc::channel(batching.queue_capacity.max(1));
        let queued = Arc::new(AtomicU64::new(0));
        let urgent = Arc::new(Notify::new());
        let task = tokio::spawn(run(store, queue, batching, label, Settle(queued.clone()), urgent.clone()));
        Self {
            jobs,
            task: Mutex::new(Some(task)),
            queued,
            urgent,
            full_batch: batching.batch_size.min(batching.queue_capacity).max(1),
        }
    }

    /// Records appended and not yet stored: in the queue, or in the batch being committed
    /// (for [`AuditSink::queued`](zta_core::AuditSink::queued)). Records a failed batch lost
    /// no longer count.
    pub fn queued(&self) -> u64 {
        self.queued.load(Relaxed)
    }

    /// Whether appends are refused (closed, or the store stopped).
    pub fn is_closed(&self) -> bool {
        self.jobs.is_closed()
    }

    /// Queues `row`; with [`Durability::Flushed`], returns once its batch is stored. Refuses
    /// with [`AuditError::Closed`] after [`close`](Self::close) or once the store stopped.
    pub async fn append(&self, row: R, durability: Durability) -> Result<(), AuditError> {
        // Counted once there is room and before it is sent, so the writer never settles a
        // record not counted yet; an append dropped while it waits for room counts nothing.
        let slot = self.jobs.reserve().await.map_err(|_| AuditError::Closed)?;
        self.queued.fetch_add(1, Relaxed);
        match durability {
            Durability::Queued => {
                slot.send(Job::Record { row, done: None });
                // A full batch waits: no reason to wait for more (two atomic loads).
                if self.jobs.max_capacity() - self.jobs.capacity() >= self.full_batch {
                    self.urgent.notify_one();
                }
                Ok(())
            }
            Durability::Flushed => {
                let (done, stored) = oneshot::channel();
                slot.send(Job::Record { row, done: Some(done) });
                self.urgent.notify_one();
                stored.await.map_err(|_| AuditError::Closed)?
            }
        }
    }

    /// Returns once everything queued before it is stored; fails if a queued record since the
    /// last flush was lost.
    pub async fn flush(&self) -> Result<(), AuditError> {
        let (done, flushed) = oneshot::channel();
        self.jobs.send(Job::Flush(done)).await.map_err(|_| AuditError::Closed)?;
        self.urgent.notify_one();
        flushed.await.map_err(|_| AuditError::Closed)?
    }

    /// Stores everything queued, stops the writer and closes the store. Later appends fail
    /// with [`AuditError::Closed`]. Returns the last batch's error, if it failed.
    pub async fn close(&self) -> Result<(), AuditError> {
        let (done, closed) = oneshot::channel();
        let result = match self.jobs.send(Job::Close(done)).await {
            Ok(()) => {
                self.urgent.notify_one();
                closed.await.unwrap_or(Err(AuditError::Closed))
            }
            // Already closed or stopped.
            Err(_) => Ok(()),
        };
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
        result
    }
}

/// The writer's side of [`GroupCommit::queued`]: records leave the count when their batch
/// is committed or lost, or when they are dropped.
struct Settle(Arc<AtomicU64>);

impl Settle {
    fn records(&self, n: usize) {
        self.0.fetch_sub(u64::try_from(n).unwrap_or(u64::MAX), Relaxed);
    }
}

async fn run<S: BatchStore>(
    mut store: S,
    mut queue: mpsc::Receiver<Job<S::Row>>,
    batching: Batching,
    label: String,
    settle: Settle,
    urgent: Arc<Notify>,
) {
    let mut pending: Vec<S::Row> = Vec::new();
    let mut waiting: Vec<Reply> = Vec::new();
    let mut closing: Vec<Reply> = Vec::new();
    let mut close_result: Result<(), AuditError> = Ok(());
    let mut queued_ids: Vec<Uuid> = Vec::new();
    let mut dropped: Vec<Uuid> = Vec::new();
    // Queued records were lost and no flush has reported it yet: later queued records are
    // dropped (so that a sender that appends again keeps its order) and the next flush fails.
    let mut lost = false;
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        // A queued record was taken after this batch's last flush.
        let mut since_flush = false;
        let deadline = tokio::time::Instant::now() + batching.max_delay;
        // The batch waited for more records once already.
        let mut waited = batching.max_delay.is_zero();
        loop {
            if let Some(job) = next.take() {
                match job {
                    Job::Record { row, done: Some(done) } => {
                        pending.push(row);
                        waiting.push(done);
                    }
                    Job::Record { row, done: None } if lost => {
                        settle.records(1);
                        dropped.push(S::record_id(&row));
                    }
                    Job::Record { row, done: None } => {
                        queued_ids.push(S::record_id(&row));
                        since_flush = true;
                        pending.push(row);
                    }
                    Job::Flush(done) if lost => {
                        lost = false;
                        if !dropped.is_empty() {
                            tracing::error!(store = %label, lost = ?dropped, "audit records queued after a failed batch were dropped (a flush reports it)");
                            dropped.clear();
                        }
                        let _ = done.send(Err(AuditError::write(format!(
                            "records queued for {label} since the last flush were not stored (a batch failed to commit); append them again"
                        ))));
                    }
                    Job::Flush(done) => {
                        since_flush = false;
                        waiting.push(done);
                    }
                    Job::Close(done) => {
                        // Later sends fail; what is already queued is still taken below.
                        queue.close();
                        closing.push(done);
                    }
                }
            }
            if pending.len() >= batching.batch_size {
                break;
            }
            match queue.try_recv() {
                Ok(job) => next = Some(job),
                Err(_) if !waited && waiting.is_empty() && closing.is_empty() && !pending.is_empty() => {
                    // Not listening to the queue meanwhile (see the module docs); what came
                    // is taken after the wait.
                    waited = true;
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {}
                        () = urgent.notified() => {}
                    }
                }
                Err(_) => break,
            }
        }
        let batch = pending.len();
        let result =
            if pending.is_empty() { Ok(()) } else { store.commit(std::mem::take(&mut pending)).await };
        settle.records(batch);
        if let Err(e) = &result {
            if since_flush {
                lost = true;
            }
            if store.stopped() {
                tracing::error!(store = %label, error = %e, lost = ?queued_ids, "audit sink stopped; these queued records may be lost");
            } else {
                tracing::error!(store = %label, error = %e, lost = ?queued_ids, "audit batch not committed (these queued records may be lost)");
            }
            if !closing.is_empty() {
                close_result = result.clone();
            }
        }
        queued_ids.clear();
        for done in waiting.drain(..) {
            let _ = done.send(result.clone());
        }
        if store.stopped() {
            queue.close();
            while let Ok(job) = queue.try_recv() {
                match job {
                    Job::Record { row, done: None } => {
                        settle.records(1);
                        queued_ids.push(S::record_id(&row));
                    }
                    Job::Record { done: Some(done), .. } => {
                        settle.records(1);
                        let _ = done.send(result.clone());
                    }
                    Job::Flush(done) | Job::Close(done) => {
                        let _ = done.send(result.clone());
                    }
                }
            }
            if !queued_ids.is_empty() {
                tracing::error!(store = %label, lost = ?queued_ids, "audit sink stopped; these queued records are lost");
            }
            for done in closing.drain(..) {
                let _ = done.send(result.clone());
            }
            store.close().await;
            return;
        }
    }
    // Closed, and everything queued before the close is taken.
    store.close().await;
    if lost && close_result.is_ok() {
        close_result = Err(AuditError::write(format!(
            "records queued for {label} since the last flush were not stored (a batch failed to commit)"
        )));
    }
    if !dropped.is_empty() {
        tracing::error!(store = %label, lost = ?dropped, "audit records queued after a failed batch were dropped");
    }
    for done in closing.drain(..) {
        let _ = done.send(close_result.clone());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use tokio::sync::Semaphore;

    use super::*;

    /// A store that commits a batch only when `gate` gives it a permit, and fails when `fail`
    /// says so.
    struct Gated {
        gate: Arc<Semaphore>,
        fail: bool,
    }

    #[async_trait]
    impl BatchStore for Gated {
        type Row = Uuid;
        fn record_id(row: &Uuid) -> Uuid {
            *row
        }
        async fn commit(&mut self, _: Vec<Uuid>) -> Result<(), AuditError> {
            self.gate.acquire().await.unwrap().forget();
            if self.fail { Err(AuditError::write("refused")) } else { Ok(()) }
        }
        async fn close(self) {}
    }

    fn batching() -> Batching {
        Batching { batch_size: 100, max_delay: Duration::ZERO, queue_capacity: 100 }
    }

    #[tokio::test]
    async fn queued_counts_what_is_not_stored_yet() {
        let gate = Arc::new(Semaphore::new(0));
        let writes = GroupCommit::start(Gated { gate: gate.clone(), fail: false }, batching(), "test".into());
        assert_eq!(writes.queued(), 0);
        for _ in 0..3 {
            writes.append(Uuid::new_v4(), Durability::Queued).await.unwrap();
        }
        // The writer holds them (in its batch or its queue) until the store commits.
        assert_eq!(writes.queued(), 3);
        gate.add_permits(100);
        writes.flush().await.unwrap();
        assert_eq!(writes.queued(), 0);
        writes.append(Uuid::new_v4(), Durability::Flushed).await.unwrap();
        assert_eq!(writes.queued(), 0);
        writes.close().await.unwrap();
    }

    /// A store that counts the records it committed.
    struct Counting(Arc<AtomicU64>);

    #[async_trait]
    impl BatchStore for Counting {
        type Row = Uuid;
        fn record_id(row: &Uuid) -> Uuid {
            *row
        }
        async fn commit(&mut self, rows: Vec<Uuid>) -> Result<(), AuditError> {
            self.0.fetch_add(rows.len() as u64, Relaxed);
            Ok(())
        }
        async fn close(self) {}
    }

    /// The writer does not listen to the queue while it waits for more records, but a full
    /// batch (or a full queue) ends the wait: appends never stall for `max_delay`.
    #[tokio::test]
    async fn a_full_batch_is_committed_without_waiting_out_the_delay() {
        for (batch_size, queue_capacity) in [(4, 100), (100, 4)] {
            let stored = Arc::new(AtomicU64::new(0));
            let batching = Batching { batch_size, max_delay: Duration::from_secs(3600), queue_capacity };
            let writes = GroupCommit::start(Counting(stored.clone()), batching, "test".into());
            let appended = tokio::time::timeout(Duration::from_secs(60), async {
                for _ in 0..20 {
                    writes.append(Uuid::new_v4(), Durability::Queued).await.unwrap();
                }
                while stored.load(Relaxed) < 16 {
                    tokio::task::yield_now().await;
                }
            })
            .await;
            assert!(appended.is_ok(), "batch {batch_size}, queue {queue_capacity}: stalled for the delay");
            writes.close().await.unwrap();
            assert_eq!(stored.load(Relaxed), 20, "close stores the rest");
        }
    }

    #[tokio::test]
    async fn records_a_failed_batch_lost_are_not_counted() {
        let gate = Arc::new(Semaphore::new(0));
        let writes = GroupCommit::start(Gated { gate: gate.clone(), fail: true }, batching(), "test".into());
        writes.append(Uuid::new_v4(), Durability::Queued).await.unwrap();
        writes.append(Uuid::new_v4(), Durability::Queued).await.unwrap();
        assert_eq!(writes.queued(), 2);
        gate.add_permits(100);
        assert!(writes.flush().await.is_err());
        // Every later batch fails as well: nothing stays counted.
        writes.append(Uuid::new_v4(), Durability::Queued).await.unwrap();
        assert!(writes.flush().await.is_err());
        assert_eq!(writes.queued(), 0);
        let _ = writes.close().await;
    }
}
