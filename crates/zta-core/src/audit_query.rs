//! Finding audit records, and exporting them in OCSF's shape for SIEMs. Sinks that can be read
//! back (JSON Lines files, SQL tables) filter with [`AuditQuery`]; SQL sinks translate it into
//! their `WHERE` clause and must select exactly what [`AuditQuery::matches`] selects.

use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{AgentId, AuditEvent, AuditRecord, Effect, SharedError};

/// Which records to find: every filter that is set must hold (none set: every record).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditQuery {
    /// The verified agent.
    pub agent: Option<AgentId>,
    /// The action's name (a tool, task or message type, or custom verb), exactly.
    pub action: Option<String>,
    /// The outcome.
    pub effect: Option<Effect>,
    /// The event.
    pub event: Option<AuditEvent>,
    /// Text the reason contains, ignoring ASCII case.
    pub reason: Option<String>,
    /// At or after this time.
    pub since: Option<OffsetDateTime>,
    /// Before this time.
    pub until: Option<OffsetDateTime>,
    /// The request id (the record's id, as shown to a denied caller).
    pub request_id: Option<Uuid>,
}

impl AuditQuery {
    /// Whether `record` is one this query finds.
    pub fn matches(&self, record: &AuditRecord) -> bool {
        let agent = self.agent.as_ref().is_none_or(|a| record.agent_id.as_ref() == Some(a));
        let action =
            self.action.as_deref().is_none_or(|a| record.action.as_ref().is_some_and(|r| r.name() == a));
        let effect = self.effect.is_none_or(|e| record.effect == e);
        let event = self.event.is_none_or(|e| record.event == e);
        let reason = self.reason.as_deref().is_none_or(|text| {
            record
                .reason
                .as_deref()
                .is_some_and(|r| r.to_ascii_lowercase().contains(&text.to_ascii_lowercase()))
        });
        let since = self.since.is_none_or(|t| record.time >= t);
        let until = self.until.is_none_or(|t| record.time < t);
        let id = self.request_id.is_none_or(|id| record.id == id);
        agent && action && effect && event && reason && since && until && id
    }
}

/// A store of audit records that can be read back: what `zta serve`'s audit query API
/// (`GET /zta/v1/audit`) and its `/ui` page read, the same stores `zta audit query` reads
/// (a JSON Lines directory, a PostgreSQL table, a SQLite file). A write-only sink (NATS) has
/// none. Reading does not verify the hash chain; `zta audit verify` does.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait::async_trait]
pub trait AuditSource: Send + Sync + std::fmt::Debug + 'static {
    /// The latest `limit` records that `query` finds (latest in the store's order), oldest
    /// first, as `zta audit query --limit` shows them. `limit` 0 finds nothing. A store that
    /// cannot be read is an error, never an empty answer.
    async fn query(&self, query: &AuditQuery, limit: usize) -> Result<Vec<AuditRecord>, AuditReadError>;
}

/// Why an [`AuditSource`] could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AuditReadError {
    /// The store failed (I/O, the database, an unreadable record).
    #[error("audit read failed: {0}")]
    Read(#[source] SharedError),
}

impl AuditReadError {
    /// Reading failed with `cause`.
    pub fn read(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Read(SharedError::from(cause.into()))
    }
}

/// The OCSF schema version [`ocsf`] writes.
pub const OCSF_VERSION: &str = "1.3.0";

/// `record` as an OCSF event: a login as Authentication (class 3002, Logon or Other), every
/// other event as API Activity (class 6003, activity Other, named after the event). The
/// decision is the `disposition` (Allowed / Blocked) and `status`; the determining rules and
/// policy digest are the `policy`; what OCSF has no place for is kept under `unmapped`.
pub fn ocsf(record: &AuditRecord) -> Value {
    let allowed = record.effect == Effect::Allow;
    let login = record.event == AuditEvent::Login;
    let (class_uid, class_name, category_uid, category_name, activity_id) = if login {
        (3002, "Authentication", 3, "Identity & Access Management", 1)
    } else {
        (6003, "API Activity", 6, "Application Activity", 99)
    };
    let activity_name = if login { "Logon".to_owned() } else { record.event.as_str().to_owned() };
    let mut event = object(json!({
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": category_uid,
        "category_name": category_name,
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": class_uid * 100 + activity_id,
        "time": unix_millis(record.time),
        "severity_id": if allowed { 1 } else { 3 },
        "severity": if allowed { "Informational" } else { "Medium" },
        "status_id": if allowed { 1 } else { 2 },
        "status": if allowed { "Success" } else { "Failure" },
        "disposition_id": if allowed { 1 } else { 2 },
        "disposition": if allowed { "Allowed" } else { "Blocked" },
        "metadata": {
            "version": OCSF_VERSION,
            "uid": record.id.to_string(),
            "product": {"name": "ZTA", "vendor_name": "ZTA", "version": env!("CARGO_PKG_VERSION")},
            "profiles": ["security_control"],
        },
    }));
    let mut unmapped = serde_json::Map::new();
    if let Some(reason) = &record.reason {
        event.insert("status_detail".into(), json!(reason));
    }
    if let Some(agent) = &record.agent_id {
        let mut user = object(json!({"uid": agent.as_str(), "type": "System", "type_id": 3}));
        if let Some(tenant) = &record.tenant {
            user.insert("org".into(), json!({"uid": tenant}));
        }
        let user = Value::Object(user);
        if login {
            event.insert("user".into(), user);
        } else {
            event.insert("actor".into(), json!({"user": user}));
        }
    }
    if let Some(action) = &record.action {
        event.insert(
            "api".into(),
            json!({
                "operation": format!("{}:{}", action.kind().as_str(), action.name()),
                "request": {"uid": record.id.to_string()},
            }),
        );
    }
    if let Some(resource) = &record.resource {
        event.insert("resources".into(), json!([{"type": resource.kind, "uid": resource.id}]));
    }
    if record.policy_digest.is_some() || !record.determining.is_empty() {
        let rules: Vec<&str> = record.determining.iter().map(|r| &**r).collect();
        event.insert(
            "policy".into(),
            json!({
                "uid": record.policy_digest.map(|d| d.to_hex()),
                "name": rules.join(", "),
            }),
        );
    }
    if let Some(basis) = record.basis {
        unmapped.insert("basis".into(), json!(basis.as_str()));
    }
    if let Some(method) = record.auth_method {
        unmapped.insert("auth_method".into(), json!(method.as_str()));
    }
    if let Some(target) = &record.target_agent {
        unmapped.insert("target_agent".into(), json!(target.as_str()));
    }
    if !record.on_behalf_of.is_empty() {
        unmapped.insert("on_behalf_of".into(), json!(record.on_behalf_of));
    }
    if let Some(latency) = record.latency_us {
        unmapped.insert("latency_us".into(), json!(latency));
    }
    if !record.detail.is_empty() {
        unmapped.insert("detail".into(), Value::Object(record.detail.clone()));
    }
    if !unmapped.is_empty() {
        event.insert("unmapped".into(), Value::Object(unmapped));
    }
    Value::Object(event)
}

