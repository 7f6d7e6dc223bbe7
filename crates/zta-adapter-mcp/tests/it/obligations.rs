//! Obligations of allow rules, discharged by the gateway: a path argument stays under its
//! directory, results lose what `redact` names, and a rate limit holds.

use serde_json::json;
use zta_adapter_mcp::DENIED;

use crate::{calls::call, support::*};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_that_leaves_its_directory_is_denied_before_the_upstream() {
    let crew = crew().await;
    let research = crew.client(&crew.token("research_bot").await).await;
    let outside = crew.dir.path().join("outside.txt");
    for path in ["../outside.txt", "./../outside.txt", outside.to_str().unwrap()] {
        let refused = research.call_tool(call("files__read_file", json!({"path": path}))).await.unwrap_err();
        let rmcp::ServiceError::McpError(error) = refused else { panic!("{refused:?}") };
        assert_eq!(error.code, DENIED, "{path}");
        assert!(error.message.contains("path_under"), "{}", error.message);
    }
    // Under the directory, by either spelling.
    let inside = crew.files().join("report.txt");
    for path in ["report.txt", inside.to_str().unwrap()] {
        research.call_tool(call("files__read_file", json!({"path": path}))).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redacted_pattern_never_reaches_the_agent() {
    let crew = crew().await;
    let research = crew.client(&crew.token("research_bot").await).await;
    let read = research.call_tool(call("files__read_file", json!({"path": "customers.txt"}))).await.unwrap();
    assert_eq!(text(&read), "ann, ssn [redacted]");
    // The writer's rule has no redaction.
    let writer = crew.client(&crew.token("writer_bot").await).await;
    let read = writer.call_tool(call("files__read_file", json!({"path": "customers.txt"}))).await.unwrap();
    assert_eq!(text(&read), "ann, ssn 123-45-6789");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_holds_and_refused_calls_never_run() {
    let crew = crew().await;
    let research = crew.client(&crew.token("research_bot").await).await;
    let mut refused = 0;
    for i in 0..5 {
        match research.call_tool(call("notes__add_note", json!({"text": format!("note {i}")}))).await {
            Ok(_) => {}
            Err(rmcp::ServiceError::McpError(error)) if error.code == DENIED => {
                assert!(error.message.contains("rate_limit"), "{}", error.message);
                refused += 1;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(refused, 2);
    assert_eq!(*crew.notes.lock().unwrap(), ["note 0", "note 1", "note 2"]);

    crew.guard.audit_sink().flush().await.unwrap();
    let denials = audit_records(&crew.audit())
        .into_iter()
        .filter(|r| r["effect"] == "deny" && r["reason"].as_str().is_some_and(|r| r.contains("rate_limit")))
        .count();
    assert_eq!(denials, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_needs_approval_runs_once_after_it() {
    let crew = crew().await;
    let writer = crew.client(&crew.token("writer_bot").await).await;
    std::fs::write(crew.files().join("old.txt"), "x").unwrap();
    std::fs::write(crew.files().join("keep.txt"), "x").unwrap();
    let delete = |path: &str| writer.call_tool(call("files__delete_file", json!({"path": path})));
    let approval_id = |error: rmcp::ServiceError| {
        let rmcp::ServiceError::McpError(error) = error else { panic!("{error:?}") };
        assert_eq!(error.code, DENIED);
        let id = error
            .message
            .split("approval id ")
            .nth(1)
            .unwrap()
            .trim_end_matches(|c: char| !c.is_ascii_hexdigit());
        id.split(|c: char| !c.is_ascii_hexdigit()).next().unwrap().to_owned()
    };
    let id = approval_id(delete("old.txt").await.unwrap_err());
    assert!(crew.files().join("old.txt").exists());

    let approved = zta_adapter_mcp::approve(&crew.dir.path().join("approvals"), &id).unwrap();
    assert!(approved.contains("writer_bot") && approved.contains("old.txt"), "{approved}");
    // The approval is for that file: another is still refused, and it is not used up by that.
    let other = approval_id(delete("keep.txt").await.unwrap_err());
    assert_ne!(other, id);
    delete("old.txt").await.unwrap();
    assert!(!crew.files().join("old.txt").exists());
    // Used once: the same call again needs a new approval.
    std::fs::write(crew.files().join("old.txt"), "again").unwrap();
    assert_eq!(approval_id(delete("old.txt").await.unwrap_err()), id);
    assert!(crew.files().join("old.txt").exists() && crew.files().join("keep.txt").exists());
}
