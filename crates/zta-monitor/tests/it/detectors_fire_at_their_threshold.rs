//! Each counted detector fires when its count over the window reaches the threshold, not one
//! below, once per window; the window follows the monitor's clock; immediate signals fire on
//! the first occurrence; permits and other agents' denials do not count.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
use crate::common::*;

use serde_json::json;
use zta_core::{AuditEvent, AuditRecord, Effect};

fn detector(detect: &str, threshold: u32) -> serde_json::Value {
    json!({"detectors": [{"name": "d", "detect": detect, "window": "60s", "threshold": threshold}]})
}

#[tokio::test]
async fn denials_fire_at_the_threshold_and_not_below() {
    let s = setup(detector("denials", 5));
    feed(&s, denial("research_bot", "shell"), 4).await;
    feed(&s, denial("writer_bot", "shell"), 4).await; // another agent's count
    feed(&s, permit("research_bot", "search"), 50).await;
    assert!(s.kept.of(AuditEvent::Alert).is_empty(), "fired below the threshold");

    feed(&s, denial("research_bot", "shell"), 1).await;
    let alerts = s.kept.of(AuditEvent::Alert);
    assert_eq!(alerts.len(), 1, "did not fire at the threshold");
    assert_eq!(alerts[0].agent_id.as_ref().unwrap().as_str(), "research_bot");
    assert_eq!(alerts[0].detail["detector"], "d");
    assert_eq!(alerts[0].detail["by"], "monitor:d");
    assert_eq!(alerts[0].reason.as_deref(), Some("d: 5 denials within 1m (threshold 5)"));

    // Once per window: more denials in the same bucket do not alert again.
    feed(&s, denial("research_bot", "shell"), 10).await;
    assert_eq!(s.kept.of(AuditEvent::Alert).len(), 1, "alerted again within the window");
}

#[tokio::test]
async fn the_window_follows_the_clock() {
    let s = setup(detector("denials", 3));
    feed(&s, denial("research_bot", "shell"), 2).await;
    // Two windows later both earlier buckets are out of reach.
    s.clock.advance(120);
    feed(&s, denial("research_bot", "shell"), 2).await;
    assert!(s.kept.of(AuditEvent::Alert).is_empty(), "denials older than the window counted");
    // At the next bucket's start the previous one still counts fully.
    s.clock.advance(60);
    feed(&s, denial("research_bot", "shell"), 1).await;
    assert_eq!(s.kept.of(AuditEvent::Alert).len(), 1, "the previous bucket's denials were forgotten");
}

#[tokio::test]
async fn scanning_counts_distinct_targets() {
    let s = setup(detector("scanning", 3));
    feed(&s, denial("research_bot", "shell"), 10).await;
    feed(&s, denial("research_bot", "delete_repo"), 10).await;
    assert!(s.kept.of(AuditEvent::Alert).is_empty(), "repeats of two tools counted as many");
    feed(&s, denial("research_bot", "send_email"), 1).await;
    assert_eq!(s.kept.of(AuditEvent::Alert).len(), 1, "three distinct tools did not fire");
}

#[tokio::test]
async fn segment_scanning_counts_distinct_segments() {
    let s = setup(detector("segment_scanning", 3));
    // A denied message to an agent in `segment`, as the guard records a policy denial.
    let into = |target: &str, segment: &str| {
        let mut r = denial("research_bot", "msg").with_detail("target_segment", segment);
        r.target_agent = Some(agent(target));
        r
    };
    // Many targets, but in two segments; a denial with no known segment is not counted.
    for target in ["a1", "a2", "a3", "a4"] {
        feed(&s, into(target, "finance"), 1).await;
    }
    feed(&s, into("b1", "hr"), 3).await;
    feed(&s, denial("research_bot", "shell"), 5).await;
    assert!(s.kept.of(AuditEvent::Alert).is_empty(), "two segments counted as three");
    feed(&s, into("c1", "ops"), 1).await;
    let alerts = s.kept.of(AuditEvent::Alert);
    assert_eq!(alerts.len(), 1, "three distinct segments did not fire");
    assert_eq!(alerts[0].agent_id, Some(agent("research_bot")));
}

#[tokio::test]
async fn failed_authentications_naming_one_agent_alert_without_naming_it_as_the_actor() {
    let s = setup(detector("auth_failures", 3));
    feed(&s, failed_login("writer_bot"), 2).await;
    feed(&s, failed_login("research_bot"), 2).await;
    assert!(s.kept.of(AuditEvent::Alert).is_empty());
    feed(&s, failed_login("writer_bot"), 1).await;
    let alerts = s.kept.of(AuditEvent::Alert);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].agent_id, None, "an unverified claim became the alert's agent");
    assert_eq!(alerts[0].detail["claimed_agent"], "writer_bot");
}

