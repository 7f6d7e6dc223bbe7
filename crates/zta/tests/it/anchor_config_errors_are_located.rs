//! A `jsonl` sink's `anchor:` naming a store (`postgres:` or `nats:`): each mistake is refused
//! when the config is read or built, at the line and column of the setting, saying what to
//! change. No server is contacted for any of them.
#![cfg(all(
    feature = "audit-postgres",
    feature = "audit-nats",
    feature = "identity-static",
    feature = "policy-native",
    feature = "audit-jsonl"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use zta::{Config, ConfigError};

use crate::config_loads_and_refuses_bad_files::{GOOD, setup};

/// The error of building [`GOOD`] with `audit` as its audit section.
async fn build_error(audit: &str) -> ConfigError {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let (private, _) = zta::audit::jsonl::generate_checkpoint_key().unwrap();
    std::fs::write(dir.path().join("checkpoint.pem"), private.as_bytes()).unwrap();
    let head = GOOD.split("audit:").next().unwrap();
    std::fs::write(dir.path().join("zta.yaml"), format!("{head}{audit}")).unwrap();
    match Config::from_file(dir.path().join("zta.yaml")) {
        Err(e) => e,
        Ok(config) => match config.build().await {
            Err(e) => e,
            Ok(_) => panic!("built: {audit}"),
        },
    }
}

fn at(err: &ConfigError) -> (usize, usize) {
    err.position.map(|p| (p.line, p.column)).unwrap_or_else(|| panic!("no position: {err}"))
}

/// The line of [`GOOD`] where its audit section starts.
fn audit_line() -> usize {
    GOOD.lines().position(|l| l == "audit:").unwrap() + 1
}

#[tokio::test]
async fn a_store_anchor_without_a_log_id_is_refused_at_the_anchor() {
    let err = build_error(
        "audit:\n  type: jsonl\n  dir: audit\n  checkpoint_key_file: checkpoint.pem\n  anchor:\n    postgres: {url: \"postgres://zta@127.0.0.1:1/zta\"}\n",
    )
    .await;
    assert_eq!(at(&err), (audit_line() + 4, 3), "{err}");
    assert!(err.message.contains("needs a `log_id`"), "{err}");
}

#[tokio::test]
async fn a_store_anchor_without_a_checkpoint_key_is_refused() {
    let err = build_error(
        "audit:\n  type: jsonl\n  dir: audit\n  anchor: {nats: {url: \"nats://127.0.0.1:1\"}, log_id: a}\n",
    )
    .await;
    assert_eq!(at(&err), (audit_line() + 3, 3), "{err}");
    assert!(err.message.contains("needs `checkpoint_key_file`"), "{err}");
}

#[tokio::test]
async fn two_stores_or_a_store_and_a_file_are_refused() {
    let err = build_error(
        "audit:\n  type: jsonl\n  dir: audit\n  checkpoint_key_file: checkpoint.pem\n  anchor:\n    log_id: a\n    postgres: {url_env: X}\n    nats: {url: \"nats://127.0.0.1:1\"}\n",
    )
    .await;
    assert_eq!(at(&err), (audit_line() + 7, 5), "at `nats`: {err}");
    assert!(err.message.contains("not several"), "{err}");
    let err = build_error(
        "audit:\n  type: jsonl\n  dir: audit\n  checkpoint_key_file: checkpoint.pem\n  anchor:\n    log_id: a\n    file: anchor.jsonl\n    postgres: {url_env: X}\n",
    )
    .await;
    assert_eq!(at(&err), (audit_line() + 4, 3), "{err}");
    assert!(err.message.contains("not several"), "{err}");
}

#[tokio::test]
async fn a_bad_store_setting_is_found_in_the_store() {
    let err = build_error(
        "audit:\n  type: jsonl\n  dir: audit\n  checkpoint_key_file: checkpoint.pem\n  anchor:\n    log_id: a\n    postgres: {url_env: X, url: \"postgres://zta@h/zta\"}\n",
    )
    .await;
    assert_eq!(at(&err), (audit_line() + 6, 5), "{err}");
    assert!(err.message.contains("exactly one of `url` and `url_env`"), "{err}");
    let err = build_error(
        "audit:\n  type: jsonl\n  dir: audit\n  checkpoint_key_file: checkpoint.pem\n  anchor:\n    log_id: a\n    nats:\n      url: \"nats://127.0.0.1:1\"\n      streem: S\n",
    )
    .await;
    assert_eq!(at(&err), (audit_line() + 8, 7), "{err}");
    assert!(err.message.starts_with("unknown field `streem`"), "{err}");
    let err = build_error(
        "audit:\n  type: jsonl\n  dir: audit\n  checkpoint_key_file: checkpoint.pem\n  anchor:\n    log_id: \"a.b\"\n    nats: {url: \"nats://127.0.0.1:1\"}\n",
    )
    .await;
    assert_eq!(at(&err), (audit_line() + 4, 3), "{err}");
    assert!(err.message.contains("log_id `a.b`"), "{err}");
}
