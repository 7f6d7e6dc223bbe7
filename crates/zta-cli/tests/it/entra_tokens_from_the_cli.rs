//! `zta check`, `zta authorize` and `zta token inspect --config` with a `type: entra` identity
//! section, against the local OIDC test server (`cargo xtask services`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
};

use crate::common::zta;

const API: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
const APP: &str = "2f0c9d1e-5b7a-4c3d-8e9f-0a1b2c3d4e5f";
const POLICY: &str = include_str!("../../../../examples/policies/crew.yaml");

fn server() -> String {
    std::env::var("ZTA_TEST_OIDC_URL").unwrap_or_else(|_| "http://127.0.0.1:17080".to_owned())
}

/// A token over `claims` from the test server's signing endpoint (HTTP/1.0 by hand: the CLI
/// has no HTTP client of its own to lend).
fn sign(tenant: &str, claims: serde_json::Value) -> String {
    let address = server().trim_start_matches("http://").trim_end_matches('/').to_owned();
    let body = serde_json::json!({"claims": claims}).to_string();
    let mut stream = TcpStream::connect(&address).unwrap_or_else(|e| {
        panic!("the OIDC test server does not answer at {address} (`cargo xtask services`): {e}")
    });
    write!(
        stream,
        "POST /__test/{tenant}/sign HTTP/1.0\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let json = answer.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str::<serde_json::Value>(json).unwrap()["token"].as_str().unwrap().to_owned()
}

fn setup(dir: &Path, tenant: &str) {
    assert_eq!(zta(&["keygen", "--out", "keys"], dir).0, 0);
    std::fs::write(dir.join("crew.yaml"), POLICY).unwrap();
    let config = format!(
        "identity:
  - type: entra
    authority: {server}
    tenant: {tenant}
    audiences: [{API}]
    required_roles: [Agent.Invoke]
    agents: {{{APP}: research_bot}}
    segment: research
tokens:
  issuer: https://zta.test
  audience: zta
  signing_key_file: keys/zta-signing.pem
policy:
  type: native
  files: [crew.yaml]
audit:
  type: jsonl
  dir: audit
",
        server = server()
    );
    std::fs::write(dir.join("zta.yaml"), config).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = serde_json::json!({
        "aud": API, "iss": format!("{}/{tenant}/v2.0", server()), "iat": now, "nbf": now, "exp": now + 600,
        "tid": tenant, "oid": "9a8b7c6d-1234-4e5f-8a9b-0c1d2e3f4a5b", "sub": "9a8b7c6d-1234-4e5f-8a9b-0c1d2e3f4a5b",
        "azp": APP, "roles": ["Agent.Invoke"], "idtyp": "app", "ver": "2.0",
    });
    let token = sign(tenant, claims);
    std::fs::write(dir.join("token.txt"), &token).unwrap();
    std::fs::write(dir.join("cred.json"), serde_json::json!({"bearer": token}).to_string()).unwrap();
    std::fs::write(dir.join("search.json"), r#"{"action": {"kind": "tool_call", "name": "web_search"}}"#)
        .unwrap();
    std::fs::write(dir.join("python.json"), r#"{"action": {"kind": "tool_call", "name": "run_python"}}"#)
        .unwrap();
}

#[test]
fn an_entra_token_is_checked_authorized_and_inspected() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = uuid::Uuid::new_v4().to_string();
    setup(dir.path(), &tenant);
    let (code, out, err) = zta(&["check", "--config", "zta.yaml"], dir.path());
    assert_eq!(code, 0, "{out}{err}");

    let authorize = |request: &str| {
        zta(
            &["authorize", "--config", "zta.yaml", "--credential-file", "cred.json", "--request", request],
            dir.path(),
        )
    };
    let (code, out, err) = authorize("search.json");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("research_bot"), "{out}");
    let (code, out, err) = authorize("python.json");
    assert_eq!(code, 3, "{out}{err}");

    let (code, out, err) =
        zta(&["token", "inspect", "--token-file", "token.txt", "--config", "zta.yaml"], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("research_bot") && out.contains(&tenant), "{out}");
}
