//! The disk spool of one target: records appended to numbered segment files
//! (`000001.spool`, ...; one compact JSON record per line), and a forwarder task that sends
//! them to the sink in order. `cursor` holds where forwarding stands (segment and byte
//! offset); it moves only after the sink has flushed what was sent, and a segment is deleted
//! only once the cursor has left it.

use std::{
    fs::{self, File, OpenOptions},
    io::{BufRead, BufReader, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use serde::Deserialize;
use tokio::sync::Notify;
use zta_core::{AuditError, AuditRecord, AuditSink, Durability};

/// Where a spooled target keeps its records and how much it may hold.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SpoolConfig {
    /// The spool's own directory (created if missing).
    pub dir: PathBuf,
    /// The most the spool may hold on disk; an append that would pass it fails. Default 1 GiB.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
}

fn default_max_bytes() -> u64 {
    1 << 30
}

impl SpoolConfig {
    /// A spool in `dir` holding at most 1 GiB.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), max_bytes: default_max_bytes() }
    }
}

/// Why a spool cannot be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// The configuration cannot work.
    #[error("{0}")]
    Config(String),
    /// The spool directory or a file in it cannot be used.
    #[error("spool `{}`: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Records sent to the sink before it is asked to flush.
const BATCH_RECORDS: usize = 512;
/// Bytes of spooled records sent to the sink before it is asked to flush.
const BATCH_BYTES: u64 = 4 << 20;
/// The first wait after the sink failed; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A position in the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Position {
    segment: u64,
    offset: u64,
}

/// What appenders and the forwarder share.
struct Files {
    dir: PathBuf,
    /// The segment being appended to, and its length.
    head: File,
    head_at: Position,
    /// Bytes of all segments on disk.
    bytes: u64,
    /// Where forwarding stands.
    cursor: Position,
    /// Records appended and not yet forwarded.
    backlog: u64,
    max_bytes: u64,
    segment_bytes: u64,
    closed: bool,
}

/// One spooled target.
pub(crate) struct Spool {
    name: String,
    files: Mutex<Files>,
    wake: Arc<Notify>,
    forwarder: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Held (locked) while the spool is open.
    _lock: File,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io { path: path.to_owned(), source }
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:06}.spool"))
}

fn audit_io(e: std::io::Error) -> AuditError {
    AuditError::write(e)
}

