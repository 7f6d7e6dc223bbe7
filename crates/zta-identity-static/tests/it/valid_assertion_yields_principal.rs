//! A fresh assertion signed with the agent's configured key yields its principal.

use crate::common;

use std::{sync::Arc, time::Duration};

use common::*;
use zta_core::{AuthMethod, Credential, IdentityProvider, MemoryStateStore, StateStore};
use zta_identity_static::{AgentKey, StaticConfig, StaticProvider};

#[tokio::test]
async fn valid_assertion_yields_principal_with_config_attributes() {
    let f = fixture();
    let before = now();
    let credential = f.alice.assertion(&id("alice"), AUD, Duration::from_secs(30)).unwrap();
    let p = f.provider.authenticate(&credential).await.unwrap();
    assert_eq!(p.agent_id, id("alice"));
    assert_eq!(p.subject, "alice");
    assert_eq!(p.issuer, "static");
    assert_eq!(p.auth_method, AuthMethod::AgentKey);
    assert_eq!(p.segment.as_deref(), Some("research"));
    assert_eq!(p.roles, ["reader", "summarizer"]);
    assert_eq!(p.groups, ["team-a"]);
    assert_eq!(p.tenant.as_deref(), Some("acme"));
    assert!(p.delegation.is_empty());
    // expires_at is the assertion's exp: now + 30 s.
    let exp = p.expires_at.unix_timestamp();
    assert!((before + 30..=now() + 30).contains(&exp), "exp {exp}");
    assert!((before..=now()).contains(&p.authenticated_at.unix_timestamp()));

    let bob = f.provider.authenticate(&assertion(&f.bob, "bob")).await.unwrap();
    assert_eq!(bob.agent_id, id("bob"));
    assert_eq!(bob.segment.as_deref(), Some("finance"));
    assert!(bob.roles.is_empty() && bob.tenant.is_none());
}

#[tokio::test]
async fn provider_reports_name_kinds_and_segments() {
    let f = fixture();
    assert_eq!(f.provider.name(), "static");
    assert!(f.provider.accepts(&assertion(&f.alice, "alice")));
    assert!(f.provider.accepts(&Credential::password("writer", "x")));
    assert!(!f.provider.accepts(&Credential::bearer("token")));
    let err = f.provider.authenticate(&Credential::bearer("token")).await.unwrap_err();
    assert_eq!(err, zta_core::AuthError::Unsupported("bearer"));

    assert_eq!(f.provider.segment_of(&id("alice")).await.as_deref(), Some("research"));
    assert_eq!(f.provider.segment_of(&id("writer")).await.as_deref(), Some("content"));
    assert_eq!(f.provider.segment_of(&id("nobody")).await, None);
}

#[tokio::test]
async fn key_from_file_and_yaml_config_work() {
    let key = AgentKey::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailer.pub.pem");
    std::fs::write(&path, key.public_key_pem()).unwrap();
    let yaml = format!(
        "audience: {AUD}\n\
         agents:\n\
         \x20 - id: mailer\n\
         \x20   segment: outbound\n\
         \x20   roles: [sender]\n\
         \x20   public_key_file: {}\n\
         lockout: {{ max_failures: 3, window: 1m }}\n\
         assertion: {{ max_lifetime: 30s, leeway: 2s }}\n",
        path.display()
    );
    let config: StaticConfig = zta_source::from_str(&yaml, zta_source::Format::Yaml).unwrap();
    assert_eq!(config.lockout.max_failures, 3);
    assert_eq!(config.lockout.window, Duration::from_secs(60));
    assert_eq!(config.assertion.max_lifetime, Duration::from_secs(30));
    let provider =
        StaticProvider::new(config, Arc::new(MemoryStateStore::new()) as Arc<dyn StateStore>).unwrap();
    let p = provider.authenticate(&assertion(&key, "mailer")).await.unwrap();
    assert_eq!(p.segment.as_deref(), Some("outbound"));
    assert_eq!(p.roles, ["sender"]);
}

#[tokio::test]
async fn key_pem_round_trip_still_verifies() {
    let f = fixture();
    let reloaded =
        AgentKey::from_pkcs8_pem(secrecy::ExposeSecret::expose_secret(&f.alice.to_pkcs8_pem())).unwrap();
    assert_eq!(reloaded.public_key_pem(), f.alice.public_key_pem());
    f.provider.authenticate(&assertion(&reloaded, "alice")).await.unwrap();
}

#[test]
fn rfc8410_example_key_loads() {
    // RFC 8410 section 10.3 private key and section 10.1 public key (the same key pair).
    let private = "-----BEGIN PRIVATE KEY-----\n\
                   MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
                   -----END PRIVATE KEY-----\n";
    let key = AgentKey::from_pkcs8_pem(private).unwrap();
    assert_eq!(
        key.public_key_pem(),
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"
    );
    let shown = format!("{key:?}");
    assert!(!shown.contains("1O5y2/kTWEr"), "{shown}");
}
