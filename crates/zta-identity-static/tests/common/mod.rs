//! Shared fixtures for the integration tests: keys, configs, and hand-made assertions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(dead_code, unreachable_pub)]

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{EncodingKey, Header};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use zta_core::{AgentId, AuthError, Credential, MemoryStateStore, StateStore};
use zta_identity_static::{AgentEntry, AgentKey, StaticConfig, StaticProvider, hash_secret};

pub const AUD: &str = "https://zta.test/issuer";
pub const SECRET: &str = "correct horse battery staple";

pub fn id(s: &str) -> AgentId {
    AgentId::new(s).unwrap()
}

/// Two key agents (`alice` in segment `research`, `bob` in `finance`) and one secret agent
/// (`writer`), with the default limits.
pub struct Fixture {
    pub alice: AgentKey,
    pub bob: AgentKey,
    pub state: Arc<MemoryStateStore>,
    pub provider: StaticProvider,
}

pub fn config(alice: &AgentKey, bob: &AgentKey, secret_hash: &str) -> StaticConfig {
    StaticConfig::new(AUD)
        .with_agent(
            AgentEntry::from_public_key(id("alice"), alice.public_key_pem())
                .with_segment("research")
                .with_roles(["reader", "summarizer"])
                .with_groups(["team-a"])
                .with_tenant("acme"),
        )
        .with_agent(AgentEntry::from_public_key(id("bob"), bob.public_key_pem()).with_segment("finance"))
        .with_agent(
            AgentEntry::from_secret_hash(id("writer"), secret_hash)
                .with_segment("content")
                .with_roles(["writer"]),
        )
}

/// A hash of [`SECRET`], made once per test binary (argon2 is slow in debug builds).
pub fn secret_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_secret(SECRET).unwrap()).clone()
}

pub fn fixture() -> Fixture {
    fixture_with(|c| c)
}

pub fn fixture_with(edit: impl FnOnce(StaticConfig) -> StaticConfig) -> Fixture {
    let alice = AgentKey::generate().unwrap();
    let bob = AgentKey::generate().unwrap();
    let state = Arc::new(MemoryStateStore::new());
    let config = edit(config(&alice, &bob, &secret_hash()));
    let provider = StaticProvider::new(config, state.clone() as Arc<dyn StateStore>).unwrap();
    Fixture { alice, bob, state, provider }
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Standard claims for `agent`, valid for 30 s from now.
pub fn claims(agent: &str) -> Value {
    let now = now();
    json!({
        "iss": agent, "sub": agent, "aud": AUD,
        "iat": now, "exp": now + 30,
        "jti": uuid_like(),
    })
}

pub fn uuid_like() -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs `claims` with `key` under `header` (EdDSA unless the header says otherwise).
pub fn sign(key: &AgentKey, header: &Header, claims: &Value) -> Credential {
    let pem = key.to_pkcs8_pem();
    let signing = EncodingKey::from_ed_pem(pem.expose_secret().as_bytes()).unwrap();
    Credential::agent_assertion(jsonwebtoken::encode(header, claims, &signing).unwrap())
}

pub fn eddsa() -> Header {
    Header::new(jsonwebtoken::Algorithm::EdDSA)
}

/// Builds a compact JWT from raw JSON header and claims plus a signature string, with no
/// signing library involved.
pub fn raw_jwt(header: &Value, claims: &Value, signature: &str) -> Credential {
    let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap());
    let c = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    Credential::agent_assertion(format!("{h}.{c}.{signature}"))
}

/// The JWT text of an assertion credential.
pub fn jwt_of(credential: &Credential) -> String {
    match credential {
        Credential::AgentAssertion(jwt) => jwt.expose_secret().to_owned(),
        other => panic!("not an assertion: {other:?}"),
    }
}

pub fn assertion(key: &AgentKey, agent: &str) -> Credential {
    key.assertion(&id(agent), AUD, Duration::from_secs(30)).unwrap()
}

pub fn is_invalid(err: &AuthError) -> bool {
    matches!(err, AuthError::Invalid { .. })
}
