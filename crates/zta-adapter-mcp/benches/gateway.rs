//! A `tools/call` through the gateway against the same call made to the upstream directly, in
//! the same run, on loopback: an upstream over streamable HTTP with one tool (`echo`), and rmcp
//! clients as agents.
//!
//! * `ref_direct_call` — an rmcp client (keeping its connection) calls the upstream itself.
//! * `gateway_call` — an rmcp client with a session token calls `up__echo` through the gateway:
//!   bearer verification, the policy decision, the audit record (JSON Lines, queued), the
//!   upstream call over the gateway's own connection.
//! * `ref_bare_proxy_call` — the floor of any gateway: an axum route that passes each HTTP
//!   request to the upstream with reqwest and its answer back, checking nothing.
//!
//! After criterion's medians it prints the median and p99 of 5,000 sequential calls each, then
//! calls/s with 32 agents calling concurrently for 5 s, directly and through the gateway.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing
)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use criterion::{Criterion, criterion_group, criterion_main};
use rmcp::{
    ErrorData as McpError, RoleClient, RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
        PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    },
    service::{RequestContext, RunningService},
    transport::{
        StreamableHttpClientTransport,
        streamable_http_client::StreamableHttpClientTransportConfig,
        streamable_http_server::{
            StreamableHttpServerConfig, StreamableHttpService, session::never::NeverSessionManager,
        },
    },
};
use serde_json::json;
use zta::{
    AgentId, Guard, MemoryStateStore, StateStore,
    audit::jsonl::{JsonlConfig, JsonlSink},
    identity::static_agents::{AgentEntry, AgentKey, StaticConfig, StaticProvider},
    policy::PolicySet,
    secrecy::ExposeSecret,
    token::{Algorithm, SigningKey, TokenConfig, TokenService},
};
use zta_adapter_mcp::{GatewayConfig, McpGateway};

/// The `zta` binary's allocator, so that this measures what `zta gateway` runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const POLICY: &str =
    "policies:\n  - {name: echo, effect: allow, conditions: {agent_id: research_bot, tool_name: up__echo}}\n";

#[derive(Clone)]
struct Echo;

impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let schema = json!({"type": "object", "properties": {"text": {"type": "string"}}});
        Ok(ListToolsResult::with_all_items(vec![Tool::new(
            "echo",
            "Echoes.",
            schema.as_object().cloned().unwrap(),
        )]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let text = request.arguments.and_then(|a| a.get("text").cloned()).unwrap_or_default();
        Ok(CallToolResult::success(vec![ContentBlock::text(text.to_string())]).into())
    }
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

async fn client(url: &str, token: Option<&str>) -> RunningService<RoleClient, ()> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url);
    if let Some(token) = token {
        config = config.auth_header(token);
    }
    // Agents keep their connections, as MCP SDKs' HTTP clients do (rmcp's default opens one
    // per request).
    ().serve(StreamableHttpClientTransport::with_client(reqwest::Client::new(), config)).await.unwrap()
}

fn echo(name: &str) -> CallToolRequestParams {
    let mut params = CallToolRequestParams::new(name.to_owned());
    params.arguments = json!({"text": "hello"}).as_object().cloned();
    params
}

struct Setup {
    _dir: tempfile::TempDir,
    upstream: String,
    gateway: String,
    bare_proxy: String,
    token: String,
}

/// Passes `request` to `upstream` as it is (method, MCP headers, body) and its answer back.
async fn forward(
    http: reqwest::Client,
    upstream: String,
    request: axum::extract::Request,
) -> axum::response::Response {
    const PASSED: [&str; 4] = ["accept", "content-type", "mcp-protocol-version", "mcp-session-id"];
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let mut outgoing = http.request(parts.method, upstream).body(body);
    for (name, value) in parts.headers.iter().filter(|(name, _)| PASSED.contains(&name.as_str())) {
        outgoing = outgoing.header(name, value);
    }
    let answer = outgoing.send().await.unwrap();
    let mut response = axum::response::Response::builder().status(answer.status());
    for (name, value) in answer.headers().iter().filter(|(name, _)| PASSED.contains(&name.as_str())) {
        response = response.header(name, value);
    }
    response.body(axum::body::Body::from(answer.bytes().await.unwrap())).unwrap()
}

