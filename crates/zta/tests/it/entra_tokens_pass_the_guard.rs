//! Entra ID access tokens end to end: `type: entra` in `zta.yaml`, a tool its app role grants
//! allowed and one it lacks denied, both audited with the tenant and app ids; and `login`
//! exchanging the token for a ZTA session. Against the local OIDC test server
//! (`cargo xtask services`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use serde_json::{Value, json};
use zta::{Action, AuditEvent, Config, Credential, DenyReason, Request};

use crate::common::{audit_records, write_signing_key};

const API: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
const APP: &str = "2f0c9d1e-5b7a-4c3d-8e9f-0a1b2c3d4e5f";
const POLICY: &str = "\
policies:
  - name: invoke_search
    effect: allow
    conditions:
      action_type: call_tool
      tool_name: web_search
      principal.roles: {contains: Research.Read}
";

fn server() -> String {
    std::env::var("ZTA_TEST_OIDC_URL").unwrap_or_else(|_| "http://127.0.0.1:17080".to_owned())
}

async fn sign(tenant: &str, claims: Value) -> String {
    let url = format!("{}/__test/{tenant}/sign", server());
    let response = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .body(json!({"claims": claims}).to_string())
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the OIDC test server does not answer at {url} (start it with `cargo xtask services`): {e}"
            )
        });
    let answer: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    answer["token"].as_str().unwrap().to_owned()
}

async fn set_mode(tenant: &str, modes: Value) {
    let url = format!("{}/__test/{tenant}/mode", server());
    let response = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .body(modes.to_string())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{url}: {}", response.status());
}

fn claims(tenant: &str, roles: &[&str]) -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    json!({
        "aud": API, "iss": format!("{}/{tenant}/v2.0", server()), "iat": now - 5, "nbf": now - 5, "exp": now + 600,
        "tid": tenant, "oid": "9a8b7c6d-1234-4e5f-8a9b-0c1d2e3f4a5b", "sub": "9a8b7c6d-1234-4e5f-8a9b-0c1d2e3f4a5b",
        "azp": APP, "roles": roles, "idtyp": "app", "ver": "2.0", "uti": uuid::Uuid::new_v4().to_string(),
    })
}

async fn guard(dir: &std::path::Path, tenant: &str) -> zta::Built {
    write_signing_key(&dir.join("signing.pem"));
    std::fs::write(dir.join("policy.yaml"), POLICY).unwrap();
    let config = format!(
        "\
identity:
  - type: entra
    authority: {server}
    tenant: {tenant}
    audiences: [{API}]
    required_roles: [Agent.Invoke]
    agents: {{{APP}: research_bot}}
    segment: research
    issue_session_token: true
tokens:
  issuer: https://zta.test
  audience: zta
  signing_key_file: signing.pem
policy:
  type: native
  files: [policy.yaml]
audit:
  type: jsonl
  dir: audit
",
        server = server()
    );
    std::fs::write(dir.join("zta.yaml"), config).unwrap();
    Config::from_file(dir.join("zta.yaml")).unwrap().build().await.unwrap()
}

