//! `zta agent suspend|reinstate|status`: a suspension is made in the configured shared state
//! store, where every guard built from the config looks; a config whose state lives inside one
//! process is refused, since a suspension made there would bind nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

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
