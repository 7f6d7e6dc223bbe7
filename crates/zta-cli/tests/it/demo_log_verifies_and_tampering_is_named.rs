//! `zta demo` works with no setup, monitoring suspends the compromised agent on its own, its
//! audit log passes `zta audit verify`, and any edit, deletion, swap or truncation makes
//! verification fail and name the record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::path::Path;

use common::zta;

/// Runs the demo into `dir/audit` and returns the log file's lines.
fn demo(dir: &Path) -> Vec<String> {
    let (code, stdout, stderr) = zta(&["demo", "--audit-dir", "audit"], dir);
    assert_eq!(code, 0, "demo failed: {stdout}\n{stderr}");
    let log = std::fs::read_to_string(dir.join("audit/audit-000001.jsonl")).unwrap();
    log.lines().map(str::to_owned).collect()
}

/// `zta audit verify` with the public key the demo left beside its (signed) checkpoint.
fn verify(dir: &Path) -> (i32, String) {
    let (code, stdout, stderr) =
        zta(&["audit", "verify", "audit", "--public-key", "audit/checkpoint.pub.pem"], dir);
    (code, format!("{stdout}{stderr}"))
}

fn rewrite(dir: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(dir.join("audit/audit-000001.jsonl"), text).unwrap();
}

#[test]
fn demo_denies_every_attack_and_its_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, _) = zta(&["demo", "--audit-dir", "audit"], dir.path());
    assert_eq!(code, 0);
    for expected in [
        "bad signature or unknown agent",
        "credential already used",
        "credential revoked",
        "agent suspended",
        "segment-boundary",
        "reserved attribute `agent_id`",
        "deny_system_messages",
        "denied by `default_deny`",
    ] {
        assert!(stdout.contains(expected), "demo output lacks `{expected}`:\n{stdout}");
    }
    let (act1, act2) = stdout.split_once("Act 2").expect("two acts");
    assert!(!act1.contains("DENY"), "the crew's own work must all be allowed:\n{act1}");
    assert_eq!(act1.matches("ALLOW").count(), 10, "{act1}");
    assert_eq!(act2.matches("DENY").count(), 11, "every attack is denied:\n{act2}");
    // Monitoring suspended writer_bot on its own after its third denial, and said so.
    assert!(act2.contains("detector `probing`: 3 denials within 5m"), "{act2}");
    assert!(act2.contains("Monitoring (alerts: 3, responses: 1)"), "{act2}");
    assert!(act2.contains("alert  writer_bot     probing: 3 denials within 5m (threshold 3)"), "{act2}");
    assert!(!act2.contains("ALLOW"), "no attack may succeed:\n{act2}");
    // The demo's own last line is the signed path.
    assert!(stdout.contains("signature by `") && stdout.contains("` verified"), "{stdout}");
    let (code, out) = verify(dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact") && out.contains("verified"), "{out}");
    // Without the key the chain is intact but the tail unprotected: exit 4, not "ok".
    let (code, out, _) = zta(&["audit", "verify", "audit"], dir.path());
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("UNPROTECTED"), "{out}");
}

#[test]
fn flipping_any_byte_of_a_record_fails_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let original = demo(dir.path());
    for (i, line) in original.iter().enumerate() {
        // Change one character inside the record body (an id or time digit or a letter).
        let pos = line.rfind("\"time\":\"").unwrap() + 10;
        let mut bytes = line.clone().into_bytes();
        bytes[pos] = if bytes[pos] == b'1' { b'2' } else { b'1' };
        let mut lines = original.clone();
        lines[i] = String::from_utf8(bytes).unwrap();
        rewrite(dir.path(), &lines);
        let (code, out) = verify(dir.path());
        assert_ne!(code, 0, "edit of record {} went unnoticed", i + 1);
        assert!(
            out.contains(&format!("line {} (seq {})", i + 1, i + 1)),
            "record {} not named: {out}",
            i + 1
        );
    }
}

#[test]
fn deleting_swapping_or_truncating_records_fails_and_names_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let original = demo(dir.path());
    let n = original.len();
    assert!(n > 5);

    let mut deleted = original.clone();
    deleted.remove(3);
    rewrite(dir.path(), &deleted);
    let (code, out) = verify(dir.path());
    assert_ne!(code, 0);
    assert!(out.contains("line 4 (seq 4)") && out.contains("found seq 5"), "{out}");

    let mut swapped = original.clone();
    swapped.swap(2, 3);
    rewrite(dir.path(), &swapped);
    let (code, out) = verify(dir.path());
    assert_ne!(code, 0);
    assert!(out.contains("line 3 (seq 3)") && out.contains("found seq 4"), "{out}");

    let mut inserted = original.clone();
    inserted.insert(5, original[1].clone());
    rewrite(dir.path(), &inserted);
    let (code, out) = verify(dir.path());
    assert_ne!(code, 0);
    assert!(out.contains("line 6 (seq 6)") && out.contains("found seq 2"), "{out}");

    rewrite(dir.path(), &original[..n - 2]);
    let (code, out) = verify(dir.path());
    assert_ne!(code, 0);
    assert!(out.contains("cut from the end"), "{out}");

    rewrite(dir.path(), &original);
    assert_eq!(verify(dir.path()).0, 0);
}
