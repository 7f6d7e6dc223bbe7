//! Helpers shared by the integration tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code,
    unreachable_pub
)]

use std::{
    fs,
    path::{Path, PathBuf},
    sync::Arc,
};

use zta_audit_jsonl::{JsonlConfig, JsonlSink};
use zta_core::{
    Action, AgentId, AuditEvent, AuditRecord, AuditSink, AuthMethod, Basis, Decision, Determining,
    Durability, Effect, PolicyDigest, Resource,
};

/// A realistic authorization record, numbered `i` in its detail.
pub fn record(i: u64) -> AuditRecord {
    let mut determining = Determining::new();
    determining.push(Arc::from("allow-research-tools"));
    let decision = Decision::new(Basis::Permitted, determining, PolicyDigest([7; 32]));
    let mut r = AuditRecord::new(AuditEvent::Authorization, Effect::Allow).with_detail("i", i);
    r.note_decision(&decision);
    r.agent_id = Some(AgentId::new("research-agent-7").unwrap());
    r.auth_method = Some(AuthMethod::AgentKey);
    r.on_behalf_of = vec!["alice@example.com".into()];
    r.action = Some(Action::tool_call("web_search"));
    r.resource = Some(Resource::new("document", format!("doc-{i}")));
    r.latency_us = Some(42);
    r
}

/// A config for `dir` with a short flush interval.
pub fn config(dir: &Path) -> JsonlConfig {
    let mut c = JsonlConfig::new(dir);
    c.flush_interval = std::time::Duration::from_millis(1);
    c
}

/// Opens `config`, appends records `first..first+n` durably at the end, and closes.
pub async fn write_records(config: JsonlConfig, first: u64, n: u64) {
    let sink = JsonlSink::open(config).unwrap();
    for i in first..first + n {
        sink.append(record(i), Durability::Queued).await.unwrap();
    }
    sink.close().await.unwrap();
}

/// The segment files of `dir`, sorted.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with("audit-") && n.ends_with(".jsonl")
        })
        .collect();
    v.sort();
    v
}

/// The lines of a file, each with its newline.
pub fn lines(path: &Path) -> Vec<Vec<u8>> {
    let bytes = fs::read(path).unwrap();
    bytes.split_inclusive(|b| *b == b'\n').map(<[u8]>::to_vec).collect()
}

/// Writes lines back.
pub fn write_lines(path: &Path, lines: &[Vec<u8>]) {
    fs::write(path, lines.concat()).unwrap();
}

/// Copies every regular file of `from` into a new temporary directory.
pub fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            fs::copy(e.path(), to.path().join(e.file_name())).unwrap();
        }
    }
    to
}

/// The file name of a path.
pub fn name(path: &Path) -> String {
    path.file_name().unwrap().to_str().unwrap().to_owned()
}

/// The loss files (`lost-*.txt`) a failed writer left in `dir`, sorted.
pub fn loss_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with("lost-") && n.ends_with(".txt")
        })
        .collect();
    v.sort();
    v
}
