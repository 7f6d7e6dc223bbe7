//! Hot reload: an edit puts a new digest in force; a broken edit keeps the old set and is
//! audited as a refused reload. Waits on notifications with generous timeouts, never on fixed
//! sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
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
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, ALLOW).unwrap();
    let sink = Arc::new(MemorySink::default());
    let watcher = PolicyWatcher::new(&PolicyConfig::new([&file]).with_watch(true), sink.clone()).unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, ALLOW).unwrap();
    let sink = Arc::new(MemorySink::default());
    let watcher = PolicyWatcher::new(&PolicyConfig::new([&file]), sink.clone()).unwrap();
    assert!(matches!(watcher.reload(), ReloadOutcome::Unchanged(_)));
    std::fs::write(&file, DENY).unwrap();
    assert!(matches!(watcher.reload(), ReloadOutcome::Replaced { .. }));
    assert_eq!(watcher.current().decide(&task()).effect, Effect::Deny);
    assert_eq!(sink.records.lock().unwrap().len(), 1);
}

#[test]
fn a_reload_that_cannot_be_audited_is_not_applied() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, ALLOW).unwrap();
    let sink = Arc::new(MemorySink::default());
    let watcher = PolicyWatcher::new(&PolicyConfig::new([&file]), sink.clone()).unwrap();
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
