//! `zta audit query` finds records by agent, action, effect, event, reason, time and request
//! id, as a table, JSON or OCSF; `zta audit tail --follow` prints records as they are written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::{
    io::BufRead,
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use serde_json::Value;

use crate::common::{deployment, zta};

fn authorize(dir: &std::path::Path, request: &str) {
    let args =
        ["authorize", "--config", "zta.yaml", "--credential-file", "writer.json", "--request", request];
    zta(&args, dir);
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn query_filters_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    deployment(dir.path());
    authorize(dir.path(), "write.json");
    authorize(dir.path(), "shell.json");
    let query = |extra: &[&str]| {
        let mut args = vec!["audit", "query", "--config", "zta.yaml", "--format", "json"];
        args.extend_from_slice(extra);
        let (code, out, err) = zta(&args, dir.path());
        assert_eq!(code, 0, "{err}");
        json_lines(&out)
    };
    let all = query(&[]);
    assert_eq!(all.len(), 2, "two decisions: {all:?}");

    let denied = query(&["--effect", "deny", "--agent", "writer_bot"]);
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["action"]["name"], "shell");
    let id = denied[0]["id"].as_str().unwrap();
    assert_eq!(query(&["--request-id", id])[0]["id"], id);
    assert_eq!(query(&["--action", "write_document", "--event", "authorization"]).len(), 1);
    assert_eq!(query(&["--reason", "DENIED BY"]).len(), 1);
    assert!(query(&["--since", "2999-01-01T00:00:00Z"]).is_empty());
    assert_eq!(query(&["--until", "2999-01-01T00:00:00Z"]).len(), 2);
    assert_eq!(query(&["--limit", "1"]), all[1..].to_vec(), "the latest");

    let (code, out, _) =
        zta(&["audit", "query", "audit", "--format", "ocsf", "--effect", "deny"], dir.path());
    assert_eq!(code, 0);
    let event = &json_lines(&out)[0];
    assert_eq!((event["class_uid"].as_i64(), event["disposition"].as_str()), (Some(6003), Some("Blocked")));
    assert_eq!(event["metadata"]["uid"], id);

    let (code, out, _) = zta(&["audit", "query", "audit", "--agent", "writer_bot"], dir.path());
    assert_eq!(code, 0);
    assert!(out.starts_with("TIME"), "{out}");
    assert!(out.contains(id) && out.contains("shell"), "{out}");

    for bad in [["--effect", "maybe"], ["--since", "yesterday"], ["--request-id", "42"], ["--event", "nope"]]
    {
        let (code, _, err) = zta(&["audit", "query", "audit", bad[0], bad[1]], dir.path());
        assert_eq!(code, 2, "{bad:?}: {err}");
        assert!(err.contains(bad[0]), "{err}");
    }
}

#[test]
fn table_rows_escape_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    deployment(dir.path());
    std::fs::write(
        dir.path().join("evil.json"),
        r#"{"action": {"kind": "tool_call", "name": "a\u001b[2Jb\nc"}}"#,
    )
    .unwrap();
    authorize(dir.path(), "evil.json");
    let (code, out, _) = zta(&["audit", "query", "audit", "--event", "authorization"], dir.path());
    assert_eq!(code, 0);
    assert!(!out.contains('\u{1b}'), "{out:?}");
    assert_eq!(out.lines().count(), 2, "the header and one row: {out:?}");
}

#[test]
fn tail_follows_new_records() {
    let dir = tempfile::tempdir().unwrap();
    deployment(dir.path());
    authorize(dir.path(), "write.json");
    let mut tail = Command::new(env!("CARGO_BIN_EXE_zta"))
        .args([
            "audit",
            "tail",
            "audit",
            "--follow",
            "-n",
            "1",
            "--format",
            "json",
            "--event",
            "authorization",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, seen) = mpsc::channel();
    let stdout = tail.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if lines.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let next =
        || serde_json::from_str::<Value>(&seen.recv_timeout(Duration::from_secs(30)).unwrap()).unwrap();
    assert_eq!(next()["action"]["name"], "write_document", "the latest one first");
    authorize(dir.path(), "shell.json");
    let new = next();
    assert_eq!((new["action"]["name"].as_str(), new["effect"].as_str()), (Some("shell"), Some("deny")));
    tail.kill().unwrap();
    tail.wait().unwrap();
}
