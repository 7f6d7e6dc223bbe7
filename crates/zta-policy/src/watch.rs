//! Hot reload: the policy in force lives behind an atomic pointer; a background thread watches
//! the files' directories, reads and compiles off the request path, audits the attempt, and
//! swaps. A file that fails to load, or that is still changing while it is read, never replaces
//! the working set.
//!
//! What is watched (non-recursively): each file's directory, every directory holding a symbolic
//! link met while resolving the file, and the directory of the file it resolves to; the set
//! follows the links after every change. So an edit in place, an editor's rename and a
//! Kubernetes ConfigMap update (a new `..data` symlink renamed over the old one) are all seen.
//! Any event there leads to a read; only a read whose bytes differ from the last one leads to a
//! reload attempt (and its audit record).
//!
//! How the files are read: all of them, then all again after a short settle interval, until two
//! consecutive reads agree byte for byte; a file that keeps changing is refused like a broken
//! one.

use std::{
    collections::BTreeSet,
    ffi::OsString,
    future::Future,
    io,
    path::{Component, Path, PathBuf},
    sync::{
        Arc, Mutex,
        mpsc::{self, Receiver, RecvTimeoutError, Sender},
    },
    thread,
    time::Duration,
};

use arc_swap::ArcSwap;
use notify::{
    EventKind, RecursiveMode, Watcher as _,
    event::{AccessKind, AccessMode},
};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use zta_core::{
    AuditEvent, AuditRecord, AuditSink, AuthzRequest, Decision, Durability, Effect, Permissible,
    PolicyDigest, PolicyEngine, PolicyError, Principal,
};

use crate::{Error, Format, PolicySet, Source};

/// How long a burst of change events must stay quiet before the files are read.
const DEBOUNCE: Duration = Duration::from_millis(50);
/// The pause between two reads of the files that must agree before they are loaded.
const SETTLE: Duration = Duration::from_millis(20);
/// Reads of the files before a file that keeps changing is refused.
const MAX_READS: u32 = 25;
/// Symbolic links followed while resolving one file before giving up (the kernel's limit).
const MAX_LINKS: u32 = 40;

/// The `policy` section of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PolicyConfig {
    /// The policy files, loaded together.
    pub files: Vec<PathBuf>,
    /// Whether to reload them when they change.
    #[serde(default)]
    pub watch: bool,
}

impl PolicyConfig {
    /// A configuration for `files`, not watched.
    pub fn new(files: impl IntoIterator<Item = impl Into<PathBuf>>) -> Self {
        Self { files: files.into_iter().map(Into::into).collect(), watch: false }
    }

    /// Sets whether the files are watched.
    #[must_use]
    pub fn with_watch(mut self, watch: bool) -> Self {
        self.watch = watch;
        self
    }
}

/// The outcome of one reload attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReloadOutcome {
    /// A new policy set is in force.
    Replaced {
        /// The digest before.
        old: PolicyDigest,
        /// The digest now in force.
        new: PolicyDigest,
    },
    /// The files load to the policy already in force; nothing changed.
    Unchanged(PolicyDigest),
    /// The files failed to load, kept changing while they were read, or the attempt could not
    /// be audited; the old set stays.
    Refused {
        /// The digest still in force.
        kept: PolicyDigest,
        /// Why, with positions.
        reason: String,
    },
}

enum Msg {
    Changed,
    Reload(Sender<ReloadOutcome>),
    Stop,
}

/// A hook the reload thread runs between two reads of the files (tests only).
type SettleHook = Arc<dyn Fn() + Send + Sync>;

struct Shared {
    current: ArcSwap<PolicySet>,
    files: Vec<PathBuf>,
    audit: Arc<dyn AuditSink>,
    subscribers: Mutex<Vec<Sender<ReloadOutcome>>>,
    settle_hook: Mutex<Option<SettleHook>>,
}

