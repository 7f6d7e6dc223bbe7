//! The audit query API: `GET /zta/v1/audit` finds records of the configured audit store
//! ([`ServerConfig::audit_source`](crate::ServerConfig::audit_source)) with the filters of
//! `zta audit query`, for operators only. `/ui` reads the same answer.
//!
//! | parameter | finds |
//! |---|---|
//! | `agent` | records of this verified agent |
//! | `action` | records of this action name (tool, message type, task type, ...) |
//! | `effect` | `allow` or `deny` |
//! | `event` | `authorization`, `login`, `suspension`, `reinstatement`, `alert`, ... |
//! | `reason` | records whose reason contains this text, ignoring ASCII case |
//! | `since`, `until` | at or after, before this RFC 3339 time |
//! | `request_id` | the record of this request id |
//! | `limit` | at most this many (default 100, at most 1000) |
//!
//! An empty parameter is no filter. The answer is `{"records": [...], "more": bool}`: the
//! latest `limit` matching records, oldest first, each as stored (the audit record's JSON), and
//! whether earlier ones matched too. Reading is not audited (it changes nothing, and the page
//! polls); a refused read is. A store that fails is `503`; none configured, `404`.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Query, State, rejection::QueryRejection},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;
use serde_json::{Value, json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use zta_core::{AgentId, AuditEvent, AuditQuery, AuditRecord, Effect};

use crate::{Shared, native};

/// Records answered when `limit` is not given.
const DEFAULT_LIMIT: usize = 100;
/// Most records one answer holds.
pub(crate) const MAX_LIMIT: usize = 1000;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/zta/v1/audit", get(audit))
}

/// The query parameters, as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Params {
    agent: Option<String>,
    action: Option<String>,
    effect: Option<String>,
    event: Option<String>,
    reason: Option<String>,
    since: Option<String>,
    until: Option<String>,
    request_id: Option<String>,
    limit: Option<String>,
}

/// `Some(text)` unless absent or empty.
fn given(text: Option<&String>) -> Option<&str> {
    text.map(String::as_str).filter(|t| !t.is_empty())
}

impl Params {
    /// The query and limit these parameters ask for, or what is wrong with them.
    pub(crate) fn query(&self) -> Result<(AuditQuery, usize), String> {
        let named = |text: &str| Value::String(text.to_owned());
        let time = |text: Option<&String>, name: &str| {
            given(text)
                .map(|t| {
                    OffsetDateTime::parse(t, &Rfc3339)
                        .map_err(|_| format!("`{name}` is not an RFC 3339 time such as 2026-12-04T09:00:00Z"))
                })
                .transpose()
        };
        let mut query = AuditQuery::default();
        query.agent = given(self.agent.as_ref())
            .map(|a| AgentId::new(a).map_err(|_| "`agent` is not a valid agent id".to_owned()))
            .transpose()?;
        query.action = given(self.action.as_ref()).map(str::to_owned);
        query.effect = given(self.effect.as_ref())
            .map(|e| {
                serde_json::from_value::<Effect>(named(e))
                    .map_err(|_| "`effect` is `allow` or `deny`".to_owned())
            })
            .transpose()?;
        query.event = given(self.event.as_ref())
            .map(|e| {
                serde_json::from_value::<AuditEvent>(named(e)).map_err(|_| {
                    let names: Vec<&str> = AuditEvent::ALL.iter().map(|e| e.as_str()).collect();
                    format!("`event` is one of {}", names.join(", "))
                })
            })
            .transpose()?;
        query.reason = given(self.reason.as_ref()).map(str::to_owned);
        query.since = time(self.since.as_ref(), "since")?;
        query.until = time(self.until.as_ref(), "until")?;
        query.request_id = given(self.request_id.as_ref())
            .map(|id| serde_json::from_value(named(id)).map_err(|_| "`request_id` is not a UUID".to_owned()))
            .transpose()?;
        let limit = match given(self.limit.as_ref()) {
            None => DEFAULT_LIMIT,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => return Err(format!("`limit` is a number from 1 to {MAX_LIMIT}")),
            },
        };
        Ok((query, limit))
    }
}

/// `GET /zta/v1/audit`: an operator's bearer credential, then the records.
async fn audit(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    params: Result<Query<Params>, QueryRejection>,
) -> Response {
    // Parameters that are not this API's are `400`, after the caller proved who it is.
    if let Err(refusal) = native::operator_only(&shared, &headers, AuditEvent::Admin).await {
        return refusal;
    }
    let Ok(Query(params)) = params else {
        return native::error(StatusCode::BAD_REQUEST, UNKNOWN_PARAMETER, None);
    };
    match find(&shared, &params).await {
        Ok((records, more)) => Json(json!({ "records": records, "more": more })).into_response(),
        Err(refusal) => refusal,
    }
}

/// What a query string that is not this API's is told.
pub(crate) const UNKNOWN_PARAMETER: &str =
    "unknown query parameter: give agent, action, effect, event, reason, since, until, request_id or limit";

/// The latest records `params` asks for, oldest first, and whether earlier ones matched too;
/// or the error answer (`400`, `404`, `503`).
pub(crate) async fn find(shared: &Shared, params: &Params) -> Result<(Vec<AuditRecord>, bool), Response> {
    let (query, limit) = params.query().map_err(|m| native::error(StatusCode::BAD_REQUEST, m, None))?;
    let Some(source) = &shared.audit_source else {
        return Err(native::error(
            StatusCode::NOT_FOUND,
            "this service has no audit store to read (no `jsonl`, `postgres` or `sqlite` sink)",
            None,
        ));
    };
    let mut records = source.query(&query, limit.saturating_add(1)).await.map_err(|e| {
        tracing::warn!(error = %e, "audit query failed");
        native::error(StatusCode::SERVICE_UNAVAILABLE, "the audit store cannot be read", None)
    })?;
    let more = records.len() > limit;
    if more {
        records.remove(0);
    }
    Ok((records, more))
}
