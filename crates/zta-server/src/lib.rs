//! The guard as an HTTP service any language can call: the OpenID AuthZEN Authorization API
//! 1.0 (`POST /access/v1/evaluation`, `POST /access/v1/evaluations`, the action search
//! `POST /access/v1/search/action` (see the `search` module),
//! `GET /.well-known/authzen-configuration`), a native API for sessions and operators (below),
//! and for the platform `GET /healthz` (the process answers), `GET /readyz` (`503` with the
//! failing parts while the policy, the state store or the audit sink fails its probe) and
//! `GET /metrics` (Prometheus text: `zta_decisions_total` by effect and reason,
//! `zta_decision_duration_seconds`, `zta_state_store_errors_total`, the audit sink's
//! `zta_audit_queue_depth` when it keeps a queue, and `zta_jwks_fetches_total{result}` of the
//! [`ServerConfig::identity_providers`] that fetch signing keys). Over HTTPS with
//! [`ServerConfig::tls`], plain HTTP without.
//!
//! The subject carries the agent's own credential in `subject.properties.credential`, in the
//! JSON shape of [`Credential`] (`{"bearer": ...}`, ...); the guard verifies it on every
//! evaluation, and a `subject.id`, when given, must be the agent it proves. A trusted
//! enforcement point ([`ServerConfig::trusted_peps`]), proving who it is with its own
//! credential in `Authorization: Bearer`, may instead name `subject.id` without the subject's
//! credential; the audit record names it (`detail.asserted_by`). The action name is
//! a ZTA action type (`call_tool`, `send_message`, `execute_task`, `handoff`, `delegate`, or a
//! custom verb); a resource `{"type": "tool", "id": "web_search"}` names the tool of a
//! `call_tool`, `{"type": "agent", "id": "writer_bot"}` the target of an agent-to-agent action,
//! any other resource is the request's resource (its `properties` its attributes);
//! `action.properties.name` names the message type, task type, handoff or delegation scope
//! (default: the action name). The request's `context` is the request context (reserved
//! attributes refused, as always).
//!
//! Every evaluation is one `Guard` check, authenticated, decided and audited on its own. The
//! answer is `{"decision": bool, "context": {"id": <request id>, "reason": <safe reason>}}`:
//!
//! | request | status | answer |
//! |---|---|---|
//! | an evaluation the guard decided, a subject credential that fails included | `200` | the decision; a deny with its safe reason |
//! | no credential at all (no subject credential, and no `Authorization: Bearer` caller asserting a named subject) | `401` | `{"error", "request_id"}` and `WWW-Authenticate: Bearer` |
//! | a caller asserting a subject whose own credential fails (invalid, expired, revoked, suspended) | `401` | the same |
//! | not an evaluation at all (malformed JSON, a missing subject or action) | `400` | `{"error"}` |
//! | a body over the limit | `413` | |
//!
//! A `401` is still a guard check: refused, audited (`request_id` is its record) and counted in
//! `/metrics` like any denial. A caller that proves who it is but is not a trusted enforcement
//! point, and a backend that fails, are decisions (`200`, deny). A batch decides nothing when
//! one of its items carries no credential: that item's audited refusal is the `401`; a caller
//! whose credential fails ends the batch with `401` at the first item that needs it.
//!
//! The native API covers what AuthZEN does not, each call audited by the guard:
//!
//! | call | body | answer |
//! |---|---|---|
//! | `POST /zta/v1/login` | a primary credential (`{"assertion": ...}`, ...) | a session pair |
//! | `POST /zta/v1/refresh` | `{"refresh_token": ...}` | the next pair (a replay is `401` and ends the family) |
//! | `POST /zta/v1/revoke` | `{"token": ...}` | that token revoked; the caller proves who it is |
//! | `POST /zta/v1/introspect` | `{"token": ...}` | `{"active": true, "agent_id", "auth_method", "exp"}` or `{"active": false}` |
//! | `POST /zta/v1/agents/{id}/revoke` | `{"reason": ...}` (optional) | the agent's sessions ended: by itself or an operator |
//! | `POST /zta/v1/agents/{id}/suspend`, `.../reinstate` | the same | operators only |
//!
//! | `GET /zta/v1/audit?agent=&action=&effect=&event=&reason=&since=&until=&request_id=&limit=` | | `{"records", "more"}`: the latest matching audit records, oldest first; operators only |
//!
//! The audit query reads [`ServerConfig::audit_source`]; `/ui` is the operators' page over it
//! (a session cookie from an operator's login; see the `ui` module).
//!
//! The revocations and the agent calls take the caller's own credential in
//! `Authorization: Bearer`. Operators are the agents listed in [`ServerConfig::operators`];
//! with none listed, suspend and reinstate are `403`.
//! Errors are `{"error": <safe reason>, "request_id": <audit record id>}`: `400` for a body
//! that is not the call's, `401` for a credential that does not hold, `403` for a caller that
//! may not, `413` over the body limit, `503` when a backend failed.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use zta_core::{
    Action, ActionKind, AgentId, AuditSource, AuthError, Credential, Denied, DenyReason, Guard,
    IdentityProvider, Request, Resource,
};