/// A [`PolicyEngine`] over a policy set that can be replaced while requests are decided.
///
/// Decisions read the set in force through an atomic pointer (no lock). Reloads (changes in the
/// files' directories when watching, or [`PolicyWatcher::reload`]) run on a background thread:
/// read until two reads 20 ms apart agree, load, compile, audit an [`AuditEvent::PolicyReload`]
/// record (details `old_digest` and `new_digest`; effect `deny` with a reason when refused),
/// then swap. A change that leaves every file's bytes as they were is no reload: no outcome, no
/// record. If the audit sink refuses the record the new set is not put in force.
pub struct PolicyWatcher {
    shared: Arc<Shared>,
    tx: Sender<Msg>,
    worker: Option<thread::JoinHandle<()>>,
    watching: bool,
}

impl std::fmt::Debug for PolicyWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyWatcher")
            .field("files", &self.shared.files)
            .field("digest", &self.shared.current.load().digest())
            .field("watching", &self.watching)
            .finish()
    }
}

impl PolicyWatcher {
    /// Loads the configured files (failing if they do not load, or keep changing while read)
    /// and, if `watch` is set, starts watching them. Audit records of reloads go to `audit`.
    /// When called inside a Tokio runtime, audit writes run on that runtime; otherwise on a
    /// current-thread runtime of the reload thread's own.
    pub fn new(config: &PolicyConfig, audit: Arc<dyn AuditSink>) -> Result<Self, Error> {
        if config.files.is_empty() {
            return Err(Error::NoFiles);
        }
        let snapshot = read_settled(&config.files, None)?;
        let seen = snapshot.fingerprint();
        let set = compile(&config.files, snapshot)?;
        let files: Vec<PathBuf> = config.files.iter().map(|f| absolute(f)).collect();
        let executor = match tokio::runtime::Handle::try_current() {
            Ok(handle) => Executor::Caller(handle),
            Err(_) => Executor::Own(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Error::Watch(format!("cannot start the reload runtime: {e}")))?,
            ),
        };
        let shared = Arc::new(Shared {
            current: ArcSwap::from_pointee(set),
            files,
            audit,
            subscribers: Mutex::new(Vec::new()),
            settle_hook: Mutex::new(None),
        });
        let (tx, rx) = mpsc::channel();
        let watch = if config.watch { Some(DirWatch::start(&shared.files, tx.clone())?) } else { None };
        let watching = watch.is_some();
        let worker = Worker { shared: shared.clone(), rx, executor, watch, seen: Some(seen) };
        let worker = thread::Builder::new()
            .name("zta-policy-reload".into())
            .spawn(move || worker.run())
            .map_err(|e| Error::Watch(e.to_string()))?;
        Ok(Self { shared, tx, worker: Some(worker), watching })
    }

    /// The policy set in force.
    pub fn current(&self) -> Arc<PolicySet> {
        self.shared.current.load_full()
    }

    /// Reloads now and waits for the outcome (blocks the calling thread, never the runtime's
    /// I/O: the work happens on the reload thread). Unlike a watched change, this attempts a
    /// reload even when the files' bytes have not changed.
    pub fn reload(&self) -> ReloadOutcome {
        let (tx, rx) = mpsc::channel();
        let kept = self.shared.current.load().digest();
        if self.tx.send(Msg::Reload(tx)).is_err() {
            return ReloadOutcome::Refused { kept, reason: "the reload thread has stopped".into() };
        }
        rx.recv().unwrap_or(ReloadOutcome::Refused { kept, reason: "the reload thread has stopped".into() })
    }

    /// A channel told the outcome of every later reload attempt (for tests and operators). An
    /// attempt asked for with [`PolicyWatcher::reload`] is told here before `reload` returns.
    pub fn subscribe(&self) -> Receiver<ReloadOutcome> {
        let (tx, rx) = mpsc::channel();
        if let Ok(mut subs) = self.shared.subscribers.lock() {
            subs.push(tx);
        }
        rx
    }

    /// Runs `hook` on the reload thread after each read of the files that another read must
    /// confirm, before the settle pause (tests only: lets a test change a file between two reads
    /// deterministically).
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn set_settle_hook(&self, hook: impl Fn() + Send + Sync + 'static) {
        if let Ok(mut slot) = self.shared.settle_hook.lock() {
            *slot = Some(Arc::new(hook));
        }
    }
}

impl Drop for PolicyWatcher {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

impl PolicyEngine for PolicyWatcher {
    fn evaluate(&self, request: &AuthzRequest) -> Result<Decision, PolicyError> {
        self.shared.current.load().evaluate(request)
    }

