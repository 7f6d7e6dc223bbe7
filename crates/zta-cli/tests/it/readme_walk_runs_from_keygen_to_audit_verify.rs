//! The README's "A deployment, step by step" runs as written against a copy of
//! `examples/config`: keygen, check, an agent-signed assertion, a session token, an allowed and a
//! denied request, and a verified audit log with a signed checkpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::path::Path;

use common::zta;

/// The walk, exactly as the README shows it.
const WALK: [&str; 7] = [
    "zta keygen --out examples/config/keys --checkpoint --agent research_bot --agent analysis_bot --agent writer_bot",
    "zta check --config examples/config/zta.yaml",
    "zta credential assertion --config examples/config/zta.yaml --agent writer_bot --key examples/config/keys/writer_bot.pem > writer.json",
    "zta token issue --config examples/config/zta.yaml --credential-file writer.json > tokens.json",
    "zta authorize --config examples/config/zta.yaml --credential-file tokens.json --request examples/config/requests/write_document.json",
    "zta authorize --config examples/config/zta.yaml --credential-file tokens.json --request examples/config/requests/web_search.json",
    "zta audit verify examples/config/audit --public-key examples/config/keys/audit-checkpoint.pub.pem",
];

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The commands of the README's walk: the first `sh` block after its heading.
fn readme_walk() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let (_, section) = readme.split_once("## A deployment, step by step").expect("the README has the walk");
    let (_, block) = section.split_once("```sh\n").expect("the walk has a sh block");
    let (block, _) = block.split_once("```").unwrap();
    block.lines().map(str::to_owned).collect()
}

/// Copies the tracked files under `from` to `to`, leaving out the ignored outputs (`keys/`,
/// `audit/`) a local run may have left.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if entry.file_type().unwrap().is_dir() {
            if name != "keys" && name != "audit" {
                copy_tree(&entry.path(), &to.join(&name));
            }
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// Runs one README line (`zta ARGS [> FILE]`) in `dir`: returns the exit code, stdout, stderr.
fn run(line: &str, dir: &Path) -> (i32, String, String) {
    let (command, redirect) = match line.split_once(" > ") {
        Some((command, file)) => (command, Some(file.trim())),
        None => (line, None),
    };
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(words[0], "zta", "{line}");
    let (code, out, err) = zta(&words[1..], dir);
    if let Some(file) = redirect {
        std::fs::write(dir.join(file), &out).unwrap();
    }
    (code, out, err)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn the_readme_lists_this_walk() {
    assert_eq!(readme_walk(), WALK, "README.md and this test must show the same walk");
}

#[test]
fn the_readme_walk_runs_on_the_example_config() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    copy_tree(&root().join("examples/config"), &dir.join("examples/config"));
    copy_tree(&root().join("examples/policies"), &dir.join("examples/policies"));
    let [keygen, check, assertion, issue, allow, deny, verify] = WALK;

    let (code, out, err) = run(keygen, dir);
    assert_eq!(code, 0, "{out}{err}");
    for key in ["zta-signing", "audit-checkpoint", "research_bot", "analysis_bot", "writer_bot"] {
        assert!(dir.join(format!("examples/config/keys/{key}.pem")).is_file(), "{key}: {out}");
        assert!(dir.join(format!("examples/config/keys/{key}.pub.pem")).is_file(), "{key}: {out}");
    }
    assert!(out.contains("audit checkpoint key"), "{out}");

    let (code, out, err) = run(check, dir);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("examples/config/zta.yaml: ok (policy "), "{out}");

    let (code, out, err) = run(assertion, dir);
    assert_eq!(code, 0, "{out}{err}");
    let file = json(&out);
    assert_eq!(file.as_object().unwrap().len(), 1, "{out}");
    assert_eq!(file["assertion"].as_str().unwrap().split('.').count(), 3, "{out}");

    let (code, out, err) = run(issue, dir);
    assert_eq!(code, 0, "{out}{err}");
    let tokens = json(&out);
    assert_eq!(tokens["expires_in"], 300, "{out}");
    assert!(tokens["access_token"].is_string() && tokens["refresh_token"].is_string(), "{out}");

    let (code, out, err) = run(allow, dir);
    assert_eq!(code, 0, "{out}{err}");
    let decision = json(&out);
    assert_eq!(decision["effect"], "allow", "{out}");
    assert_eq!(decision["agent_id"], "writer_bot", "{out}");
    assert_eq!(decision["decision"]["determining"][0], "writing_tools", "{out}");

    let (code, out, err) = run(deny, dir);
    assert_eq!(code, 3, "{out}{err}");
    let decision = json(&out);
    assert_eq!(decision["effect"], "deny", "{out}");
    assert_eq!(decision["agent_id"], "writer_bot", "{out}");
    assert_eq!(decision["decision"]["determining"][0], "default_deny", "{out}");

    let (code, out, err) = run(verify, dir);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("intact") && out.contains("verified"), "{out}");
    let checkpoint =
        json(&std::fs::read_to_string(dir.join("examples/config/audit/checkpoint.json")).unwrap());
    assert!(checkpoint["signature"].is_string(), "the example config signs its checkpoint: {checkpoint}");
    let log = std::fs::read_to_string(dir.join("examples/config/audit/audit-000001.jsonl")).unwrap();
    for recorded in ["writer_bot", "write_document", "web_search"] {
        assert!(log.contains(recorded), "the audit log lacks `{recorded}`:\n{log}");
    }
}
