//! `zta audit verify` exits 0 only for an intact log whose checkpoint signature was verified;
//! 4 when the chain is intact but the tail is unprotected (unsigned checkpoint, or no key
//! given); 1 when the log is broken, rolled back against its anchor, or lost records. The
//! config's audit section gives the directory, the key and the anchor.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::path::Path;

use common::{write_config, zta};
use zta::{
    AuditEvent, AuditRecord, AuditSink, Durability, Effect,
    audit::jsonl::{AnchorConfig, JsonlConfig, JsonlSink, generate_checkpoint_key},
};

/// Appends records `first..first + n` to the log in `dir` and closes it.
fn write_log(dir: &Path, key_file: Option<&Path>, anchor: Option<&Path>, first: u64, n: u64) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut c = JsonlConfig::new(dir);
        c.checkpoint_key_file = key_file.map(Path::to_owned);
        c.anchor = anchor.map(AnchorConfig::file);
        let sink = JsonlSink::open(c).unwrap();
        for i in first..first + n {
            let record = AuditRecord::new(AuditEvent::Authorization, Effect::Allow).with_detail("i", i);
            sink.append(record, Durability::Queued).await.unwrap();
        }
        sink.close().await.unwrap();
    });
}

/// A checkpoint key in `dir/keys`: the private key file and the public key file.
fn keys(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (private_pem, public_pem) = generate_checkpoint_key().unwrap();
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    let private = dir.join("keys/audit-checkpoint.pem");
    let public = dir.join("keys/audit-checkpoint.pub.pem");
    std::fs::write(&private, private_pem.as_bytes()).unwrap();
    std::fs::write(&public, public_pem).unwrap();
    (private, public)
}

/// `zta audit verify ARGS` in `dir`: the exit code and everything printed.
fn verify(dir: &Path, args: &[&str]) -> (i32, String) {
    let (code, out, err) = zta(&[&["audit", "verify"], args].concat(), dir);
    (code, format!("{out}{err}"))
}

/// Cuts the last `n` lines of the first segment and writes an unsigned checkpoint matching the
/// cut log, as someone able to write the directory would.
fn cut_and_forge_checkpoint(log: &Path, n: usize) {
    let segment = log.join("audit-000001.jsonl");
    let text = std::fs::read_to_string(&segment).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let kept = &lines[..lines.len() - n];
    std::fs::write(&segment, format!("{}\n", kept.join("\n"))).unwrap();
    let last: serde_json::Value = serde_json::from_str(kept.last().unwrap()).unwrap();
    let checkpoint = serde_json::json!({
        "version": 1, "seq": last["seq"], "hash": last["hash"],
        "file": "audit-000001.jsonl", "time": "2030-01-01T00:00:00Z",
    });
    std::fs::write(log.join("checkpoint.json"), checkpoint.to_string()).unwrap();
}

#[test]
fn an_unsigned_checkpoint_exits_4_not_0() {
    let dir = tempfile::tempdir().unwrap();
    write_log(&dir.path().join("audit"), None, None, 0, 5);
    let (code, out) = verify(dir.path(), &["audit"]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("chain intact, but the tail is UNPROTECTED: the checkpoint is unsigned"), "{out}");
}

#[test]
fn a_cut_log_with_a_forged_unsigned_checkpoint_is_unprotected_without_the_key_and_fails_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = keys(dir.path());
    let log = dir.path().join("audit");
    write_log(&log, Some(&private), None, 0, 10);
    let public = public.to_str().unwrap();
    assert_eq!(verify(dir.path(), &["audit", "--public-key", public]).0, 0);

    cut_and_forge_checkpoint(&log, 3);
    let (code, out) = verify(dir.path(), &["audit"]);
    assert_eq!(code, 4, "never `ok` without the key: {out}");
    assert!(out.contains("UNPROTECTED"), "{out}");
    let (code, out) = verify(dir.path(), &["audit", "--public-key", public]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED") && out.contains("is not signed"), "{out}");
}

/// A deployment config naming the log, its checkpoint key and an anchor file.
fn config(dir: &Path) {
    write_config(
        dir,
        "    agents:
      - {id: research_bot, segment: research, public_key_file: keys/research_bot.pub.pem}
",
        "  checkpoint_key_file: keys/audit-checkpoint.pem
  anchor: {file: elsewhere/checkpoints.jsonl}
",
    );
}

#[test]
fn the_config_gives_the_directory_the_key_and_the_anchor_and_a_rollback_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let (private, _) = keys(dir.path());
    config(dir.path());
    std::fs::create_dir(dir.path().join("elsewhere")).unwrap();
    let (log, anchor) = (dir.path().join("audit"), dir.path().join("elsewhere/checkpoints.jsonl"));
    write_log(&log, Some(&private), Some(&anchor), 0, 10);
    let older = tempfile::tempdir().unwrap();
    for name in ["audit-000001.jsonl", "checkpoint.json"] {
        std::fs::copy(log.join(name), older.path().join(name)).unwrap();
    }
    write_log(&log, Some(&private), Some(&anchor), 10, 10);

    let (code, out) = verify(dir.path(), &["--config", "zta.yaml"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("verified") && out.contains("matches the anchor's newest checkpoint, seq 20"),
        "{out}"
    );

    // Put back the older signed checkpoint and cut the log to match.
    for name in ["audit-000001.jsonl", "checkpoint.json"] {
        std::fs::copy(older.path().join(name), log.join(name)).unwrap();
    }
    let (code, out) = verify(dir.path(), &["audit", "--public-key", "keys/audit-checkpoint.pub.pem"]);
    assert_eq!(code, 0, "the signature alone cannot see a rollback: {out}");
    for args in [&["--config", "zta.yaml"][..], &["audit", "--anchor", "elsewhere/checkpoints.jsonl"][..]] {
        let (code, out) = verify(dir.path(), args);
        assert_eq!(code, 1, "{args:?}: {out}");
        assert!(out.contains("rolled back or cut") && out.contains("seq 20"), "{args:?}: {out}");
    }
}

#[test]
fn records_a_failed_writer_lost_exit_1_with_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = keys(dir.path());
    let log = dir.path().join("audit");
    write_log(&log, Some(&private), None, 0, 3);
    // What a writer that failed after seq 3 leaves beside the log.
    std::fs::write(
        log.join("lost-20300101T000000Z.txt"),
        "# zta-audit-jsonl lost records v1\n# after_seq: 3\n# lost: 2\n\
         01a23af5-87a3-730a-812f-6609b59a1f4a\n01a23af5-87a3-730a-812f-660a7f4912e9\n",
    )
    .unwrap();
    let (code, out) = verify(dir.path(), &["audit", "--public-key", public.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("2 records were lost after seq 3"), "{out}");
    assert!(out.contains("lost-20300101T000000Z.txt"), "{out}");
}
