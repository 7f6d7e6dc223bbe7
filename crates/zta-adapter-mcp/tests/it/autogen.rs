//! An AutoGen agent (`autogen-agentchat` with `autogen-ext[mcp]`, driven by its scripted
//! `ReplayChatCompletionClient`) uses its tools through the gateway: the allowed call runs, the
//! denied one comes back to the agent as an error and never runs, and both are audited with
//! the agent the token names. Needs the venv `cargo xtask services` makes (`ZTA_TEST_PYTHON`).

use crate::support::*;

/// research_bot may read and delete files, but a deny rule on the arguments keeps the reports:
/// both tools are listed, and the delete is refused call by call.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autogen_agent_calls_through_the_gateway() {
    let python = std::env::var_os("ZTA_TEST_PYTHON").unwrap_or_else(|| {
        panic!("ZTA_TEST_PYTHON is not set: `cargo xtask services` makes the venv with AutoGen and prints it")
    });
    let crew = crew_with(POLICY).await;
    let token = crew.token("research_bot").await;
    let output = tokio::process::Command::new(&python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/autogen_agent.py"))
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
    let run: serde_json::Value = serde_json::from_str(line).unwrap();

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
    assert!(crew.files().join("report.txt").exists(), "the denied delete ran");

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
}
