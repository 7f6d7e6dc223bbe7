//! [`McpGateway`]: the MCP server agents talk to, and the client of every upstream.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    extract::{ConnectInfo, Request as HttpRequest, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use http::{HeaderValue, StatusCode, header, request::Parts};
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, ErrorCode, GetPromptRequestParams, GetPromptResponse,
        Implementation, ListPromptsResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
        ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::never::NeverSessionManager,
    },
};
use serde_json::{Value, json};
use zta_core::{
    Action, AuditEvent, AuditRecord, AuthError, AuthzRequest, Credential, Denied, DenyReason, Durability,
    Effect, Guard, Permit, Principal, Request, Resource,
};

use crate::{
    Error, GatewayConfig,
    approvals::Approver,
    local::LocalAgent,
    obligations,
    pins::{self, Pins, Verdict},
    upstream::{self, Upstream, UpstreamError},
};

/// The JSON-RPC error code of a request the guard denied (implementation-defined range).
pub const DENIED: ErrorCode = ErrorCode(-32001);

/// Separates an upstream's name from its tool's in the names agents see: `files__read_file`.
const SEPARATOR: &str = "__";

/// A zero-trust MCP gateway: agents reach their tools only through it, each request with a
/// bearer credential the guard verifies.
///
/// * `tools/list` shows an agent the tools some allow rule of its policy may permit it
///   ([`PolicyEngine::permissible`](zta_core::PolicyEngine::permissible): a tool granted only
///   for some arguments is listed, one an unconditional deny always overrides is not), or,
///   with an engine that cannot tell, those allowed without arguments; `resources/list` and
///   `prompts/list` show what its policy allows without arguments; tools and prompts are
///   named `<upstream>__<name>`;
/// * `tools/call` is authorized per call by [`Guard::check`], with the tool's full name as
///   `tool_name`, and in the request context `upstream` (the upstream's name) and `arguments`
///   (the call's arguments, so a rule can test `arguments.path`); `resources/read` and
///   `prompts/get` likewise; a denial is the JSON-RPC error [`DENIED`] with the guard's safe
///   reason and the request id, and the upstream is never called;
/// * the allow's obligations ([`OBLIGATIONS`](crate::OBLIGATIONS)) are discharged before the
///   call (and `redact` after it); tool definitions are pinned (see `pins_file`);
/// * every decision is audited with the verified agent.
///
/// The agent is always the one its credential proves, never one named in MCP client info or
/// arguments.
#[derive(Clone)]
pub struct McpGateway {
    inner: Arc<Inner>,
    /// The one agent served over stdio, if this is a gateway for a local agent.
    local: Option<Arc<LocalAgent>>,
}

struct Inner {
    guard: Guard,
    config: GatewayConfig,
    upstreams: BTreeMap<String, Upstream>,
    pins: Pins,
    /// Resource URI -> the upstream that offers it (`None`: several do).
    resources: Mutex<HashMap<String, Option<String>>>,
    approver: Approver,
}

