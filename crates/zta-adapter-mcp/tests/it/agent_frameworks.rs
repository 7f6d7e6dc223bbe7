//! Agents of real frameworks use their tools through the gateway, each driven by a scripted
//! model (no model, no network): AutoGen (`autogen-agentchat` with `autogen-ext[mcp]`, its
//! `ReplayChatCompletionClient`) and CrewAI (its own MCP support, `Agent(mcps=[...])`). For
//! each, the allowed call runs, the denied one comes back to the agent as an error and never
//! runs, and both are audited with the agent the token names. Needs the venv `cargo xtask
//! services` makes (`ZTA_TEST_PYTHON`).

use serde_json::Value;

use crate::support::*;

/// research_bot may read and delete files, but a deny rule on the arguments keeps the reports:
/// both tools are listed, and the delete is refused call by call. (Both frameworks answer a
/// call of a tool the server did not list by themselves, so a hidden tool would never reach the
/// gateway.)
const POLICY: &str = "
policies:
  - name: research_files
    effect: allow
    conditions:
      agent_id: research_bot
      tool_name: {in: [files__read_file, files__delete_file]}
  - name: keep_reports
    effect: deny
    priority: 10
    conditions: {tool_name: files__delete_file, context.arguments.path: {ends_with: .txt}}
";

/// Runs `script` (under `tests/python/`) against a gateway in front of the demo files server
/// as research_bot, calling `files__read_file` and then `files__delete_file` on `report.txt`;
/// checks that the delete did not run and that both decisions are audited; returns the
/// script's JSON line.
async fn run_agent(script: &str) -> Value {
    let python = std::env::var_os("ZTA_TEST_PYTHON").unwrap_or_else(|| {
        panic!("ZTA_TEST_PYTHON is not set: `cargo xtask services` makes the venv with AutoGen and CrewAI and prints it")
    });
    let crew = crew_with(POLICY).await;
    let token = crew.token("research_bot").await;
    let output = tokio::process::Command::new(&python)
        .arg(format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR")))
        .args(["--url", &crew.url, "--token", &token])
        .args(["--allowed", "files__read_file", "--denied", "files__delete_file"])
        .args(["--args-json", r#"{"path": "report.txt"}"#, "--timeout", "60"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}\n{stderr}", output.status);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_else(|| panic!("no output; stderr: {stderr}"));
    let run: Value = serde_json::from_str(line).unwrap();
    assert!(crew.files().join("report.txt").exists(), "the denied delete ran: {run}");

    crew.guard.audit_sink().flush().await.unwrap();
    let decisions: Vec<(String, String, String)> = audit_records(&crew.audit())
        .into_iter()
        .filter(|r| r["action"]["kind"] == "tool_call")
        .map(|r| {
            let field = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (field("agent_id"), r["action"]["name"].as_str().unwrap().to_owned(), field("effect"))
        })
        .collect();
    assert!(
        decisions.contains(&("research_bot".into(), "files__read_file".into(), "allow".into())),
        "{decisions:?}"
    );
    assert!(
        decisions.contains(&("research_bot".into(), "files__delete_file".into(), "deny".into())),
        "{decisions:?}"
    );
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autogen_agent_calls_through_the_gateway() {
    let run = run_agent("autogen_agent.py").await;
    let mut tools: Vec<&str> = run["tools"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    tools.sort_unstable();
    assert_eq!(tools, ["files__delete_file", "files__read_file"]);
    let calls = run["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "{run}");
    assert_eq!(
        (calls[0]["tool"].as_str(), calls[0]["is_error"].as_bool()),
        (Some("files__read_file"), Some(false))
    );
    assert_eq!(calls[0]["content"], "quarterly numbers");
    assert_eq!(
        (calls[1]["tool"].as_str(), calls[1]["is_error"].as_bool()),
        (Some("files__delete_file"), Some(true))
    );
    assert!(calls[1]["content"].as_str().unwrap().contains("denied by policy"), "{run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crewai_agent_calls_through_the_gateway() {
    let run = run_agent("crewai_agent.py").await;
    let tools: Vec<&str> = run["tools"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(tools, ["files__delete_file", "files__read_file"]);
    let observations = run["observations"].as_array().unwrap();
    assert_eq!(observations.len(), 2, "{run}");
    assert!(observations[0].as_str().unwrap().contains("quarterly numbers"), "{run}");
    let refused = observations[1].as_str().unwrap();
    assert!(refused.contains("denied by policy") && !refused.contains("quarterly"), "{run}");
}
