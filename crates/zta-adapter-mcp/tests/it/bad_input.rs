//! Hostile requests from an agent with a valid token: each gets a clear error, and none reaches
//! an upstream. And an upstream that dies: the call gets an error, the next one works.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{calls::call, support::*};

async fn post(crew: &Crew, token: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
    let answer = reqwest::Client::new()
        .post(&crew.url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .body(body)
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

/// A refusal that says what is wrong: an HTTP client error with a message, or a JSON-RPC error.
fn refused(status: u16, body: &str) -> bool {
    ((400..500).contains(&status) && !body.trim().is_empty()) || error_code(body).is_some()
}

fn error_code(body: &str) -> Option<i64> {
    let value: Value = serde_json::from_str(body).ok()?;
    value["error"]["code"].as_i64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_unknown_oversized_and_batched_requests_are_refused() {
    let crew = crew().await;
    let token = crew.token("research_bot").await;
    let add_note = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                          "params": {"name": "notes__add_note", "arguments": {"text": "x"}}});

    let (status, body) =
        post(&crew, &token, r#"{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"#).await;
    assert!(refused(status, &body), "{status} {body}");

    let unknown = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/destroy", "params": {}});
    let (status, body) = post(&crew, &token, unknown.to_string()).await;
    assert!(refused(status, &body), "{status} {body}");

    let huge = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                      "params": {"name": "notes__add_note", "arguments": {"text": "x".repeat(2 << 20)}}});
    let (status, _) = post(&crew, &token, huge.to_string()).await;
    assert_eq!(status, 413);

    // Batches (gone from MCP since 2025-06-18): 10,000 calls are over the size limit, 100 are not.
    for calls in [10_000, 100] {
        let batch = Value::Array(
            (0..calls)
                .map(|i| {
                    let mut c = add_note.clone();
                    c["id"] = json!(i);
                    c
                })
                .collect(),
        );
        let (status, body) = post(&crew, &token, batch.to_string()).await;
        assert!(refused(status, &body), "{status} {}", body.get(..200).unwrap_or(&body));
    }

    assert!(crew.notes.lock().unwrap().is_empty(), "a refused request reached the upstream");
    // The gateway still serves.
    let research = crew.client(&token).await;
    research.call_tool(call("notes__add_note", json!({"text": "fine"}))).await.unwrap();
    assert_eq!(*crew.notes.lock().unwrap(), ["fine"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_its_body_too_slowly_is_cut_off() {
    let crew = crew().await;
    let token = crew.token("research_bot").await;
    let address = crew.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ncontent-length: 100\r\n\r\n{{\"jsonrpc\""
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 512];
    // The gateway's body_timeout in the tests is 2 s; the rest of the body never comes.
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut answer)).await;
    let n = read.expect("the gateway waited for the body without end").unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_dies_is_started_again() {
    let crew = crew().await;
    let research = crew.client(&crew.token("research_bot").await).await;
    let read = || research.call_tool(call("files__read_file", json!({"path": "report.txt"})));
    read().await.unwrap();
    // The files upstream is the only process with this test's directory in its command line.
    let killed = std::process::Command::new("pkill")
        .args(["-KILL", "-f", crew.files().to_str().unwrap()])
        .status()
        .unwrap();
    assert!(killed.success(), "no upstream process to kill");
    match read().await {
        Ok(result) => assert_eq!(text(&result), "quarterly numbers"),
        Err(rmcp::ServiceError::McpError(error)) => {
            assert!(error.message.contains("upstream `files` failed"), "{}", error.message);
            let again = read().await.unwrap();
            assert_eq!(text(&again), "quarterly numbers");
        }
        Err(other) => panic!("{other:?}"),
    }
}

/// research_bot may call any tool of the `broken` upstream.
const BROKEN_POLICY: &str = "
policies:
  - {name: broken, effect: allow, conditions: {agent_id: research_bot, tool_name: {starts_with: broken__}}}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_keeps_failing_is_left_alone_for_a_while() {
    let crew = crew_with(BROKEN_POLICY).await;
    let starts = crew.dir.path().join("starts");
    let script = format!("echo started >> '{}'; exit 1", starts.display());
    let url =
        gateway_for(&crew, json!({"upstreams": [{"name": "broken", "command": ["sh", "-c", script]}]})).await;
    let config = rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(url)
        .auth_header(crew.token("research_bot").await);
    let research =
        rmcp::ServiceExt::serve((), rmcp::transport::StreamableHttpClientTransport::from_config(config))
            .await
            .unwrap();
    let mut messages = Vec::new();
    for _ in 0..10 {
        let refused = research.call_tool(call("broken__anything", json!({}))).await.unwrap_err();
        let rmcp::ServiceError::McpError(error) = refused else { panic!("{refused:?}") };
        assert!(error.message.contains("upstream `broken` failed"), "{}", error.message);
        messages.push(error.message);
    }
    // Three failed starts open the circuit; the next seven calls do not start it again.
    let started = std::fs::read_to_string(&starts).unwrap().lines().count();
    assert_eq!(started, 3, "{messages:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_for_another_host_is_refused() {
    let crew = crew().await;
    let token = crew.token("research_bot").await;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let post = |host: &str| {
        reqwest::Client::new()
            .post(&crew.url)
            .bearer_auth(&token)
            .header("host", host)
            .header("accept", "application/json, text/event-stream")
            .json(&initialize)
            .send()
    };
    // A page on another site that resolves its own name to this machine (DNS rebinding).
    assert_eq!(post("attacker.example").await.unwrap().status(), 403);
    let own = crew.base.trim_start_matches("http://").to_owned();
    assert_eq!(post(&own).await.unwrap().status(), 200);
}
