//! Publishing checkpoints outside the log directory. Someone able to write the directory can
//! put back an older (even signed) checkpoint and cut the log to match; a copy of each
//! checkpoint kept elsewhere shows it. The writer hands every new checkpoint to this module's
//! thread, which publishes the newest one at most once per interval and once more at close, so
//! a slow anchor never holds up a group commit. A store (PostgreSQL, NATS) is called on a
//! runtime of the thread's own, so it never depends on the caller's runtime being alive or
//! free.

use std::{
    fs::{File, OpenOptions},
    io::{self, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use zta_audit_chain::{AnchorEntry, CheckpointAnchor};

use crate::{
    AnchorConfig, Error,
    checkpoint::{Checkpoint, Stored},
    queue::Shared,
};

/// The shortest time a command (or a store) is given before it is killed (or given up on).
const MIN_COMMAND_TIME: Duration = Duration::from_secs(1);

/// The shortest time between two attempts to publish to a store that failed.
const MIN_RETRY: Duration = Duration::from_millis(500);

/// Where checkpoints go.
#[derive(Debug)]
enum Target {
    File(PathBuf),
    Command(Vec<String>),
    Store { store: Arc<dyn CheckpointAnchor>, log_id: String, runtime: tokio::runtime::Runtime },
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Self::File(path) => format!("file `{}`", path.display()),
            Self::Command(argv) => format!("command `{}`", argv.join(" ")),
            Self::Store { store, log_id, .. } => format!("{} (log `{log_id}`)", store.describe()),
        }
    }

    /// Whether failing to publish may fail the sink closed (a store never does).
    fn may_fail_closed(&self) -> bool {
        !matches!(self, Self::Store { .. })
    }

    /// Publishes one checkpoint.
    fn publish(&self, checkpoint: &Stored, time_limit: Duration) -> Result<(), String> {
        match self {
            Self::File(path) => append_line(path, &encode(checkpoint)?).map_err(|e| e.to_string()),
            Self::Command(argv) => run_command(argv, &encode(checkpoint)?, time_limit),
            Self::Store { store, log_id, runtime } => {
                let entry = entry(log_id, checkpoint)?;
                runtime.block_on(async {
                    match tokio::time::timeout(time_limit, store.publish(&entry)).await {
                        Ok(published) => published.map_err(|e| e.to_string()),
                        Err(_) => Err(format!("no answer within {time_limit:?}")),
                    }
                })
            }
        }
    }
}

/// A checkpoint as a store's entry: the checkpoint's JSON on one line, and copies of the
/// fields a store queries by.
fn entry(log_id: &str, checkpoint: &Stored) -> Result<AnchorEntry, String> {
    let key_id = checkpoint.key_id().ok_or("the checkpoint is not signed")?.to_owned();
    let json = serde_json::to_string(checkpoint).map_err(|e| format!("cannot encode the checkpoint: {e}"))?;
    Ok(AnchorEntry::new(log_id.to_owned(), key_id, checkpoint.seq, checkpoint.hash().to_owned(), json))
}

/// Appends `line` to the anchor file and syncs it.
fn append_line(path: &Path, line: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new().append(true).create(true).open(path)?;
    f.write_all(line)?;
    f.sync_data()
}

/// Runs the command with `line` on stdin; kills it after `time_limit`.
fn run_command(argv: &[String], line: &[u8], time_limit: Duration) -> Result<(), String> {
    let (program, args) = argv.split_first().ok_or("no program")?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start it: {e}"))?;
    // A checkpoint line is far smaller than a pipe buffer: this write does not wait for the
    // child to read.
    let written = match child.stdin.take() {
        Some(mut stdin) => stdin.write_all(line),
        None => Err(io::Error::other("no stdin")),
    };
    let deadline = Instant::now() + time_limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("it did not exit within {time_limit:?} and was killed"));
            }
            Err(e) => return Err(format!("cannot wait for it: {e}")),
        }
    };
    written.map_err(|e| format!("cannot write the checkpoint to its stdin: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("it exited with {status}")) }
}

/// A checkpoint as one anchor line.
fn encode(checkpoint: &Stored) -> Result<Vec<u8>, String> {
    let mut line =
        serde_json::to_vec(checkpoint).map_err(|e| format!("cannot encode the checkpoint: {e}"))?;
    line.push(b'\n');
    Ok(line)
}

/// The anchor thread's handle, owned by the writer.
#[derive(Debug)]
pub(crate) struct Anchor {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

#[derive(Debug, Default)]
struct Inner {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// The newest checkpoint not yet published.
    latest: Option<Stored>,
    /// The writer has stopped: publish what is left once, then end.
    closing: bool,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Anchor {
    /// Publishes `current` (the checkpoint the log was opened at) at once, so a misconfigured
    /// anchor fails the open, then starts the anchor thread. `shared` is failed closed if
    /// publishing later keeps failing.
    pub(crate) fn start(
        config: &AnchorConfig,
        shared: Arc<Shared>,
        current: Option<Stored>,
    ) -> Result<Self, Error> {
        let target = match (&config.file, &config.command, config.anchor_store()) {
            (Some(file), _, _) => Target::File(file.clone()),
            (None, Some(argv), _) => Target::Command(argv.clone()),
            (None, None, Some(store)) => Target::Store {
                store: store.clone(),
                log_id: config.log_id.clone().unwrap_or_default(),
                runtime: tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
                    Error::Anchor {
                        anchor: store.describe(),
                        reason: format!("cannot start its runtime: {e}"),
                    }
                })?,
            },
            (None, None, None) => {
                return Err(Error::Config(
                    "`anchor` needs one of `file`, `command`, `postgres` or `nats`".into(),
                ));
            }
        };
        let described = target.describe();
        let refused = |reason| Error::Anchor { anchor: described.clone(), reason };
        let inner = Arc::new(Inner::default());
        match current {
            // A store is not waited for: its outage must not keep the sink from opening. The
            // thread publishes what recovery left first.
            Some(current) if !target.may_fail_closed() => inner.lock().latest = Some(current),
            Some(current) => {
                target.publish(&current, config.fail_after.max(MIN_COMMAND_TIME)).map_err(refused)?;
            }
            None => {}
        }
        let run = Publisher {
            inner: inner.clone(),
            target,
            interval: config.interval,
            fail_after: config.fail_after,
            shared,
        };
        let thread = std::thread::Builder::new()
            .name("zta-audit-anchor".into())
            .spawn(move || run.serve())
            .map_err(|e| refused(format!("cannot start the anchor thread: {e}")))?;
        Ok(Self { inner, thread: Some(thread) })
    }

    /// Hands over a new checkpoint; it replaces any not yet published.
    pub(crate) fn offer(&self, checkpoint: Stored) {
        self.inner.lock().latest = Some(checkpoint);
        self.inner.changed.notify_one();
    }

    /// Publishes what is left and stops the thread: `Err` if that last publication failed (or
    /// publishing had already failed the sink).
    pub(crate) fn finish(mut self) -> Result<(), String> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), String> {
        self.inner.lock().closing = true;
        self.inner.changed.notify_one();
        match self.thread.take() {
            Some(thread) => thread.join().unwrap_or_else(|_| Err("the anchor thread panicked".into())),
            None => Ok(()),
        }
    }
}