use crate::metrics::Outcome;

mod audit;
mod metrics;
mod native;
mod search;
mod tls;
mod ui;

pub use tls::TlsConfig;

/// Settings of the service (`server:` in `zta.yaml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Where to listen (default `127.0.0.1:8180`: loopback unless said otherwise).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The URL callers reach the service at, for the discovery document (default
    /// `http://<listen>`).
    #[serde(default)]
    pub public_url: Option<String>,
    /// Largest request body accepted, in bytes (default 64 KiB); larger is `413`.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Most evaluations in one batch (default 64); more is `400`.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Longest a request may run (default `10s`); a request still running then is `503`.
    #[serde(default = "default_request_timeout", deserialize_with = "nonzero")]
    pub request_timeout: Duration,
    /// The agents that may suspend and reinstate agents, and revoke any agent's sessions,
    /// proving it with their own bearer credential (default none: those calls are `403`).
    #[serde(default)]
    pub operators: Vec<AgentId>,
    /// The trusted enforcement points: agents that, proving it with their own bearer
    /// credential in the `Authorization` header, may name an evaluation's `subject.id` without
    /// the subject's credential (default none). The audit record names the one that did.
    #[serde(default)]
    pub trusted_peps: Vec<AgentId>,
    /// Serve HTTPS with this certificate and key (default: plain HTTP, for loopback or behind
    /// a TLS-terminating proxy).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// The guard's identity providers, whose signing-key fetches `/metrics` counts
    /// (`zta_jwks_fetches_total`; left out while none reports any). Not read from the config:
    /// the facade's `Built::identity_providers` are these.
    #[serde(skip)]
    pub identity_providers: Vec<Arc<dyn IdentityProvider>>,
    /// The audit store operators read through `GET /zta/v1/audit` and `/ui` (without one,
    /// those answer `404`). Not read from the config: the facade's `Built::audit_source` is
    /// this (the first `jsonl`, `postgres` or `sqlite` sink of `audit:`).
    #[serde(skip)]
    pub audit_source: Option<Arc<dyn AuditSource>>,
    /// What monitoring has done, read at each scrape for `/metrics` (`zta_monitor_*`; left
    /// out without it). Not read from the config: the facade's `Built::monitor` reports it.
    #[serde(skip)]
    pub monitor: Option<MonitorReport>,
}

/// Reads monitoring's counts (see [`ServerConfig::monitor`]).
#[derive(Clone)]
pub struct MonitorReport(pub Arc<dyn Fn() -> MonitorCounts + Send + Sync>);

impl std::fmt::Debug for MonitorReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MonitorReport").field(&(self.0)()).finish()
    }
}

/// Monitoring's counts since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonitorCounts {
    /// Alerts raised (dry-run detectors included).
    pub alerts: u64,
    /// Responses carried out (suspensions, revocations).
    pub responses: u64,
    /// Failures while detecting or responding (the state store or the audit sink failed).
    pub errors: u64,
    /// Alerts the webhook delivered, and alerts it gave up on (`None` without a webhook).
    pub webhook: Option<(u64, u64)>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8180))
}
fn default_max_body() -> usize {
    64 * 1024
}
fn default_max_batch() -> usize {
    64
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(10)
}

