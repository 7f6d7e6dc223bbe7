//! Directory accounts end to end: `type: ldap` in `zta.yaml`, `login` with the account's
//! password, a tool the account's group grants allowed and one it does not denied, both
//! audited; a wrong password refused and audited. Against the local slapd
//! (`cargo xtask services`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

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

/// A config with a `type: ldap` identity, its audit in `audit_dir`, and `extra` sections; the
/// service account's password is written beside it by [`setup`].
fn config_text(audit_dir: &str, extra: &str) -> String {
    format!(
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
    lockout: {{max_failures: 4, window: 5m}}
tokens:
  issuer: https://zta.test
  audience: zta
  signing_key_file: signing.pem
policy:
  type: native
  files: [policy.yaml]
audit:
  type: jsonl
  dir: {audit_dir}
{extra}",
        ca = ldap_dir().join("ca.pem").display()
    )
}

fn setup(dir: &Path) {
    write_signing_key(&dir.join("signing.pem"));
    std::fs::write(dir.join("policy.yaml"), POLICY).unwrap();
    std::fs::write(dir.join("ldap-bind.secret"), "gateway-test-secret\n").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_account_logs_in_and_is_authorized_by_its_groups() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    std::fs::write(dir.path().join("zta.yaml"), config_text("audit", "")).unwrap();
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

/// Two replicas with one Redis: wrong passwords tried at both, at the same time, are all
/// counted in one lockout, which then holds at both (and not at a replica with a state of its
/// own, so it is ZTA's count, not the directory's).
#[cfg(feature = "state-redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_lockout_of_a_directory_account() {
    use zta::AuthError;
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let redis = std::env::var("ZTA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let state = format!("state:\n  type: redis\n  url: {redis}\n  key_prefix: 'zta-test:ldap:{nanos}:'\n");
    let replica = |name: &str, extra: &str| {
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, config_text(&format!("audit-{name}"), extra)).unwrap();
        async move { Config::from_file(&path).unwrap().build().await.unwrap().guard }
    };
    let (a, b) = (replica("a", &state).await, replica("b", &state).await);
    let wrong = Credential::password("analysis_bot", "guess");
    let attempts: Vec<_> = (0..10)
        .map(|i| {
            let guard = if i % 2 == 0 { a.clone() } else { b.clone() };
            let wrong = wrong.clone();
            tokio::spawn(async move { guard.login(&wrong).await.map(|_| ()).map_err(|e| e.reason().clone()) })
        })
        .collect();
    let mut refused = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Err(DenyReason::Unauthenticated(AuthError::Invalid { .. })) => refused += 1,
            Err(DenyReason::Unauthenticated(AuthError::LockedOut)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(refused >= 4, "{refused}");
    let right = Credential::password("analysis_bot", "analysis-secret");
    for guard in [&a, &b] {
        let locked = guard.login(&right).await.unwrap_err();
        assert_eq!(locked.reason(), &DenyReason::Unauthenticated(AuthError::LockedOut), "{locked}");
    }
    replica("c", "").await.login(&right).await.unwrap();
}