impl Spool {
    /// Opens (or creates) the spool and starts forwarding what it holds to `sink`.
    pub(crate) fn open(
        name: String,
        sink: Arc<dyn AuditSink>,
        config: SpoolConfig,
    ) -> Result<Arc<Self>, SpoolError> {
        if config.max_bytes < 1 << 16 {
            return Err(SpoolError::Config(format!(
                "spool `{}`: max_bytes {} is too small (at least 65536)",
                config.dir.display(),
                config.max_bytes
            )));
        }
        let dir = config.dir.clone();
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        // One spool, one process: a second forwarder would send records twice and move the
        // cursor under the first.
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_error(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(SpoolError::Config(format!(
                    "spool `{}` is in use by another process",
                    dir.display()
                )));
            }
            Err(fs::TryLockError::Error(e)) => return Err(SpoolError::Io { path: lock_path, source: e }),
        }
        let mut segments = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_error(&dir))? {
            let entry = entry.map_err(io_error(&dir))?;
            let name = entry.file_name();
            let Some(number) = name.to_str().and_then(|n| n.strip_suffix(".spool")) else { continue };
            if let Ok(number) = number.parse::<u64>() {
                segments.push(number);
            }
        }
        segments.sort_unstable();
        let cursor_path = dir.join("cursor");
        let mut cursor = read_cursor(&cursor_path)?
            .unwrap_or(Position { segment: segments.first().copied().unwrap_or(1), offset: 0 });
        // Segments before the cursor were forwarded; a crash may have left them behind.
        for &segment in segments.iter().filter(|&&s| s < cursor.segment) {
            let path = segment_path(&dir, segment);
            fs::remove_file(&path).map_err(io_error(&path))?;
        }
        segments.retain(|&s| s >= cursor.segment);
        let head_segment = segments.last().copied().unwrap_or(cursor.segment).max(cursor.segment);
        let head_path = segment_path(&dir, head_segment);
        let mut head = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&head_path)
            .map_err(io_error(&head_path))?;
        // A line cut short by a crash was never acknowledged: drop it.
        let head_len = complete_length(&mut head).map_err(io_error(&head_path))?;
        head.set_len(head_len).map_err(io_error(&head_path))?;
        if cursor.segment == head_segment && cursor.offset > head_len {
            cursor.offset = head_len;
        }
        let mut bytes = 0;
        let mut backlog = 0;
        for &segment in &segments {
            let path = segment_path(&dir, segment);
            let len = if segment == head_segment {
                head_len
            } else {
                fs::metadata(&path).map_err(io_error(&path))?.len()
            };
            bytes += len;
            let from = if segment == cursor.segment { cursor.offset } else { 0 };
            backlog += count_lines(&path, from, len).map_err(io_error(&path))?;
        }
        if backlog > 0 {
            tracing::info!(target: "zta_audit_fanout", sink = %name, records = backlog, "replaying the audit spool");
        }
        let files = Files {
            dir,
            head,
            head_at: Position { segment: head_segment, offset: head_len },
            bytes,
            cursor,
            backlog,
            max_bytes: config.max_bytes,
            segment_bytes: (config.max_bytes / 8).max(1 << 16),
            closed: false,
        };
        let spool = Arc::new(Self {
            name,
            files: Mutex::new(files),
            wake: Arc::new(Notify::new()),
            forwarder: Mutex::new(None),
            _lock: lock,
        });
        let task = tokio::spawn(forward(Arc::downgrade(&spool), sink));
        if let Ok(mut slot) = spool.forwarder.lock() {
            *slot = Some(task);
        }
        Ok(spool)
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn backlog(&self) -> u64 {
        self.files().map(|f| f.backlog).unwrap_or(0)
    }

    fn files(&self) -> Result<MutexGuard<'_, Files>, AuditError> {
        self.files.lock().map_err(|_| AuditError::write("spool lock poisoned"))
    }

    /// Stores `record` at the end of the spool (synced to disk first when `durability` asks).
    pub(crate) async fn append(
        &self,
        record: &AuditRecord,
        durability: Durability,
    ) -> Result<(), AuditError> {
        let mut line = serde_json::to_vec(record).map_err(AuditError::write)?;
        line.push(b'\n');
        let synced = {
            let mut files = self.files()?;
            if files.closed {
                return Err(AuditError::Closed);
            }
            let len = line.len() as u64;
            if files.bytes + len > files.max_bytes {
                return Err(AuditError::write(format!(
                    "the spool `{}` is full ({} bytes, {} records waiting): the sink has not taken records for a while",
                    files.dir.display(),
                    files.bytes,
                    files.backlog
                )));
            }
            if files.head_at.offset > 0 && files.head_at.offset + len > files.segment_bytes {
                files.rotate().map_err(audit_io)?;
            }
            files.head.write_all(&line).map_err(audit_io)?;
            files.head_at.offset += len;
            files.bytes += len;
            files.backlog += 1;
            match durability {
                Durability::Queued => None,
                Durability::Flushed => Some(files.head.try_clone().map_err(audit_io)?),
            }
        };
        self.wake.notify_one();
        if let Some(file) = synced {
            sync(file).await?;
        }
        Ok(())
    }

    /// Makes everything appended so far durable on disk.
    pub(crate) async fn flush(&self) -> Result<(), AuditError> {
        let file = self.files()?.head.try_clone().map_err(audit_io)?;
        sync(file).await
    }

    /// Refuses further appends, syncs the spool and stops forwarding.
    pub(crate) async fn close(&self) -> Result<(), AuditError> {
        self.files()?.closed = true;
        let task = self.forwarder.lock().ok().and_then(|mut slot| slot.take());
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        self.flush().await
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if let Some(task) = self.forwarder.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
    }
}

