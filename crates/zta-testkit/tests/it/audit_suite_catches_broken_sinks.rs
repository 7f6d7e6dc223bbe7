//! The audit suite passes a correct in-memory sink and fails one that breaks any one contract,
//! with a message naming it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use async_trait::async_trait;
use zta_core::{AuditError, AuditRecord, AuditSink, Durability};
use zta_testkit::{AuditBackend, BackendError, audit};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Commits the staged records in reverse order.
    Reorders,
    /// `Durability::Flushed` returns without committing.
    FlushedIsQueued,
    /// `flush()` returns without committing.
    FlushDoesNothing,
    /// The 1000th append of a sink is lost.
    LosesOne,
    /// The 1000th append of a sink is stored twice.
    DuplicatesOne,
    /// Times are kept in whole milliseconds.
    MillisecondTimes,
    /// An empty reason is stored as none.
    EmptyReasonIsNone,
    /// NUL characters are dropped from reasons.
    StripsNul,
    /// A closed sink takes (and drops) records.
    AcceptsAfterClose,
    /// Reopening starts an empty log.
    ReopenForgets,
}

/// What one directory holds: taken-but-uncommitted and committed records, as JSON.
#[derive(Debug, Default)]
struct Log {
    staged: Mutex<Vec<String>>,
    committed: Mutex<Vec<String>>,
}

#[derive(Debug)]
struct MemorySink {
    log: Arc<Log>,
    fault: Option<Fault>,
    closed: AtomicBool,
    appended: AtomicUsize,
}

impl MemorySink {
    fn commit(&self) {
        // The committed log is held while the staged records are taken: two commits racing
        // (one task's flushed append and another's) must not store their batches out of order.
        let mut committed = self.log.committed.lock().unwrap();
        let mut staged = std::mem::take(&mut *self.log.staged.lock().unwrap());
        if self.fault == Some(Fault::Reorders) {
            staged.reverse();
        }
        committed.extend(staged);
    }
}

#[async_trait]
impl AuditSink for MemorySink {
    async fn append(&self, mut record: AuditRecord, durability: Durability) -> Result<(), AuditError> {
        if self.closed.load(Ordering::SeqCst) {
            return if self.fault == Some(Fault::AcceptsAfterClose) {
                Ok(())
            } else {
                Err(AuditError::Closed)
            };
        }
        match self.fault {
            Some(Fault::MillisecondTimes) => {
                record.time = record.time.replace_millisecond(record.time.millisecond()).unwrap();
            }
            Some(Fault::EmptyReasonIsNone) if record.reason.as_deref() == Some("") => record.reason = None,
            Some(Fault::StripsNul) => record.reason = record.reason.map(|r| r.replace('\0', "")),
            _ => {}
        }
        let line = serde_json::to_string(&record).map_err(AuditError::write)?;
        let n = self.appended.fetch_add(1, Ordering::SeqCst) + 1;
        {
            let mut staged = self.log.staged.lock().unwrap();
            match self.fault {
                Some(Fault::LosesOne) if n == 1000 => {}
                Some(Fault::DuplicatesOne) if n == 1000 => staged.extend([line.clone(), line]),
                _ => staged.push(line),
            }
        }
        if durability == Durability::Flushed && self.fault != Some(Fault::FlushedIsQueued) {
            self.commit();
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), AuditError> {
        if self.fault != Some(Fault::FlushDoesNothing) {
            self.commit();
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct MemoryBackend {
    fault: Option<Fault>,
    dirs: Mutex<HashMap<PathBuf, Arc<Log>>>,
}

fn backend(fault: Fault) -> MemoryBackend {
    MemoryBackend { fault: Some(fault), ..MemoryBackend::default() }
}

#[async_trait]
impl AuditBackend for MemoryBackend {
    type Sink = MemorySink;

    async fn open(&self, dir: &Path) -> Result<Arc<MemorySink>, BackendError> {
        let mut dirs = self.dirs.lock().unwrap();
        if self.fault == Some(Fault::ReopenForgets) {
            dirs.remove(dir);
        }
        let log = dirs.entry(dir.to_owned()).or_default().clone();
        Ok(Arc::new(MemorySink {
            log,
            fault: self.fault,
            closed: AtomicBool::new(false),
            appended: AtomicUsize::new(0),
        }))
    }

    async fn close(&self, sink: Arc<MemorySink>) -> Result<(), BackendError> {
        sink.commit();
        sink.closed.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn read_back(&self, dir: &Path) -> Result<Vec<AuditRecord>, BackendError> {
        let log =
            self.dirs.lock().unwrap().get(dir).cloned().ok_or("nothing was stored in this directory")?;
        let lines = log.committed.lock().unwrap().clone();
        Ok(lines.iter().map(|l| serde_json::from_str(l)).collect::<Result<_, _>>()?)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_correct_sink_passes() {
    audit::run_all(&MemoryBackend::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "the same records in another order")]
async fn reordering_fails() {
    audit::rich_records_round_trip(&backend(Fault::Reorders)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "read back right after a Flushed append returned")]
async fn flushed_without_commit_fails() {
    audit::flushed_append_is_readable_at_once(&backend(Fault::FlushedIsQueued)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "read back right after flush() returned")]
async fn flush_doing_nothing_fails() {
    audit::flush_makes_queued_records_readable(&backend(Fault::FlushDoesNothing)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "records lost")]
async fn losing_a_record_under_load_fails() {
    audit::concurrent_appenders_lose_nothing(&backend(Fault::LosesOne)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "records stored twice")]
async fn duplicating_a_record_under_load_fails() {
    audit::concurrent_appenders_lose_nothing(&backend(Fault::DuplicatesOne)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "came back different")]
async fn losing_time_precision_fails() {
    audit::rich_records_round_trip(&backend(Fault::MillisecondTimes)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
// The first record with an empty reason follows two minimal records per audit event.
#[should_panic(expected = "minimal records, read back after close: record 20")]
async fn turning_empty_into_absent_fails() {
    audit::minimal_records_round_trip(&backend(Fault::EmptyReasonIsNone)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "records with hostile text, read back after close: record 0")]
async fn altering_hostile_text_fails() {
    audit::hostile_text_round_trips(&backend(Fault::StripsNul)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "a closed sink accepted a record")]
async fn accepting_after_close_fails() {
    audit::closed_sink_refuses_appends(&backend(Fault::AcceptsAfterClose)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "read back after two open-append-close rounds")]
async fn forgetting_on_reopen_fails() {
    audit::reopen_appends_after_earlier_records(&backend(Fault::ReopenForgets)).await;
}

#[tokio::test]
#[should_panic(expected = "needs a multi-thread runtime")]
async fn the_race_check_refuses_a_single_thread() {
    audit::concurrent_appenders_lose_nothing(&MemoryBackend::default()).await;
}
