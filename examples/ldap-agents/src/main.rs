//! A directory account logs in to ZTA and calls tools, against the local test directory
//! (`cargo xtask services`): the program copies the directory's CA next to `zta.yaml` and
//! writes the service account's password file, as a deployment would provision them.
#![allow(clippy::print_stdout)]

use anyhow::{Context, Result};
use zta::{
    Action, Config, Credential, Request,
    secrecy::ExposeSecret,
    token::{Algorithm, SigningKey},
};

#[tokio::main]
async fn main() -> Result<()> {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let directory = std::env::var_os("ZTA_TEST_LDAP_DIR")
        .map_or_else(|| example.join("../../target/zta-services/ldap"), std::path::PathBuf::from);
    let dir = tempfile::tempdir()?;
    std::fs::copy(directory.join("ca.pem"), dir.path().join("ldap-ca.pem"))
        .context("start the local test directory with `cargo xtask services`")?;
    std::fs::write(dir.path().join("ldap-bind.secret"), "gateway-test-secret\n")?;
    std::fs::create_dir(dir.path().join("keys"))?;
    let key = SigningKey::generate(Algorithm::EdDSA)?;
    std::fs::write(dir.path().join("keys/zta-signing.pem"), key.to_pkcs8_pem().expose_secret())?;
    let yaml = std::fs::read_to_string(example.join("zta.yaml"))?
        .replace("../policies/crew.yaml", &example.join("../policies/crew.yaml").to_string_lossy());
    std::fs::write(dir.path().join("zta.yaml"), yaml)?;
    let built = Config::from_file(dir.path().join("zta.yaml"))?.build().await?;

    // The agent logs in once with its directory password...
    let session = built.guard.login(&Credential::password("research_bot", "research-secret")).await?;
    let bearer = Credential::Bearer(session.access_token);
    // ...and presents its session token with every request.
    for tool in ["web_search", "run_python"] {
        match built.guard.check(&bearer, Request::new(Action::tool_call(tool))).await {
            Ok(permit) => println!(
                "{tool}: allowed for {} (segment {:?})",
                permit.agent_id(),
                permit.principal().segment
            ),
            Err(denied) => println!("{tool}: denied ({denied})"),
        }
    }
    match built.guard.login(&Credential::password("research_bot", "a guess")).await {
        Ok(_) => println!("a wrong password logged in (this must not happen)"),
        Err(denied) => println!("wrong password: denied ({denied})"),
    }
    built.guard.audit_sink().flush().await?;
    Ok(())
}
