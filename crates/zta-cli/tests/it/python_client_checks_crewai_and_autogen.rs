//! The Python client (`clients/python`) against a real `zta serve`: CrewAI's before-tool-call
//! hook and AutoGen's intervention handler, each driven by its framework's scripted model (no
//! network). An allowed tool runs, a refused one never runs and the agent is told why, a peer
//! message across a boundary is dropped, an agent without a credential and an unreachable
//! service both refuse, and every decision is in the audit log with the agent its token names.
//! Needs the venv `cargo xtask services` makes (`ZTA_TEST_PYTHON`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::{io::Read, path::Path, process::Command};

use serde_json::{Value, json};

use crate::common::{spawn_server, write_config, zta};

const AGENTS: [(&str, &str); 4] = [
    ("orchestrator", "research"),
    ("research_bot", "research"),
    ("analyst_bot", "analysis"),
    ("writer_bot", "writing"),
];

fn python() -> std::ffi::OsString {
    std::env::var_os("ZTA_TEST_PYTHON").unwrap_or_else(|| {
        panic!("ZTA_TEST_PYTHON is not set: `cargo xtask services` makes the venv with CrewAI and AutoGen and prints it")
    })
}

/// Runs `clients/python/tests/<script>` and returns the JSON line it printed last.
fn run_script(script: &str, url: &str, credentials: &Path, workdir: &Path) -> Value {
    std::fs::create_dir_all(workdir).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../clients/python/tests/");
    let output = Command::new(python())
        .arg(format!("{path}{script}"))
        .args(["--url", url, "--credentials"])
        .arg(credentials)
        .arg("--workdir")
        .arg(workdir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script}: {}\n{stderr}", output.status);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_else(|| panic!("{script} printed nothing; stderr: {stderr}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{script}: {e}: {line}"))
}

/// A deployment of the crew policy with four agents that log in with secrets; a session token
/// for each, as `{role: {"bearer": token}}` in `credentials.json`.
fn deployment(dir: &Path) {
    let (code, out, err) = zta(&["keygen", "--out", "keys"], dir);
    assert_eq!(code, 0, "{out}{err}");
    let mut identity = String::from("    agents:\n");
    for (agent, segment) in AGENTS {
        let hash = zta::identity::static_agents::hash_secret(&format!("secret of {agent}")).unwrap();
        identity.push_str(&format!("      - {{id: {agent}, segment: {segment}, secret_hash: '{hash}'}}\n"));
    }
    write_config(dir, &identity, "");
    let mut credentials = serde_json::Map::new();
    for (agent, _) in AGENTS {
        let file = format!("{agent}.json");
        let secret = json!({"username": agent, "password": format!("secret of {agent}")});
        std::fs::write(dir.join(&file), secret.to_string()).unwrap();
        let (code, out, err) =
            zta(&["token", "issue", "--config", "zta.yaml", "--credential-file", &file], dir);
        assert_eq!(code, 0, "{out}{err}");
        let tokens: Value = serde_json::from_str(&out).unwrap();
        credentials.insert(agent.to_owned(), json!({"bearer": tokens["access_token"]}));
    }
    std::fs::write(dir.join("credentials.json"), Value::Object(credentials).to_string()).unwrap();
}