fn records(dir: &std::path::Path) -> Vec<Value> {
    audit_records(&dir.join("audit"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_token_is_allowed_what_its_role_grants_and_denied_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = uuid::Uuid::new_v4().to_string();
    let built = guard(dir.path(), &tenant).await;
    let token = Credential::bearer(sign(&tenant, claims(&tenant, &["Agent.Invoke", "Research.Read"])).await);

    let permit = built.guard.check(&token, Request::new(Action::tool_call("web_search"))).await.unwrap();
    assert_eq!(permit.agent_id().as_str(), "research_bot");
    let denied = built.guard.check(&token, Request::new(Action::tool_call("run_python"))).await.unwrap_err();
    assert!(matches!(denied.reason(), DenyReason::Policy(_)), "{denied}");
    let without_role = Credential::bearer(sign(&tenant, claims(&tenant, &["Agent.Invoke"])).await);
    assert!(built.guard.check(&without_role, Request::new(Action::tool_call("web_search"))).await.is_err());
    let not_an_agent = Credential::bearer(sign(&tenant, claims(&tenant, &["Research.Read"])).await);
    let refused =
        built.guard.check(&not_an_agent, Request::new(Action::tool_call("web_search"))).await.unwrap_err();
    assert!(matches!(refused.reason(), DenyReason::Unauthenticated(_)), "{refused}");

    built.guard.audit_sink().flush().await.unwrap();
    let records = records(dir.path());
    let decided: Vec<&Value> = records.iter().filter(|r| r["agent_id"] == "research_bot").collect();
    assert!(decided.len() >= 3, "{records:?}");
    for record in &decided {
        assert_eq!(record["tenant"], tenant, "{record}");
        assert_eq!(record["claims"]["azp"], APP, "{record}");
        assert_eq!(record["claims"]["oid"], "9a8b7c6d-1234-4e5f-8a9b-0c1d2e3f4a5b", "{record}");
    }
    assert!(decided.iter().any(|r| r["effect"] == "allow") && decided.iter().any(|r| r["effect"] == "deny"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_exchanges_the_token_for_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = uuid::Uuid::new_v4().to_string();
    let built = guard(dir.path(), &tenant).await;
    let token = Credential::bearer(sign(&tenant, claims(&tenant, &["Agent.Invoke", "Research.Read"])).await);
    let session = built.guard.login(&token).await.unwrap();
    let bearer = Credential::Bearer(session.access_token.clone());
    let permit = built.guard.check(&bearer, Request::new(Action::tool_call("web_search"))).await.unwrap();
    assert_eq!(permit.principal().auth_method, zta::AuthMethod::SessionToken);
    assert_eq!(permit.principal().tenant.as_deref(), Some(tenant.as_str()));
    assert_eq!(
        permit.principal().source_issuer.as_deref(),
        Some(format!("{}/{tenant}/v2.0", server()).as_str())
    );
    built.guard.refresh(&session.refresh_token).await.unwrap();

    built.guard.audit_sink().flush().await.unwrap();
    assert!(
        records(dir.path()).iter().any(|r| r["event"] == serde_json::to_value(AuditEvent::Login).unwrap())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_issuer_down_and_no_keys_every_token_is_denied_and_the_fault_audited() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = uuid::Uuid::new_v4().to_string();
    set_mode(&tenant, json!({"jwks": "down"})).await;
    let built = guard(dir.path(), &tenant).await;
    let token = Credential::bearer(sign(&tenant, claims(&tenant, &["Agent.Invoke", "Research.Read"])).await);
    let denied = built.guard.check(&token, Request::new(Action::tool_call("web_search"))).await.unwrap_err();
    assert!(
        matches!(denied.reason(), DenyReason::Unauthenticated(zta::AuthError::Unavailable { .. })),
        "{denied}"
    );
    built.guard.audit_sink().flush().await.unwrap();
    let records = records(dir.path());
    let record = records.iter().find(|r| r["effect"] == "deny").expect("the denial is audited");
    let reason = record["reason"].as_str().unwrap();
    assert!(reason.contains("identity service unavailable") && reason.contains("503"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_token_shuts_out_one_idp_token_even_when_cached() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = uuid::Uuid::new_v4().to_string();
    let built = guard(dir.path(), &tenant).await;
    let roles = ["Agent.Invoke", "Research.Read"];
    let (token, other) =
        (sign(&tenant, claims(&tenant, &roles)).await, sign(&tenant, claims(&tenant, &roles)).await);
    let search = || Request::new(Action::tool_call("web_search"));
    let _permit = built.guard.check(&Credential::bearer(token.clone()), search()).await.unwrap();
    built.guard.revoke_token(&token.clone().into(), &zta::Actor::Local, "leaked").await.unwrap();
    let denied = built.guard.check(&Credential::bearer(token), search()).await.unwrap_err();
    assert_eq!(denied.reason(), &DenyReason::Unauthenticated(zta::AuthError::Revoked));
    let _permit = built.guard.check(&Credential::bearer(other), search()).await.unwrap();
}
