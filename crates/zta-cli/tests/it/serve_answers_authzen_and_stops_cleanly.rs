//! `zta serve`: the AuthZEN evaluation API over real HTTP on loopback, from the README's
//! deployment; a SIGTERM stops it after flushing the audit log, which then verifies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::{io::Read, process::Command};

use serde_json::{Value, json};

use crate::common::{SECRET, deployment, post, spawn_server, zta};

fn evaluation(tool: &str) -> Value {
    json!({
        "subject": {"type": "agent", "id": "writer_bot",
                    "properties": {"credential": {"username": "writer_bot", "password": SECRET}}},
        "action": {"name": "call_tool"},
        "resource": {"type": "tool", "id": tool},
    })
}

#[test]
fn serve_decides_over_http_and_flushes_its_audit_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    deployment(dir.path());
    let (mut child, addr, mut stdout) =
        spawn_server(&["serve", "--config", "zta.yaml", "--listen", "127.0.0.1:0"], dir.path());

    let (status, allowed) = post(&addr, "/access/v1/evaluation", &evaluation("write_document"));
    assert_eq!((status, &allowed["decision"]), (200, &json!(true)), "{allowed}");
    let (status, denied) = post(&addr, "/access/v1/evaluation", &evaluation("shell"));
    assert_eq!((status, &denied["decision"]), (200, &json!(false)), "{denied}");
    assert_eq!(post(&addr, "/access/v1/evaluation", &json!({"action": {}})).0, 400);

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "{status}: {rest}");
    assert!(rest.contains("stopped; audit log flushed"), "{rest}");

    // The deployment signs no checkpoint: intact but unprotected (exit 4), both decisions in it.
    let (code, out, err) = zta(&["audit", "verify", "--config", "zta.yaml"], dir.path());
    assert_eq!(code, 4, "{out}{err}");
    assert!(out.contains("chain intact") && out.contains("2 records"), "{out}");
    let audit = std::fs::read_dir(dir.path().join("audit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect::<String>();
    for id in [&allowed["context"]["id"], &denied["context"]["id"]] {
        assert!(audit.contains(id.as_str().unwrap()), "{id} is in the audit log");
    }
}
