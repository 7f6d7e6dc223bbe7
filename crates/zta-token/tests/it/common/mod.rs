//! Shared fixtures for the integration tests: a service on a memory store, a principal, and
//! a raw signer to craft tokens the service did not issue.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::EncodingKey;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use time::OffsetDateTime;
use zta_core::{AgentId, AuthError, AuthMethod, MemoryStateStore, Principal, SessionTokens, TokenAuthority};
use zta_token::{Algorithm, SigningKey, TokenConfig, TokenService};

pub const ISSUER: &str = "https://zta.test";
pub const AUDIENCE: &str = "zta-agents";
pub const AGENT: &str = "research_bot";

pub struct Fixture {
    pub service: TokenService,
    pub state: Arc<MemoryStateStore>,
    pub key: SigningKey,
}

pub fn config() -> TokenConfig {
    TokenConfig::new(ISSUER, AUDIENCE)
}

pub fn fixture() -> Fixture {
    fixture_with(config(), SigningKey::generate(Algorithm::EdDSA).unwrap())
}

pub fn fixture_with(config: TokenConfig, key: SigningKey) -> Fixture {
    let state = Arc::new(MemoryStateStore::new());
    let service = TokenService::new(config, key.clone(), state.clone()).unwrap();
    Fixture { service, state, key }
}

/// A settable clock starting at the real time, for expiry and rotation tests.
#[derive(Clone)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    pub fn new() -> Self {
        Self(Arc::new(AtomicI64::new(OffsetDateTime::now_utc().unix_timestamp())))
    }
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.0.load(Ordering::SeqCst)).unwrap()
    }
    pub fn install(&self, service: TokenService) -> TokenService {
        let clock = self.clone();
        service.with_clock(move || clock.now())
    }
}

pub fn principal() -> Principal {
    let now = OffsetDateTime::now_utc();
    Principal::new(
        AgentId::new(AGENT).unwrap(),
        "static",
        AuthMethod::AgentKey,
        now,
        now + time::Duration::hours(1),
    )
    .with_roles(["researcher", "reader"])
    .with_groups(["lab"])
    .with_segment("research")
    .with_tenant("tenant-1")
    .with_delegation(["user:alice", "planner"])
}

pub fn principal_for(agent: &str) -> Principal {
    let now = OffsetDateTime::now_utc();
    Principal::new(
        AgentId::new(agent).unwrap(),
        "static",
        AuthMethod::AgentKey,
        now,
        now + time::Duration::hours(1),
    )
}

pub fn secret(token: &str) -> SecretString {
    SecretString::from(token.to_owned())
}

pub fn access(tokens: &SessionTokens) -> &str {
    tokens.access_token.expose_secret()
}

pub fn refresh(tokens: &SessionTokens) -> &str {
    tokens.refresh_token.expose_secret()
}

pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

pub fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// The header the service writes for access tokens signed by `key`.
pub fn access_header(key: &SigningKey) -> Value {
    json!({ "alg": key.algorithm().as_str(), "typ": "zta-at+jwt", "kid": key.kid() })
}

/// A complete, valid set of access token claims (the same shape the service issues).
pub fn access_claims() -> Value {
    let now = now();
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": AGENT,
        "exp": now + 300, "nbf": now, "iat": now,
        "jti": format!("crafted-{}", uuid_like()), "ztt": "access", "fam": "crafted-family",
        "roles": ["researcher"], "amr": ["agent_key"], "auth_time": now, "src_iss": "static",
    })
}

fn uuid_like() -> String {
    let mut bytes = [0u8; 12];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs `header.claims` with `key` through jsonwebtoken's crypto API, whatever the header
/// says: for crafting tokens the service must refuse (or, as a control, accept).
pub fn sign_raw(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let pem = key.to_pkcs8_pem();
    let pem = pem.expose_secret().as_bytes();
    let encoding = match key.algorithm() {
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
        Algorithm::RS256 => panic!("sign_raw supports EdDSA and ES256"),
    }
    .unwrap();
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &encoding, key.algorithm_jwt()).unwrap();
    format!("{message}.{signature}")
}

trait JwtAlg {
    fn algorithm_jwt(&self) -> jsonwebtoken::Algorithm;
}

impl JwtAlg for SigningKey {
    fn algorithm_jwt(&self) -> jsonwebtoken::Algorithm {
        match self.algorithm() {
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

/// The decoded JSON of one token segment (0 = header, 1 = claims).
pub fn segment(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Asserts `result` is `AuthError::Invalid` with a detail containing `needle`.
#[track_caller]
pub fn assert_invalid<T: std::fmt::Debug>(result: Result<T, AuthError>, needle: &str) {
    match result {
        Err(AuthError::Invalid { detail }) => {
            assert!(detail.contains(needle), "detail {detail:?} does not mention {needle:?}")
        }
        other => panic!("expected Invalid mentioning {needle:?}, got {other:?}"),
    }
}

/// The principal of a verified access token, refused as the guard refuses it when its agent is
/// suspended.
pub async fn verify(service: &TokenService, token: &SecretString) -> Result<Arc<Principal>, AuthError> {
    service.verify(token).await?.live().map_err(|(e, _)| e)
}
