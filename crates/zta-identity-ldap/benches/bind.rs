//! An agent's authentication over warm pooled StartTLS connections against a raw ldap3 simple
//! bind on one warm StartTLS connection, in the same run, against the local test directory
//! (`cargo xtask bench` starts it; `cargo xtask services` for a bench run by hand).
//!
//! * `ref_raw_bind` — `Ldap::simple_bind` as research_bot on one connection, again and again.
//! * `authenticate_search_then_bind` — `LdapProvider::authenticate`: the lockout check, the
//!   account as the service account's search found it (reused for `group_cache`), the agent's
//!   bind sent together with WhoAmI, the principal.
//! * `authenticate_dn_template` — the same with a DN template.
//! * `authenticate_uncached` — search-then-bind with `group_cache: 0s`: the service account's
//!   search before every bind.
//!
//! After criterion's medians it prints each one's median and p99 over 2,000 sequential runs.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing
)]

use std::{path::PathBuf, sync::Arc, time::Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ldap3::{LdapConnAsync, LdapConnSettings, StdStream};
use rustls::pki_types::pem::PemObject as _;
use zta_core::{Credential, IdentityProvider, MemoryStateStore};
use zta_identity_ldap::{LdapConfig, LdapProvider};

const DN: &str = "uid=research_bot,ou=agents,dc=zta,dc=test";

fn dir() -> PathBuf {
    let dir = std::env::var_os("ZTA_TEST_LDAP_DIR").map_or_else(
        || {
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"), PathBuf::from)
                .join("zta-services/ldap")
        },
        PathBuf::from,
    );
    assert!(
        dir.join("ca.pem").exists(),
        "no LDAP test directory at {}; run `cargo xtask services`",
        dir.display()
    );
    dir
}

fn provider(scratch: &tempfile::TempDir, dn_template: bool, cache: &str) -> LdapProvider {
    let secret = scratch.path().join("bind.secret");
    std::fs::write(&secret, "gateway-test-secret").unwrap();
    let mut config = serde_json::json!({
        "urls": ["ldap://127.0.0.1:3389"], "tls": "starttls", "ca_file": dir().join("ca.pem"),
        "bind_dn": "cn=zta-gateway,ou=services,dc=zta,dc=test", "bind_password_file": secret,
        "user_base": "ou=agents,dc=zta,dc=test",
        "roles": {"cn=tools-readers,ou=groups,dc=zta,dc=test": "reader"},
        "lockout": {"max_failures": 5, "window": "5m"}, "group_cache": cache,
    });
    if dn_template {
        config["dn_template"] = serde_json::json!("uid={username},ou=agents,dc=zta,dc=test");
    }
    let config: LdapConfig = serde_json::from_value(config).unwrap();
    LdapProvider::new(config, Arc::new(MemoryStateStore::new())).unwrap()
}

async fn raw_connection() -> ldap3::Ldap {
    let pem = std::fs::read(dir().join("ca.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let stream = std::net::TcpStream::connect("127.0.0.1:3389").unwrap();
    stream.set_nodelay(true).unwrap();
    let settings = LdapConnSettings::new()
        .set_std_stream(StdStream::Tcp(stream))
        .set_config(Arc::new(tls))
        .set_starttls(true);
    let (conn, ldap) = LdapConnAsync::with_settings(settings, "ldap://127.0.0.1:3389").await.unwrap();
    tokio::spawn(async move { conn.drive().await });
    ldap
}

fn percentiles(name: &str, mut samples: Vec<f64>) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    println!("{name}: median {:.1} µs, p99 {:.1} µs ({} runs)", at(0.5), at(0.99), samples.len());
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let search = provider(&scratch, false, "30s");
    let template = provider(&scratch, true, "30s");
    let uncached = provider(&scratch, false, "0s");
    let credential = Credential::password("research_bot", "research-secret");
    let mut raw = rt.block_on(raw_connection());
    assert_eq!(rt.block_on(raw.simple_bind(DN, "research-secret")).unwrap().rc, 0);
    rt.block_on(search.authenticate(&credential)).unwrap();
    rt.block_on(template.authenticate(&credential)).unwrap();
    rt.block_on(uncached.authenticate(&credential)).unwrap();

    let mut group = c.benchmark_group("ldap_authenticate");
    group.bench_function("ref_raw_bind", |b| {
        b.iter(|| rt.block_on(raw.simple_bind(DN, "research-secret")).unwrap())
    });
    group.bench_function("authenticate_search_then_bind", |b| {
        b.iter(|| rt.block_on(search.authenticate(&credential)).unwrap())
    });
    group.bench_function("authenticate_dn_template", |b| {
        b.iter(|| rt.block_on(template.authenticate(&credential)).unwrap())
    });
    group.bench_function("authenticate_uncached", |b| {
        b.iter(|| rt.block_on(uncached.authenticate(&credential)).unwrap())
    });
    group.finish();

    let time = |f: &mut dyn FnMut()| {
        (0..2000)
            .map(|_| {
                let started = Instant::now();
                f();
                started.elapsed().as_secs_f64() * 1e6
            })
            .collect::<Vec<_>>()
    };
    percentiles(
        "ref_raw_bind",
        time(&mut || {
            rt.block_on(raw.simple_bind(DN, "research-secret")).unwrap();
        }),
    );
    percentiles(
        "authenticate_search_then_bind",
        time(&mut || {
            rt.block_on(search.authenticate(&credential)).unwrap();
        }),
    );
    percentiles(
        "authenticate_dn_template",
        time(&mut || {
            rt.block_on(template.authenticate(&credential)).unwrap();
        }),
    );
    percentiles(
        "authenticate_uncached",
        time(&mut || {
            rt.block_on(uncached.authenticate(&credential)).unwrap();
        }),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
