//! Entra ID access tokens: the verifier against the bare jsonwebtoken verification of the same
//! token, in the same run, and the guard's warm check with such a token.
//!
//! The issuer is a loopback responder in this process serving an Entra-shaped discovery
//! document and key set (one RSA-2048 key, made at start); the token is an Entra v2 app token
//! signed with RS256.
//!
//! * `ref_bare_jsonwebtoken` — `jsonwebtoken::decode` with the key and a validation built
//!   once (RS256, `exp nbf iss aud sub` required), into the claims the verifier reads.
//! * `verify_keys_cached` — `OidcProvider::authenticate` with the verified-token cache off:
//!   the full verification (header, issuer routing, key lookup, signature, claims, Entra rules,
//!   principal) with the keys already fetched.
//! * `verify_warm` — the same token again with the cache on (times, key and revocation still
//!   checked).
//! * `guard_check_warm` — `Guard::check` of a tool call with that token (cache on), the crew
//!   policy and a JSON Lines audit sink that drains concurrently and is flushed after each
//!   sample (untimed), as `guard/check_warm` measures session tokens.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::{collections::BTreeMap, sync::Arc, time::Instant};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zta::{
    Action, Credential, Guard, IdentityProvider, MemoryStateStore, Request,
    audit::jsonl::{JsonlConfig, JsonlSink},
    identity::oidc::{EntraConfig, OidcProvider},
};

const CREW_POLICY: &str = include_str!("../../../examples/policies/crew.yaml");
const TENANT: &str = "0d5f1f3e-2d7c-4b8e-9f6a-3c1d2e4f5a6b";
const API: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
const APP: &str = "2f0c9d1e-5b7a-4c3d-8e9f-0a1b2c3d4e5f";

/// The claims `ref_bare_jsonwebtoken` decodes: what the verifier reads from an Entra token.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct EntraClaims {
    aud: String,
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    tid: String,
    oid: String,
    sub: String,
    azp: String,
    roles: Vec<String>,
    idtyp: String,
    ver: String,
}

/// Serves the documents `make(base)` returns (path -> JSON) over HTTP/1.1 on a loopback port;
/// returns the base URL.
async fn serve(make: impl FnOnce(&str) -> BTreeMap<String, String>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let documents = Arc::new(make(&base));
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let documents = documents.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let (status, body) = match documents.get(path) {
                    Some(body) => ("200 OK", body.clone()),
                    None => ("404 Not Found", "{}".to_owned()),
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    base
}

fn entra_config(base: &str, cache_capacity: usize) -> EntraConfig {
    serde_json::from_value(json!({
        "authority": base, "tenant": TENANT, "audiences": [API], "required_roles": ["Agent.Invoke"],
        "agents": {APP: "research_bot"}, "segment": "research", "cache_capacity": cache_capacity,
    }))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();

    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let pkcs8 = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'_>>::as_der(&pair).unwrap();
    let pem = zta_crypto::pem::encode("PRIVATE KEY", pkcs8.as_ref());
    let public = aws_lc_rs::signature::KeyPair::public_key(&pair);
    let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
    let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());

    let base = rt.block_on(serve(|base| {
        let issuer = format!("{base}/{TENANT}/v2.0");
        let keys = json!({"keys": [{"kty": "RSA", "use": "sig", "kid": "bench-key", "n": n, "e": e, "issuer": issuer}]});
        BTreeMap::from([
            (
                format!("/{TENANT}/v2.0/.well-known/openid-configuration"),
                json!({"issuer": issuer, "jwks_uri": format!("{base}/{TENANT}/discovery/v2.0/keys")}).to_string(),
            ),
            (format!("/{TENANT}/discovery/v2.0/keys"), keys.to_string()),
        ])
    }));
    let issuer = format!("{base}/{TENANT}/v2.0");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims: Value = json!({
        "aud": API, "iss": issuer, "iat": now, "nbf": now, "exp": now + 3600, "tid": TENANT,
        "oid": "9a8b7c6d-1234-4e5f-8a9b-0c1d2e3f4a5b", "sub": "9a8b7c6d-1234-4e5f-8a9b-0c1d2e3f4a5b",
        "azp": APP, "azpacr": "1", "roles": ["Agent.Invoke"], "idtyp": "app", "ver": "2.0",
        "uti": "AbCdEfGhIjKlMnOpQrStUv", "rh": "0.AAAAbench",
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("bench-key".to_owned());
    let encoding = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();

    let decoding = jsonwebtoken::DecodingKey::from_rsa_components(&n, &e).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    validation.set_audience(&[API]);
    validation.set_issuer(&[issuer.as_str()]);

    let state = || -> Arc<dyn zta::StateStore> { Arc::new(MemoryStateStore::new()) };
    let uncached = rt.block_on(OidcProvider::entra(entra_config(&base, 0), state())).unwrap();
    let cached = rt.block_on(OidcProvider::entra(entra_config(&base, 10_000), state())).unwrap();
    let credential = Credential::bearer(token.clone());
    assert!(rt.block_on(uncached.authenticate(&credential)).is_ok(), "the bench token must verify");

    let dir = tempfile::tempdir().unwrap();
    let mut audit = JsonlConfig::new(dir.path());
    audit.queue_capacity = 1 << 18;
    let sink = Arc::new(JsonlSink::open(audit).unwrap());
    let policy = zta::policy::PolicySet::from_yaml(CREW_POLICY).unwrap();
    let provider = rt.block_on(OidcProvider::entra(entra_config(&base, 10_000), state())).unwrap();
    let guard =
        Guard::builder(Arc::new(policy), sink.clone()).identity_provider(Arc::new(provider)).build().unwrap();
    let request = || Request::new(Action::tool_call("web_search"));
    let _permit =
        rt.block_on(guard.check(&credential, request())).expect("the bench request must be allowed");

    let mut group = c.benchmark_group("entra_token_verify");
    group.bench_function("ref_bare_jsonwebtoken", |b| {
        b.iter(|| jsonwebtoken::decode::<EntraClaims>(&token, &decoding, &validation).unwrap())
    });
    group.bench_function("verify_keys_cached", |b| {
        b.iter(|| rt.block_on(uncached.authenticate(&credential)).unwrap())
    });
    group
        .bench_function("verify_warm", |b| b.iter(|| rt.block_on(cached.authenticate(&credential)).unwrap()));
    group.bench_function("guard_check_warm", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                let _permit = rt.block_on(guard.check(&credential, request())).unwrap();
            }
            let elapsed = started.elapsed();
            rt.block_on(zta::AuditSink::flush(&*sink)).unwrap();
            elapsed
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