#[tokio::test]
async fn immediate_signals_fire_on_the_first_occurrence() {
    let s = setup(json!({"detectors": [
        {"name": "reuse", "detect": "token_reuse"},
        {"name": "reserved", "detect": "reserved_attribute"},
        {"name": "tools", "detect": "tool_change"},
    ]}));
    let mut reuse = zta_core::AuditRecord::new(AuditEvent::TokenReuse, zta_core::Effect::Deny)
        .with_detail("denial", "replayed");
    reuse.agent_id = Some(agent("research_bot"));
    let mut reserved = denial("research_bot", "search").with_detail("denial", "reserved_attribute");
    reserved.basis = None;
    let tool = zta_core::AuditRecord::new(AuditEvent::Admin, zta_core::Effect::Deny)
        .with_detail("signal", "tool_definition_changed")
        .with_detail("tool", "search");
    for record in [reuse, reserved, tool] {
        feed(&s, record, 1).await;
    }
    let fired: Vec<String> = s
        .kept
        .of(AuditEvent::Alert)
        .iter()
        .map(|a| a.detail["detector"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fired, ["reuse", "reserved", "tools"]);
}

#[tokio::test]
async fn failed_authentications_from_one_address_alert_naming_it() {
    let s = setup(detector("source_failures", 4));
    // Four agents' names tried from one address, one name from another.
    for claimed in ["writer_bot", "research_bot", "planner"] {
        feed(&s, failed_login_from(claimed, "10.0.0.7"), 1).await;
    }
    feed(&s, failed_login_from("writer_bot", "10.0.0.8"), 3).await;
    feed(&s, failed_login("writer_bot"), 5).await; // no address recorded: not counted
    assert!(s.kept.of(AuditEvent::Alert).is_empty(), "fired below the threshold");
    feed(&s, failed_login_from("analysis_bot", "10.0.0.7"), 1).await;
    let alerts = s.kept.of(AuditEvent::Alert);
    assert_eq!(alerts.len(), 1, "four failures from one address did not fire");
    assert_eq!(alerts[0].detail["source"], "10.0.0.7");
    assert_eq!(alerts[0].agent_id, None);
    assert_eq!(
        alerts[0].reason.as_deref(),
        Some("d: 4 source failures within 1m (threshold 4) from 10.0.0.7")
    );
}

#[tokio::test]
async fn refused_logins_from_one_address_across_agent_names_fire_at_the_threshold() {
    let s = setup(detector("source_failures", 3));
    // As `Guard::login_from` records a refused login over `zta serve`.
    let login = |claimed: &str| {
        AuditRecord::new(AuditEvent::Login, Effect::Deny)
            .with_reason("invalid credential: bad signature")
            .with_detail("denial", "invalid_credential")
            .with_detail("claimed_agent", claimed)
            .with_detail("source", "127.0.0.1")
    };
    feed(&s, login("writer_bot"), 1).await;
    feed(&s, login("research_bot"), 1).await;
    assert!(s.kept.of(AuditEvent::Alert).is_empty(), "fired below the threshold");
    feed(&s, login("planner"), 1).await;
    let alerts = s.kept.of(AuditEvent::Alert);
    assert_eq!(alerts.len(), 1, "three refused logins from one address did not fire");
    assert_eq!(alerts[0].detail["source"], "127.0.0.1");
    assert_eq!(alerts[0].agent_id, None, "no agent is blamed for an address's failures");
}

#[tokio::test]
async fn refused_refreshes_count_with_refused_logins_from_one_address() {
    let s = setup(detector("source_failures", 3));
    // As `Guard::refresh_from` records a refresh token that does not verify: no agent to claim.
    let refresh = |source: &str| {
        AuditRecord::new(AuditEvent::TokenRefresh, Effect::Deny)
            .with_reason("invalid credential: malformed refresh token")
            .with_detail("denial", "invalid_credential")
            .with_detail("source", source)
    };
    feed(&s, refresh("10.0.0.9"), 2).await;
    feed(&s, refresh("10.0.0.8"), 2).await;
    assert!(s.kept.of(AuditEvent::Alert).is_empty(), "fired below the threshold");
    feed(&s, failed_login_from("writer_bot", "10.0.0.9"), 1).await;
    let alerts = s.kept.of(AuditEvent::Alert);
    assert_eq!(alerts.len(), 1, "two refused refreshes and a refused login from one address did not fire");
    assert_eq!(alerts[0].detail["source"], "10.0.0.9");
}
