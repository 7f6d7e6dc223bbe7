//! Verify cost of an EdDSA session token: bare `jsonwebtoken::decode` (the reference), then
//! `TokenService::verify` cold (cache disabled: full decode plus revocation checks) and warm
//! (cached: time and revocation checks only).
//!
//! `cargo bench -p zta-token --bench verify` (add `-- --quick` for a fast run).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::{hint::black_box, sync::Arc};

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{DecodingKey, Validation};
use secrecy::ExposeSecret;
use time::OffsetDateTime;
use zta_core::{AgentId, AuthMethod, MemoryStateStore, Principal, TokenAuthority};
use zta_token::{Algorithm, SigningKey, TokenConfig, TokenService};

fn service(key: &SigningKey, cache_capacity: usize) -> TokenService {
    let mut config = TokenConfig::new("https://zta.bench", "zta-agents");
    config.cache_capacity = cache_capacity;
    TokenService::new(config, key.clone(), Arc::new(MemoryStateStore::new())).unwrap()
}

fn principal() -> Principal {
    let now = OffsetDateTime::now_utc();
    Principal::new(
        AgentId::new("research_bot").unwrap(),
        "static",
        AuthMethod::AgentKey,
        now,
        now + time::Duration::hours(1),
    )
    .with_roles(["researcher", "reader"])
    .with_groups(["lab"])
    .with_segment("research")
    .with_delegation(["user:alice"])
}

fn bench_verify(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
    let cold = service(&key, 0);
    let warm = service(&key, 1024);
    let tokens = rt.block_on(warm.issue(&principal())).unwrap();
    let token = tokens.access_token;
    rt.block_on(warm.verify(&token)).unwrap().live().unwrap();

    let decoding = DecodingKey::from_ed_pem(key.public_key_pem().as_bytes()).unwrap();
    let mut validation = Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&["https://zta.bench"]);
    validation.set_audience(&["zta-agents"]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    validation.validate_nbf = true;

    let mut group = c.benchmark_group("session_token_verify");
    group.bench_function("jsonwebtoken_decode", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<serde_json::Value>(
                black_box(token.expose_secret()),
                &decoding,
                &validation,
            )
            .unwrap()
        })
    });
    group.bench_function("service_verify_cold", |b| {
        b.to_async(&rt).iter(|| async { cold.verify(black_box(&token)).await.unwrap() })
    });
    group.bench_function("service_verify_warm", |b| {
        b.to_async(&rt).iter(|| async { warm.verify(black_box(&token)).await.unwrap() })
    });
    group.finish();
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
