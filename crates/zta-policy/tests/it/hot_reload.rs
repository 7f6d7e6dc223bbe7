//! Hot reload: an edit puts a new digest in force; a broken edit keeps the old set and is
//! audited as a refused reload; a ConfigMap-style symlink swap reloads; a file is installed only
//! once two reads agree; a change that leaves the bytes alone is no reload. Waits on
//! notifications with generous timeouts, never on fixed sleeps; the settle hook holds the reload
//! thread between two reads where a test must change a file there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    sync::{Arc, Condvar, Mutex, mpsc},
    time::{Duration, SystemTime},
};

use async_trait::async_trait;
use common::*;
use zta_core::{Action, AuditError, AuditEvent, AuditRecord, AuditSink, Durability, Effect, PolicyEngine};
use zta_policy::{PolicyConfig, PolicyWatcher, ReloadOutcome};

#[derive(Debug, Default)]
struct MemorySink {
    records: Mutex<Vec<AuditRecord>>,
    refuse: Mutex<bool>,
}

#[async_trait]
impl AuditSink for MemorySink {
    async fn append(&self, record: AuditRecord, _: Durability) -> Result<(), AuditError> {
        if *self.refuse.lock().unwrap() {
            return Err(AuditError::Closed);
        }
        self.records.lock().unwrap().push(record);
        Ok(())
    }
    async fn flush(&self) -> Result<(), AuditError> {
        Ok(())
    }
}

const ALLOW: &str = "policies:\n  - {name: tasks, effect: allow, conditions: {action_type: execute_task}}\n";
const DENY: &str = "policies:\n  - {name: tasks, effect: deny, conditions: {action_type: execute_task}}\n";
const BROKEN: &str = "policies:\n  - {name: tasks, effect: alow}\n";

const WAIT: Duration = Duration::from_secs(30);

fn task() -> zta_core::AuthzRequest {
    req("a", Action::task("t")).build()
}

/// Waits for the next outcome that is not `Unchanged` (an editor may touch the file twice).
/// A policy file holding `text` in a fresh directory, and a watcher on it (watching the file
/// when `watch`) that audits to a memory sink.
struct Setup {
    _dir: tempfile::TempDir,
    file: std::path::PathBuf,
    sink: Arc<MemorySink>,
    watcher: PolicyWatcher,
}

fn setup(text: &str, watch: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, text).unwrap();
    let sink = Arc::new(MemorySink::default());
    let watcher = PolicyWatcher::new(&PolicyConfig::new([&file]).with_watch(watch), sink.clone()).unwrap();
    Setup { _dir: dir, file, sink, watcher }
}

fn next_change(rx: &std::sync::mpsc::Receiver<ReloadOutcome>) -> ReloadOutcome {
    loop {
        match rx.recv_timeout(WAIT).expect("no reload notification within 30 s") {
            ReloadOutcome::Unchanged(_) => continue,
            other => return other,
        }
    }
}

#[test]
fn editing_a_watched_file_puts_the_new_policy_in_force_and_a_broken_edit_is_refused() {
    let Setup { _dir, file, sink, watcher } = setup(ALLOW, true);
    let rx = watcher.subscribe();
    let first = watcher.digest();
    assert_eq!(watcher.evaluate(&task()).unwrap().effect, Effect::Allow);

    std::fs::write(&file, DENY).unwrap();
    let ReloadOutcome::Replaced { old, new } = next_change(&rx) else { panic!("not replaced") };
    assert_eq!(old, first);
    assert_eq!(watcher.digest(), new);
    assert_ne!(new, first);
    assert_eq!(watcher.evaluate(&task()).unwrap().effect, Effect::Deny);
    assert_eq!(watcher.evaluate(&task()).unwrap().policy_digest, new);

    std::fs::write(&file, BROKEN).unwrap();
    let ReloadOutcome::Refused { kept, reason } = next_change(&rx) else { panic!("not refused") };
    assert_eq!(kept, new);
    assert!(reason.contains("unknown effect `alow`"), "{reason}");
    assert_eq!(watcher.digest(), new, "the last good set stays in force");
    assert_eq!(watcher.evaluate(&task()).unwrap().effect, Effect::Deny);

    let records = sink.records.lock().unwrap().clone();
    assert_eq!(records.len(), 2, "{records:#?}");
    assert!(records.iter().all(|r| r.event == AuditEvent::PolicyReload));
    assert_eq!(records[0].effect, Effect::Allow);
    assert_eq!(records[0].detail["old_digest"], first.to_hex());
    assert_eq!(records[0].detail["new_digest"], new.to_hex());
    assert_eq!(records[1].effect, Effect::Deny);
    assert_eq!(records[1].detail["old_digest"], new.to_hex());
    assert!(records[1].reason.as_deref().unwrap().contains("alow"));
}