/// A duration (`"10s"`) longer than zero. Checked in the visitor, so that a config reader
/// places the error at the value.
fn nonzero<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    struct Limit;
    impl serde::de::Visitor<'_> for Limit {
        type Value = Duration;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a duration such as `10s`")
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Duration, E> {
            let limit = zta_core::duration::parse(text).map_err(E::custom)?;
            if limit.is_zero() {
                return Err(E::custom("must be longer than zero"));
            }
            Ok(limit)
        }
    }
    d.deserialize_str(Limit)
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            public_url: None,
            max_body_bytes: default_max_body(),
            max_batch: default_max_batch(),
            request_timeout: default_request_timeout(),
            operators: Vec::new(),
            trusted_peps: Vec::new(),
            tls: None,
            identity_providers: Vec::new(),
            audit_source: None,
            monitor: None,
        }
    }
}

#[derive(Debug)]
struct Shared {
    guard: Guard,
    base: String,
    max_batch: usize,
    operators: Vec<AgentId>,
    trusted_peps: Vec<AgentId>,
    identity_providers: Vec<Arc<dyn IdentityProvider>>,
    audit_source: Option<Arc<dyn AuditSource>>,
    monitor: Option<MonitorReport>,
    /// Whether the service is reached over HTTPS (the `/ui` cookie is then `Secure`).
    https: bool,
    metrics: metrics::Metrics,
}

/// The service's routes around `guard`.
pub fn router(guard: Guard, config: &ServerConfig) -> Router {
    let base = config.public_url.clone().unwrap_or_else(|| {
        let scheme = if config.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", config.listen)
    });
    let shared = Arc::new(Shared {
        guard,
        base: base.trim_end_matches('/').to_owned(),
        max_batch: config.max_batch,
        operators: config.operators.clone(),
        trusted_peps: config.trusted_peps.clone(),
        identity_providers: config.identity_providers.clone(),
        audit_source: config.audit_source.clone(),
        monitor: config.monitor.clone(),
        https: config.tls.is_some() || base.starts_with("https://"),
        metrics: metrics::Metrics::default(),
    });
    Router::new()
        .merge(native::routes())
        .merge(audit::routes())
        .merge(ui::routes())
        .route("/access/v1/evaluation", post(evaluation))
        .route("/access/v1/evaluations", post(evaluations))
        .route("/access/v1/search/action", post(search::search_action))
        .route("/.well-known/authzen-configuration", get(metadata))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(middleware::from_fn_with_state(config.request_timeout, time_limit))
        .with_state(shared)
}

/// Answers `503` for a request still running after `limit`, and drops its work: a check cut
/// off before its permit was returned permits nothing.
async fn time_limit(State(limit): State<Duration>, request: axum::extract::Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit = %zta_core::duration::format(limit), "request timed out");
            native::error(StatusCode::SERVICE_UNAVAILABLE, "request timed out", None)
        }
    }
}

/// Serves `guard` on `config.listen` until `shutdown` completes: then it stops accepting
/// connections, lets the requests in flight finish (each within the time limit) and flushes
/// the audit sink; a flush that fails is the error.
pub async fn serve(
    guard: Guard,
    config: &ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    serve_on(listener, guard, config, shutdown).await
}

/// [`serve`] on a listener bound already (to learn the port of `127.0.0.1:0` first).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    guard: Guard,
    config: &ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(guard.clone(), config);
    match &config.tls {
        Some(tls) => {
            let tls = tls.load()?;
            tracing::info!(listen = %listener.local_addr()?, "zta serve: AuthZEN evaluation API ready (HTTPS)");
            tls::serve(listener, tls, app, shutdown).await;
        }
        None => {
            tracing::info!(listen = %listener.local_addr()?, "zta serve: AuthZEN evaluation API ready");
            // The peer address is what logins record as their source (see `native::peer`).
            let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
        }
    }
    guard.audit_sink().flush().await.map_err(std::io::Error::other)
}

/// `503` with the parts that fail their probe while the policy, the state store or the audit
/// sink is unusable; `200` otherwise. What failed is logged, not shown.
async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let guard = &shared.guard;
    let (state, audit) = tokio::join!(guard.state_store().ready(), guard.audit_sink().ready());
    let mut failing = Vec::new();
    if let Err(e) = guard.policy_engine().ready() {
        tracing::warn!(error = %e, "not ready: policy");
        failing.push("policy");
    }
    if let Err(e) = state {
        tracing::warn!(error = %e, "not ready: state store");
        shared.metrics.state_error();
        failing.push("state_store");
    }
    if let Err(e) = audit {
        tracing::warn!(error = %e, "not ready: audit sink");
        failing.push("audit_sink");
    }
    if failing.is_empty() {
        Json(json!({ "ready": true })).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "ready": false, "failing": failing }))).into_response()
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let content_type = (axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
    let key_fetches = shared.identity_providers.iter().filter_map(|p| p.key_fetches()).reduce(|a, b| a + b);
    let readings = metrics::Readings {
        audit_queued: shared.guard.audit_sink().queued(),
        key_fetches,
        monitor: shared.monitor.as_ref().map(|report| (report.0)()),
    };
    ([content_type], shared.metrics.render(&readings)).into_response()
}