impl std::fmt::Debug for McpGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpGateway")
            .field("resource", &self.inner.config.resource)
            .field("upstreams", &self.inner.upstreams.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Who sent an MCP request: the agent of an HTTP request's bearer token, as the
/// authentication in front of the MCP service verified it (in the request's extensions), or
/// the local agent.
#[derive(Clone)]
struct Caller {
    credential: Credential,
    principal: Arc<Principal>,
    /// The peer address of its HTTP connection, recorded on its denials.
    source: Option<std::net::IpAddr>,
}

impl McpGateway {
    /// A gateway deciding with `guard` for the upstreams of `config` (connected on first use).
    pub fn new(guard: Guard, config: GatewayConfig) -> Result<Self, Error> {
        config.check()?;
        let http = upstream::http_client().map_err(|e| Error::config("upstreams", e.to_string()))?;
        let upstreams = config
            .upstreams
            .iter()
            .map(|u| (u.name.clone(), Upstream::new(u.clone(), http.clone())))
            .collect();
        let pins = Pins::open(config.pins_file.clone())?;
        let resources = Mutex::new(HashMap::new());
        let approver = Approver::new(&config)?;
        let inner = Inner { guard, config, upstreams, pins, resources, approver };
        Ok(Self { inner: Arc::new(inner), local: None })
    }

    /// The HTTP routes: MCP over streamable HTTP at the path of `resource`, behind bearer
    /// authentication (`401` with `WWW-Authenticate` naming the metadata), and the
    /// protected-resource metadata (RFC 9728) under `/.well-known/oauth-protected-resource`.
    pub fn router(&self) -> Router {
        let config = &self.inner.config;
        let mcp_config = StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            .with_sse_keep_alive(None)
            .with_allowed_hosts(allowed_hosts(config))
            .with_max_request_body_bytes(config.max_request_bytes);
        let gateway = self.clone();
        let mcp: StreamableHttpService<McpGateway, NeverSessionManager> =
            StreamableHttpService::new(move || Ok(gateway.clone()), Arc::default(), mcp_config);
        let path = resource_path(&config.resource);
        let metadata = format!("/.well-known/oauth-protected-resource{}", path.trim_end_matches('/'));
        let mcp = Router::new()
            .route_service(&path, mcp)
            .layer(middleware::from_fn_with_state(self.clone(), authenticate));
        let mut router = Router::new().route(&metadata, get(protected_resource)).merge(mcp);
        if metadata != "/.well-known/oauth-protected-resource" {
            router = router.route("/.well-known/oauth-protected-resource", get(protected_resource));
        }
        router.with_state(self.clone())
    }

    /// Serves [`router`](Self::router) on `listener` until `shutdown` completes, then flushes
    /// the audit log. (Not `serve`: rmcp's `ServiceExt::serve` has that name.)
    pub async fn serve_on(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router().into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await?;
        self.inner.guard.audit_sink().flush().await.map_err(std::io::Error::other)
    }

    /// Serves one local agent over stdin and stdout until it goes away: the agent that
    /// `credential` proves (logged in now; its session refreshed as needed), every request
    /// verified and authorized like one over HTTP.
    pub async fn serve_stdio(&self, credential: Credential) -> Result<(), Error> {
        self.serve_local(credential, rmcp::transport::stdio()).await
    }

    /// [`serve_stdio`](Self::serve_stdio) over another byte stream (a pipe, a socket).
    pub async fn serve_local<R, W>(&self, credential: Credential, (read, write): (R, W)) -> Result<(), Error>
    where
        R: tokio::io::AsyncRead + Send + Unpin + 'static,
        W: tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let agent = LocalAgent::login(&self.inner.guard, credential).await.map_err(|denied| {
            Error::config("credential", format!("the local agent cannot log in: {denied}"))
        })?;
        let gateway = Self { inner: self.inner.clone(), local: Some(Arc::new(agent)) };
        let running = rmcp::ServiceExt::serve(gateway, (read, write))
            .await
            .map_err(|e| Error::config("stdio", e.to_string()))?;
        let _ = running.waiting().await;
        self.inner.guard.audit_sink().flush().await.map_err(|e| Error::config("audit", e.to_string()))
    }

    /// The verified caller of an MCP request: the agent of the HTTP request's bearer token,
    /// or the local agent.
    async fn caller(&self, context: &RequestContext<RoleServer>) -> Result<Caller, McpError> {
        let over_http = context.extensions.get::<Parts>().and_then(|parts| parts.extensions.get::<Caller>());
        if let Some(caller) = over_http {
            return Ok(caller.clone());
        }
        let Some(local) = &self.local else {
            return Err(McpError::new(DENIED, "denied: unauthenticated", None));
        };
        let credential = local.credential(&self.inner.guard).await;
        match self.inner.guard.authenticate(&credential).await {
            Ok(principal) => Ok(Caller { credential, principal, source: None }),
            Err(e) => {
                let record = refused_authentication(&credential, &e).with_detail("mcp", "stdio request");
                let id = record.id;
                self.audit(record).await?;
                Err(McpError::new(
                    DENIED,
                    format!("denied: {e} (request {id})"),
                    Some(json!({"request_id": id.to_string(), "reason": "unauthenticated"})),
                ))
            }
        }
    }

    /// The address the config says to listen on.
    pub fn listen(&self) -> std::net::SocketAddr {
        self.inner.config.listen
    }

    /// The URL of this gateway's protected-resource metadata.
    fn metadata_url(&self) -> String {
        let resource = &self.inner.config.resource;
        let path = resource_path(resource);
        let origin = resource.strip_suffix(path.as_str()).unwrap_or(resource).trim_end_matches('/');
        format!("{origin}/.well-known/oauth-protected-resource{}", path.trim_end_matches('/'))
    }

    /// The tools `upstream` offers now, each named `<upstream>__<tool>` and checked against
    /// its pin: a changed definition is left out (and audited the first time it is seen).
    async fn pinned_tools(&self, upstream: &Upstream) -> Result<Vec<Tool>, UpstreamError> {
        let mut trusted_tools = Vec::new();
        for mut tool in upstream.tools().await? {
            let name = format!("{}{SEPARATOR}{}", upstream.name, tool.name);
            let definition = pins::definition(
                &tool.name,
                tool.description.as_deref(),
                &Value::Object((*tool.input_schema).clone()),
            );
            let verdict = self.inner.pins.check(&name, &definition);
            if let Ok(mut verdicts) = upstream.verdicts.lock() {
                verdicts.insert(name.clone(), verdict == Verdict::Pinned);
            }
            match verdict {
                Verdict::Pinned => {
                    tool.name = name.into();
                    trusted_tools.push(tool);
                }
                Verdict::Changed { diff, news } => {
                    if news {
                        tracing::warn!(target: "zta_adapter_mcp", tool = %name, "a tool's definition changed; hidden until approved");
                        let record = AuditRecord::new(AuditEvent::Admin, Effect::Deny)
                            .with_reason("tool definition changed: hidden and refused until approved")
                            .with_detail("signal", "tool_definition_changed")
                            .with_detail("tool", name.clone())
                            .with_detail("diff", diff);
                        // The change stays hidden whether or not the record was taken.
                        let _ = self.audit(record).await;
                    }
                }
            }
        }
        Ok(trusted_tools)
    }

    /// Whether `tool`'s definition matches its pin (`None`: the upstream has no such tool),
    /// listing its upstream first if this gateway has not seen the tool since the upstream
    /// last said its tools changed.
    async fn is_pinned(&self, upstream: &Upstream, tool: &str) -> Result<Option<bool>, UpstreamError> {
        let known = |upstream: &Upstream| upstream.verdicts.lock().ok().and_then(|v| v.get(tool).copied());
        if let Some(pinned) = known(upstream) {
            return Ok(Some(pinned));
        }
        self.pinned_tools(upstream).await?;
        Ok(known(upstream))
    }

    /// Whether policy would allow `principal` `request` (for listing: not audited; arguments
    /// unknown, so a grant that depends on them is not seen).
    fn lists(&self, principal: &Arc<Principal>, request: Request) -> bool {
        let Ok(request) = AuthzRequest::new(principal.clone(), request, None) else {
            return false;
        };
        self.inner.guard.policy_engine().evaluate(&request).is_ok_and(|d| d.is_allowed())
    }

    /// The upstream that serves resource `uri`, as the upstreams last listed their resources
    /// (listed again when the URI is not known); `None` for none, or for several.
    async fn resource_upstream(&self, uri: &str) -> Option<&Upstream> {
        let known = |gateway: &Self| gateway.inner.resources.lock().ok().and_then(|r| r.get(uri).cloned());
        let route = match known(self) {
            Some(route) => route,
            None => {
                for upstream in self.inner.upstreams.values() {
                    let _ = self.listed_resources(upstream).await;
                }
                known(self).flatten()
            }
        };
        route.and_then(|name| self.inner.upstreams.get(&name))
    }

    /// `upstream`'s resources, remembered for routing reads.
    async fn listed_resources(
        &self,
        upstream: &Upstream,
    ) -> Result<Vec<rmcp::model::Resource>, UpstreamError> {
        let resources = upstream.resources().await?;
        if let Ok(mut routes) = self.inner.resources.lock() {
            for resource in &resources {
                routes
                    .entry(resource.uri.clone())
                    .and_modify(|route| {
                        if route.as_deref() != Some(upstream.name.as_str()) {
                            *route = None; // offered by two upstreams: read from neither
                        }
                    })
                    .or_insert_with(|| Some(upstream.name.clone()));
            }
        }
        Ok(resources)
    }

    /// Runs the guard for one MCP request of `caller`.
    async fn authorize(&self, caller: &Caller, request: Request) -> Result<Permit, McpError> {
        let request = match caller.source {
            Some(source) => request.with_source(source),
            None => request,
        };
        self.inner.guard.check(&caller.credential, request).await.map_err(|d| denial(&d))
    }

    /// Refuses a permitted call whose obligations do not hold: audited as a deny that names
    /// the permit's request.
    async fn refuse_after_permit(&self, permit: &Permit, reason: String) -> McpError {
        let mut record = AuditRecord::new(AuditEvent::Authorization, Effect::Deny)
            .with_reason(reason.clone())
            .with_detail("permit", permit.request_id().to_string());
        record.note_principal(permit.principal());
        record.action = Some(permit.request().action().clone());
        let id = record.id;
        if let Err(e) = self.audit(record).await {
            return e;
        }
        McpError::new(
            DENIED,
            format!("denied: {reason} (request {id})"),
            Some(json!({"request_id": id.to_string(), "reason": "obligation"})),
        )
    }

    async fn audit(&self, record: AuditRecord) -> Result<(), McpError> {
        let id = record.id;
        self.inner.guard.audit_sink().append(record, Durability::Queued).await.map_err(|e| {
            tracing::error!(target: "zta_adapter_mcp", error = %e, "the audit sink refused a record");
            McpError::new(DENIED, format!("denied: audit log unavailable (request {id})"), None)
        })
    }
}