async fn sync(file: File) -> Result<(), AuditError> {
    tokio::task::spawn_blocking(move || file.sync_data()).await.map_err(AuditError::write)?.map_err(audit_io)
}

impl Files {
    /// Starts a new segment after syncing the current one.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.head.sync_data()?;
        let next = Position { segment: self.head_at.segment + 1, offset: 0 };
        let path = segment_path(&self.dir, next.segment);
        self.head = OpenOptions::new().create(true).append(true).read(true).open(path)?;
        self.head_at = next;
        Ok(())
    }
}

/// The length of `file` up to and including its last newline.
fn complete_length(file: &mut File) -> std::io::Result<u64> {
    let len = file.seek(SeekFrom::End(0))?;
    let mut reader = BufReader::new(&mut *file);
    reader.seek(SeekFrom::Start(0))?;
    let (mut at, mut complete, mut line) = (0u64, 0u64, Vec::new());
    while at < len {
        line.clear();
        let read = reader.read_until(b'\n', &mut line)? as u64;
        if read == 0 {
            break;
        }
        at += read;
        if line.last() == Some(&b'\n') {
            complete = at;
        }
    }
    Ok(complete)
}

fn count_lines(path: &Path, from: u64, to: u64) -> std::io::Result<u64> {
    let mut reader = BufReader::new(File::open(path)?);
    reader.seek(SeekFrom::Start(from))?;
    let (mut at, mut count, mut line) = (from, 0, Vec::new());
    while at < to {
        line.clear();
        let read = reader.read_until(b'\n', &mut line)? as u64;
        if read == 0 {
            break;
        }
        at += read;
        count += 1;
    }
    Ok(count)
}

fn read_cursor(path: &Path) -> Result<Option<Position>, SpoolError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SpoolError::Io { path: path.to_owned(), source: e }),
    };
    let mut parts = text.split_whitespace().map(str::parse::<u64>);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(segment)), Some(Ok(offset)), None) => Ok(Some(Position { segment, offset })),
        _ => Err(SpoolError::Config(format!(
            "`{}` is not a spool cursor (`<segment> <offset>`)",
            path.display()
        ))),
    }
}

/// Writes the cursor so that a crash leaves the old one or the new one, never a mix.
fn write_cursor(dir: &Path, at: Position) -> std::io::Result<()> {
    let temporary = dir.join("cursor.new");
    let mut file = File::create(&temporary)?;
    file.write_all(format!("{} {}\n", at.segment, at.offset).as_bytes())?;
    file.sync_data()?;
    fs::rename(&temporary, dir.join("cursor"))?;
    File::open(dir)?.sync_all()
}

/// A batch read from the spool: the records and where the cursor goes once they are flushed.
struct Batch {
    records: Vec<AuditRecord>,
    next: Position,
}

/// Reads up to a batch of records at the cursor (crossing into the next segment when this one
/// is finished and no longer the head).
fn read_batch(dir: &Path, cursor: Position, head_at: Position) -> Result<Batch, String> {
    let mut at = cursor;
    if at.segment < head_at.segment {
        let len = fs::metadata(segment_path(dir, at.segment)).map(|m| m.len()).unwrap_or(0);
        if at.offset >= len {
            return Ok(Batch { records: Vec::new(), next: Position { segment: at.segment + 1, offset: 0 } });
        }
    }
    let end = if at.segment == head_at.segment { head_at.offset } else { u64::MAX };
    let path = segment_path(dir, at.segment);
    let file = File::open(&path).map_err(|e| format!("`{}`: {e}", path.display()))?;
    let mut reader = BufReader::new(file);
    reader.seek(SeekFrom::Start(at.offset)).map_err(|e| e.to_string())?;
    let (mut records, mut read_bytes, mut line) = (Vec::new(), 0u64, Vec::new());
    while at.offset < end && records.len() < BATCH_RECORDS && read_bytes < BATCH_BYTES {
        line.clear();
        let read = reader.read_until(b'\n', &mut line).map_err(|e| e.to_string())? as u64;
        if read == 0 || line.last() != Some(&b'\n') {
            break;
        }
        let record = serde_json::from_slice(&line)
            .map_err(|e| format!("`{}` at byte {}: {e}", path.display(), at.offset))?;
        records.push(record);
        at.offset += read;
        read_bytes += read;
    }
    Ok(Batch { records, next: at })
}