    fn digest(&self) -> PolicyDigest {
        self.shared.current.load().digest()
    }

    /// The policy in force's answer (see [`PolicySet::what_can`]).
    fn permissible(&self, principal: &Principal) -> Option<Permissible> {
        self.shared.current.load().permissible(principal)
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

/// Runs the audit sink's futures on the reload thread.
enum Executor {
    /// The runtime the watcher was created in.
    Caller(tokio::runtime::Handle),
    /// A current-thread runtime of the reload thread's own (created outside any runtime); it
    /// lives and is dropped on the reload thread.
    Own(tokio::runtime::Runtime),
}

impl Executor {
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        match self {
            Self::Caller(handle) => handle.block_on(fut),
            Self::Own(runtime) => runtime.block_on(fut),
        }
    }
}

/// The directories watched, kept in step with where the files resolve.
struct DirWatch {
    watcher: notify::RecommendedWatcher,
    dirs: BTreeSet<PathBuf>,
}

impl DirWatch {
    fn start(files: &[PathBuf], tx: Sender<Msg>) -> Result<Self, Error> {
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            // Opening or reading a file (the reload thread's own reads among them) changes
            // nothing; a writer closing it may have. An error (lost events) means: read again.
            let relevant = match res {
                Ok(event) => match event.kind {
                    EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
                    EventKind::Access(_) => false,
                    _ => true,
                },
                Err(_) => true,
            };
            if relevant {
                let _ = tx.send(Msg::Changed);
            }
        })
        .map_err(|e| Error::Watch(e.to_string()))?;
        let mut watch = Self { watcher, dirs: BTreeSet::new() };
        for dir in watched_dirs(files) {
            watch
                .watcher
                .watch(&dir, RecursiveMode::NonRecursive)
                .map_err(|e| Error::Watch(format!("`{}`: {e}", dir.display())))?;
            watch.dirs.insert(dir);
        }
        Ok(watch)
    }

    /// Follows the files to where they resolve now (a swapped symlink points elsewhere).
    fn refresh(&mut self, files: &[PathBuf]) {
        let wanted = watched_dirs(files);
        for gone in self.dirs.difference(&wanted) {
            // A deleted directory has lost its watch already.
            let _ = self.watcher.unwatch(gone);
        }
        for dir in &wanted {
            // Watching again is harmless, and re-arms a directory deleted and created anew.
            if let Err(e) = self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch a policy directory");
            }
        }
        self.dirs = wanted;
    }
}

/// The directories whose entries decide what `files` read: each file's own, each one holding a
/// symbolic link met while resolving it, and the one holding the file it resolves to (or, if it
/// does not resolve, the one missing the next entry).
fn watched_dirs(files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut dirs = BTreeSet::new();
    for file in files {
        if let Some(parent) = file.parent() {
            dirs.insert(parent.to_owned());
        }
        resolve_into(file, &mut dirs);
    }
    dirs
}

/// One step left in resolving a path.
enum Step {
    Root(PathBuf),
    Up,
    Down(OsString),
}

fn push_steps(steps: &mut Vec<Step>, path: &Path) {
    for c in path.components().rev() {
        match c {
            Component::Normal(name) => steps.push(Step::Down(name.to_owned())),
            Component::ParentDir => steps.push(Step::Up),
            Component::CurDir | Component::Prefix(_) | Component::RootDir => {}
        }
    }
    if path.has_root()
        && let Some(root) = path.ancestors().last()
    {
        steps.push(Step::Root(root.to_owned()));
    }
}

/// Resolves `file` one entry at a time (so `at` never holds a link), noting the directories
/// that [`watched_dirs`] promises.
fn resolve_into(file: &Path, dirs: &mut BTreeSet<PathBuf>) {
    let mut steps = Vec::new();
    push_steps(&mut steps, file);
    let mut at = PathBuf::new();
    let mut links = 0;
    while let Some(step) = steps.pop() {
        match step {
            Step::Root(root) => at = root,
            Step::Up => {
                at.pop();
            }
            Step::Down(name) => {
                let next = at.join(&name);
                match std::fs::symlink_metadata(&next) {
                    Ok(meta) if meta.file_type().is_symlink() && links < MAX_LINKS => {
                        links += 1;
                        dirs.insert(at.clone());
                        match std::fs::read_link(&next) {
                            Ok(target) => push_steps(&mut steps, &target),
                            Err(_) => return,
                        }
                    }
                    Ok(_) => at = next,
                    Err(_) => {
                        dirs.insert(at);
                        return;
                    }
                }
            }
        }
    }
    if let Some(parent) = at.parent() {
        dirs.insert(parent.to_owned());
    }
}