/// Refuses, with `401`, a request without a bearer credential that verifies; the refusal is
/// audited. A verified one goes on with its [`Caller`].
async fn authenticate(State(gateway): State<McpGateway>, mut request: HttpRequest, next: Next) -> Response {
    // The peer, when the router is served with connection info (`McpGateway::serve` is).
    let source = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|peer| peer.0.ip());
    let refused = |error: Option<&'static str>, record: AuditRecord| {
        let gateway = gateway.clone();
        async move {
            let mut record = record.with_detail("mcp", "http request");
            if let Some(source) = source {
                record = record.with_detail("source", source.to_string());
            }
            let id = record.id;
            if gateway.audit(record).await.is_err() {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("denied: audit log unavailable (request {id})"),
                )
                    .into_response();
            }
            let mut challenge = format!("Bearer resource_metadata=\"{}\"", gateway.metadata_url());
            if let Some(error) = error {
                challenge.push_str(&format!(", error=\"{error}\""));
            }
            let mut response =
                (StatusCode::UNAUTHORIZED, format!("denied: unauthenticated (request {id})")).into_response();
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
            }
            response
        }
    };
    let mut values = request.headers().get_all(header::AUTHORIZATION).iter();
    let credential = match (values.next(), values.next()) {
        (Some(value), None) => Credential::from_authorization(value.as_bytes()),
        _ => None,
    };
    let Some(credential) = credential else {
        let record = AuditRecord::new(AuditEvent::Authorization, Effect::Deny)
            .with_reason("no bearer credential")
            .with_detail("denial", "invalid_credential");
        return refused(None, record).await;
    };
    match gateway.inner.guard.authenticate(&credential).await {
        Ok(principal) => {
            request.extensions_mut().insert(Caller { credential, principal, source });
            // The body is read here, bounded in size and time, so that a slow or endless
            // client holds nothing for long.
            let (parts, body) = request.into_parts();
            let config = &gateway.inner.config;
            let read = axum::body::to_bytes(body, config.max_request_bytes);
            let bytes = match tokio::time::timeout(config.body_timeout, read).await {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(_)) => {
                    let limit = config.max_request_bytes;
                    return (StatusCode::PAYLOAD_TOO_LARGE, format!("request body over {limit} bytes"))
                        .into_response();
                }
                Err(_) => return (StatusCode::REQUEST_TIMEOUT, "request body too slow").into_response(),
            };
            next.run(HttpRequest::from_parts(parts, axum::body::Body::from(bytes))).await
        }
        Err(e) => refused(Some("invalid_token"), refused_authentication(&credential, &e)).await,
    }
}

