//! Resources and prompts pass the guard like tools: listed by policy, each read or get
//! authorized and audited, a denied one never reaching the upstream.

use rmcp::model::{GetPromptRequestParams, ReadResourceRequestParams};
use zta_adapter_mcp::DENIED;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_and_prompts_are_listed_and_read_by_policy() {
    let crew = crew().await;
    let research = crew.client(&crew.token("research_bot").await).await;

    let resources: Vec<String> =
        research.list_all_resources().await.unwrap().into_iter().map(|r| r.uri).collect();
    assert_eq!(resources, ["notes://all"]);
    let read = research.read_resource(ReadResourceRequestParams::new("notes://all")).await.unwrap();
    let text = serde_json::to_string(&read.contents).unwrap();
    assert!(text.contains("notes://all says"), "{text}");
    for refused in ["notes://private", "file:///etc/passwd"] {
        let error = research.read_resource(ReadResourceRequestParams::new(refused)).await.unwrap_err();
        let rmcp::ServiceError::McpError(error) = error else { panic!("{error:?}") };
        assert_eq!(error.code, DENIED, "{refused}");
    }

    let prompts: Vec<String> =
        research.list_all_prompts().await.unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(prompts, ["notes__summarize"]);
    let prompt = research.get_prompt(GetPromptRequestParams::new("notes__summarize")).await.unwrap();
    assert!(serde_json::to_string(&prompt.messages).unwrap().contains("prompt summarize"));
    let error = research.get_prompt(GetPromptRequestParams::new("notes__leak")).await.unwrap_err();
    let rmcp::ServiceError::McpError(error) = error else { panic!("{error:?}") };
    assert_eq!(error.code, DENIED);

    // The writer is granted none of them.
    let writer = crew.client(&crew.token("writer_bot").await).await;
    assert!(writer.list_all_resources().await.unwrap().is_empty());
    assert!(writer.read_resource(ReadResourceRequestParams::new("notes://all")).await.is_err());

    crew.guard.audit_sink().flush().await.unwrap();
    let reads: Vec<(String, String)> = audit_records(&crew.audit())
        .into_iter()
        .filter(|r| r["action"]["name"] == "read_resource")
        .map(|r| (r["resource"]["id"].as_str().unwrap().to_owned(), r["effect"].as_str().unwrap().to_owned()))
        .collect();
    assert!(reads.contains(&("notes://all".into(), "allow".into())), "{reads:?}");
    assert!(reads.contains(&("notes://private".into(), "deny".into())), "{reads:?}");
}
