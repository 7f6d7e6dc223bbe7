//! Tool calls through the gateway: allowed ones run, denied ones never reach the upstream, the
//! list is filtered per agent, and requests without a valid token are refused with `401`.

use rmcp::model::CallToolRequestParams;
use serde_json::json;
use zta::AgentId;
use zta_adapter_mcp::DENIED;

use crate::support::*;

pub(crate) fn call(name: &str, arguments: serde_json::Value) -> CallToolRequestParams {
    let mut params = CallToolRequestParams::new(name.to_owned());
    params.arguments = arguments.as_object().cloned();
    params
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_calls_run_denied_ones_never_reach_the_upstream() {
    let crew = crew().await;
    let research = crew.client(&crew.token("research_bot").await).await;

    let read = research.call_tool(call("files__read_file", json!({"path": "report.txt"}))).await.unwrap();
    assert_eq!(text(&read), "quarterly numbers");
    research.call_tool(call("notes__add_note", json!({"text": "seen the report"}))).await.unwrap();
    assert_eq!(*crew.notes.lock().unwrap(), ["seen the report"]);

    // Not granted: the file stays.
    let denied =
        research.call_tool(call("files__delete_file", json!({"path": "report.txt"}))).await.unwrap_err();
    let rmcp::ServiceError::McpError(error) = denied else { panic!("{denied:?}") };
    assert_eq!(error.code, DENIED);
    assert!(error.message.contains("no policy allows this"), "{}", error.message);
    let request_id = error.data.as_ref().unwrap()["request_id"].as_str().unwrap().to_owned();
    assert!(crew.files().join("report.txt").exists());
    // A deny rule on the arguments: the same tool, another path.
    let secret =
        research.call_tool(call("files__read_file", json!({"path": "secret.txt"}))).await.unwrap_err();
    let rmcp::ServiceError::McpError(error) = secret else { panic!("{secret:?}") };
    assert!(error.message.contains("denied by policy"), "{}", error.message);

    let writer = crew.client(&crew.token("writer_bot").await).await;
    writer
        .call_tool(call("files__write_file", json!({"path": "draft.txt", "content": "hello"})))
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(crew.files().join("draft.txt")).unwrap(), "hello");

    crew.guard.audit_sink().flush().await.unwrap();
    let records = audit_records(&crew.audit());
    let denial = records.iter().find(|r| r["id"] == request_id.as_str()).expect("the denial is audited");
    assert_eq!(denial["agent_id"], "research_bot");
    assert_eq!(denial["effect"], "deny");
    assert_eq!(denial["detail"]["source"], "127.0.0.1", "the denial does not say where it came from");
    assert_eq!(denial["action"]["name"], "files__delete_file");
    let allowed: Vec<_> = records
        .iter()
        .filter(|r| r["effect"] == "allow" && r["event"] == "authorization" && r["action"].is_object())
        .map(|r| {
            (r["agent_id"].as_str().unwrap().to_owned(), r["action"]["name"].as_str().unwrap().to_owned())
        })
        .collect();
    assert!(allowed.contains(&("research_bot".into(), "files__read_file".into())), "{allowed:?}");
    assert!(allowed.contains(&("writer_bot".into(), "files__write_file".into())), "{allowed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_agent_sees_only_the_tools_its_policy_allows() {
    let crew = crew().await;
    let names = |tools: Vec<rmcp::model::Tool>| {
        let mut names: Vec<String> = tools.into_iter().map(|t| t.name.to_string()).collect();
        names.sort();
        names
    };
    let research = crew.client(&crew.token("research_bot").await).await;
    assert_eq!(
        names(research.list_all_tools().await.unwrap()),
        ["files__list_files", "files__read_file", "notes__add_note"]
    );
    let writer = crew.client(&crew.token("writer_bot").await).await;
    assert_eq!(
        names(writer.list_all_tools().await.unwrap()),
        ["files__delete_file", "files__read_file", "files__write_file"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_are_refused_with_401() {
    let crew = crew().await;
    let http = reqwest::Client::new();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "writer_bot", "version": "1"}}});
    let post = |token: Option<&str>| {
        let mut request =
            http.post(&crew.url).header("accept", "application/json, text/event-stream").json(&initialize);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let metadata = format!("{}/.well-known/oauth-protected-resource/mcp", crew.base);
    for (token, error) in [(None, false), (Some("not-a-token"), true)] {
        let answer = post(token).await.unwrap();
        assert_eq!(answer.status(), 401);
        let challenge = answer.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        assert!(challenge.contains(&format!("resource_metadata=\"{metadata}\"")), "{challenge}");
        assert_eq!(challenge.contains("error=\"invalid_token\""), error, "{challenge}");
    }
    // A revoked agent's token stops working at once.
    let token = crew.token("research_bot").await;
    assert_eq!(post(Some(&token)).await.unwrap().status(), 200);
    crew.guard
        .revoke_agent(&AgentId::new("research_bot").unwrap(), &zta_core::Actor::Local, "compromised")
        .await
        .unwrap();
    assert_eq!(post(Some(&token)).await.unwrap().status(), 401);
    // Each refusal is coded as the guard codes its own, for queries and monitoring.
    crew.guard.audit_sink().flush().await.unwrap();
    let refusals: Vec<(String, String)> = audit_records(&crew.audit())
        .iter()
        .filter(|r| r["detail"]["mcp"] == "http request")
        .map(|r| {
            let detail = &r["detail"];
            (
                detail["denial"].as_str().unwrap().to_owned(),
                detail["claimed_agent"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    let expected =
        [("invalid_credential", "-"), ("unsupported_credential", "-"), ("revoked", "research_bot")];
    assert_eq!(refusals, expected.map(|(d, a)| (d.to_owned(), a.to_owned())));
    // And say where they came from.
    let sources: Vec<serde_json::Value> = audit_records(&crew.audit())
        .iter()
        .filter(|r| r["detail"]["mcp"] == "http request")
        .map(|r| r["detail"]["source"].clone())
        .collect();
    assert_eq!(sources, [json!("127.0.0.1"), json!("127.0.0.1"), json!("127.0.0.1")]);

    let described: serde_json::Value = http.get(&metadata).send().await.unwrap().json().await.unwrap();
    assert_eq!(described["resource"], crew.url.as_str());
    assert_eq!(described["bearer_methods_supported"], json!(["header"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refused_with_401() {
    let mut tokens = zta::token::TokenConfig::new("https://zta.test", "zta");
    tokens.access_ttl = std::time::Duration::from_secs(2);
    tokens.leeway = std::time::Duration::ZERO;
    let crew = crew_with_tokens(POLICY, tokens).await;
    let token = crew.token("research_bot").await;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let post = || {
        reqwest::Client::new()
            .post(&crew.url)
            .bearer_auth(&token)
            .header("accept", "application/json, text/event-stream")
            .json(&initialize)
            .send()
    };
    assert_eq!(post().await.unwrap().status(), 200);
    // The token's whole lifetime (2 s in whole seconds, no leeway) passes.
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let expired = post().await.unwrap();
    assert_eq!(expired.status(), 401);
    let challenge = expired.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}