/// The record of a credential the guard refused, coded as the guard codes its own
/// (`detail.denial`, and the agent the credential claimed), for queries and monitoring.
fn refused_authentication(credential: &Credential, e: &AuthError) -> AuditRecord {
    let mut record = AuditRecord::new(AuditEvent::Authorization, Effect::Deny)
        .with_reason(e.detail().into_owned())
        .with_detail("denial", e.code());
    if let Some(agent) = credential.claimed_agent() {
        record = record.with_detail("claimed_agent", agent.as_str());
    }
    record
}

async fn protected_resource(State(gateway): State<McpGateway>) -> Json<Value> {
    let config = &gateway.inner.config;
    Json(json!({
        "resource": config.resource,
        "authorization_servers": config.authorization_servers,
        "bearer_methods_supported": ["header"],
        "resource_name": "ZTA MCP gateway",
    }))
}

/// The `Host` headers accepted: the configured ones, and the host agents reach the gateway by
/// (its `resource`'s), so a public `resource` needs no second setting.
fn allowed_hosts(config: &GatewayConfig) -> Vec<String> {
    let mut hosts = config.allowed_hosts.clone();
    let resource = http::Uri::try_from(config.resource.as_str()).ok();
    if let Some(authority) = resource.as_ref().and_then(http::Uri::authority) {
        for host in [authority.host(), authority.as_str()] {
            if !hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
                hosts.push(host.to_owned());
            }
        }
    }
    hosts
}