async fn setup() -> Setup {
    let config =
        StreamableHttpServerConfig::default().with_legacy_session_mode(false).with_json_response(true);
    let service: StreamableHttpService<Echo, NeverSessionManager> =
        StreamableHttpService::new(|| Ok(Echo), Arc::default(), config);
    let upstream = serve(axum::Router::new().route_service("/mcp", service)).await + "/mcp";
    let (http, to) = (reqwest::Client::new(), upstream.clone());
    let proxy = axum::routing::any(move |request| forward(http.clone(), to.clone(), request));
    let bare_proxy = serve(axum::Router::new().route("/mcp", proxy)).await + "/mcp";

    let dir = tempfile::tempdir().unwrap();
    let state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::new());
    let key = AgentKey::generate().unwrap();
    let id = AgentId::new("research_bot").unwrap();
    let agents =
        StaticConfig::new("aud").with_agent(AgentEntry::from_public_key(id.clone(), key.public_key_pem()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway_url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let tokens = TokenService::new(
        TokenConfig::new("https://zta.test", gateway_url.as_str()),
        SigningKey::generate(Algorithm::EdDSA).unwrap(),
        state.clone(),
    )
    .unwrap();
    let sink = Arc::new(JsonlSink::open(JsonlConfig::new(dir.path().join("audit"))).unwrap());
    let guard = Guard::builder(Arc::new(PolicySet::from_yaml(POLICY).unwrap()), sink)
        .identity_provider(Arc::new(StaticProvider::new(agents, state.clone()).unwrap()))
        .token_authority(Arc::new(tokens))
        .state_store(state)
        .build()
        .unwrap();
    let session = guard.login(&key.assertion(&id, "aud", Duration::from_secs(30)).unwrap()).await.unwrap();
    let config: GatewayConfig = serde_json::from_value(json!({
        "resource": gateway_url,
        "upstreams": [{"name": "up", "url": upstream}],
    }))
    .unwrap();
    let router = McpGateway::new(guard, config).unwrap().router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Setup {
        _dir: dir,
        upstream,
        gateway: gateway_url,
        bare_proxy,
        token: session.access_token.expose_secret().to_owned(),
    }
}

fn percentiles(name: &str, mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    println!("{name}: median {:.1} µs, p99 {:.1} µs ({} calls)", at(0.5), at(0.99), samples.len());
    at(0.5)
}

/// Calls/s of `agents` clients calling `tool` at `url` as fast as they can for `seconds`.
async fn throughput(url: &str, token: Option<&str>, tool: &str, agents: usize, seconds: u64) -> f64 {
    let done = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..agents {
        let client = client(url, token).await;
        let (done, calls, tool) = (done.clone(), calls.clone(), tool.to_owned());
        tasks.push(tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                client.call_tool(echo(&tool)).await.unwrap();
                calls.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    done.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let counted = calls.load(Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    counted as f64 / elapsed
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let setup = rt.block_on(setup());
    let direct = rt.block_on(client(&setup.upstream, None));
    let through = rt.block_on(client(&setup.gateway, Some(&setup.token)));
    let proxied = rt.block_on(client(&setup.bare_proxy, None));
    rt.block_on(direct.call_tool(echo("echo"))).unwrap();
    rt.block_on(proxied.call_tool(echo("echo"))).unwrap();
    rt.block_on(through.call_tool(echo("up__echo"))).unwrap();

    let mut group = c.benchmark_group("mcp_tools_call");
    group.bench_function("ref_direct_call", |b| {
        b.iter(|| rt.block_on(direct.call_tool(echo("echo"))).unwrap())
    });
    group.bench_function("ref_bare_proxy_call", |b| {
        b.iter(|| rt.block_on(proxied.call_tool(echo("echo"))).unwrap())
    });
    group.bench_function("gateway_call", |b| {
        b.iter(|| rt.block_on(through.call_tool(echo("up__echo"))).unwrap())
    });
    group.finish();

    let time = |client: &RunningService<RoleClient, ()>, tool: &str| {
        (0..5000)
            .map(|_| {
                let started = Instant::now();
                rt.block_on(client.call_tool(echo(tool))).unwrap();
                started.elapsed().as_secs_f64() * 1e6
            })
            .collect::<Vec<_>>()
    };
    let direct_median = percentiles("ref_direct_call", time(&direct, "echo"));
    let proxy_median = percentiles("ref_bare_proxy_call", time(&proxied, "echo"));
    let gateway_median = percentiles("gateway_call", time(&through, "up__echo"));
    println!(
        "added latency (median): bare proxy {:.1} µs, gateway {:.1} µs",
        proxy_median - direct_median,
        gateway_median - direct_median
    );

    let direct_rate = rt.block_on(throughput(&setup.upstream, None, "echo", 32, 5));
    let proxy_rate = rt.block_on(throughput(&setup.bare_proxy, None, "echo", 32, 5));
    let gateway_rate = rt.block_on(throughput(&setup.gateway, Some(&setup.token), "up__echo", 32, 5));
    println!(
        "32 agents: direct {direct_rate:.0} calls/s, bare proxy {proxy_rate:.0} ({:.0}%), through the gateway {gateway_rate:.0} ({:.0}%)",
        100.0 * proxy_rate / direct_rate,
        100.0 * gateway_rate / direct_rate
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