#[test]
fn manual_reload_without_watching() {
    let Setup { _dir, file, sink, watcher } = setup(ALLOW, false);
    assert!(matches!(watcher.reload(), ReloadOutcome::Unchanged(_)));
    std::fs::write(&file, DENY).unwrap();
    assert!(matches!(watcher.reload(), ReloadOutcome::Replaced { .. }));
    assert_eq!(watcher.current().decide(&task()).effect, Effect::Deny);
    assert_eq!(sink.records.lock().unwrap().len(), 1);
}

#[test]
fn a_reload_that_cannot_be_audited_is_not_applied() {
    let Setup { _dir, file, sink, watcher } = setup(ALLOW, false);
    let before = watcher.digest();
    *sink.refuse.lock().unwrap() = true;
    std::fs::write(&file, DENY).unwrap();
    assert!(matches!(watcher.reload(), ReloadOutcome::Refused { .. }));
    assert_eq!(watcher.digest(), before);
}

#[test]
fn a_watcher_will_not_start_on_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, BROKEN).unwrap();
    let sink = Arc::new(MemorySink::default());
    assert!(PolicyWatcher::new(&PolicyConfig::new([&file]), sink).is_err());
}

#[test]
fn policy_config_deserializes_strictly() {
    let c: PolicyConfig =
        serde_json::from_value(serde_json::json!({"files": ["a.yaml"], "watch": true})).unwrap();
    assert!(c.watch);
    let c: PolicyConfig = serde_json::from_value(serde_json::json!({"files": ["a.yaml"]})).unwrap();
    assert!(!c.watch);
    assert!(serde_json::from_value::<PolicyConfig>(serde_json::json!({"files": [], "wacth": true})).is_err());
}