/// The path of `resource` (`/mcp` of `https://host/mcp`), `/` when it has none.
fn resource_path(resource: &str) -> String {
    http::Uri::try_from(resource)
        .ok()
        .map(|uri| uri.path().to_owned())
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| "/".to_owned())
}

/// What a permitted request that the upstream could not serve answers.
fn failed(upstream: &Upstream, permit: &Permit, error: UpstreamError) -> McpError {
    let request_id = permit.request_id();
    match error {
        UpstreamError::Mcp(error) => error,
        other => {
            tracing::warn!(target: "zta_adapter_mcp", upstream = %upstream.name, %request_id, error = %other, "upstream request failed");
            McpError::internal_error(
                format!("upstream `{}` failed (request {request_id})", upstream.name),
                Some(json!({"request_id": request_id.to_string()})),
            )
        }
    }
}

/// The guard's request for reading resource `uri` of `upstream`: action `read_resource`,
/// resource type `mcp_resource`.
fn resource_request(uri: &str, upstream: &str) -> Result<Request, McpError> {
    let action =
        Action::custom("read_resource").map_err(|e| McpError::internal_error(e.to_string(), None))?;
    Ok(Request::new(action)
        .with_resource(Resource::new("mcp_resource", uri))
        .with_context("upstream", upstream))
}

/// The guard's request for prompt `name` (full name) of `upstream`: action `get_prompt`,
/// resource type `mcp_prompt`, the prompt's arguments as `arguments`.
fn prompt_request(name: &str, upstream: &str, arguments: Value) -> Result<Request, McpError> {
    let action = Action::custom("get_prompt").map_err(|e| McpError::internal_error(e.to_string(), None))?;
    Ok(Request::new(action)
        .with_resource(Resource::new("mcp_prompt", name))
        .with_context("upstream", upstream)
        .with_context("arguments", arguments))
}

fn denial(denied: &Denied) -> McpError {
    let reason = match denied.reason() {
        DenyReason::Unauthenticated(_) => "unauthenticated",
        DenyReason::ReservedAttribute(_) | DenyReason::InvalidRequest(_) => "invalid_request",
        DenyReason::Policy(_) => "policy",
        DenyReason::Obligation(_) => "obligation",
        DenyReason::AuditUnavailable => "audit_unavailable",
        _ => "denied",
    };
    McpError::new(
        DENIED,
        denied.to_string(),
        Some(json!({"request_id": denied.request_id().to_string(), "reason": reason})),
    )
}

