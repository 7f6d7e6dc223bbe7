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

/// The approval webhook: it is asked with a signed request, and only its yes to that exact
/// call lets the call run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_approves_exactly_the_calls_it_says_yes_to() {
    use std::sync::{Arc, Mutex};
    let crew = crew().await;
    const KEY: &str = "a test key of more than sixteen bytes";
    std::fs::write(crew.dir.path().join("hook.key"), format!("{KEY}\n")).unwrap();
    // The webhook checks the signature and approves deleting `old.txt` only.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let heard = seen.clone();
    let hook = axum::Router::new().route(
        "/approve",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let heard = heard.clone();
            async move {
                let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, KEY.as_bytes());
                let expected =
                    format!("sha256={}", hex::encode(aws_lc_rs::hmac::sign(&key, body.as_bytes())));
                let signed =
                    headers.get("x-zta-signature").is_some_and(|s| s.as_bytes() == expected.as_bytes());
                let request: serde_json::Value = serde_json::from_str(&body).unwrap();
                heard.lock().unwrap().push((signed, request["agent"].clone(), request["arguments"].clone()));
                let yes = signed && request["arguments"]["path"] == "old.txt";
                axum::Json(json!({"approval_id": request["approval_id"], "approved": yes}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/approve", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await });
    let url = gateway_for(
        &crew,
        json!({
            "upstreams": [{"name": "files", "command": [env!("CARGO_BIN_EXE_mcp-demo-files"), "--root", crew.files()]}],
            "approval_webhook": {"url": hook_url, "secret_file": crew.dir.path().join("hook.key"), "timeout": "5s"},
        }),
    )
    .await;
    let config = rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(url)
        .auth_header(crew.token("writer_bot").await);
    let writer =
        rmcp::ServiceExt::serve((), rmcp::transport::StreamableHttpClientTransport::from_config(config))
            .await
            .unwrap();
    std::fs::write(crew.files().join("old.txt"), "x").unwrap();
    std::fs::write(crew.files().join("keep.txt"), "x").unwrap();

    writer.call_tool(call("files__delete_file", json!({"path": "old.txt"}))).await.unwrap();
    assert!(!crew.files().join("old.txt").exists());
    let refused =
        writer.call_tool(call("files__delete_file", json!({"path": "keep.txt"}))).await.unwrap_err();
    let rmcp::ServiceError::McpError(error) = refused else { panic!("{refused:?}") };
    assert_eq!(error.code, DENIED);
    assert!(crew.files().join("keep.txt").exists());
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|(signed, agent, _)| *signed && agent == "writer_bot"), "{seen:?}");
}
