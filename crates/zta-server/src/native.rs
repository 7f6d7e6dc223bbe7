//! The native API, for what AuthZEN does not cover: sessions (login, refresh), revocation,
//! token introspection, and the operators' suspend and reinstate. Each call goes through the
//! guard, which audits it; a call refused here before it reaches the guard (no operator
//! credential, a caller that is not an operator) is audited here.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{ConnectInfo, Path, State},
    http::{Extensions, HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use serde::Deserialize;
use serde_json::json;
use zta_core::{
    Actor, AgentId, AuditEvent, AuditRecord, Credential, Denied, DenyReason, Durability, Effect, Principal,
    SessionTokens,
    secrecy::{ExposeSecret, SecretString},
};

use crate::Shared;

/// Longest `reason` accepted for an audited administrative call.
const MAX_REASON: usize = 500;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/zta/v1/login", post(login))
        .route("/zta/v1/refresh", post(refresh))
        .route("/zta/v1/revoke", post(revoke))
        .route("/zta/v1/introspect", post(introspect))
        .route("/zta/v1/agents/{agent}/revoke", post(revoke_agent))
        .route("/zta/v1/agents/{agent}/suspend", post(suspend))
        .route("/zta/v1/agents/{agent}/reinstate", post(reinstate))
}

/// A JSON error: `{"error": ...}`, with the request id when the guard audited the refusal.
pub(crate) fn error(status: StatusCode, message: impl Into<String>, request_id: Option<String>) -> Response {
    let mut body = serde_json::Map::new();
    body.insert("error".to_owned(), message.into().into());
    if let Some(id) = request_id {
        body.insert("request_id".to_owned(), id.into());
    }
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

fn bad_request(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, message, None)
}

/// A refusal by the guard: `401` for a credential that does not hold, `503` when a backend
/// (identity, state, audit) failed, `403` otherwise; the safe reason and the audit record's id.
fn refused(denied: &Denied) -> Response {
    let status = match denied.reason() {
        DenyReason::Unauthenticated(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
        DenyReason::AuditUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        DenyReason::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        _ => StatusCode::FORBIDDEN,
    };
    error(status, denied.reason().to_string(), Some(denied.request_id().to_string()))
}

/// `body` as `T`, or the `400` that says why not.
fn parse<T: serde::de::DeserializeOwned>(body: &Bytes, what: &str) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("not {what}: {e}"))
}