/// Replaces `file` by renaming a complete new file over it (no reader ever sees a part of it).
fn replace(file: &Path, text: &str) {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

/// Writes a ConfigMap version the way the kubelet does: a timestamped directory holding the file.
#[cfg(unix)]
fn configmap_version(dir: &Path, version: &str, policy: &str) {
    std::fs::create_dir(dir.join(version)).unwrap();
    std::fs::write(dir.join(version).join("policy.yaml"), policy).unwrap();
}

/// Points `..data` at `version` the way the kubelet does: a new `..data_tmp` link renamed over
/// `..data`, then the previous version removed.
#[cfg(unix)]
fn configmap_swap(dir: &Path, version: &str, previous: Option<&str>) {
    std::os::unix::fs::symlink(version, dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    if let Some(previous) = previous {
        std::fs::remove_dir_all(dir.join(previous)).unwrap();
    }
}

#[cfg(unix)]
#[test]
fn a_configmap_symlink_swap_puts_the_new_policy_in_force() {
    const V1: &str = "..2026_12_03_10_00_00.000000001";
    const V2: &str = "..2026_12_03_10_05_00.000000002";
    const V3: &str = "..2026_12_03_10_10_00.000000003";
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // dir/policy.yaml -> ..data/policy.yaml, dir/..data -> ..2026_..._1
    configmap_version(dir, V1, ALLOW);
    configmap_swap(dir, V1, None);
    let file = dir.join("policy.yaml");
    std::os::unix::fs::symlink("..data/policy.yaml", &file).unwrap();
    let sink = Arc::new(MemorySink::default());
    let watcher = PolicyWatcher::new(&PolicyConfig::new([&file]).with_watch(true), sink.clone()).unwrap();
    let rx = watcher.subscribe();
    let first = watcher.digest();
    assert_eq!(watcher.evaluate(&task()).unwrap().effect, Effect::Allow);

    configmap_version(dir, V2, DENY);
    configmap_swap(dir, V2, Some(V1));
    let ReloadOutcome::Replaced { old, new } = next_change(&rx) else { panic!("not replaced") };
    assert_eq!(old, first);
    assert_eq!(watcher.digest(), new);
    assert_eq!(watcher.evaluate(&task()).unwrap().effect, Effect::Deny);

    // The watches follow the swap: the next update is seen too.
    configmap_version(dir, V3, ALLOW);
    configmap_swap(dir, V3, Some(V2));
    let ReloadOutcome::Replaced { old, new: third } = next_change(&rx) else { panic!("not replaced") };
    assert_eq!(old, new);
    assert_eq!(third, first);
    assert_eq!(watcher.evaluate(&task()).unwrap().effect, Effect::Allow);

    let records = sink.records.lock().unwrap().clone();
    assert_eq!(records.len(), 2, "{records:#?}");
    assert!(records.iter().all(|r| r.event == AuditEvent::PolicyReload && r.effect == Effect::Allow));
}

#[cfg(unix)]
#[test]
fn a_symlinked_policy_reloads_when_its_target_changes_and_when_the_link_moves() {
    let config = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let target = data.path().join("policy.yaml");
    std::fs::write(&target, ALLOW).unwrap();
    let link = config.path().join("policy.yaml");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let sink = Arc::new(MemorySink::default());
    let watcher = PolicyWatcher::new(&PolicyConfig::new([&link]).with_watch(true), sink).unwrap();
    let rx = watcher.subscribe();
    let allowed = watcher.digest();

    // An edit of the file the link points to, in a directory the link's own does not contain.
    replace(&target, DENY);
    let ReloadOutcome::Replaced { old, new: denied } = next_change(&rx) else { panic!("not replaced") };
    assert_eq!(old, allowed);
    assert_eq!(watcher.evaluate(&task()).unwrap().effect, Effect::Deny);

    // The link moves (atomically) to a file in a third directory...
    let moved = other.path().join("policy.yaml");
    std::fs::write(&moved, ALLOW).unwrap();
    std::os::unix::fs::symlink(&moved, config.path().join("policy.yaml.new")).unwrap();
    std::fs::rename(config.path().join("policy.yaml.new"), &link).unwrap();
    assert_eq!(next_change(&rx), ReloadOutcome::Replaced { old: denied, new: allowed });

    // ...whose edits are then seen.
    replace(&moved, DENY);
    assert_eq!(next_change(&rx), ReloadOutcome::Replaced { old: allowed, new: denied });
    assert_eq!(watcher.evaluate(&task()).unwrap().effect, Effect::Deny);
}

/// Holds the reload thread at its first settle pause (after its first read of a change) until
/// the test lets it go; later pauses pass straight through.
struct FirstPause {
    arrived: mpsc::Receiver<()>,
    go: mpsc::Sender<()>,
}

fn hold_first_pause(watcher: &PolicyWatcher) -> FirstPause {
    let (arrived_tx, arrived) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    let once = Mutex::new(Some((arrived_tx, go_rx)));
    watcher.set_settle_hook(move || {
        let first = once.lock().unwrap().take();
        if let Some((arrived, go)) = first {
            let _ = arrived.send(());
            let _ = go.recv_timeout(WAIT);
        }
    });
    FirstPause { arrived, go }
}

#[test]
fn a_file_written_slowly_under_the_watcher_is_installed_only_when_complete() {
    // The new file allows tasks, then denies them to agent `a` above that: its first half alone
    // would let `a` run tasks.
    const HEAD: &str =
        "policies:\n  - {name: tasks, effect: allow, conditions: {action_type: execute_task}}\n";
    const TAIL: &str = "  - {name: not_a, effect: deny, priority: 10, conditions: {action_type: execute_task, agent_id: a}}\n";
    let complete = zta_policy::PolicySet::from_yaml(&format!("{HEAD}{TAIL}")).unwrap().digest();
    let prefix = zta_policy::PolicySet::from_yaml(HEAD).unwrap().digest();
    let Setup { _dir, file, sink, watcher } = setup(DENY, true);
    let rx = watcher.subscribe();
    let first = watcher.digest();
    let pause = hold_first_pause(&watcher);
    let effect_for = |agent: &str| watcher.evaluate(&req(agent, Action::task("t")).build()).unwrap().effect;

    let mut writer = std::fs::File::create(&file).unwrap();
    writer.write_all(HEAD.as_bytes()).unwrap();
    pause.arrived.recv_timeout(WAIT).expect("the watcher did not read the file");
    // The reload thread has read the file (its first half, or less) and waits to read it again.
    assert_eq!(watcher.digest(), first);
    assert_eq!(effect_for("a"), Effect::Deny);
    writer.write_all(TAIL.as_bytes()).unwrap();
    drop(writer);
    pause.go.send(()).unwrap();

    let outcome = rx.recv_timeout(WAIT).expect("no reload notification within 30 s");
    assert_eq!(
        outcome,
        ReloadOutcome::Replaced { old: first, new: complete },
        "the first half ({prefix}) must never be installed"
    );
    assert_eq!(effect_for("a"), Effect::Deny);
    assert_eq!(effect_for("b"), Effect::Allow);
    let records = sink.records.lock().unwrap().clone();
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0].detail["new_digest"], complete.to_hex());
}

#[test]
fn a_file_that_never_stops_changing_is_refused_and_the_policy_in_force_stays() {
    let Setup { _dir, file, sink, watcher } = setup(ALLOW, false);
    let first = watcher.digest();
    // A writer that changes the file between every two reads.
    let writes = Mutex::new(0_u32);
    let path = file.clone();
    watcher.set_settle_hook(move || {
        let mut n = writes.lock().unwrap();
        *n += 1;
        std::fs::write(&path, format!("{DENY}# write {n}\n")).unwrap();
    });

    let ReloadOutcome::Refused { kept, reason } = watcher.reload() else { panic!("not refused") };
    assert_eq!(kept, first);
    assert!(reason.contains("kept changing while it was read"), "{reason}");
    assert!(reason.contains("policy.yaml"), "{reason}");
    assert_eq!(watcher.digest(), first, "the policy in force stays");
    assert_eq!(watcher.evaluate(&task()).unwrap().effect, Effect::Allow);
    let records = sink.records.lock().unwrap().clone();
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0].effect, Effect::Deny);
    assert!(records[0].reason.as_deref().unwrap().contains("kept changing"));
}

