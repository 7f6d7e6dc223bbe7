//! Hot reload: the policy in force lives behind an atomic pointer; a background thread watches
//! the files, loads and compiles off the request path, audits the attempt, and swaps. A file
//! that fails to load never replaces the working set.

use std::{
    collections::HashSet,
    future::Future,
    path::{Path, PathBuf},
    pin::pin,
    sync::{
        Arc, Mutex,
        mpsc::{self, Receiver, RecvTimeoutError, Sender},
    },
    task::{Context, Poll, Wake, Waker},
    thread,
    time::Duration,
};

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher as _};
use serde::Deserialize;
use zta_core::{
    AuditEvent, AuditRecord, AuditSink, AuthzRequest, Decision, Durability, Effect, PolicyDigest,
    PolicyEngine, PolicyError,
};

use crate::{Error, PolicySet};

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
    /// The files failed to load (or the attempt could not be audited); the old set stays.
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

struct Shared {
    current: ArcSwap<PolicySet>,
    files: Vec<PathBuf>,
    audit: Arc<dyn AuditSink>,
    runtime: Option<tokio::runtime::Handle>,
    subscribers: Mutex<Vec<Sender<ReloadOutcome>>>,
}

/// A [`PolicyEngine`] over a policy set that can be replaced while requests are decided.
///
/// Decisions read the set in force through an atomic pointer (no lock). Reloads (file changes
/// when watching, or [`PolicyWatcher::reload`]) run on a background thread: load, compile,
/// audit an [`AuditEvent::PolicyReload`] record (details `old_digest` and `new_digest`; effect
/// `deny` with a reason when refused), then swap. If the audit sink refuses the record the new
/// set is not put in force.
pub struct PolicyWatcher {
    shared: Arc<Shared>,
    tx: Sender<Msg>,
    worker: Option<thread::JoinHandle<()>>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl std::fmt::Debug for PolicyWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyWatcher")
            .field("files", &self.shared.files)
            .field("digest", &self.shared.current.load().digest())
            .field("watching", &self._watcher.is_some())
            .finish()
    }
}

impl PolicyWatcher {
    /// Loads the configured files (failing if they do not load) and, if `watch` is set,
    /// starts watching them. Audit records of reloads go to `audit`. When called inside a
    /// Tokio runtime, audit writes run on that runtime.
    pub fn new(config: &PolicyConfig, audit: Arc<dyn AuditSink>) -> Result<Self, Error> {
        let set = PolicySet::from_files(&config.files)?;
        let files: Vec<PathBuf> = config.files.iter().map(|f| absolute(f)).collect();
        let shared = Arc::new(Shared {
            current: ArcSwap::from_pointee(set),
            files,
            audit,
            runtime: tokio::runtime::Handle::try_current().ok(),
            subscribers: Mutex::new(Vec::new()),
        });
        let (tx, rx) = mpsc::channel();
        let watcher = if config.watch { Some(start_watching(&shared.files, tx.clone())?) } else { None };
        let worker_shared = shared.clone();
        let worker = thread::Builder::new()
            .name("zta-policy-reload".into())
            .spawn(move || worker_loop(&worker_shared, &rx))
            .map_err(|e| Error::Watch(e.to_string()))?;
        Ok(Self { shared, tx, worker: Some(worker), _watcher: watcher })
    }

    /// The policy set in force.
    pub fn current(&self) -> Arc<PolicySet> {
        self.shared.current.load_full()
    }

    /// Reloads now and waits for the outcome (blocks the calling thread, never the runtime's
    /// I/O: the work happens on the reload thread).
    pub fn reload(&self) -> ReloadOutcome {
        let (tx, rx) = mpsc::channel();
        let kept = self.shared.current.load().digest();
        if self.tx.send(Msg::Reload(tx)).is_err() {
            return ReloadOutcome::Refused { kept, reason: "the reload thread has stopped".into() };
        }
        rx.recv().unwrap_or(ReloadOutcome::Refused { kept, reason: "the reload thread has stopped".into() })
    }

