//! The [`AuditSource`] conformance suite: what a sink stored, its source finds with exactly the
//! records [`AuditQuery::matches`] selects, the latest `limit` of them, oldest first.
//!
//! [`run_all`] appends [`records`] through the sink (a fresh, empty store), flushes it, and asks
//! the source a series of queries, comparing the ids it answers with the ones the query selects
//! from what was appended. The records are one second apart, in the order appended, so
//! "latest" by time and by stored order agree.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use zta_core::{
    Action, AgentId, AuditEvent, AuditQuery, AuditRecord, AuditSink, AuditSource, Durability, Effect,
};

use crate::{must, now_micros};

/// The records [`run_all`] appends: three agents, both effects, several events and actions,
/// reasons in mixed case, one second apart starting an hour ago.
pub fn records() -> Vec<AuditRecord> {
    let start = now_micros() - Duration::hours(1);
    let agents = ["research_bot", "writer_bot", "analysis_bot"];
    let tools = ["web_search", "shell", "run_python", "<img src=x>"];
    let mut out = Vec::new();
    for i in 0..24_u32 {
        let (event, effect) = match i % 8 {
            0 => (AuditEvent::Login, Effect::Allow),
            5 => (AuditEvent::Suspension, Effect::Allow),
            7 => (AuditEvent::Alert, Effect::Deny),
            n if n % 2 == 1 => (AuditEvent::Authorization, Effect::Deny),
            _ => (AuditEvent::Authorization, Effect::Allow),
        };
        let mut record = AuditRecord::new(event, effect);
        record.time = start + Duration::seconds(i64::from(i));
        record.agent_id = agents.get((i % 3) as usize).and_then(|a| AgentId::new(a).ok());
        if event == AuditEvent::Authorization {
            record.action = tools.get((i % 4) as usize).map(|t| Action::tool_call(*t));
        }
        if effect == Effect::Deny {
            record.reason =
                Some(if i % 3 == 0 { "Denied by Policy".into() } else { "agent suspended".into() });
        }
        out.push(record);
    }
    out
}

/// The queries [`run_all`] asks, each with a limit, against `appended`.
fn queries(appended: &[AuditRecord]) -> Vec<(String, AuditQuery, usize)> {
    let base = AuditQuery::default;
    let with = |name: &str, limit: usize, set: &dyn Fn(&mut AuditQuery)| {
        let mut query = base();
        set(&mut query);
        (name.to_owned(), query, limit)
    };
    let time = |i: usize| appended.get(i).map_or_else(OffsetDateTime::now_utc, |r| r.time);
    let id = appended.get(9).map_or_else(Uuid::nil, |r| r.id);
    vec![
        with("everything", 1000, &|_| {}),
        with("the latest three", 3, &|_| {}),
        with("nothing at limit 0", 0, &|_| {}),
        with("one agent", 1000, &|q| q.agent = AgentId::new("writer_bot").ok()),
        with("an unknown agent", 1000, &|q| q.agent = AgentId::new("nobody").ok()),
        with("one action", 1000, &|q| q.action = Some("shell".into())),
        with("an action named like markup", 1000, &|q| q.action = Some("<img src=x>".into())),
        with("denials", 1000, &|q| q.effect = Some(Effect::Deny)),
        with("the latest two denials", 2, &|q| q.effect = Some(Effect::Deny)),
        with("one event", 1000, &|q| q.event = Some(AuditEvent::Suspension)),
        with("alerts", 1000, &|q| q.event = Some(AuditEvent::Alert)),
        with("a reason, any case", 1000, &|q| q.reason = Some("denied BY".into())),
        with("since", 1000, &|q| q.since = Some(time(20))),
        with("until", 1000, &|q| q.until = Some(time(4))),
        with("one request id", 1000, &|q| q.request_id = Some(id)),
        with("agent, effect and reason together", 1000, &|q| {
            q.agent = AgentId::new("research_bot").ok();
            q.effect = Some(Effect::Deny);
            q.reason = Some("policy".into());
        }),
    ]
}

/// Appends [`records`] through `sink` into a store that was empty, flushes, and checks what
/// `source` (reading that store) finds for each query.
pub async fn run_all(sink: &dyn AuditSink, source: &dyn AuditSource) {
    let appended = records();
    for record in &appended {
        must("appending a record", sink.append(record.clone(), Durability::Queued).await);
    }
    must("flushing the sink", sink.flush().await);
    for (name, query, limit) in queries(&appended) {
        let matching: Vec<Uuid> = appended.iter().filter(|r| query.matches(r)).map(|r| r.id).collect();
        let expected = matching.get(matching.len().saturating_sub(limit)..).unwrap_or_default();
        let found = must(&format!("the query `{name}`"), source.query(&query, limit).await);
        let found: Vec<Uuid> = found.iter().map(|r| r.id).collect();
        assert_eq!(
            found, expected,
            "the query `{name}` (limit {limit}) finds the latest matches, oldest first"
        );
    }
    // Records come back whole.
    let all = must("reading everything", source.query(&AuditQuery::default(), 1000).await);
    assert_eq!(all, appended, "records come back as appended");
}