/// A session pair, never cached by anything on the way.
fn session(tokens: &SessionTokens) -> Response {
    let body = json!({
        "access_token": tokens.access_token.expose_secret(),
        "refresh_token": tokens.refresh_token.expose_secret(),
        "token_type": "Bearer",
        "expires_in": tokens.expires_in.as_secs(),
    });
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// The TCP peer of the connection, set by `serve_on`; never read from a header the client
/// controls. Audited as `detail.source` of logins and refreshes, for the monitor to count.
fn peer(extensions: &Extensions) -> Option<IpAddr> {
    extensions.get::<ConnectInfo<SocketAddr>>().map(|peer| peer.0.ip())
}

/// `POST /zta/v1/login`: the body is a primary credential in its JSON shape; the answer a
/// session pair.
async fn login(State(shared): State<Arc<Shared>>, extensions: Extensions, body: Bytes) -> Response {
    let credential: Credential = match parse(&body, "a credential") {
        Ok(credential) => credential,
        Err(message) => return bad_request(message),
    };
    match shared.guard.login_from(&credential, peer(&extensions)).await {
        Ok(tokens) => session(&tokens),
        Err(denied) => refused(&denied),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshIn {
    refresh_token: SecretString,
}

/// `POST /zta/v1/refresh` with `{"refresh_token": ...}`: the next session pair. A refresh
/// token works once; a replay revokes its family.
async fn refresh(State(shared): State<Arc<Shared>>, extensions: Extensions, body: Bytes) -> Response {
    let input: RefreshIn = match parse(&body, "a refresh request") {
        Ok(input) => input,
        Err(message) => return bad_request(message),
    };
    match shared.guard.refresh_from(&input.refresh_token, peer(&extensions)).await {
        Ok(tokens) => session(&tokens),
        Err(denied) => refused(&denied),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenIn {
    token: SecretString,
}

/// `POST /zta/v1/revoke` with `{"token": ...}`: revokes that token. Holding a token is the
/// right to revoke it, but the caller must prove who it is (as RFC 7009 asks of clients): a
/// token that is not a ZTA session token is revoked by its digest, unverified, so an anonymous
/// caller could fill the state store with keys.
async fn revoke(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let input: TokenIn = match parse(&body, "a revocation request") {
        Ok(input) => input,
        Err(message) => return bad_request(message),
    };
    let acting = Acting { event: AuditEvent::Revocation, target: None };
    let caller = match caller(&shared, &headers, acting).await {
        Ok(caller) => caller,
        Err(refusal) => return refusal,
    };
    let by = Actor::Agent(caller.agent_id.clone());
    match shared.guard.revoke_token(&input.token, &by, "revoked over zta serve").await {
        Ok(()) => Json(json!({ "revoked": true })).into_response(),
        Err(denied) => refused(&denied),
    }
}

/// `POST /zta/v1/introspect` with `{"token": ...}`: whether the guard would accept the token
/// now (signature, expiry, revocation, suspension), and if so whose it is and until when. Any
/// refusal is `{"active": false}`; a backend failure is `503`, not an inactive token.
async fn introspect(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let input: TokenIn = match parse(&body, "an introspection request") {
        Ok(input) => input,
        Err(message) => return bad_request(message),
    };
    match shared.guard.authenticate(&Credential::Bearer(input.token)).await {
        Ok(principal) => Json(json!({
            "active": true,
            "agent_id": principal.agent_id.as_str(),
            "auth_method": principal.auth_method.as_str(),
            "exp": principal.expires_at.unix_timestamp(),
        }))
        .into_response(),
        Err(e) if e.is_unavailable() => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string(), None),
        Err(_) => Json(json!({ "active": false })).into_response(),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReasonIn {
    reason: Option<String>,
}

/// The administrative calls on one agent.
#[derive(Clone, Copy)]
enum AgentCall {
    Revoke,
    Suspend,
    Reinstate,
}

impl AgentCall {
    fn event(self) -> AuditEvent {
        match self {
            Self::Revoke => AuditEvent::Revocation,
            Self::Suspend => AuditEvent::Suspension,
            Self::Reinstate => AuditEvent::Reinstatement,
        }
    }
}

/// `POST /zta/v1/agents/{agent}/revoke`: ends the agent's current sessions. The agent itself
/// or an operator.
async fn revoke_agent(
    state: State<Arc<Shared>>,
    agent: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    agent_call(state, agent, headers, body, AgentCall::Revoke).await
}

/// `POST /zta/v1/agents/{agent}/suspend`: shuts the agent out until reinstated. Operators only.
async fn suspend(
    state: State<Arc<Shared>>,
    agent: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    agent_call(state, agent, headers, body, AgentCall::Suspend).await
}

/// `POST /zta/v1/agents/{agent}/reinstate`: lifts a suspension. Operators only.
async fn reinstate(
    state: State<Arc<Shared>>,
    agent: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    agent_call(state, agent, headers, body, AgentCall::Reinstate).await
}

async fn agent_call(
    State(shared): State<Arc<Shared>>,
    Path(agent): Path<String>,
    headers: HeaderMap,
    body: Bytes,
    call: AgentCall,
) -> Response {
    let Ok(agent) = AgentId::new(&agent) else {
        return bad_request("the path does not name a valid agent id");
    };
    let input: ReasonIn = if body.is_empty() {
        ReasonIn::default()
    } else {
        match parse(&body, "a reason (`{\"reason\": ...}`)") {
            Ok(input) => input,
            Err(message) => return bad_request(message),
        }
    };
    let reason = input.reason.unwrap_or_else(|| "no reason given".to_owned());
    if reason.chars().count() > MAX_REASON {
        return bad_request(format!("`reason` is longer than {MAX_REASON} characters"));
    }
    let caller = match operator(&shared, &headers, &agent, call).await {
        Ok(caller) => caller,
        Err(refusal) => return refusal,
    };
    // The guard's record names the agent acted on, and who acted in `detail.by`.
    let by = Actor::Agent(caller);
    let outcome = match call {
        AgentCall::Revoke => shared.guard.revoke_agent(&agent, &by, &reason).await,
        AgentCall::Suspend => shared.guard.suspend_agent(&agent, &by, &reason).await,
        AgentCall::Reinstate => shared.guard.reinstate_agent(&agent, &by, &reason).await,
    };
    match outcome {
        Ok(()) => Json(json!({ "agent_id": agent.as_str(), "done": true })).into_response(),
        Err(denied) => refused(&denied),
    }
}

/// Who may make `call` on `agent`: a configured operator (or, for a revocation, the agent
/// itself), proven by its own credential. With no operators configured, suspensions are
/// refused outright. A refusal is audited.
async fn operator(
    shared: &Shared,
    headers: &HeaderMap,
    agent: &AgentId,
    call: AgentCall,
) -> Result<AgentId, Response> {
    let acting = Acting { event: call.event(), target: Some(agent) };
    let self_service = matches!(call, AgentCall::Revoke);
    if shared.operators.is_empty() && !self_service {
        let message = "no operators are configured (`server.operators`)";
        return Err(refuse(shared, acting, None, StatusCode::FORBIDDEN, message, message).await);
    }
    let principal = caller(shared, headers, acting).await?;
    let caller = &principal.agent_id;
    if shared.operators.contains(caller) || (self_service && caller == agent) {
        return Ok(caller.clone());
    }
    let message = "the caller is not an operator";
    Err(refuse(shared, acting, Some(&principal), StatusCode::FORBIDDEN, message, message).await)
}

/// The configured operator the `Authorization: Bearer` credential proves, for a call that only
/// operators may make and that acts on no agent (reading the audit log: `event` names it in
/// the record of a refusal). With no operators configured it is refused outright; a refusal
/// is audited.
pub(crate) async fn operator_only(
    shared: &Shared,
    headers: &HeaderMap,
    event: AuditEvent,
) -> Result<Arc<Principal>, Response> {
    let acting = Acting { event, target: None };
    if shared.operators.is_empty() {
        let message = "no operators are configured (`server.operators`)";
        return Err(refuse(shared, acting, None, StatusCode::FORBIDDEN, message, message).await);
    }
    let principal = caller(shared, headers, acting).await?;
    if shared.operators.contains(&principal.agent_id) {
        return Ok(principal);
    }
    let message = "the caller is not an operator";
    Err(refuse(shared, acting, Some(&principal), StatusCode::FORBIDDEN, message, message).await)
}

/// `POST /zta/v1/agents/{agent}/reinstate` as `/ui` makes it: `headers` carry the operator's
/// credential taken from the page's session cookie.
pub(crate) async fn reinstate_as(
    shared: Arc<Shared>,
    agent: String,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    agent_call(State(shared), Path(agent), headers, body, AgentCall::Reinstate).await
}

/// What a call that needs a caller acts on, for the record of its refusal.
#[derive(Clone, Copy)]
struct Acting<'a> {
    event: AuditEvent,
    target: Option<&'a AgentId>,
}

/// The agent the `Authorization: Bearer` credential proves, as the guard verifies it; a
/// refusal (`401`, or `503` when the identity service failed) is audited.
async fn caller(
    shared: &Shared,
    headers: &HeaderMap,
    acting: Acting<'_>,
) -> Result<Arc<Principal>, Response> {
    let credential =
        headers.get(header::AUTHORIZATION).and_then(|v| Credential::from_authorization(v.as_bytes()));
    let Some(credential) = credential else {
        let message = "an `Authorization: Bearer` credential is required";
        return Err(refuse(shared, acting, None, StatusCode::UNAUTHORIZED, message, message).await);
    };
    match shared.guard.authenticate(&credential).await {
        Ok(principal) => Ok(principal),
        Err(e) => {
            let status =
                if e.is_unavailable() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::UNAUTHORIZED };
            Err(refuse(shared, acting, None, status, &e.to_string(), &e.detail()).await)
        }
    }
}

/// Audits a refused call (who tried, when known; on which agent; why) and answers it with the
/// record's id.
async fn refuse(
    shared: &Shared,
    acting: Acting<'_>,
    caller: Option<&Principal>,
    status: StatusCode,
    shown: &str,
    detail: &str,
) -> Response {
    let mut record = AuditRecord::new(acting.event, Effect::Deny).with_reason(format!("refused: {detail}"));
    if let Some(caller) = caller {
        record.note_principal(caller);
    }
    record.target_agent = acting.target.cloned();
    let id = record.id.to_string();
    if let Err(e) = shared.guard.audit_sink().append(record, Durability::Queued).await {
        tracing::error!(error = %e, "audit sink refused a record of a refused call");
    }
    error(status, shown, Some(id))
}