    /// A channel told the outcome of every later reload attempt (for tests and operators).
    pub fn subscribe(&self) -> Receiver<ReloadOutcome> {
        let (tx, rx) = mpsc::channel();
        if let Ok(mut subs) = self.shared.subscribers.lock() {
            subs.push(tx);
        }
        rx
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
        Ok(self.shared.current.load().decide(request))
    }

    fn digest(&self) -> PolicyDigest {
        self.shared.current.load().digest()
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

fn start_watching(files: &[PathBuf], tx: Sender<Msg>) -> Result<notify::RecommendedWatcher, Error> {
    let names: HashSet<PathBuf> = files.iter().cloned().collect();
    let names_for_filter = names.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        if event.paths.iter().any(|p| names_for_filter.contains(&absolute(p))) {
            let _ = tx.send(Msg::Changed);
        }
    })
    .map_err(|e| Error::Watch(e.to_string()))?;
    // Watch the directories: editors replace files by renaming, which a file watch would miss.
    let dirs: HashSet<PathBuf> = names.iter().filter_map(|f| f.parent().map(Path::to_owned)).collect();
    for dir in dirs {
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|e| Error::Watch(format!("`{}`: {e}", dir.display())))?;
    }
    Ok(watcher)
}

fn worker_loop(shared: &Shared, rx: &Receiver<Msg>) {
    while let Ok(msg) = rx.recv() {
        let mut replies = Vec::new();
        match msg {
            Msg::Stop => return,
            Msg::Reload(reply) => replies.push(reply),
            Msg::Changed => {}
        }
        // Coalesce a burst of change events (an editor's save is several writes).
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(Msg::Stop) => return,
                Ok(Msg::Reload(reply)) => replies.push(reply),
                Ok(Msg::Changed) => {}
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        let outcome = reload_once(shared);
        for r in replies {
            let _ = r.send(outcome.clone());
        }
        if let Ok(mut subs) = shared.subscribers.lock() {
            subs.retain(|s| s.send(outcome.clone()).is_ok());
        }
    }
}

fn reload_once(shared: &Shared) -> ReloadOutcome {
    let old = shared.current.load().digest();
    let files: Vec<String> = shared.files.iter().map(|f| f.display().to_string()).collect();
    match PolicySet::from_files(&shared.files) {
        Ok(set) if set.digest() == old => ReloadOutcome::Unchanged(old),
        Ok(set) => {
            let new = set.digest();
            let mut record = AuditRecord::new(AuditEvent::PolicyReload, Effect::Allow)
                .with_detail("old_digest", old.to_hex())
                .with_detail("new_digest", new.to_hex())
                .with_detail("files", files)
                .with_detail("warnings", set.warnings().len());
            record.policy_digest = Some(new);
            if let Err(e) = audit(shared, record) {
                tracing::error!(error = %e, "policy reload not applied: the audit sink refused its record");
                return ReloadOutcome::Refused { kept: old, reason: format!("cannot audit the reload: {e}") };
            }
            shared.current.store(Arc::new(set));
            tracing::info!(old = %old, new = %new, "policy reloaded");
            ReloadOutcome::Replaced { old, new }
        }
        Err(e) => {
            let reason = e.to_string();
            let mut record = AuditRecord::new(AuditEvent::PolicyReload, Effect::Deny)
                .with_detail("old_digest", old.to_hex())
                .with_detail("files", files)
                .with_reason(reason.clone());
            record.policy_digest = Some(old);
            if let Err(e) = audit(shared, record) {
                tracing::error!(error = %e, "cannot audit a refused policy reload");
            }
            tracing::warn!(error = %reason, "policy reload refused; keeping the policy in force");
            ReloadOutcome::Refused { kept: old, reason }
        }
    }
}

fn audit(shared: &Shared, record: AuditRecord) -> Result<(), zta_core::AuditError> {
    let fut = shared.audit.append(record, Durability::Flushed);
    match &shared.runtime {
        Some(handle) => handle.block_on(fut),
        None => block_on(fut),
    }
}

struct ThreadWaker(thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on this thread (for sinks used without a Tokio runtime).
fn block_on<F: Future>(fut: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => thread::park(),
        }
    }
}
