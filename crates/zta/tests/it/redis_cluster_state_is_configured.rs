//! `state: {type: redis, cluster: true}` reads the `cluster` flag (default false) and hands it
//! to the Redis state store: pointed at a Redis that is not a cluster, or at a database other
//! than 0, the deployment refuses to start at the `state` section. A misspelled or mistyped
//! flag is a located error. (The store itself is tested on a real cluster in zta-state-redis.)
//! Needs the Redis of `ZTA_TEST_REDIS_URL` (default `redis://127.0.0.1:6379/`), which is not a
//! cluster.
#![cfg(all(
    feature = "state-redis",
    feature = "identity-static",
    feature = "policy-native",
    feature = "audit-jsonl"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use zta::{Config, StateSection};

use crate::config_loads_and_refuses_bad_files::{GOOD, setup};

fn redis_url() -> String {
    std::env::var("ZTA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

fn with_state(state: &str) -> String {
    format!("{GOOD}state:\n{state}")
}

/// The line of `state:` in `text` (1-based).
fn state_line(text: &str) -> usize {
    text.lines().position(|l| l == "state:").unwrap() + 1
}

#[test]
fn the_cluster_flag_is_read_and_defaults_to_a_single_server() {
    let cluster =
        Config::from_yaml_str(&with_state("  type: redis\n  url: redis://redis:6379/\n  cluster: true\n"));
    let StateSection::Redis(config) = cluster.unwrap().state else { panic!("not a redis state section") };
    assert!(config.cluster);
    let single = Config::from_yaml_str(&with_state("  type: redis\n  url: redis://redis:6379/\n"));
    let StateSection::Redis(config) = single.unwrap().state else { panic!("not a redis state section") };
    assert!(!config.cluster);
}

#[test]
fn a_misspelled_or_mistyped_cluster_flag_is_a_located_error() {
    for state in [
        "  type: redis\n  url: redis://redis/\n  clustered: true\n",
        "  type: redis\n  url: redis://redis/\n  cluster: maybe\n",
    ] {
        let text = with_state(state);
        let err = Config::from_yaml_str(&text).unwrap_err();
        assert_eq!(err.position.map(|p| p.line), Some(state_line(&text) + 3), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_config_on_a_plain_redis_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let text =
        with_state(&format!("  type: redis\n  url: {}\n  cluster: true\n  timeout: 2s\n", redis_url()));
    let path = dir.path().join("zta.yaml");
    std::fs::write(&path, &text).unwrap();
    let err = Config::from_file(&path).unwrap().build().await.unwrap_err();
    let shown = format!("{err:#}");
    assert!(shown.contains("state store: cannot reach redis at"), "{shown}");
    assert!(shown.contains("cluster support disabled"), "the server says why: {shown}");
    assert_eq!(err.position.map(|p| p.line), Some(state_line(&text)), "{shown}");
}

#[tokio::test]
async fn a_cluster_has_only_database_zero() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let text = with_state("  type: redis\n  url: redis://127.0.0.1:7000/2\n  cluster: true\n");
    let path = dir.path().join("zta.yaml");
    std::fs::write(&path, &text).unwrap();
    let err = Config::from_file(&path).unwrap().build().await.unwrap_err();
    assert!(err.to_string().contains("a Redis Cluster has only database 0"), "{err}");
    assert_eq!(err.position.map(|p| p.line), Some(state_line(&text)), "{err}");
}