/// The map of a `json!({...})` literal.
fn object(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// Milliseconds since the Unix epoch (OCSF's `time`).
fn unix_millis(time: OffsetDateTime) -> i64 {
    time.unix_timestamp() * 1000 + i64::from(time.millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, Resource};

    fn denied_search() -> AuditRecord {
        let mut record = AuditRecord::new(AuditEvent::Authorization, Effect::Deny)
            .with_reason("Default deny: no rule allows web_search");
        record.agent_id = Some(AgentId::new("research_bot").unwrap());
        record.action = Some(Action::tool_call("web_search"));
        record.resource = Some(Resource::new("dataset", "crm"));
        record
    }

    #[test]
    fn an_empty_query_finds_everything() {
        assert!(AuditQuery::default().matches(&denied_search()));
        assert!(AuditQuery::default().matches(&AuditRecord::new(AuditEvent::Admin, Effect::Allow)));
    }

    #[test]
    fn every_filter_must_hold() {
        let record = denied_search();
        let mut query = AuditQuery {
            agent: Some(AgentId::new("research_bot").unwrap()),
            action: Some("web_search".into()),
            effect: Some(Effect::Deny),
            event: Some(AuditEvent::Authorization),
            reason: Some("NO RULE".into()),
            since: Some(record.time),
            until: Some(record.time + time::Duration::SECOND),
            request_id: Some(record.id),
        };
        assert!(query.matches(&record));
        let each: [fn(&mut AuditQuery); 8] = [
            |q| q.agent = Some(AgentId::new("writer_bot").unwrap()),
            |q| q.action = Some("web".into()),
            |q| q.effect = Some(Effect::Allow),
            |q| q.event = Some(AuditEvent::Login),
            |q| q.reason = Some("quota".into()),
            |q| q.since = q.until,
            |q| q.until = q.since,
            |q| q.request_id = Some(Uuid::nil()),
        ];
        for (i, spoil) in each.into_iter().enumerate() {
            let mut spoiled = query.clone();
            spoil(&mut spoiled);
            assert!(!spoiled.matches(&record), "filter {i} did not exclude");
        }
        query.agent = None;
        let mut anonymous = record;
        anonymous.agent_id = None;
        assert!(query.matches(&anonymous));
    }

    #[test]
    fn ocsf_events_carry_the_decision() {
        let record = denied_search();
        let event = ocsf(&record);
        assert_eq!(event["class_uid"], 6003);
        assert_eq!(event["type_uid"], 600399);
        assert_eq!(event["activity_name"], "authorization");
        assert_eq!(event["disposition"], "Blocked");
        assert_eq!(event["status_id"], 2);
        assert_eq!(event["actor"]["user"]["uid"], "research_bot");
        assert_eq!(event["api"]["operation"], "tool_call:web_search");
        assert_eq!(event["api"]["request"]["uid"], record.id.to_string());
        assert_eq!(event["resources"][0]["uid"], "crm");
        assert_eq!(event["metadata"]["uid"], record.id.to_string());
        assert_eq!(
            event["time"].as_i64(),
            i64::try_from(record.time.unix_timestamp_nanos() / 1_000_000).ok()
        );

        let mut login = AuditRecord::new(AuditEvent::Login, Effect::Allow);
        login.agent_id = Some(AgentId::new("research_bot").unwrap());
        let event = ocsf(&login);
        assert_eq!((event["class_uid"].as_i64(), event["activity_id"].as_i64()), (Some(3002), Some(1)));
        assert_eq!(event["user"]["uid"], "research_bot");
        assert_eq!(event["disposition"], "Allowed");
    }
}