#[test]
fn a_change_that_leaves_the_bytes_alone_is_no_reload() {
    let Setup { _dir: dir, file, sink, watcher } = setup(ALLOW, true);
    let rx = watcher.subscribe();
    let first = watcher.digest();
    let (read_tx, reads) = mpsc::channel();
    let read_tx = Mutex::new(read_tx);
    watcher.set_settle_hook(move || {
        let _ = read_tx.lock().unwrap().send(());
    });

    // The same bytes written over themselves in place, a new modification time, a file beside it.
    let mut same = std::fs::File::options().write(true).open(&file).unwrap();
    same.write_all(ALLOW.as_bytes()).unwrap();
    same.set_modified(SystemTime::now() + Duration::from_secs(60)).unwrap();
    drop(same);
    std::fs::write(dir.path().join("notes.txt"), "unrelated").unwrap();
    reads.recv_timeout(WAIT).expect("the watcher did not look at the files");
    // A manual reload queues behind the attempt under way; when it returns, every outcome before
    // it has been told.
    assert_eq!(watcher.reload(), ReloadOutcome::Unchanged(first));
    let heard: Vec<ReloadOutcome> = rx.try_iter().collect();
    assert_eq!(heard, vec![ReloadOutcome::Unchanged(first)], "only the manual reload has an outcome");
    assert!(sink.records.lock().unwrap().is_empty());

    // A real change still reloads.
    replace(&file, DENY);
    let ReloadOutcome::Replaced { old, .. } = next_change(&rx) else { panic!("not replaced") };
    assert_eq!(old, first);
    assert_eq!(sink.records.lock().unwrap().len(), 1);
}

/// What the reload thread did, in order: `read` (a settle pause), `audit Allow|Deny`.
#[derive(Debug, Default)]
struct Trace {
    steps: Mutex<Vec<String>>,
    changed: Condvar,
}

impl Trace {
    fn push(&self, step: String) {
        self.steps.lock().unwrap().push(step);
        self.changed.notify_all();
    }

    fn wait_until(&self, done: impl Fn(&[String]) -> bool) {
        let steps = self.steps.lock().unwrap();
        let (steps, timeout) = self.changed.wait_timeout_while(steps, WAIT, |s| !done(s)).unwrap();
        assert!(!timeout.timed_out(), "waited 30 s; trace: {steps:?}");
    }

    fn count(&self, step: &str) -> usize {
        self.steps.lock().unwrap().iter().filter(|s| *s == step).count()
    }
}

/// An audit sink that appends each record to a file (an audit log kept beside the policy) and
/// notes it in the trace.
#[derive(Debug)]
struct FileSink {
    path: PathBuf,
    trace: Arc<Trace>,
}

#[async_trait]
impl AuditSink for FileSink {
    async fn append(&self, record: AuditRecord, _: Durability) -> Result<(), AuditError> {
        let mut log = std::fs::File::options().create(true).append(true).open(&self.path).unwrap();
        writeln!(log, "{:?} {:?}", record.event, record.effect).unwrap();
        self.trace.push(format!("audit {:?}", record.effect));
        Ok(())
    }
    async fn flush(&self) -> Result<(), AuditError> {
        Ok(())
    }
}

#[test]
fn a_refused_file_is_refused_once_though_its_audit_log_changes_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, ALLOW).unwrap();
    let trace = Arc::new(Trace::default());
    let sink = Arc::new(FileSink { path: dir.path().join("audit.log"), trace: trace.clone() });
    let watcher = PolicyWatcher::new(&PolicyConfig::new([&file]).with_watch(true), sink).unwrap();
    let rx = watcher.subscribe();
    let hook_trace = trace.clone();
    watcher.set_settle_hook(move || hook_trace.push("read".into()));

    replace(&file, BROKEN);
    let ReloadOutcome::Refused { .. } = next_change(&rx) else { panic!("not refused") };
    // Its audit record was written beside the policy: wait until the reload thread reads the
    // files for that change, then queue a manual reload behind that attempt.
    trace.wait_until(|s| s.iter().skip_while(|step| *step != "audit Deny").any(|step| step == "read"));
    assert!(matches!(watcher.reload(), ReloadOutcome::Refused { .. }));
    assert_eq!(
        trace.count("audit Deny"),
        2,
        "refused once for the change, once for the manual reload: {:?}",
        trace.steps.lock().unwrap()
    );
}