/// A digest of one read of the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint([u8; 32]);

/// One read of every policy file: its bytes, or why it could not be read.
struct Snapshot(Vec<Result<Vec<u8>, io::Error>>);

impl Snapshot {
    fn read(files: &[PathBuf]) -> Self {
        Self(files.iter().map(std::fs::read).collect())
    }

    /// The first file whose read differs from `other`'s (other bytes, or another failure).
    fn first_difference<'f>(&self, other: &Self, files: &'f [PathBuf]) -> Option<&'f Path> {
        let same = |a: &Result<Vec<u8>, io::Error>, b: &Result<Vec<u8>, io::Error>| match (a, b) {
            (Ok(a), Ok(b)) => a == b,
            (Err(a), Err(b)) => a.kind() == b.kind(),
            _ => false,
        };
        files
            .iter()
            .zip(self.0.iter().zip(&other.0))
            .find(|(_, (a, b))| !same(a, b))
            .map(|(f, _)| f.as_path())
    }

    fn fingerprint(&self) -> Fingerprint {
        let mut hash = Sha256::new();
        for read in &self.0 {
            match read {
                Ok(bytes) => {
                    hash.update([0]);
                    hash.update(u64::try_from(bytes.len()).unwrap_or(u64::MAX).to_le_bytes());
                    hash.update(bytes);
                }
                Err(e) => {
                    hash.update([1]);
                    hash.update(e.kind().to_string().as_bytes());
                }
            }
        }
        Fingerprint(hash.finalize().into())
    }
}

/// Reads the files until two consecutive reads, [`SETTLE`] apart, agree byte for byte; refuses
/// after [`MAX_READS`] reads. `hook` runs before each settle pause.
fn read_settled(files: &[PathBuf], hook: Option<&(dyn Fn() + Send + Sync)>) -> Result<Snapshot, Error> {
    let mut last = Snapshot::read(files);
    let mut reads = 1;
    loop {
        if let Some(hook) = hook {
            hook();
        }
        thread::sleep(SETTLE);
        let next = Snapshot::read(files);
        reads += 1;
        let Some(changing) = next.first_difference(&last, files) else { return Ok(next) };
        if reads >= MAX_READS {
            return Err(Error::Unsettled {
                path: changing.to_owned(),
                reads,
                interval_ms: u64::try_from(SETTLE.as_millis()).unwrap_or(u64::MAX),
            });
        }
        last = next;
    }
}

/// Loads and compiles what one read of the files saw (YAML, or JSON/TOML by extension).
fn compile(files: &[PathBuf], snapshot: Snapshot) -> Result<PolicySet, Error> {
    if files.is_empty() {
        return Err(Error::NoFiles);
    }
    let mut texts = Vec::with_capacity(files.len());
    for (path, read) in files.iter().zip(snapshot.0) {
        let bytes = read.map_err(|source| Error::Io { path: path.clone(), source })?;
        let text = String::from_utf8(bytes).map_err(|_| Error::Io {
            path: path.clone(),
            source: io::Error::new(io::ErrorKind::InvalidData, "stream did not contain valid UTF-8"),
        })?;
        texts.push((path.display().to_string(), text, Format::from_path(path)));
    }
    let sources: Vec<Source<'_>> =
        texts.iter().map(|(origin, text, format)| Source { origin, text, format: *format }).collect();
    PolicySet::from_sources(&sources)
}

/// The reload thread.
struct Worker {
    shared: Arc<Shared>,
    rx: Receiver<Msg>,
    executor: Executor,
    watch: Option<DirWatch>,
    /// What the last settled read that needs no retry saw; a watched change that reads the
    /// same is ignored.
    seen: Option<Fingerprint>,
}

