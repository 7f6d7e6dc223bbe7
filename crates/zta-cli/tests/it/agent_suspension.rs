//! `zta agent suspend|reinstate|status`: a suspension is made in the configured shared state
//! store, where every guard built from the config looks; a config whose state lives inside one
//! process is refused, since a suspension made there would bind nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use common::{deployment, zta};

#[test]
fn agent_commands_refuse_a_state_store_inside_one_process() {
    let dir = tempfile::tempdir().unwrap();
    deployment(dir.path());
    for command in ["suspend", "reinstate", "status"] {
        let (code, out, err) = zta(&["agent", command, "writer_bot", "--config", "zta.yaml"], dir.path());
        assert_eq!(code, 2, "{command}: {out}{err}");
        assert!(err.contains("keeps its state in memory"), "{command}: {err}");
    }
    let (code, _, err) = zta(&["agent", "suspend", "not an id", "--config", "zta.yaml"], dir.path());
    assert_eq!(code, 2, "{err}");
}

/// With a shared store (the Redis the README's test command provides), a suspension made by
/// `zta agent suspend` denies the agent in every other process built from the same config.
#[test]
fn a_suspension_from_the_command_line_binds_other_processes() {
    let dir = tempfile::tempdir().unwrap();
    deployment(dir.path());
    let url = std::env::var("ZTA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let prefix = format!("zta-cli-test:{}:", uuid_like());
    let config = std::fs::read_to_string(dir.path().join("zta.yaml")).unwrap();
    std::fs::write(
        dir.path().join("zta.yaml"),
        format!("{config}state:\n  type: redis\n  url: '{url}'\n  key_prefix: '{prefix}'\n"),
    )
    .unwrap();
    let authorize = || {
        zta(
            &[
                "authorize",
                "--config",
                "zta.yaml",
                "--credential-file",
                "writer.json",
                "--request",
                "write.json",
            ],
            dir.path(),
        )
    };
    let (code, out, err) = authorize();
    assert_eq!(code, 0, "writer_bot may write documents: {out}{err}");

    let (code, out, err) = zta(&["agent", "suspend", "writer_bot", "--config", "zta.yaml"], dir.path());
    assert_eq!((code, out.trim()), (0, "writer_bot: suspended"), "{err}");
    let (code, out, _) = zta(&["agent", "status", "writer_bot", "--config", "zta.yaml"], dir.path());
    assert_eq!((code, out.trim()), (3, "writer_bot: suspended"));
    let (code, out, err) = authorize();
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("\"reason\": \"agent suspended\""), "{out}");

    let (code, out, err) = zta(&["agent", "reinstate", "writer_bot", "--config", "zta.yaml"], dir.path());
    assert_eq!((code, out.trim()), (0, "writer_bot: active"), "{err}");
    let (code, out, err) = authorize();
    assert_eq!(code, 0, "{out}{err}");
    // Both changes are on record.
    let (code, out, err) = zta(&["audit", "verify", "audit"], dir.path());
    assert!(code == 0 || code == 4, "{out}{err}");
    let log = std::fs::read_to_string(dir.path().join("audit/audit-000001.jsonl")).unwrap();
    assert!(log.contains("\"event\":\"suspension\"") && log.contains("\"event\":\"reinstatement\""));
}

fn uuid_like() -> String {
    format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}
