//! An agent with an Entra ID app identity calls tools through the ZTA guard, against the local
//! OIDC test server (`cargo xtask services`), which stands in for Entra ID: the program
//! registers the agent's app there (in Entra that is the app registration and admin consent)
//! and points the config's `authority` at it.
#![allow(clippy::print_stdout)]

use anyhow::{Context, Result};
use zta::{
    Action, Config, Request,
    identity::oidc::{AgentTokenClient, ClientAuth, ClientConfig},
    secrecy::ExposeSecret,
    token::{Algorithm, SigningKey},
};

const TENANT: &str = "0d5f1f3e-2d7c-4b8e-9f6a-3c1d2e4f5a6b";
const ZTA_API: &str = "api://6e74172b-be56-4843-9ff4-e66a39bb12e3";
const RESEARCH_APP: &str = "2f0c9d1e-5b7a-4c3d-8e9f-0a1b2c3d4e5f";
const RESEARCH_SECRET: &str = "research-bot-example-secret-5d1e";

#[tokio::main]
async fn main() -> Result<()> {
    let authority =
        std::env::var("ZTA_TEST_OIDC_URL").unwrap_or_else(|_| "http://127.0.0.1:17080".to_owned());
    register_app(&authority).await.context("start the local OIDC test server with `cargo xtask services`")?;

    // The deployment: zta.yaml, with the authority pointed at the local server and a fresh
    // token signing key.
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("keys"))?;
    let key = SigningKey::generate(Algorithm::EdDSA)?;
    std::fs::write(dir.path().join("keys/zta-signing.pem"), key.to_pkcs8_pem().expose_secret())?;
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let yaml = std::fs::read_to_string(example.join("zta.yaml"))?
        .replace("https://login.microsoftonline.com", &authority)
        .replace("../policies/crew.yaml", &example.join("../policies/crew.yaml").to_string_lossy());
    std::fs::write(dir.path().join("zta.yaml"), yaml)?;
    let built = Config::from_file(dir.path().join("zta.yaml"))?.build().await?;

    // The agent: one line of setup, then a token with every request.
    let auth = ClientAuth::Secret(RESEARCH_SECRET.to_owned().into());
    let client = AgentTokenClient::new(ClientConfig::entra(&authority, TENANT, RESEARCH_APP, auth, ZTA_API))?;
    let credential = client.credential().await?;

    for tool in ["web_search", "run_python"] {
        match built.guard.check(&credential, Request::new(Action::tool_call(tool))).await {
            Ok(permit) => println!("{tool}: allowed for {}", permit.agent_id()),
            Err(denied) => println!("{tool}: denied ({denied})"),
        }
    }
    // One login instead of the IdP path on every request.
    let session = built.guard.login(&credential).await?;
    let bearer = zta::Credential::Bearer(session.access_token);
    let permit = built.guard.check(&bearer, Request::new(Action::tool_call("web_search"))).await?;
    println!("web_search with a ZTA session: allowed for {}", permit.agent_id());
    built.guard.audit_sink().flush().await?;
    Ok(())
}

/// In Entra ID: the app registration with its secret, and the `Agent.Invoke` app role granted
/// by admin consent.
async fn register_app(authority: &str) -> Result<()> {
    let registration = serde_json::json!({
        "client_id": RESEARCH_APP, "client_secret": RESEARCH_SECRET, "resource": ZTA_API,
        "audience": "6e74172b-be56-4843-9ff4-e66a39bb12e3", "roles": ["Agent.Invoke"],
    });
    reqwest::Client::new()
        .post(format!("{authority}/__test/{TENANT}/clients"))
        .header("content-type", "application/json")
        .body(registration.to_string())
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}
