//! Three agents reach two MCP servers through the ZTA gateway (`zta.yaml`, `tools.yaml`):
//! each sees only the tools its policy allows, calls them with a session token for the
//! gateway, and is refused what it was never granted, before the server is asked.
//!
//! The program provisions a deployment in a temporary directory (keys, two data directories)
//! and is also the upstream: `mcp-gateway files --root DIR` is the demo files server of
//! zta-adapter-mcp on stdio, which the config's `mcp-demo-files` is pointed at.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use anyhow::{Context, Result};
use rmcp::{
    ServiceExt,
    model::CallToolRequestParams,
    transport::{StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig},
};
use serde_json::json;
use zta::{
    AgentId, Config,
    adapter::mcp::demo::DemoFiles,
    identity::static_agents::AgentKey,
    secrecy::ExposeSecret,
    token::{Algorithm, SigningKey},
};

const AGENTS: [&str; 3] = ["research_bot", "analysis_bot", "writer_bot"];

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [mode, flag, root] = args.as_slice()
        && mode == "files"
        && flag == "--root"
    {
        return DemoFiles::new(root).serve_stdio().await.map_err(anyhow::Error::msg);
    }

    // A deployment: the config and policy, keys, and the two servers' files.
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir()?;
    std::env::set_current_dir(dir.path())?;
    let me = std::env::current_exe()?;
    let config = std::fs::read_to_string(example.join("zta.yaml"))?
        .replace("[mcp-demo-files,", &format!("[{}, files,", me.display()));
    std::fs::write("zta.yaml", config)?;
    std::fs::copy(example.join("tools.yaml"), "tools.yaml")?;
    std::fs::create_dir_all("keys")?;
    std::fs::create_dir_all("data/reports")?;
    std::fs::create_dir_all("data/drafts")?;
    std::fs::write("data/reports/q3.txt", "Q3: revenue up 12%. Lead analyst salary: 120000.")?;
    let signing = SigningKey::generate(Algorithm::EdDSA)?;
    std::fs::write("keys/zta-signing.pem", signing.to_pkcs8_pem().expose_secret())?;
    let mut keys = Vec::new();
    for agent in AGENTS {
        let key = AgentKey::generate()?;
        std::fs::write(format!("keys/{agent}.pub.pem"), key.public_key_pem())?;
        keys.push((AgentId::new(agent)?, key));
    }

    let loaded = Config::from_file("zta.yaml")?;
    let (built, gateway) = loaded.build_gateway().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/mcp", listener.local_addr()?);
    tokio::spawn(async move { gateway.serve_on(listener, std::future::pending()).await });
    println!("gateway at {url}\n");

    for (id, key) in &keys {
        // Each agent logs in with a fresh signed assertion and presents the session token (for
        // this gateway alone) on every MCP request.
        let assertion = key.assertion(id, "https://zta.example.internal", Duration::from_secs(30))?;
        let session = built.guard.login(&assertion).await?;
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(url.as_str())
                .auth_header(session.access_token.expose_secret()),
        );
        let client = ().serve(transport).await.context("connecting to the gateway")?;
        let mut tools: Vec<String> =
            client.list_all_tools().await?.into_iter().map(|t| t.name.into()).collect();
        tools.sort();
        println!("{id} sees {}", tools.join(", "));
        let calls = [
            ("reports__read_file", json!({"path": "q3.txt"})),
            ("reports__read_file", json!({"path": "../../etc/passwd"})),
            ("drafts__write_file", json!({"path": "summary.txt", "content": format!("notes by {id}")})),
            ("reports__delete_file", json!({"path": "q3.txt"})),
        ];
        for (tool, arguments) in calls {
            let mut params = CallToolRequestParams::new(tool);
            params.arguments = arguments.as_object().cloned();
            match client.call_tool(params).await {
                Ok(result) => {
                    let text: Vec<String> =
                        result.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect();
                    println!("  {tool} {arguments}: {}", text.join(" "));
                }
                Err(rmcp::ServiceError::McpError(e)) => println!("  {tool} {arguments}: {}", e.message),
                Err(e) => println!("  {tool} {arguments}: failed: {e}"),
            }
        }
        client.cancel().await?;
        println!();
    }
    built.guard.audit_sink().flush().await?;
    let mut records = 0;
    for entry in std::fs::read_dir("audit")? {
        records += std::fs::read_to_string(entry?.path())?.lines().count();
    }
    println!("{records} decisions in the hash-chained audit log (`zta audit verify` checks it)");
    Ok(())
}
