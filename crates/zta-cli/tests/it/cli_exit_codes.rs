//! `zta check`, `authorize`, `token`, `keygen` and `policy`: what they print and their exit
//! codes (0 allow/ok, 3 deny, 2 usage or config error).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::path::Path;

use common::{deployment, zta};

#[test]
fn check_accepts_a_good_config_and_refuses_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    deployment(dir.path());
    let (code, out, err) = zta(&["check", "--config", "zta.yaml"], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    std::fs::write(dir.path().join("bad.yaml"), "tokens:\n  issuer: x\n  audience: y\n  colour: blue\n")
        .unwrap();
    let (code, _, err) = zta(&["check", "--config", "bad.yaml"], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("bad.yaml:4:3") && err.contains("unknown field `colour`"), "{err}");
}

#[test]
fn authorize_runs_the_guard_path_and_exits_by_decision() {
    let dir = tempfile::tempdir().unwrap();
    deployment(dir.path());
    let args = |req: &'static str| {
        ["authorize", "--config", "zta.yaml", "--credential-file", "writer.json", "--request", req]
    };
    let (code, out, err) = zta(&args("write.json"), dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["effect"], "allow");
    assert_eq!(json["agent_id"], "writer_bot");
    assert_eq!(json["decision"]["determining"][0], "writing_tools");

    let (code, out, _) = zta(&args("shell.json"), dir.path());
    assert_eq!(code, 3);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["effect"], "deny");

    std::fs::write(dir.path().join("spoof.json"), r#"{"action": {"kind": "tool_call", "name": "write_document"}, "context": {"agent_id": "research_bot"}}"#).unwrap();
    let (code, out, _) = zta(&args("spoof.json"), dir.path());
    assert_eq!(code, 3);
    assert!(out.contains("reserved attribute `agent_id`"), "{out}");

    std::fs::write(dir.path().join("garbage.json"), "{not json").unwrap();
    let (code, _, err) = zta(&args("garbage.json"), dir.path());
    assert_eq!(code, 2, "{err}");

    // Which of two equal keys wins differs between parsers: a repeated key is refused.
    std::fs::write(
        dir.path().join("twice.json"),
        r#"{"action": {"kind": "tool_call", "name": "write_document"}, "context": {"message": {"type": "chat", "type": "system"}}}"#,
    )
    .unwrap();
    let (code, _, err) = zta(&args("twice.json"), dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("duplicate key `type`"), "{err}");

    std::fs::write(dir.path().join("wrong.json"), r#"{"username": "writer_bot", "password": "wrong"}"#)
        .unwrap();
    let (code, out, _) = zta(
        &["authorize", "--config", "zta.yaml", "--credential-file", "wrong.json", "--request", "write.json"],
        dir.path(),
    );
    assert_eq!(code, 3);
    assert!(out.contains("invalid credential"), "{out}");
}

#[test]
fn token_issue_then_inspect_and_authorize_with_it() {
    let dir = tempfile::tempdir().unwrap();
    deployment(dir.path());
    let (code, out, err) =
        zta(&["token", "issue", "--config", "zta.yaml", "--credential-file", "writer.json"], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let tokens: serde_json::Value = serde_json::from_str(&out).unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(tokens["expires_in"], 300);

    std::fs::write(dir.path().join("access.jwt"), access).unwrap();
    let (code, out, _) =
        zta(&["token", "inspect", "--token-file", "access.jwt", "--config", "zta.yaml"], dir.path());
    assert_eq!(code, 0, "{out}");
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["verified"], true);
    assert_eq!(shown["claims"]["sub"], "writer_bot");
    assert_eq!(shown["header"]["typ"], "zta-at+jwt");

    std::fs::write(dir.path().join("bearer.json"), serde_json::json!({ "bearer": access }).to_string())
        .unwrap();
    let (code, out, err) = zta(
        &["authorize", "--config", "zta.yaml", "--credential-file", "bearer.json", "--request", "write.json"],
        dir.path(),
    );
    // A new process has a new (in-memory) state store, but the signature and claims still verify.
    assert_eq!(code, 0, "{out}{err}");

    std::fs::write(dir.path().join("garbage.jwt"), "not-a-token").unwrap();
    let (code, _, err) = zta(&["token", "inspect", "--token-file", "garbage.jwt"], dir.path());
    assert_eq!(code, 2, "{err}");
}

#[test]
fn keygen_never_overwrites_keys() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(zta(&["keygen", "--out", "k"], dir.path()).0, 0);
    let before = std::fs::read(dir.path().join("k/zta-signing.pem")).unwrap();
    let (code, _, err) = zta(&["keygen", "--out", "k"], dir.path());
    assert_ne!(code, 0);
    assert!(err.contains("may already exist"), "{err}");
    assert_eq!(std::fs::read(dir.path().join("k/zta-signing.pem")).unwrap(), before);
    let (code, _, _) = zta(&["keygen", "--out", "k2", "--alg", "HS256"], dir.path());
    assert_eq!(code, 2);
}

