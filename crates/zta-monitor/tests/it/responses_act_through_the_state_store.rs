//! A firing detector suspends or revokes the agent in the state store before `append`
//! returns, audited as its own doing; a dry run only alerts; a configuration that would act
//! on an agent the pattern only claims is refused.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
use crate::common::*;

use serde_json::json;
use time::OffsetDateTime;
use zta_core::AuditEvent;
use zta_monitor::MonitorConfig;

fn responding(respond: &[&str], dry_run: bool) -> serde_json::Value {
    json!({"detectors": [{"name": "probe", "detect": "denials", "window": "1m", "threshold": 3,
        "respond": respond, "dry_run": dry_run}]})
}

#[tokio::test]
async fn suspend_holds_in_the_state_store_when_append_returns() {
    let s = setup(responding(&["alert", "suspend"], false));
    let bot = agent("research_bot");
    feed(&s, denial("research_bot", "shell"), 2).await;
    assert!(!s.state.is_suspended(&bot).await.unwrap(), "suspended below the threshold");
    feed(&s, denial("research_bot", "shell"), 1).await;
    assert!(s.state.is_suspended(&bot).await.unwrap(), "not suspended when the third denial was stored");
    let suspensions = s.kept.of(AuditEvent::Suspension);
    assert_eq!(suspensions.len(), 1);
    assert_eq!(suspensions[0].agent_id.as_ref(), Some(&bot));
    assert_eq!(suspensions[0].detail["by"], "monitor:probe");
    assert_eq!(s.sink.monitor().stats().responses(), 1);
    assert!(!s.state.is_suspended(&agent("writer_bot")).await.unwrap());
}

#[tokio::test]
async fn revoke_and_step_up_end_the_agents_sessions() {
    for response in ["revoke", "step_up"] {
        let s = setup(responding(&[response], false));
        let bot = agent("research_bot");
        let issued_before = OffsetDateTime::now_utc() - time::Duration::minutes(1);
        feed(&s, denial("research_bot", "shell"), 3).await;
        let standing = s.state.standing(&[], &bot, issued_before).await.unwrap();
        assert!(standing.revoked, "{response}: a token issued before the response still stands");
        assert!(!standing.suspended, "{response}: the agent was suspended");
        let revocations = s.kept.of(AuditEvent::Revocation);
        assert_eq!(revocations.len(), 1, "{response}");
        assert_eq!(revocations[0].detail["response"], response);
    }
}

#[tokio::test]
async fn a_dry_run_only_alerts() {
    let s = setup(responding(&["suspend", "revoke"], true));
    let bot = agent("research_bot");
    feed(&s, denial("research_bot", "shell"), 3).await;
    assert!(!s.state.is_suspended(&bot).await.unwrap(), "a dry run suspended");
    let standing = s.state.standing(&[], &bot, OffsetDateTime::now_utc() - time::Duration::minutes(1)).await;
    assert!(!standing.unwrap().revoked, "a dry run revoked");
    let alerts = s.kept.of(AuditEvent::Alert);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].detail["dry_run"], true);
    assert_eq!(alerts[0].detail["responses"], json!(["suspend", "revoke"]));
    assert!(s.kept.of(AuditEvent::Suspension).is_empty() && s.kept.of(AuditEvent::Revocation).is_empty());
}

#[test]
fn acting_on_a_claimed_agent_is_refused() {
    let config: MonitorConfig = serde_json::from_value(json!({"detectors": [
        {"name": "guessing", "detect": "auth_failures", "respond": ["suspend"]}
    ]}))
    .unwrap();
    let e = config.validate().unwrap_err();
    assert!(e.to_string().contains("cannot respond with `suspend`"), "{e}");
}

#[test]
fn bad_detectors_are_refused_with_their_name() {
    let cases = [
        (json!([{"name": "a b", "detect": "denials"}]), "a name is 1 to 64"),
        (json!([{"name": "x", "detect": "denials"}, {"name": "x", "detect": "scanning"}]), "two detectors"),
        (json!([{"name": "x", "detect": "denials", "threshold": 0}]), "`threshold` must be at least 1"),
        (json!([{"name": "x", "detect": "denials", "window": "0s"}]), "`window` must be at least 1s"),
    ];
    for (detectors, expected) in cases {
        let config: MonitorConfig = serde_json::from_value(json!({"detectors": detectors})).unwrap();
        let e = config.validate().unwrap_err();
        assert!(e.to_string().contains(expected), "{e}");
    }
    let unknown =
        serde_json::from_value::<MonitorConfig>(json!({"detectors": [{"name": "x", "detect": "typo"}]}));
    assert!(unknown.is_err());
}
