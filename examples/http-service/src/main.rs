//! An axum service whose routes are tools, behind the ZTA guard layer. See README.md.
#![allow(clippy::print_stdout)]

use std::{sync::Arc, time::Duration};

use anyhow::{Context, Result};
use axum::{Extension, Router, routing::post};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zta::{
    Action, AgentId, Guard, MemoryStateStore, Request, StateStore,
    adapter::tower::{Authorized, GuardLayer},
    audit::jsonl::{JsonlConfig, JsonlSink},
    identity::static_agents::{AgentEntry, AgentKey, StaticConfig, StaticProvider},
    secrecy::ExposeSecret,
    token::{Algorithm, SigningKey, TokenConfig, TokenService},
};

const POLICY: &str = include_str!("../../policies/crew.yaml");

#[tokio::main]
async fn main() -> Result<()> {
    // The service's guard: one agent with a key, session tokens, the crew policy, an audit log.
    let state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::new());
    let key = AgentKey::generate()?;
    let agent = AgentId::new("research_bot")?;
    let agents = StaticConfig::new("tools.example").with_agent(
        AgentEntry::from_public_key(agent.clone(), key.public_key_pem()).with_segment("research"),
    );
    let tokens = TokenService::new(
        TokenConfig::new("https://tools.example", "tools"),
        SigningKey::generate(Algorithm::EdDSA)?,
        state.clone(),
    )?;
    let audit_dir = std::env::temp_dir().join(format!("zta-http-service-{}", std::process::id()));
    let sink = Arc::new(JsonlSink::open(JsonlConfig::new(&audit_dir))?);
    let guard = Guard::builder(Arc::new(zta::policy::PolicySet::from_yaml(POLICY)?), sink)
        .identity_provider(Arc::new(StaticProvider::new(agents, state.clone())?))
        .token_authority(Arc::new(tokens))
        .state_store(state)
        .build()?;

    // Every route is a tool; the layer decides before a handler runs.
    let app = Router::new()
        .route(
            "/tools/{name}",
            post(|Extension(ok): Extension<Authorized>| async move {
                let permit = ok.permit();
                format!("{} ran for {}\n", permit.request().action().name(), permit.agent_id())
            }),
        )
        .layer(GuardLayer::new(guard.clone(), |parts: &http::request::Parts| {
            let tool = parts.uri.path().strip_prefix("/tools/")?;
            Some(Request::new(Action::tool_call(tool)))
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    // The agent logs in with its key and calls two tools over HTTP.
    let session = guard.login(&key.assertion(&agent, "tools.example", Duration::from_secs(30))?).await?;
    let token = session.access_token.expose_secret().to_owned();
    for tool in ["web_search", "shell"] {
        let answer = post_tool(addr, tool, &token).await?;
        println!("POST /tools/{tool} -> {answer}");
    }
    guard.audit_sink().flush().await?;
    println!("audit log: {}", audit_dir.display());
    Ok(())
}

/// A minimal HTTP/1.1 client: the status line and body of `POST /tools/{tool}`.
async fn post_tool(addr: std::net::SocketAddr, tool: &str, token: &str) -> Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "POST /tools/{tool} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response.lines().next().context("empty response")?.to_owned();
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b).trim().to_owned();
    Ok(format!("{status}: {body}"))
}
