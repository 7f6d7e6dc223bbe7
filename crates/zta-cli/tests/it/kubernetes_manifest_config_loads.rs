//! The configuration and policy of `deploy/kubernetes/zta.yaml` load: `zta check` builds
//! everything the ConfigMap describes (static identities, the signing key, the native policy
//! watched, the Redis state store from `ZTA_REDIS_URL`, the NATS audit sink) against the test
//! machine's Redis and NATS, with the pod's mount paths and service names mapped to a temporary
//! directory and loopback.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::process::Command;

use crate::common::zta;

const MANIFEST: &str = include_str!("../../../../deploy/kubernetes/zta.yaml");

/// The literal block `  NAME: |` of a ConfigMap's `data`, without its indentation.
fn data_block(name: &str) -> String {
    let header = format!("  {name}: |\n");
    let start =
        MANIFEST.find(&header).unwrap_or_else(|| panic!("no `{name}` in the manifest")) + header.len();
    let block: Vec<&str> =
        MANIFEST[start..].lines().take_while(|l| l.starts_with("    ") || l.is_empty()).collect();
    block.iter().map(|l| l.strip_prefix("    ").unwrap_or(l)).collect::<Vec<_>>().join("\n")
}

#[test]
fn the_kubernetes_configmap_builds_against_real_redis_and_nats() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = zta(
        &[
            "keygen",
            "--out",
            "keys",
            "--agent",
            "research_bot",
            "--agent",
            "analysis_bot",
            "--agent",
            "writer_bot",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}{err}");
    let nats = std::env::var("ZTA_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let redis = std::env::var("ZTA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let config = data_block("zta.yaml")
        .replace("/etc/zta/agents/", "keys/")
        .replace("/etc/zta/secrets/", "keys/")
        .replace("/etc/zta/policy/", "")
        .replace("nats://nats:4222", &nats)
        .replace("0.0.0.0:8180", "127.0.0.1:0");
    std::fs::write(dir.path().join("zta.yaml"), config).unwrap();
    std::fs::write(dir.path().join("crew.yaml"), data_block("crew.yaml")).unwrap();

    let (code, out, err) = zta(&["policy", "check", "crew.yaml"], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let checked = Command::new(env!("CARGO_BIN_EXE_zta"))
        .args(["check", "--config", "zta.yaml"])
        .env("ZTA_REDIS_URL", &redis)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let (out, err) = (String::from_utf8_lossy(&checked.stdout), String::from_utf8_lossy(&checked.stderr));
    assert!(checked.status.success(), "zta check: {}\n{out}{err}", checked.status);
}
