//! A crew at work raises nothing: 10,000 permitted requests of three agents, each with its own
//! pace that varies from window to window and pauses now and then, trip none of the detectors,
//! the rate detector included. And the same rate detector does fire on a real burst.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
use crate::common::*;

use serde_json::json;
use zta_core::AuditEvent;

fn every_detector() -> serde_json::Value {
    json!({"detectors": [
        {"name": "denials", "detect": "denials", "window": "1m", "threshold": 5, "respond": ["suspend"]},
        {"name": "scanning", "detect": "scanning", "window": "5m", "threshold": 5, "respond": ["suspend"]},
        {"name": "rate", "detect": "rate", "window": "10s", "threshold": 10, "factor": 5, "respond": ["suspend"]},
        {"name": "guessing", "detect": "auth_failures", "window": "1m", "threshold": 5},
        {"name": "reuse", "detect": "token_reuse", "respond": ["suspend"]},
        {"name": "reserved", "detect": "reserved_attribute", "respond": ["suspend"]},
    ]})
}

/// A small deterministic generator (the run is the same every time).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

#[tokio::test]
async fn ten_thousand_permitted_requests_trip_nothing() {
    let s = setup(every_detector());
    // Each agent: its usual requests per 10 s window while it works, and its tools.
    let crew = [
        ("research_bot", 20, ["web_search", "fetch_url", "read_doc"]),
        ("writer_bot", 10, ["read_doc", "write_doc", "spell_check"]),
        ("planner", 5, ["list_tasks", "assign_task", "read_doc"]),
    ];
    let mut random = Lcg(7);
    let mut sent = 0;
    while sent < 10_000 {
        for (agent, pace, tools) in &crew {
            if random.next(10) < 3 {
                continue; // pausing this window
            }
            // Half to one and a half times its pace.
            let n = pace / 2 + random.next(*pace + 1);
            for _ in 0..n {
                let tool = tools[random.next(3) as usize];
                feed(&s, permit(agent, tool), 1).await;
                sent += 1;
            }
        }
        s.clock.advance(10);
    }
    assert!(s.kept.of(AuditEvent::Alert).is_empty(), "normal work raised {:?}", s.kept.of(AuditEvent::Alert));
    assert_eq!(s.sink.monitor().stats().alerts(), 0);
    for (agent, _, _) in crew {
        assert!(!s.state.is_suspended(&crate::common::agent(agent)).await.unwrap());
    }
}

#[tokio::test]
async fn a_burst_far_above_the_agents_own_pace_fires_the_rate_detector() {
    let s = setup(every_detector());
    for _ in 0..6 {
        feed(&s, permit("research_bot", "web_search"), 4).await;
        s.clock.advance(10);
    }
    feed(&s, permit("research_bot", "web_search"), 20).await;
    assert!(s.kept.of(AuditEvent::Alert).is_empty(), "fired at 5 times the pace, not above it");
    feed(&s, permit("research_bot", "web_search"), 1).await;
    let alerts = s.kept.of(AuditEvent::Alert);
    assert_eq!(alerts.len(), 1, "a burst did not fire");
    assert_eq!(alerts[0].detail["detector"], "rate");
    assert!(s.state.is_suspended(&agent("research_bot")).await.unwrap(), "the response did not apply");
}