#[test]
fn crewai_and_autogen_agents_are_checked_by_zta_serve() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    deployment(dir);
    let credentials = dir.join("credentials.json");
    let (mut server, addr, mut server_out) =
        spawn_server(&["serve", "--config", "zta.yaml", "--listen", "127.0.0.1:0"], dir);
    let url = format!("http://{addr}");

    // CrewAI: web_search runs; shell is blocked and the agent is told ZTA's reason.
    let crew = dir.join("crewai");
    let run = run_script("crewai_crew.py", &url, &credentials, &crew);
    let conversation = run["conversation"].as_str().unwrap();
    assert!(conversation.contains("Observation: results for zero trust agents"), "{conversation}");
    assert!(
        conversation
            .contains("Tool execution blocked by hook. Tool: shell. ZTA denied: denied by policy (request "),
        "{conversation}"
    );
    assert!(crew.join("web_search.ran").exists());
    assert!(!crew.join("shell.ran").exists(), "the refused tool ran");

    // CrewAI, the agent holding no credential: nothing runs.
    std::fs::write(dir.join("none.json"), "{}").unwrap();
    let bare = dir.join("crewai-no-credential");
    let run = run_script("crewai_crew.py", &url, &dir.join("none.json"), &bare);
    let conversation = run["conversation"].as_str().unwrap();
    assert!(
        conversation.contains("ZTA denied: no ZTA credential for the agent 'research_bot'"),
        "{conversation}"
    );
    assert!(!bare.join("web_search.ran").exists() && !bare.join("shell.ran").exists());

    // CrewAI, the service unreachable (a port that was free a moment ago): nothing runs.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let cut = dir.join("crewai-unreachable");
    let run = run_script("crewai_crew.py", &format!("http://{closed}"), &credentials, &cut);
    let conversation = run["conversation"].as_str().unwrap();
    assert!(conversation.contains("ZTA denied: ZTA unreachable"), "{conversation}");
    assert!(!cut.join("web_search.ran").exists() && !cut.join("shell.ran").exists());

    // AutoGen: the tool call and the message inside the policy go through; the rest is dropped.
    let autogen = dir.join("autogen");
    let run = run_script("autogen_runtime.py", &url, &credentials, &autogen);
    assert_eq!(
        run["calls"],
        json!([{"tool": "web_search", "ran": true, "content": "results for zero trust agents"},
               {"tool": "shell", "ran": false}]),
        "{run}"
    );
    assert_eq!(
        run["sent"],
        json!([{"to": "analyst_bot", "delivered": true}, {"to": "writer_bot", "delivered": false}])
    );
    assert_eq!(run["received"], json!([{"by": "analyst_bot", "from": "research_bot"}]));
    assert_eq!(run["intruder_delivered"], json!(false));
    assert!(autogen.join("web_search.ran").exists());
    assert!(!autogen.join("shell.ran").exists(), "the refused tool ran");
    let refusals = run["refusals"].as_array().unwrap();
    assert_eq!(refusals.len(), 3, "{run}");
    assert_eq!(refusals[2]["reason"], "no ZTA credential for intruder");

    // Stopped, the service has flushed its audit log: every refusal ZTA decided is in it, as a
    // deny of research_bot, and the allowed calls as allows.
    assert!(Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap().success());
    let status = server.wait().unwrap();
    let mut rest = String::new();
    server_out.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "{status}: {rest}");
    let records: Vec<Value> = std::fs::read_dir(dir.join("audit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .flat_map(|p| {
            let lines = std::fs::read_to_string(p).unwrap();
            lines
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()["record"].clone())
                .collect::<Vec<_>>()
        })
        .collect();
    for refusal in &refusals[..2] {
        let id = refusal["request_id"].as_str().unwrap();
        let record = records.iter().find(|r| r["id"] == id).unwrap_or_else(|| panic!("{id} is not audited"));
        assert_eq!(
            (record["agent_id"].as_str(), record["effect"].as_str()),
            (Some("research_bot"), Some("deny"))
        );
    }
    let allowed_searches = records
        .iter()
        .filter(|r| {
            r["agent_id"] == "research_bot" && r["action"]["name"] == "web_search" && r["effect"] == "allow"
        })
        .count();
    assert_eq!(allowed_searches, 2, "one web_search from CrewAI, one from AutoGen");
}

/// The client's own unit tests (`clients/python/tests/test_*.py`): every answer that is not a
/// decision denies.
#[test]
fn the_python_client_fails_closed_on_bad_answers() {
    let output = Command::new(python())
        .args(["-m", "unittest", "discover", "-s", "tests", "-p", "test_*.py"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../clients/python"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}\n{stderr}", output.status);
    assert!(stderr.contains("Ran 5 tests") && stderr.contains("OK"), "{stderr}");
}
