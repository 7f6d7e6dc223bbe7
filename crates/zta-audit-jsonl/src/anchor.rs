//! Publishing checkpoints outside the log directory. Someone able to write the directory can
//! put back an older (even signed) checkpoint and cut the log to match; a copy of each
//! checkpoint kept elsewhere shows it. The writer hands every new checkpoint to this module's
//! thread, which publishes the newest one at most once per interval and once more at close, so
//! a slow anchor never holds up a group commit.

use std::{
    fs::{File, OpenOptions},
    io::{self, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::{
    AnchorConfig, Error,
    checkpoint::{Checkpoint, Stored},
    queue::Shared,
};

/// The shortest time a command is given before it is killed.
const MIN_COMMAND_TIME: Duration = Duration::from_secs(1);

/// Where checkpoints go.
#[derive(Debug, Clone)]
enum Target {
    File(PathBuf),
    Command(Vec<String>),
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Self::File(path) => format!("file `{}`", path.display()),
            Self::Command(argv) => format!("command `{}`", argv.join(" ")),
        }
    }

    /// Publishes one checkpoint line (with its newline).
    fn publish(&self, line: &[u8], time_limit: Duration) -> Result<(), String> {
        match self {
            Self::File(path) => append_line(path, line).map_err(|e| e.to_string()),
            Self::Command(argv) => run_command(argv, line, time_limit),
        }
    }
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
        let target = match (&config.file, &config.command) {
            (Some(file), _) => Target::File(file.clone()),
            (None, Some(argv)) => Target::Command(argv.clone()),
            (None, None) => return Err(Error::Config("`anchor` needs `file` or `command`".into())),
        };
        let described = target.describe();
        let refused = |reason| Error::Anchor { anchor: described.clone(), reason };
        if let Some(current) = current {
            let line = encode(&current).map_err(refused)?;
            target.publish(&line, config.fail_after.max(MIN_COMMAND_TIME)).map_err(refused)?;
        }
        let inner = Arc::new(Inner::default());
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
            let (next, closing) = self.next(last_attempt);
            let Some(checkpoint) = next else {
                return Ok(());
            };
            let now = Instant::now();
            last_attempt = Some(now);
            let line = encode(&checkpoint)?;
            match self.target.publish(&line, self.fail_after.max(MIN_COMMAND_TIME)) {
                Ok(()) => failing_since = None,
                Err(e) => {
                    let since = *failing_since.get_or_insert(now);
                    let msg = format!(
                        "cannot publish audit checkpoint seq {} to the anchor {}: {e}",
                        checkpoint.seq,
                        self.target.describe()
                    );
                    // Retried with the newest checkpoint, this one if none came since.
                    self.inner.lock().latest.get_or_insert(checkpoint);
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

    /// Waits until a checkpoint is due (one waits and the interval since the last attempt has
    /// passed) or the writer stops. `(None, true)`: stopped with nothing left.
    fn next(&self, last_attempt: Option<Instant>) -> (Option<Stored>, bool) {
        let mut state = self.inner.lock();
        loop {
            if state.closing {
                return (state.latest.take(), true);
            }
            let due = last_attempt.and_then(|t| t.checked_add(self.interval));
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
