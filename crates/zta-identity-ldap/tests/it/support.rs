//! The local directory (`cargo xtask services`): instance A on 3389 (StartTLS) / 3636 (ldaps),
//! instance B on 3390 / 3637, with the crew of `xtask/ldap/crew.ldif`.

use std::{path::PathBuf, sync::Arc};

use serde_json::{Value, json};
use zta_core::{AuthError, Credential, IdentityProvider, MemoryStateStore, Principal, StateStore};
use zta_identity_ldap::{LdapConfig, LdapProvider};

pub(crate) const GATEWAY_SECRET: &str = "gateway-test-secret";

/// Where the services keep the CA, the configs and the stop/restart scripts.
pub(crate) fn dir() -> PathBuf {
    let dir = std::env::var_os("ZTA_TEST_LDAP_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/zta-services/ldap"),
        PathBuf::from,
    );
    assert!(
        dir.join("ca.pem").exists(),
        "no test directory at {} (ZTA_TEST_LDAP_DIR); set it up with `cargo xtask services`",
        dir.display()
    );
    dir
}

/// A config for instance A over StartTLS, the service password in a file under `scratch`.
pub(crate) fn config(scratch: &tempfile::TempDir) -> Value {
    let secret = scratch.path().join("bind.secret");
    std::fs::write(&secret, format!("{GATEWAY_SECRET}\n")).unwrap();
    json!({
        "urls": ["ldap://127.0.0.1:3389"],
        "tls": "starttls",
        "ca_file": dir().join("ca.pem"),
        "bind_dn": "cn=zta-gateway,ou=services,dc=zta,dc=test",
        "bind_password_file": secret,
        "user_base": "ou=agents,dc=zta,dc=test",
        "roles": {
            "cn=tools-readers,ou=groups,dc=zta,dc=test": "reader",
            "cn=researchers,ou=groups,dc=zta,dc=test": "researcher",
            "cn=code-writers,ou=groups,dc=zta,dc=test": "writer",
        },
        "segments": {
            "cn=researchers,ou=groups,dc=zta,dc=test": "research",
            "cn=code-writers,ou=groups,dc=zta,dc=test": "writing",
        },
        "disabled": {"attribute": "pwdAccountLockedTime"},
        "pool": {"size": 8},
        "timeouts": {"connect": "2s", "operation": "5s"},
    })
}

pub(crate) fn provider_with(
    config: Value,
    state: Arc<dyn StateStore>,
) -> Result<LdapProvider, zta_identity_ldap::Error> {
    let config: LdapConfig = serde_json::from_value(config).expect("a valid ldap section");
    LdapProvider::new(config, state)
}

pub(crate) fn provider(config: Value) -> LdapProvider {
    provider_with(config, Arc::new(MemoryStateStore::new())).unwrap()
}

pub(crate) async fn login(
    provider: &LdapProvider,
    user: &str,
    password: &str,
) -> Result<Arc<Principal>, AuthError> {
    provider.authenticate(&Credential::password(user, password)).await
}

/// The audit detail of a refusal.
pub(crate) fn detail(result: Result<Arc<Principal>, AuthError>) -> String {
    match result {
        Ok(p) => panic!("accepted as {}", p.agent_id),
        Err(e) => e.detail().into_owned(),
    }
}