/// Sends the spool to `sink`, in order, until the spool is closed or dropped.
async fn forward(spool: std::sync::Weak<Spool>, sink: Arc<dyn AuditSink>) {
    let mut backoff = FIRST_BACKOFF;
    let mut failing = false;
    loop {
        let Some(this) = spool.upgrade() else { return };
        let position = this.files().ok().map(|f| (f.dir.clone(), f.cursor, f.head_at, f.closed));
        let Some((dir, cursor, head_at, closed)) = position else { return };
        if closed {
            return;
        }
        if cursor == head_at {
            // `notify_one` keeps a permit when no one waits, so an append made before this wait
            // still wakes it.
            let wake = this.wake.clone();
            drop(this);
            wake.notified().await;
            continue;
        }
        let read = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || read_batch(&dir, cursor, head_at)).await
        };
        let outcome = match read {
            Ok(Ok(batch)) => send(&*sink, batch).await,
            Ok(Err(e)) => Err(format!("cannot read the spool: {e}")),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok((next, sent)) => {
                if failing {
                    tracing::info!(target: "zta_audit_fanout", sink = %this.name, "audit sink takes records again");
                    failing = false;
                }
                backoff = FIRST_BACKOFF;
                if let Err(e) = this.advance(cursor, next, sent).await {
                    tracing::error!(target: "zta_audit_fanout", sink = %this.name, error = %e, "cannot move the spool cursor");
                    drop(this);
                    tokio::time::sleep(backoff).await;
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(target: "zta_audit_fanout", sink = %this.name, error = %e, "audit sink unavailable; spooling");
                    failing = true;
                }
                drop(this);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Sends `batch` and flushes the sink; the cursor may then move to the batch's end.
async fn send(sink: &dyn AuditSink, batch: Batch) -> Result<(Position, u64), String> {
    let sent = batch.records.len() as u64;
    for record in batch.records {
        sink.append(record, Durability::Queued).await.map_err(|e| e.to_string())?;
    }
    sink.flush().await.map_err(|e| e.to_string())?;
    Ok((batch.next, sent))
}

impl Spool {
    /// Moves the cursor from `from` to `to` (`sent` records forwarded) and deletes the segments
    /// it has left.
    async fn advance(&self, from: Position, to: Position, sent: u64) -> std::io::Result<()> {
        let dir = self.files().map_err(std::io::Error::other)?.dir.clone();
        let written = dir.clone();
        tokio::task::spawn_blocking(move || write_cursor(&written, to))
            .await
            .map_err(std::io::Error::other)??;
        let mut removed = 0;
        for segment in from.segment..to.segment {
            let path = segment_path(&dir, segment);
            removed += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let mut files = self.files().map_err(std::io::Error::other)?;
        files.cursor = to;
        files.backlog = files.backlog.saturating_sub(sent);
        files.bytes = files.bytes.saturating_sub(removed);
        // A fully forwarded head segment is started afresh, so the spool does not keep growing
        // while the sink keeps up.
        if files.cursor == files.head_at && files.head_at.offset >= files.segment_bytes / 2 {
            let old = files.head_at;
            files.rotate()?;
            let new = files.head_at;
            drop(files);
            write_cursor(&dir, new)?;
            let mut files = self.files().map_err(std::io::Error::other)?;
            if files.cursor == old {
                files.cursor = new;
            }
            files.bytes = files.bytes.saturating_sub(old.offset);
            drop(files);
            let _ = fs::remove_file(segment_path(&dir, old.segment));
        }
        Ok(())
    }
}