impl Drop for Anchor {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

struct Publisher {
    inner: Arc<Inner>,
    target: Target,
    interval: Duration,
    fail_after: Duration,
    shared: Arc<Shared>,
}

impl Publisher {
    fn serve(self) -> Result<(), String> {
        let mut last_attempt: Option<Instant> = None;
        let mut failing_since: Option<Instant> = None;
        loop {
            // A failing store is not retried in a tight loop, whatever the interval.
            let wait = if failing_since.is_some() { self.interval.max(MIN_RETRY) } else { self.interval };
            let (next, closing) = self.next(last_attempt.and_then(|t| t.checked_add(wait)));
            let Some(checkpoint) = next else {
                return Ok(());
            };
            let now = Instant::now();
            last_attempt = Some(now);
            match self.target.publish(&checkpoint, self.fail_after.max(MIN_COMMAND_TIME)) {
                Ok(()) => {
                    if let Some(since) = failing_since.take() {
                        tracing::info!(
                            anchor = %self.target.describe(),
                            seq = checkpoint.seq,
                            failed_for = ?since.elapsed(),
                            "audit anchor reachable again; the newest checkpoint is published"
                        );
                    }
                }
                Err(e) => {
                    let since = *failing_since.get_or_insert(now);
                    let msg = format!(
                        "cannot publish audit checkpoint seq {} to the anchor {}: {e}",
                        checkpoint.seq,
                        self.target.describe()
                    );
                    let seq = checkpoint.seq;
                    // Retried with the newest checkpoint, this one if none came since.
                    self.inner.lock().latest.get_or_insert(checkpoint);
                    if !self.target.may_fail_closed() {
                        // A store: the log goes on; the anchor lags until it answers again.
                        tracing::error!(
                            error = %msg,
                            failing_for = ?since.elapsed(),
                            unanchored_from_seq = seq,
                            "audit anchor store unreachable; requests are still served and every \
                             record kept, but the anchor lags the log until it is back"
                        );
                        if closing {
                            return Ok(());
                        }
                        continue;
                    }
                    if closing {
                        tracing::error!(error = %msg, "audit anchor failed at close");
                        return Err(msg);
                    }
                    if since.elapsed() >= self.fail_after {
                        let msg = format!("{msg} (failing for {:?}; the sink fails closed)", since.elapsed());
                        tracing::error!(
                            error = %msg,
                            "audit anchor keeps failing; the sink takes no more records (every request is denied)"
                        );
                        self.shared.fail_closed(msg.clone());
                        return Err(msg);
                    }
                    tracing::error!(
                        error = %msg,
                        fail_closed_in = ?self.fail_after.saturating_sub(since.elapsed()),
                        "audit anchor failed; retrying with the newest checkpoint"
                    );
                }
            }
            if closing {
                return Ok(());
            }
        }
    }

    /// Waits until a checkpoint is due (one waits and `due` has passed) or the writer stops.
    /// `(None, true)`: stopped with nothing left.
    fn next(&self, due: Option<Instant>) -> (Option<Stored>, bool) {
        let mut state = self.inner.lock();
        loop {
            if state.closing {
                return (state.latest.take(), true);
            }
            let now = Instant::now();
            state = match (&state.latest, due) {
                (Some(_), None) => return (state.latest.take(), false),
                (Some(_), Some(due)) if due <= now => return (state.latest.take(), false),
                (Some(_), Some(due)) => {
                    self.inner
                        .changed
                        .wait_timeout(state, due - now)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0
                }
                (None, _) => {
                    self.inner.changed.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner)
                }
            };
        }
    }
}

/// The newest checkpoint in an anchor file: the last line in its final 64 KiB that parses
/// (a torn last line is skipped). `None` if there is none, or no file.
pub(crate) fn newest_in_file(path: &Path) -> io::Result<Option<Checkpoint>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL_WINDOW)))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    Ok(tail.split(|b| *b == b'\n').rev().find_map(|line| Checkpoint::parse(line).ok()))
}

/// How much of an anchor file's end is searched for its newest checkpoint when a sink opens.
const TAIL_WINDOW: u64 = 64 * 1024;