#[test]
fn policy_commands_exit_by_outcome() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (code, out, err) = zta(&["policy", "check", "examples/policies/crew.yaml"], &root);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = zta(&["policy", "test", "examples/policies/crew.tests.yaml"], &root);
    assert_eq!(code, 0, "{out}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("req.json"),
        r#"{"agent_id": "writer_bot", "action_type": "send_message", "target_agent": "research_bot",
            "target": {"segment": "research"}, "principal": {"segment": "writing"}}"#,
    )
    .unwrap();
    let policy = root.join("examples/policies/crew.yaml");
    let policy = policy.to_str().unwrap();
    let (code, out, _) = zta(&["policy", "eval", "--policy", policy, "--request", "req.json"], dir.path());
    assert_eq!(code, 3);
    let decision: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(decision["basis"], "ExplicitDeny");
    assert_eq!(decision["determining"][0], "segment-boundary");
    let (code, out, _) = zta(&["policy", "explain", "--policy", policy, "--request", "req.json"], dir.path());
    assert_eq!(code, 3);
    assert!(out.contains("segment"), "{out}");

    // A request file is read like a policy file: a repeated key is a usage error, not last-wins.
    std::fs::write(
        dir.path().join("twice.json"),
        r#"{"agent_id": "research_bot", "action_type": "send_message", "message": {"type": "chat", "type": "system"}}"#,
    )
    .unwrap();
    let (code, out, err) =
        zta(&["policy", "eval", "--policy", policy, "--request", "twice.json"], dir.path());
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("duplicate key `type`"), "{err}");

    // What an agent could do: text, or JSON; a principal file with an unknown key is a usage error.
    let docs = root.join("examples/policies/crew-documents.yaml");
    let docs = docs.to_str().unwrap();
    std::fs::write(dir.path().join("writer.yaml"), "tenant: acme\ngroups: [analyst]\n").unwrap();
    let what_can =
        ["policy", "what-can", "--policy", docs, "--agent", "writer", "--principal-file", "writer.yaml"];
    let (code, out, err) = zta(&what_can, dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("edit_own_documents (priority 100)") && out.contains("resource.owner eq \"writer\""),
        "{out}"
    );
    let (code, out, _) = zta(&[&what_can[..], &["--json"]].concat(), dir.path());
    assert_eq!(code, 0);
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["allows"][0]["rule"], "edit_own_documents");
    std::fs::write(dir.path().join("writer.yaml"), "peers: [analyst]\n").unwrap();
    let (code, _, err) = zta(&what_can, dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("unknown principal attribute `peers`"), "{err}");

    std::fs::write(dir.path().join("bad.yaml"), "policies:\n  - name: x\n    effect: permit\n").unwrap();
    let (code, out, _) = zta(&["policy", "check", "bad.yaml"], dir.path());
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("bad.yaml:3"), "{out}");
}

#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    // `zta policy check F | head -0`: the reader is gone before the first line is written.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zta"))
        .args(["policy", "check", "examples/policies/crew.yaml"])
        .current_dir(&root)
        .stdout(writer)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{err}");
    assert!(err.is_empty(), "nothing on stderr, no panic: {err}");
}
