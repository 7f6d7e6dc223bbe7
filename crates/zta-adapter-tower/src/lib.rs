//! A tower [`Layer`] that puts the ZTA [`Guard`] in front of an HTTP service (axum, hyper,
//! tonic): every request must carry a bearer credential, is mapped to the [`Request`] it
//! performs, and reaches the service only with a [`Permit`] for exactly that request.
//!
//! ```no_run
//! # fn demo(guard: zta_core::Guard) {
//! use axum::{Extension, Router, routing::post};
//! use zta_adapter_tower::{Authorized, GuardLayer};
//! use zta_core::{Action, Request};
//!
//! let app: Router = Router::new()
//!     .route("/tools/{name}", post(|Extension(ok): Extension<Authorized>| async move {
//!         format!("running for {}", ok.permit().principal().agent_id)
//!     }))
//!     .layer(GuardLayer::new(guard, |parts: &http::request::Parts| {
//!         let tool = parts.uri.path().strip_prefix("/tools/")?;
//!         Some(Request::new(Action::tool_call(tool)))
//!     }));
//! # }
//! ```
//!
//! To record where denied requests came from (`detail.source`, which monitoring's
//! `source_failures` counts), set [`Request::with_source`] in the mapping function from the
//! connection information your server provides (axum: `ConnectInfo<SocketAddr>` in the
//! request's extensions, when served with `into_make_service_with_connect_info`).
//!
//! Answers without calling the service: `401` (with `WWW-Authenticate: Bearer`) when the
//! credential is missing or does not verify, `400` for a request the guard refuses as malformed,
//! `403` when policy denies or the route maps to no action, `503` when the audit log cannot take
//! the record. The body is the guard's safe reason with the request id; the `x-request-id`
//! header repeats the id. Every answer is audited (by the guard, or for an unmapped route by
//! this layer through the guard's sink).

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use tower::{Layer, Service};
use zta_core::{
    AuditEvent, AuditRecord, Credential, Denied, DenyReason, Durability, Effect, Guard, Permit, Request,
};

/// Longest route (method and path) quoted in an audit record; it is the caller's input.
const MAX_ROUTE_IN_AUDIT: usize = 200;

/// The proof, in the request's extensions, that the request was authenticated, authorized and
/// audited. Handlers take it with `Extension<Authorized>`.
#[derive(Debug, Clone)]
pub struct Authorized(Arc<Permit>);

impl Authorized {
    /// The permit the guard issued for this request.
    pub fn permit(&self) -> &Permit {
        &self.0
    }
}

/// Wraps services in a [`GuardService`]. `map` says what each HTTP request does: the
/// [`Request`] (action, resource, target, context) the guard decides on, or `None` for a route
/// that does nothing the policy could allow (it is refused with `403`).
pub struct GuardLayer<M> {
    guard: Guard,
    map: Arc<M>,
}

impl<M> GuardLayer<M>
where
    M: Fn(&Parts) -> Option<Request> + Send + Sync + 'static,
{
    /// A layer checking every request with `guard`, as `map` describes it.
    pub fn new(guard: Guard, map: M) -> Self {
        Self { guard, map: Arc::new(map) }
    }
}

impl<M> Clone for GuardLayer<M> {
    fn clone(&self) -> Self {
        Self { guard: self.guard.clone(), map: Arc::clone(&self.map) }
    }
}

impl<M> std::fmt::Debug for GuardLayer<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardLayer").finish_non_exhaustive()
    }
}

impl<S, M> Layer<S> for GuardLayer<M> {
    type Service = GuardService<S, M>;

    fn layer(&self, inner: S) -> Self::Service {
        GuardService { inner, guard: self.guard.clone(), map: Arc::clone(&self.map) }
    }
}

/// The service [`GuardLayer`] makes: checks each request, then calls the wrapped service with
/// an [`Authorized`] extension, or answers the denial itself.
pub struct GuardService<S, M> {
    inner: S,
    guard: Guard,
    map: Arc<M>,
}

impl<S: Clone, M> Clone for GuardService<S, M> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), guard: self.guard.clone(), map: Arc::clone(&self.map) }
    }
}

impl<S, M> std::fmt::Debug for GuardService<S, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardService").finish_non_exhaustive()
    }
}

impl<S, M, B, R> Service<http::Request<B>> for GuardService<S, M>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send,
    M: Fn(&Parts) -> Option<Request> + Send + Sync + 'static,
    B: Send + 'static,
    R: From<String> + Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The service polled ready is the one that must be called; a fresh clone stays behind.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let (guard, map) = (self.guard.clone(), Arc::clone(&self.map));
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let Some(checked) = map(&parts) else {
                return Ok(unmapped(&guard, &parts).await);
            };
            // A missing or unreadable credential still goes through the guard, which refuses
            // and audits it like any wrong one.
            let credential = bearer(&parts.headers).unwrap_or_else(|| Credential::bearer(""));
            match guard.check(&credential, checked).await {
                Ok(permit) => {
                    parts.extensions.insert(Authorized(Arc::new(permit)));
                    inner.call(http::Request::from_parts(parts, body)).await
                }
                Err(denied) => Ok(denial(&denied)),
            }
        })
    }
}

/// The credential of the one `Authorization: Bearer` header; `None` for none, several, or one
/// [`Credential::from_authorization`] refuses.
fn bearer(headers: &HeaderMap) -> Option<Credential> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => Credential::from_authorization(value.as_bytes()),
        _ => None,
    }
}

/// The answer to a denied request.
fn denial<R: From<String>>(denied: &Denied) -> http::Response<R> {
    let status = match denied.reason() {
        DenyReason::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        DenyReason::ReservedAttribute(_) | DenyReason::InvalidRequest(_) => StatusCode::BAD_REQUEST,
        DenyReason::AuditUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::FORBIDDEN,
    };
    let mut response = text(status, denied.to_string());
    if let Ok(id) = HeaderValue::from_str(&denied.request_id().to_string()) {
        response.headers_mut().insert("x-request-id", id);
    }
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
    }
    response
}

/// Refuses a route that maps to no action, audited through the guard's sink.
async fn unmapped<R: From<String>>(guard: &Guard, parts: &Parts) -> http::Response<R> {
    let route: String =
        format!("{} {}", parts.method, parts.uri.path()).chars().take(MAX_ROUTE_IN_AUDIT).collect();
    let record = AuditRecord::new(AuditEvent::Authorization, Effect::Deny)
        .with_reason("no action is defined for this route")
        .with_detail("route", route);
    let id = record.id;
    if let Err(e) = guard.audit_sink().append(record, Durability::Queued).await {
        tracing::error!(error = %e, "the audit sink refused the record of an unmapped route");
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("denied: audit log unavailable (request {id})"),
        );
    }
    text(StatusCode::FORBIDDEN, format!("denied: no action is defined for this route (request {id})"))
}

fn text<R: From<String>>(status: StatusCode, body: String) -> http::Response<R> {
    let mut response = http::Response::new(R::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}