async fn metadata(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let base = &shared.base;
    Json(json!({
        "policy_decision_point": base,
        "access_evaluation_endpoint": format!("{base}/access/v1/evaluation"),
        "access_evaluations_endpoint": format!("{base}/access/v1/evaluations"),
        "search_action_endpoint": format!("{base}/access/v1/search/action"),
    }))
}

/// One evaluation as sent: every part optional here, because a batch item inherits what it
/// leaves out from the batch's top level.
#[derive(Debug, Clone, Default, Deserialize)]
struct Parts {
    subject: Option<Subject>,
    action: Option<ActionIn>,
    resource: Option<ResourceIn>,
    context: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Deserialize)]
struct Subject {
    #[serde(rename = "type")]
    _kind: String,
    id: Option<String>,
    #[serde(default)]
    properties: SubjectProperties,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct SubjectProperties {
    credential: Option<Credential>,
}

#[derive(Debug, Clone, Deserialize)]
struct ActionIn {
    name: String,
    #[serde(default)]
    properties: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
struct ResourceIn {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    #[serde(default)]
    properties: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
struct Batch {
    #[serde(flatten)]
    defaults: Parts,
    #[serde(default)]
    evaluations: Vec<Parts>,
    #[serde(default)]
    options: Options,
}

#[derive(Debug, Default, Deserialize)]
struct Options {
    #[serde(default)]
    evaluations_semantic: Semantic,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Semantic {
    #[default]
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

/// A request that is not an evaluation: `400` with what is wrong.
fn bad_request(message: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message.into() }))).into_response()
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("not an AuthZEN request: {e}"))
}

/// The credential of the `Authorization: Bearer` header, if there is one.
fn caller(headers: &HeaderMap) -> Option<Credential> {
    Credential::from_authorization(headers.get(header::AUTHORIZATION)?.as_bytes())
}

async fn evaluation(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let parts: Parts = match parse(&body) {
        Ok(parts) => parts,
        Err(message) => return bad_request(message),
    };
    match decide(&shared, caller(&headers).as_ref(), parts).await {
        Ok(answer) => Json(answer).into_response(),
        Err(refused) => refused.into_response(),
    }
}

async fn evaluations(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let batch: Batch = match parse(&body) {
        Ok(batch) => batch,
        Err(message) => return bad_request(message),
    };
    let caller = caller(&headers);
    if batch.evaluations.is_empty() {
        return match decide(&shared, caller.as_ref(), batch.defaults).await {
            Ok(answer) => Json(answer).into_response(),
            Err(refused) => refused.into_response(),
        };
    }
    if batch.evaluations.len() > shared.max_batch {
        return bad_request(format!("more than {} evaluations in one request", shared.max_batch));
    }
    // Every item is complete before any is decided: a malformed batch decides nothing.
    let mut items: Vec<Parts> =
        batch.evaluations.into_iter().map(|item| inherit(item, &batch.defaults)).collect();
    if let Some((i, message)) = items.iter().enumerate().find_map(|(i, p)| missing(p).map(|m| (i, m))) {
        return bad_request(format!("evaluation {i}: {message}"));
    }
    // Nor does a batch with an item that carries no credential at all: that item's refusal,
    // audited by the guard, is the whole answer.
    if let Some(i) = items.iter().position(|p| without_credential(p, caller.as_ref())) {
        let item = items.swap_remove(i);
        return match decide(&shared, caller.as_ref(), item).await {
            Ok(answer) => Json(answer).into_response(),
            Err(refused) => refused.into_response(),
        };
    }
    let semantic = batch.options.evaluations_semantic;
    let mut answers = Vec::with_capacity(items.len());
    for item in items {
        // An enforcement point whose own credential fails ends the batch: `401`, and no
        // decision is answered (those made before it are audited, as every check is).
        let answer = match decide(&shared, caller.as_ref(), item).await {
            Ok(answer) => answer,
            Err(refused) => return refused.into_response(),
        };
        let allowed = answer.get("decision") == Some(&Value::Bool(true));
        answers.push(answer);
        let stop = match semantic {
            Semantic::ExecuteAll => false,
            Semantic::DenyOnFirstDeny => !allowed,
            Semantic::PermitOnFirstPermit => allowed,
        };
        if stop {
            break;
        }
    }
    Json(json!({ "evaluations": answers })).into_response()
}

