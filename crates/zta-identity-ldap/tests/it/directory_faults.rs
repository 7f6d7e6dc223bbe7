//! Transport and outages: StartTLS and ldaps, a wrong CA, plain ldap, failover, a server that
//! is down or restarts.

use serde_json::json;
use zta_core::AuthError;

use crate::support::*;

#[tokio::test]
async fn ldaps_works_and_a_wrong_ca_is_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let mut ldaps = config(&scratch);
    ldaps["tls"] = json!("ldaps");
    ldaps["urls"] = json!(["ldaps://127.0.0.1:3636"]);
    login(&provider(ldaps.clone()), "research_bot", "research-secret").await.unwrap();

    for mut wrong in [config(&scratch), ldaps] {
        wrong["ca_file"] = json!(dir().join("wrong-ca.pem"));
        let refused = login(&provider(wrong), "research_bot", "research-secret").await.unwrap_err();
        assert!(matches!(refused, AuthError::Unavailable { .. }), "{refused:?}");
    }
}

#[tokio::test]
async fn plain_ldap_is_refused_unless_allowed() {
    let scratch = tempfile::tempdir().unwrap();
    let mut plain = config(&scratch);
    plain["tls"] = json!("none");
    let error =
        provider_with(plain.clone(), std::sync::Arc::new(zta_core::MemoryStateStore::new())).unwrap_err();
    assert_eq!(error.field, "tls");
    assert!(error.to_string().contains("allow_plaintext: true"), "{error}");
    plain["allow_plaintext"] = json!(true);
    login(&provider(plain), "research_bot", "research-secret").await.unwrap();

    let mut mismatched = config(&scratch);
    mismatched["urls"] = json!(["ldaps://127.0.0.1:3636"]);
    let error =
        provider_with(mismatched, std::sync::Arc::new(zta_core::MemoryStateStore::new())).unwrap_err();
    assert_eq!(error.field, "urls");
}

#[tokio::test]
async fn a_server_that_is_down_denies_and_the_next_url_takes_over() {
    let scratch = tempfile::tempdir().unwrap();
    let mut down = config(&scratch);
    down["urls"] = json!(["ldap://127.0.0.1:9"]);
    let refused = login(&provider(down.clone()), "research_bot", "research-secret").await.unwrap_err();
    match refused {
        AuthError::Unavailable { detail } => assert!(detail.contains("127.0.0.1:9"), "{detail}"),
        other => panic!("{other:?}"),
    }
    down["urls"] = json!(["ldap://127.0.0.1:9", "ldap://127.0.0.1:3390"]);
    login(&provider(down), "research_bot", "research-secret").await.unwrap();
}

#[tokio::test]
async fn the_pool_recovers_when_the_server_restarts() {
    // Instance B, so the other tests' instance A stays up.
    let scratch = tempfile::tempdir().unwrap();
    let mut config = config(&scratch);
    config["urls"] = json!(["ldap://127.0.0.1:3390"]);
    let provider = provider(config);
    login(&provider, "research_bot", "research-secret").await.unwrap();
    let script = |name: &str| {
        let status = std::process::Command::new("sh").arg(dir().join("b").join(name)).status().unwrap();
        assert!(status.success(), "{name}: {status}");
    };
    script("stop.sh");
    let refused = login(&provider, "research_bot", "research-secret").await.unwrap_err();
    assert!(matches!(refused, AuthError::Unavailable { .. }), "{refused:?}");
    script("restart.sh");
    login(&provider, "research_bot", "research-secret").await.unwrap();
}
