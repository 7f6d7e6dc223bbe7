//! Invalid configurations are refused at start-up with messages that name the agent and field.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version, password_hash::SaltString};
use common::*;
use zta_core::{MemoryStateStore, StateStore};
use zta_identity_static::{AgentEntry, AgentKey, Error, StaticConfig, StaticProvider};

fn build(config: StaticConfig) -> Result<StaticProvider, Error> {
    StaticProvider::new(config, Arc::new(MemoryStateStore::new()) as Arc<dyn StateStore>)
}

fn error_of(config: StaticConfig) -> String {
    build(config).unwrap_err().to_string()
}

fn with_hash(hash: &str) -> String {
    error_of(StaticConfig::new(AUD).with_agent(AgentEntry::from_secret_hash(id("hasher"), hash)))
}

fn with_key(pem: &str) -> String {
    error_of(StaticConfig::new(AUD).with_agent(AgentEntry::from_public_key(id("keyed"), pem)))
}

fn argon2_hash(alg: Algorithm, params: Params) -> String {
    let salt = SaltString::encode_b64(&[42u8; 16]).unwrap();
    Argon2::new(alg, Version::V0x13, params).hash_password(b"secret", &salt).unwrap().to_string()
}

#[test]
fn duplicate_agent_ids_are_refused() {
    let key = AgentKey::generate().unwrap();
    let msg = error_of(
        StaticConfig::new(AUD)
            .with_agent(AgentEntry::from_public_key(id("twin"), key.public_key_pem()))
            .with_agent(AgentEntry::from_secret_hash(id("twin"), secret_hash())),
    );
    assert_eq!(msg, "agent `twin` is declared more than once");
}

#[test]
fn agent_without_credential_is_refused() {
    let yaml = format!("audience: {AUD}\nagents:\n  - id: empty_handed\n    roles: [reader]\n");
    let config: StaticConfig = zta_source::from_str(&yaml, zta_source::Format::Yaml).unwrap();
    let msg = error_of(config);
    assert!(msg.contains("agent `empty_handed`"), "{msg}");
    assert!(msg.contains("no credential"), "{msg}");
}

#[test]
fn agent_with_two_credentials_is_refused() {
    let key = AgentKey::generate().unwrap();
    let mut entry = AgentEntry::from_public_key(id("greedy"), key.public_key_pem());
    entry.secret_hash = Some(secret_hash());
    let msg = error_of(StaticConfig::new(AUD).with_agent(entry));
    assert!(msg.contains("agent `greedy`"), "{msg}");
    assert!(msg.contains("more than one credential"), "{msg}");

    let mut entry = AgentEntry::from_public_key(id("greedy2"), key.public_key_pem());
    entry.public_key_file = Some("/nonexistent.pem".into());
    let msg = error_of(StaticConfig::new(AUD).with_agent(entry));
    assert!(msg.contains("agent `greedy2`") && msg.contains("more than one credential"), "{msg}");
}

#[test]
fn non_argon2id_hashes_are_refused() {
    let cases = [
        ("5f4dcc3b5aa765d61d8327deb882cf99", "md5 hex"),
        ("$1$saltsalt$qjXMvbEw8oaL.CzflDugX/", "md5-crypt"),
        ("$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", "bcrypt"),
        (
            "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
            "scrypt",
        ),
    ];
    for (hash, what) in cases {
        let msg = with_hash(hash);
        assert!(msg.starts_with("agent `hasher`, field `secret_hash`:"), "{what}: {msg}");
    }
    let msg = with_hash(&argon2_hash(Algorithm::Argon2i, Params::default()));
    assert!(msg.contains("agent `hasher`") && msg.contains("`argon2i`"), "{msg}");
    let msg = with_hash(&argon2_hash(Algorithm::Argon2d, Params::default()));
    assert!(msg.contains("agent `hasher`") && msg.contains("`argon2d`"), "{msg}");
}

#[test]
fn weak_argon2id_params_are_refused_and_the_minimum_is_allowed() {
    for (m, t, p) in [(4096, 3, 1), (19_455, 2, 1), (19_456, 1, 1), (65_536, 1, 4)] {
        let msg = with_hash(&argon2_hash(Algorithm::Argon2id, Params::new(m, t, p, None).unwrap()));
        assert!(msg.contains("agent `hasher`") && msg.contains("too weak"), "m={m},t={t},p={p}: {msg}");
    }
    let minimum = argon2_hash(Algorithm::Argon2id, Params::new(19_456, 2, 1, None).unwrap());
    build(StaticConfig::new(AUD).with_agent(AgentEntry::from_secret_hash(id("hasher"), minimum))).unwrap();
    // hash_secret's output is accepted as is.
    build(StaticConfig::new(AUD).with_agent(AgentEntry::from_secret_hash(id("hasher"), secret_hash())))
        .unwrap();
}