impl Worker {
    fn run(mut self) {
        while let Ok(msg) = self.rx.recv() {
            let mut replies = Vec::new();
            match msg {
                Msg::Stop => return,
                Msg::Reload(reply) => replies.push(reply),
                Msg::Changed => {}
            }
            // Coalesce a burst of change events (an editor's save is several writes).
            loop {
                match self.rx.recv_timeout(DEBOUNCE) {
                    Ok(Msg::Stop) => return,
                    Ok(Msg::Reload(reply)) => replies.push(reply),
                    Ok(Msg::Changed) => {}
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            if let Some(watch) = &mut self.watch {
                watch.refresh(&self.shared.files);
            }
            let Some(outcome) = self.attempt(!replies.is_empty()) else { continue };
            if let Ok(mut subs) = self.shared.subscribers.lock() {
                subs.retain(|s| s.send(outcome.clone()).is_ok());
            }
            for r in replies {
                let _ = r.send(outcome.clone());
            }
        }
    }

    /// One reload attempt; `None` when not `forced` and the files read as they did last time.
    fn attempt(&mut self, forced: bool) -> Option<ReloadOutcome> {
        let old = self.shared.current.load().digest();
        let hook = self.shared.settle_hook.lock().ok().and_then(|h| h.clone());
        let snapshot = match read_settled(&self.shared.files, hook.as_deref()) {
            Ok(snapshot) => snapshot,
            // Still being written: its next change is an event, and a new attempt.
            Err(e) => return Some(self.refuse(old, &e)),
        };
        let fingerprint = snapshot.fingerprint();
        if !forced && self.seen == Some(fingerprint) {
            tracing::debug!("policy directory changed, policy files did not; no reload");
            return None;
        }
        let (outcome, settled) = match compile(&self.shared.files, snapshot) {
            Ok(set) if set.digest() == old => (ReloadOutcome::Unchanged(old), true),
            Ok(set) => self.install(old, set),
            Err(e) => (self.refuse(old, &e), true),
        };
        // An install the audit sink refused is tried again on the next change.
        self.seen = settled.then_some(fingerprint);
        Some(outcome)
    }

    /// Audits and puts `set` in force; the flag says whether the attempt is over (not to be
    /// retried on the next event).
    fn install(&self, old: PolicyDigest, set: PolicySet) -> (ReloadOutcome, bool) {
        let new = set.digest();
        let mut record = AuditRecord::new(AuditEvent::PolicyReload, Effect::Allow)
            .with_detail("old_digest", old.to_hex())
            .with_detail("new_digest", new.to_hex())
            .with_detail("files", self.file_names())
            .with_detail("warnings", set.warnings().len());
        record.policy_digest = Some(new);
        if let Err(e) = self.audit(record) {
            tracing::error!(error = %e, "policy reload not applied: the audit sink refused its record");
            let reason = format!("cannot audit the reload: {e}");
            return (ReloadOutcome::Refused { kept: old, reason }, false);
        }
        self.shared.current.store(Arc::new(set));
        tracing::info!(old = %old, new = %new, "policy reloaded");
        (ReloadOutcome::Replaced { old, new }, true)
    }

    /// Audits a refused reload; the set in force stays.
    fn refuse(&self, old: PolicyDigest, error: &Error) -> ReloadOutcome {
        let reason = error.to_string();
        let mut record = AuditRecord::new(AuditEvent::PolicyReload, Effect::Deny)
            .with_detail("old_digest", old.to_hex())
            .with_detail("files", self.file_names())
            .with_reason(reason.clone());
        record.policy_digest = Some(old);
        if let Err(e) = self.audit(record) {
            tracing::error!(error = %e, "cannot audit a refused policy reload");
        }
        tracing::warn!(error = %reason, "policy reload refused; keeping the policy in force");
        ReloadOutcome::Refused { kept: old, reason }
    }

    fn file_names(&self) -> Vec<String> {
        self.shared.files.iter().map(|f| f.display().to_string()).collect()
    }

    fn audit(&self, record: AuditRecord) -> Result<(), zta_core::AuditError> {
        self.executor.block_on(self.shared.audit.append(record, Durability::Flushed))
    }
}
