//! One local agent over stdio (here a pipe): its credential is given once, and every request
//! is still verified and authorized on its own, so revoking the agent stops the next request.

use serde_json::json;
use zta::AgentId;
use zta_adapter_mcp::{DENIED, GatewayConfig, McpGateway};

use crate::{calls::call, support::*};

/// A gateway with the crew's guard in front of its files upstream, to be served locally.
fn files_gateway(crew: &Crew) -> McpGateway {
    let config: GatewayConfig = serde_json::from_value(json!({
        "resource": "http://127.0.0.1:8900/mcp",
        "upstreams": [{"name": "files", "command": [env!("CARGO_BIN_EXE_mcp-demo-files"), "--root", crew.files()]}],
    }))
    .unwrap();
    McpGateway::new(crew.guard.clone(), config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_agent_is_checked_on_every_request() {
    let crew = crew().await;
    let gateway = files_gateway(&crew);
    let (agent_end, gateway_end) = tokio::io::duplex(1 << 16);
    let credential = crew.assertion("research_bot");
    let served =
        tokio::spawn(async move { gateway.serve_local(credential, tokio::io::split(gateway_end)).await });
    let research = rmcp::ServiceExt::serve((), tokio::io::split(agent_end)).await.unwrap();

    let read = research.call_tool(call("files__read_file", json!({"path": "report.txt"}))).await.unwrap();
    assert_eq!(text(&read), "quarterly numbers");
    let denied =
        research.call_tool(call("files__delete_file", json!({"path": "report.txt"}))).await.unwrap_err();
    let rmcp::ServiceError::McpError(error) = denied else { panic!("{denied:?}") };
    assert_eq!(error.code, DENIED);

    crew.guard
        .revoke_agent(&AgentId::new("research_bot").unwrap(), &zta_core::Actor::Local, "compromised")
        .await
        .unwrap();
    let revoked =
        research.call_tool(call("files__read_file", json!({"path": "report.txt"}))).await.unwrap_err();
    let rmcp::ServiceError::McpError(error) = revoked else { panic!("{revoked:?}") };
    assert_eq!(error.code, DENIED);
    assert!(error.message.contains("revoked"), "{}", error.message);

    research.cancel().await.unwrap();
    served.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_agent_that_cannot_log_in_is_not_served() {
    let crew = crew().await;
    let gateway = files_gateway(&crew);
    // An assertion already used is a replay: the login fails, and nothing is served.
    let assertion = crew.assertion("research_bot");
    crew.guard.login(&assertion).await.unwrap();
    let (_agent_end, gateway_end) = tokio::io::duplex(1 << 16);
    let refused = gateway.serve_local(assertion, tokio::io::split(gateway_end)).await.unwrap_err();
    assert!(refused.to_string().contains("cannot log in"), "{refused}");
}