#[test]
fn bad_public_keys_are_refused() {
    let key = AgentKey::generate().unwrap();
    let public = key.public_key_pem();
    let ec = {
        use aws_lc_rs::{
            encoding::AsDer,
            signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair},
        };
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let der = pair.public_key().as_der().unwrap();
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der.as_ref());
        format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
    };
    let truncated = public.replacen("MCow", "MCo", 1);
    let private = secrecy::ExposeSecret::expose_secret(&key.to_pkcs8_pem()).to_owned();
    for (pem, what) in [
        ("not a key".to_owned(), "garbage"),
        (String::new(), "empty"),
        (truncated, "truncated"),
        (ec, "P-256 key"),
        (private, "private key"),
        (public.replace("PUBLIC KEY", "CERTIFICATE"), "wrong label"),
    ] {
        let msg = with_key(&pem);
        assert!(msg.starts_with("agent `keyed`, field `public_key`:"), "{what}: {msg}");
    }
}

#[test]
fn unreadable_key_file_is_refused() {
    let msg = error_of(
        StaticConfig::new(AUD)
            .with_agent(AgentEntry::from_public_key_file(id("filed"), "/nonexistent/filed.pem")),
    );
    assert!(msg.contains("agent `filed`, field `public_key_file`"), "{msg}");
    assert!(msg.contains("/nonexistent/filed.pem"), "{msg}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.pem");
    std::fs::write(&path, "garbage").unwrap();
    let msg =
        error_of(StaticConfig::new(AUD).with_agent(AgentEntry::from_public_key_file(id("filed"), &path)));
    assert!(msg.contains("agent `filed`, field `public_key_file`"), "{msg}");
}

#[test]
fn unknown_fields_and_bad_values_fail_to_parse() {
    let parse = |yaml: &str| {
        zta_source::from_str::<StaticConfig>(yaml, zta_source::Format::Yaml).unwrap_err().to_string()
    };
    let msg = parse(&format!("audience: {AUD}\nagents:\n  - id: a\n    public_keys: x\n"));
    assert!(msg.contains("unknown field `public_keys`"), "{msg}");
    let msg = parse(&format!("audience: {AUD}\nissuer: x\n"));
    assert!(msg.contains("unknown field `issuer`"), "{msg}");
    let msg = parse(&format!("audience: {AUD}\nlockout: {{ window: 5x }}\n"));
    assert!(msg.contains("invalid duration `5x`"), "{msg}");
    let msg = parse(&format!("audience: {AUD}\nassertion: {{ max_lifetime: 60 }}\n"));
    assert!(msg.contains("invalid"), "{msg}");
    let msg = parse(&format!("audience: {AUD}\nagents:\n  - id: 'bad id'\n    secret_hash: x\n"));
    assert!(msg.contains("agent id"), "{msg}");
    let msg = parse("agents: []\n");
    assert!(msg.contains("missing field `audience`"), "{msg}");
}

#[test]
fn limits_are_checked() {
    let mut c = StaticConfig::new(AUD);
    c.lockout.max_failures = 0;
    assert!(error_of(c).contains("`lockout.max_failures`"));
    let mut c = StaticConfig::new(AUD);
    c.lockout.window = std::time::Duration::ZERO;
    assert!(error_of(c).contains("`lockout.window`"));
    let mut c = StaticConfig::new(AUD);
    c.assertion.max_lifetime = std::time::Duration::from_secs(7200);
    assert!(error_of(c).contains("`assertion.max_lifetime`"));
    let mut c = StaticConfig::new(AUD);
    c.assertion.leeway = std::time::Duration::from_secs(3600);
    assert!(error_of(c).contains("`assertion.leeway`"));
    let mut c = StaticConfig::new(AUD);
    c.hashing.max_concurrent = 0;
    assert!(error_of(c).contains("`hashing.max_concurrent`"));
    let mut c = StaticConfig::new(AUD);
    c.hashing.max_wait = std::time::Duration::from_secs(3600);
    assert!(error_of(c).contains("`hashing.max_wait`"));
    assert!(error_of(StaticConfig::new("")).contains("`audience`"));
}

#[test]
fn empty_attributes_are_refused() {
    let msg = error_of(
        StaticConfig::new(AUD)
            .with_agent(AgentEntry::from_secret_hash(id("blank"), secret_hash()).with_roles([""])),
    );
    assert_eq!(msg, "agent `blank`, field `roles`: entries must not be empty");
}

#[test]
fn defaults_are_the_documented_ones() {
    let c: StaticConfig =
        zta_source::from_str(&format!("audience: {AUD}\n"), zta_source::Format::Yaml).unwrap();
    assert_eq!(c.lockout.max_failures, 5);
    assert_eq!(c.lockout.window, std::time::Duration::from_secs(300));
    assert_eq!(c.assertion.max_lifetime, std::time::Duration::from_secs(60));
    assert_eq!(c.assertion.leeway, std::time::Duration::from_secs(5));
    assert!(c.agents.is_empty());
    // A provider with no agents is allowed, and its Debug output shows no secrets.
    let provider = build(c).unwrap();
    assert!(format!("{provider:?}").contains("StaticProvider"));
}