impl ServerHandler for McpGateway {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder().enable_tools().enable_resources().enable_prompts().build(),
        )
        .with_server_info(Implementation::new("zta-mcp-gateway", env!("CARGO_PKG_VERSION")))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let caller = self.caller(&context).await?;
        // The tools some allow rule may permit, arguments and all; an engine that cannot tell
        // leaves each tool to a decision without arguments.
        let permissible = self.inner.guard.policy_engine().permissible(&caller.principal);
        let (mut tools, mut hidden, mut failed) = (Vec::new(), 0_usize, Vec::new());
        for upstream in self.inner.upstreams.values() {
            match self.pinned_tools(upstream).await {
                Ok(offered) => {
                    for tool in offered {
                        let listed = match &permissible {
                            Some(p) => p.may_call_tool(tool.name.as_ref()),
                            None => self.lists(
                                &caller.principal,
                                Request::new(Action::tool_call(tool.name.as_ref())),
                            ),
                        };
                        if listed {
                            tools.push(tool);
                        } else {
                            hidden += 1;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(target: "zta_adapter_mcp", upstream = %upstream.name, error = %e, "listing tools failed");
                    failed.push(upstream.name.clone());
                }
            }
        }
        let mut record = AuditRecord::new(AuditEvent::Authorization, Effect::Allow)
            .with_reason("tools listed")
            .with_detail("mcp", "tools/list")
            .with_detail("listed", tools.len())
            .with_detail("hidden", hidden)
            .with_detail(
                "filter",
                if permissible.is_some() { "permissible" } else { "decided_without_arguments" },
            );
        if !failed.is_empty() {
            record = record.with_detail("unavailable", failed);
        }
        record.note_principal(&caller.principal);
        self.audit(record).await?;
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = self.caller(&context).await?;
        let name = request.name.to_string();
        let (upstream, tool) = name.split_once(SEPARATOR).unwrap_or(("", name.as_str()));
        let arguments = request.arguments.clone().map_or_else(|| json!({}), Value::Object);
        let checked = Request::new(Action::tool_call(name.as_str()))
            .with_context("upstream", upstream)
            .with_context("arguments", arguments);
        let permit = self.authorize(&caller, checked).await?;
        let request_id = permit.request_id();
        let Some(target) = self.inner.upstreams.get(upstream) else {
            return Err(McpError::invalid_params(format!("no tool `{name}` (request {request_id})"), None));
        };
        match self.is_pinned(target, &name).await {
            Ok(Some(true)) => {}
            Ok(Some(false)) => {
                let reason =
                    "the tool's definition changed and waits for approval (zta gateway approve-tool)";
                return Err(self.refuse_after_permit(&permit, reason.to_owned()).await);
            }
            Ok(None) => {
                return Err(McpError::invalid_params(
                    format!("no tool `{name}` (request {request_id})"),
                    None,
                ));
            }
            Err(e) => return Err(failed(target, &permit, e)),
        }
        let arguments = request.arguments.unwrap_or_default();
        let state = self.inner.guard.state_store().as_ref();
        let obligations = permit.obligations();
        let approvals = &self.inner.approver;
        let checked =
            obligations::before_call(obligations, state, approvals, permit.agent_id(), &name, &arguments);
        if let Err(reason) = checked.await {
            return Err(self.refuse_after_permit(&permit, reason).await);
        }
        let mut params = CallToolRequestParams::new(tool.to_owned());
        params.arguments = Some(arguments);
        let result = target.call(params).await.map_err(|e| failed(target, &permit, e))?;
        match obligations::redact(obligations, result) {
            Ok(result) => Ok(result.into()),
            Err(reason) => Err(self.refuse_after_permit(&permit, reason).await),
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let caller = self.caller(&context).await?;
        let mut resources = Vec::new();
        for upstream in self.inner.upstreams.values() {
            // An upstream without resources (or down) lists none.
            for resource in self.listed_resources(upstream).await.unwrap_or_default() {
                if self.lists(&caller.principal, resource_request(&resource.uri, &upstream.name)?) {
                    resources.push(resource);
                }
            }
        }
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let caller = self.caller(&context).await?;
        let upstream = self.resource_upstream(&request.uri).await;
        let name = upstream.map_or("", |u| u.name.as_str());
        let permit = self.authorize(&caller, resource_request(&request.uri, name)?).await?;
        let Some(upstream) = upstream else {
            let id = permit.request_id();
            return Err(McpError::resource_not_found(
                format!("no resource `{}` (request {id})", request.uri),
                None,
            ));
        };
        let read = upstream.read(ReadResourceRequestParams::new(request.uri)).await;
        read.map(Into::into).map_err(|e| failed(upstream, &permit, e))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let caller = self.caller(&context).await?;
        let mut prompts = Vec::new();
        for upstream in self.inner.upstreams.values() {
            for mut prompt in upstream.prompts().await.unwrap_or_default() {
                prompt.name = format!("{}{SEPARATOR}{}", upstream.name, prompt.name);
                if self.lists(&caller.principal, prompt_request(&prompt.name, &upstream.name, json!({}))?) {
                    prompts.push(prompt);
                }
            }
        }
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let caller = self.caller(&context).await?;
        let (upstream, prompt) = request.name.split_once(SEPARATOR).unwrap_or(("", request.name.as_str()));
        let arguments = request.arguments.clone().map_or_else(|| json!({}), Value::Object);
        let permit = self.authorize(&caller, prompt_request(&request.name, upstream, arguments)?).await?;
        let Some(target) = self.inner.upstreams.get(upstream) else {
            let id = permit.request_id();
            return Err(McpError::invalid_params(
                format!("no prompt `{}` (request {id})", request.name),
                None,
            ));
        };
        let mut params = GetPromptRequestParams::new(prompt);
        params.arguments = request.arguments;
        target.prompt(params).await.map(Into::into).map_err(|e| failed(target, &permit, e))
    }
}