/// `item` with what it leaves out taken from the batch's top level.
fn inherit(item: Parts, defaults: &Parts) -> Parts {
    Parts {
        subject: item.subject.or_else(|| defaults.subject.clone()),
        action: item.action.or_else(|| defaults.action.clone()),
        resource: item.resource.or_else(|| defaults.resource.clone()),
        context: item.context.or_else(|| defaults.context.clone()),
    }
}

/// What an evaluation lacks, if anything.
fn missing(parts: &Parts) -> Option<&'static str> {
    match (&parts.subject, &parts.action) {
        (None, _) => Some("`subject` is required"),
        (_, None) => Some("`action` is required"),
        _ => None,
    }
}

/// Whether an evaluation carries no credential at all: neither the subject's own nor a
/// `caller` asserting a named subject.
fn without_credential(parts: &Parts, caller: Option<&Credential>) -> bool {
    parts
        .subject
        .as_ref()
        .is_some_and(|s| s.properties.credential.is_none() && (s.id.is_none() || caller.is_none()))
}

/// Why an evaluation got no decision.
#[derive(Debug)]
enum Refused {
    /// Not an evaluation at all: `400` with what is wrong.
    Malformed(String),
    /// Nobody authenticated: no credential at all, or an enforcement point's own credential
    /// failed. `401`; the guard audited the refusal under `request_id`.
    Unauthenticated { reason: String, request_id: String },
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Self::Malformed(message) => bad_request(message),
            Self::Unauthenticated { reason, request_id } => {
                native::error(StatusCode::UNAUTHORIZED, reason, Some(request_id))
            }
        }
    }
}

/// Decides one evaluation through the guard. `Err` for a request that cannot be an evaluation
/// (`400`) and for one nobody authenticated (`401`, audited by the guard): no credential at
/// all, or an enforcement point (`caller`, its `Authorization` header) whose own credential
/// fails. Every other failure, the subject's credential included, is a denial the guard
/// audited: the decision is the PDP's answer about the subject. A subject without a credential
/// is the `caller`'s assertion, which the guard grants only to a trusted enforcement point.
async fn decide(shared: &Shared, caller: Option<&Credential>, parts: Parts) -> Result<Value, Refused> {
    let started = Instant::now();
    if let Some(message) = missing(&parts) {
        return Err(Refused::Malformed(message.to_owned()));
    }
    let anonymous = without_credential(&parts, caller);
    let (Some(subject), Some(action)) = (parts.subject, parts.action) else {
        return Err(Refused::Malformed("`subject` and `action` are required".to_owned()));
    };
    let refuse = |reason: &str| {
        shared.metrics.decided(Outcome::InvalidRequest, started.elapsed());
        Ok(deny(None, reason))
    };
    // Without a credential, `401` comes first, whatever else is wrong.
    let request = match request(action, parts.resource, parts.context.unwrap_or_default()) {
        Ok(request) => request,
        Err(_) if anonymous => {
            Request::new(Action::custom(MALFORMED_ACTION).map_err(|e| Refused::Malformed(e.to_string()))?)
        }
        Err(reason) => return refuse(&reason),
    };
    let named = match subject.id.as_deref().map(AgentId::new) {
        Some(Ok(named)) => Some(named),
        Some(Err(_)) if !anonymous => return refuse("`subject.id` is not a valid agent id"),
        Some(Err(_)) | None => None,
    };
    let guard = &shared.guard;
    let (outcome, asserted) = match (subject.properties.credential, &named, caller) {
        (Some(credential), Some(named), _) => (guard.check_as(&credential, named, request).await, None),
        (Some(credential), None, _) => (guard.check(&credential, request).await, None),
        (None, Some(named), Some(caller)) => {
            (guard.check_asserted(caller, &shared.trusted_peps, named, request).await, Some(named))
        }
        // No credential at all still goes through the guard, which refuses and audits it.
        (None, _, _) => {
            let outcome = guard.check(&Credential::bearer(""), request).await;
            shared.metrics.decided(Outcome::of(&outcome), started.elapsed());
            let request_id = match &outcome {
                Ok(permit) => permit.request_id(),
                Err(denied) => denied.request_id(),
            };
            return Err(Refused::Unauthenticated {
                reason: NO_CREDENTIAL.to_owned(),
                request_id: request_id.to_string(),
            });
        }
    };
    shared.metrics.decided(Outcome::of(&outcome), started.elapsed());
    Ok(match outcome {
        Ok(permit) => json!({ "decision": true, "context": { "id": permit.request_id().to_string() } }),
        Err(denied) => {
            if let Some(subject) = asserted
                && caller_unauthenticated(&denied, subject, &shared.trusted_peps)
            {
                return Err(Refused::Unauthenticated {
                    reason: denied.reason().to_string(),
                    request_id: denied.request_id().to_string(),
                });
            }
            deny(Some(denied.request_id().to_string()), &denied.reason().to_string())
        }
    })
}

