//! Directory accounts end to end: `type: ldap` in `zta.yaml`, `login` with the account's
//! password, a tool the account's group grants allowed and one it does not denied, both
//! audited; a wrong password refused and audited. Against the local slapd
//! (`cargo xtask services`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::PathBuf;

use zta::{Action, Config, Credential, DenyReason, Request};

use crate::common::{audit_records, write_signing_key};

const POLICY: &str = "\
policies:
  - name: readers_search
    effect: allow
    conditions:
      action_type: call_tool
      tool_name: web_search
      principal.roles: {contains: reader}
";

fn ldap_dir() -> PathBuf {
    let dir = std::env::var_os("ZTA_TEST_LDAP_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/zta-services/ldap"),
        PathBuf::from,
    );
    assert!(
        dir.join("ca.pem").exists(),
        "no LDAP test directory at {}; run `cargo xtask services`",
        dir.display()
    );
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_account_logs_in_and_is_authorized_by_its_groups() {
    let dir = tempfile::tempdir().unwrap();
    write_signing_key(&dir.path().join("signing.pem"));
    std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
    std::fs::write(dir.path().join("ldap-bind.secret"), "gateway-test-secret\n").unwrap();
    let config = format!(
        "\
identity:
  - type: ldap
    urls: [ldap://127.0.0.1:3389, ldap://127.0.0.1:3390]
    tls: starttls
    ca_file: {ca}
    bind_dn: cn=zta-gateway,ou=services,dc=zta,dc=test
    bind_password_file: ldap-bind.secret
    user_base: ou=agents,dc=zta,dc=test
    roles: {{\"cn=tools-readers,ou=groups,dc=zta,dc=test\": reader}}
    segments: {{\"cn=researchers,ou=groups,dc=zta,dc=test\": research}}
    disabled: {{attribute: pwdAccountLockedTime}}
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
        ca = ldap_dir().join("ca.pem").display()
    );
    std::fs::write(dir.path().join("zta.yaml"), config).unwrap();
    let built = Config::from_file(dir.path().join("zta.yaml")).unwrap().build().await.unwrap();

    let session = built.guard.login(&Credential::password("research_bot", "research-secret")).await.unwrap();
    let bearer = Credential::Bearer(session.access_token.clone());
    let permit = built.guard.check(&bearer, Request::new(Action::tool_call("web_search"))).await.unwrap();
    assert_eq!(permit.principal().segment.as_deref(), Some("research"));
    let denied = built.guard.check(&bearer, Request::new(Action::tool_call("run_python"))).await.unwrap_err();
    assert!(matches!(denied.reason(), DenyReason::Policy(_)), "{denied}");
    // The refresh asks the directory again (the account still holds its groups).
    built.guard.refresh(&session.refresh_token).await.unwrap();

    let wrong = built.guard.login(&Credential::password("research_bot", "guess")).await.unwrap_err();
    assert!(matches!(wrong.reason(), DenyReason::Unauthenticated(_)), "{wrong}");
    // An injection attempt is one more refused login, audited like any other.
    let injected =
        built.guard.login(&Credential::password("admin)(|(uid=*", "research-secret")).await.unwrap_err();
    assert!(matches!(injected.reason(), DenyReason::Unauthenticated(_)), "{injected}");
    // The writer is in no group the policy names.
    let writer = built
        .guard
        .check(
            &Credential::password("writer_bot", "writer-secret"),
            Request::new(Action::tool_call("web_search")),
        )
        .await;
    assert!(writer.is_err());

    built.guard.audit_sink().flush().await.unwrap();
    let events: Vec<_> = audit_records(&dir.path().join("audit"))
        .into_iter()
        .map(|record| (record["event"].clone(), record["effect"].clone()))
        .collect();
    assert!(events.iter().any(|(e, f)| e == "login" && f == "allow"), "{events:?}");
    assert_eq!(events.iter().filter(|(e, f)| e == "login" && f == "deny").count(), 2, "{events:?}");
    assert!(events.iter().any(|(e, f)| e == "authorization" && f == "allow"), "{events:?}");
}
