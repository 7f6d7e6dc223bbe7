//! `zta monitor status|alerts`: with the detectors of the config's `monitor:` section and a
//! shared state store, three denied requests made by three separate processes suspend the agent;
//! `status` lists the detectors and the suspension (since when, by which detector, why),
//! `alerts` the alert, and once an operator reinstates the agent `status` lists none.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use common::{deployment, zta};
use serde_json::Value;

const MONITOR: &str = "\
monitor:
  detectors:
    - name: probing
      detect: denials
      window: 5m
      threshold: 3
      respond: [suspend]
    - name: spoofing
      detect: reserved_attribute
      dry_run: true
";

#[test]
fn denials_across_processes_suspend_and_the_monitor_commands_say_so() {
    let dir = tempfile::tempdir().unwrap();
    deployment(dir.path());
    let url = std::env::var("ZTA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let config = std::fs::read_to_string(dir.path().join("zta.yaml")).unwrap();
    std::fs::write(
        dir.path().join("zta.yaml"),
        format!("{config}{MONITOR}state:\n  type: redis\n  url: '{url}'\n  key_prefix: 'zta-cli-monitor:{nanos}:'\n"),
    )
    .unwrap();
    let authorize = |request: &str| {
        zta(
            &["authorize", "--config", "zta.yaml", "--credential-file", "writer.json", "--request", request],
            dir.path(),
        )
    };
    for attempt in 1..=3 {
        let (code, out, err) = authorize("shell.json");
        assert_eq!(code, 3, "attempt {attempt}: {out}{err}");
        assert!(!out.contains("agent suspended"), "suspended before the third denial: {out}");
    }
    let (code, out, err) = authorize("write.json");
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("agent suspended"), "the request after the third denial was not refused: {out}");

    let (code, out, err) = zta(&["monitor", "status", "--config", "zta.yaml"], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("probing") && out.contains("denials") && out.contains("suspend"), "{out}");
    assert!(out.contains("spoofing") && out.contains("(dry run)"), "{out}");
    let row =
        out.lines().find(|l| l.starts_with("writer_bot")).unwrap_or_else(|| panic!("no suspension: {out}"));
    assert!(row.contains("monitor:probing") && row.contains("suspended by detector `probing`"), "{row}");

    let (code, out, err) = zta(&["monitor", "status", "--config", "zta.yaml", "--json"], dir.path());
    assert_eq!(code, 0, "{err}");
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["suspended"][0]["agent_id"], "writer_bot");
    assert_eq!(status["suspended"][0]["by"], "monitor:probing");
    assert_eq!(status["detectors"][0]["threshold"], 3);

    let (code, out, err) =
        zta(&["monitor", "alerts", "--config", "zta.yaml", "--format", "json"], dir.path());
    assert_eq!(code, 0, "{err}");
    let alerts: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(alerts.len(), 1, "{out}");
    assert_eq!(alerts[0]["agent_id"], "writer_bot");
    assert_eq!(alerts[0]["reason"], "probing: 3 denials within 5m (threshold 3)");

    let (code, out, err) = zta(&["agent", "reinstate", "writer_bot", "--config", "zta.yaml"], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = zta(&["monitor", "status", "--config", "zta.yaml"], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("no agent is suspended"), "{out}");
    let (code, out, err) = authorize("write.json");
    assert_eq!(code, 0, "a reinstated agent is still refused: {out}{err}");
}