/// The `401` answer to an evaluation without any credential.
const NO_CREDENTIAL: &str = "no credential: send the subject's in `subject.properties.credential`, or, as a trusted enforcement point, your own in `Authorization: Bearer`";

/// The action audited for an evaluation without a credential whose action cannot be read
/// either (`call_tool` without a tool, ...).
const MALFORMED_ACTION: &str = "invalid_evaluation";

/// Whether `denied`, the answer to an enforcement point asserting `subject`, refuses the
/// enforcement point itself because its own credential does not hold (invalid, expired,
/// revoked, its agent suspended): then nobody authenticated. Not when the caller proved who it
/// is but may not assert (not in `trusted`), when the refusal is about the subject, or when a
/// backend failed: those are denials about the subject.
fn caller_unauthenticated(denied: &Denied, subject: &AgentId, trusted: &[AgentId]) -> bool {
    let DenyReason::Unauthenticated(e) = denied.reason() else { return false };
    if e.is_unavailable() {
        return false;
    }
    match denied.agent_id() {
        // The caller's credential proved nobody.
        None => true,
        Some(agent) if agent == subject => false,
        // The caller proved itself; refused because it is not trusted, or because its own
        // standing (revoked, suspended) is gone.
        Some(agent) => trusted.contains(agent) || !matches!(e, AuthError::Invalid { .. }),
    }
}

fn deny(id: Option<String>, reason: &str) -> Value {
    let mut context = Map::new();
    if let Some(id) = id {
        context.insert("id".to_owned(), Value::String(id));
    }
    context.insert("reason".to_owned(), Value::String(reason.to_owned()));
    json!({ "decision": false, "context": context })
}

/// The guard request an AuthZEN action, resource and context describe.
fn request(
    action: ActionIn,
    resource: Option<ResourceIn>,
    context: Map<String, Value>,
) -> Result<Request, String> {
    let kind = ActionKind::from_verb(&action.name);
    let named = || match action.properties.get("name") {
        Some(Value::String(name)) => name.clone(),
        _ => action.name.clone(),
    };
    let (action, resource, target) = match (kind, resource) {
        (Some(ActionKind::ToolCall), Some(r)) if r.kind == "tool" => (Action::tool_call(r.id), None, None),
        (Some(ActionKind::ToolCall), _) => {
            return Err("`call_tool` needs a resource of type `tool`".to_owned());
        }
        (Some(kind), resource) => {
            let action = Action::new(kind, named()).map_err(|e| e.to_string())?;
            match resource {
                Some(r) if r.kind == "agent" => {
                    let target =
                        AgentId::new(&r.id).map_err(|_| "the resource is not a valid agent id".to_owned())?;
                    (action, None, Some(target))
                }
                other => (action, other, None),
            }
        }
        (None, resource) => (Action::custom(&action.name).map_err(|e| e.to_string())?, resource, None),
    };
    let mut request = Request::new(action);
    if let Some(r) = resource {
        let mut res = Resource::new(r.kind, r.id);
        for (key, value) in r.properties {
            res = res.with_attribute(key, value);
        }
        request = request.with_resource(res);
    }
    if let Some(target) = target {
        request = request.with_target(target);
    }
    for (key, value) in context {
        request = request.with_context(key, value);
    }
    Ok(request)
}
