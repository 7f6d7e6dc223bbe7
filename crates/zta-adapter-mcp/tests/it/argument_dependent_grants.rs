//! `tools/list` with grants that depend on a call's arguments: a tool some allow rule may
//! permit is listed (the engine's `permissible` answer), each call is still decided in full
//! with its arguments, a tool nobody is granted and one an unconditional deny always overrides
//! stay hidden; with an engine that cannot tell, the gateway lists what is allowed without
//! arguments, as before.

use serde_json::json;
use zta_adapter_mcp::DENIED;

use crate::{calls::call, support::*};

/// research_bot may read files under `data/` only; writer_bot may call any tool on a path
/// under `data/`, but nobody deletes.
const POLICY: &str = r#"
policies:
  - name: research_reads_data
    effect: allow
    conditions: {agent_id: research_bot, tool_name: files__read_file, arguments.path: {starts_with: data/}}
  - name: writer_works_in_data
    effect: allow
    conditions: {agent_id: writer_bot, action_type: call_tool, arguments.path: {starts_with: data/}}
  - name: nobody_deletes
    effect: deny
    priority: 10
    conditions: {tool_name: files__delete_file}
"#;

fn names(tools: Vec<rmcp::model::Tool>) -> Vec<String> {
    let mut names: Vec<String> = tools.into_iter().map(|t| t.name.to_string()).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_granted_for_some_arguments_is_listed_and_each_call_decided() {
    let crew = crew_with(POLICY).await;
    std::fs::create_dir(crew.files().join("data")).unwrap();
    std::fs::write(crew.files().join("data/plan.txt"), "the plan").unwrap();

    let research = crew.client(&crew.token("research_bot").await).await;
    assert_eq!(names(research.list_all_tools().await.unwrap()), ["files__read_file"]);
    let read = research.call_tool(call("files__read_file", json!({"path": "data/plan.txt"}))).await.unwrap();
    assert_eq!(text(&read), "the plan");
    let outside =
        research.call_tool(call("files__read_file", json!({"path": "report.txt"}))).await.unwrap_err();
    let rmcp::ServiceError::McpError(error) = outside else { panic!("{outside:?}") };
    assert_eq!(error.code, DENIED);
    assert!(error.message.contains("no policy allows this"), "{}", error.message);
    // Listed or not, a tool nobody granted is refused.
    let listing = research.call_tool(call("files__list_files", json!({}))).await.unwrap_err();
    let rmcp::ServiceError::McpError(error) = listing else { panic!("{listing:?}") };
    assert_eq!(error.code, DENIED);

    // Any tool may be permitted to writer_bot (on some path), except the one that is always
    // denied.
    let writer = crew.client(&crew.token("writer_bot").await).await;
    assert_eq!(
        names(writer.list_all_tools().await.unwrap()),
        ["files__list_files", "files__read_file", "files__write_file", "notes__add_note"]
    );
    let refused = writer.call_tool(call("files__delete_file", json!({"path": "data/plan.txt"}))).await;
    assert!(refused.is_err(), "{refused:?}");
    assert!(crew.files().join("data/plan.txt").exists());

    crew.guard.audit_sink().flush().await.unwrap();
    let lists: Vec<_> =
        audit_records(&crew.audit()).into_iter().filter(|r| r["detail"]["mcp"] == "tools/list").collect();
    assert_eq!(lists.len(), 2);
    assert!(lists.iter().all(|r| r["detail"]["filter"] == "permissible"), "{lists:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_cannot_tell_lists_what_is_allowed_without_arguments() {
    let crew = crew_with_opaque_engine(POLICY).await;
    std::fs::create_dir(crew.files().join("data")).unwrap();
    std::fs::write(crew.files().join("data/plan.txt"), "the plan").unwrap();

    let research = crew.client(&crew.token("research_bot").await).await;
    assert!(research.list_all_tools().await.unwrap().is_empty());
    // The call is decided as always.
    let read = research.call_tool(call("files__read_file", json!({"path": "data/plan.txt"}))).await.unwrap();
    assert_eq!(text(&read), "the plan");

    crew.guard.audit_sink().flush().await.unwrap();
    let list = audit_records(&crew.audit()).into_iter().find(|r| r["detail"]["mcp"] == "tools/list").unwrap();
    assert_eq!(list["detail"]["filter"], "decided_without_arguments");
    assert_eq!(list["detail"]["hidden"], 5);
}
