//! The MCP servers behind the gateway, each reached as an MCP client: a child process on
//! stdio, or a streamable-HTTP URL. A connection that fails is dropped; the next request opens
//! a new one (for a child process: starts it again).

use std::{
    collections::HashMap,
    process::Stdio,
    sync::{Arc, Mutex as SyncMutex},
    time::Duration,
};

use rmcp::{
    ClientHandler, RoleClient, ServiceError, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResult, GetPromptRequestParams, GetPromptResult, Prompt,
        ReadResourceRequestParams, ReadResourceResult, Resource, Tool,
    },
    service::{NotificationContext, Peer, RunningService},
    transport::{
        StreamableHttpClientTransport, TokioChildProcess,
        streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use tokio::sync::Mutex;

use crate::UpstreamConfig;

type Client = RunningService<RoleClient, Events>;

/// The HTTP client for URL upstreams. Connections are kept and reused (rmcp's own default
/// opens one per request, which costs more than the rest of a call); redirects are not
/// followed, since the config names each upstream's URL.
pub(crate) fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()
}

/// Full tool name -> whether its definition, when the upstream last listed it, matched its pin.
pub(crate) type Verdicts = Arc<SyncMutex<HashMap<String, bool>>>;

/// One upstream MCP server and the connection to it, opened on first use.
pub(crate) struct Upstream {
    pub(crate) name: String,
    /// What the gateway last found of each tool's definition; forgotten when the upstream says
    /// its tools changed, so the next call lists them again.
    pub(crate) verdicts: Verdicts,
    config: UpstreamConfig,
    /// The HTTP client for a URL upstream, shared by all upstreams.
    http: reqwest::Client,
    client: Mutex<Option<Arc<Client>>>,
    health: SyncMutex<Health>,
}

/// Failures in a row that open the circuit: requests then fail at once, without starting or
/// reaching the upstream, until the backoff has passed.
const TRIP_AFTER: u32 = 3;
/// The first backoff; each further failure doubles it, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The circuit breaker's state.
#[derive(Default)]
struct Health {
    failures: u32,
    open_until: Option<std::time::Instant>,
}

/// What the gateway hears from an upstream, as its client.
#[derive(Clone)]
pub(crate) struct Events {
    verdicts: Verdicts,
}

impl ClientHandler for Events {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        if let Ok(mut verdicts) = self.verdicts.lock() {
            verdicts.clear();
        }
    }
}

/// Why an upstream could not answer. Its text is for logs; agents see only that the upstream
/// failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    /// It could not be started or reached.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// It failed too often lately; it is left alone until the backoff has passed.
    #[error("{failures} failures in a row; not asked again for {wait:?}")]
    CircuitOpen { failures: u32, wait: Duration },
    /// It did not answer within its timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection broke, or the answer was not MCP.
    #[error("{0}")]
    Failed(ServiceError),
    /// It answered with an MCP error (passed on to the agent as it is).
    #[error("{}", .0.message)]
    Mcp(rmcp::ErrorData),
}

impl Upstream {
    pub(crate) fn new(config: UpstreamConfig, http: reqwest::Client) -> Self {
        Self {
            name: config.name.clone(),
            verdicts: Verdicts::default(),
            config,
            http,
            client: Mutex::new(None),
            health: SyncMutex::new(Health::default()),
        }
    }

    /// The tools it offers now.
    pub(crate) async fn tools(&self) -> Result<Vec<Tool>, UpstreamError> {
        self.ask(|peer| async move { peer.list_all_tools().await }).await
    }

    /// Calls its tool `params.name`.
    pub(crate) async fn call(&self, params: CallToolRequestParams) -> Result<CallToolResult, UpstreamError> {
        self.ask(|peer| async move { peer.call_tool(params).await }).await
    }

    /// The resources it offers now.
    pub(crate) async fn resources(&self) -> Result<Vec<Resource>, UpstreamError> {
        self.ask(|peer| async move { peer.list_all_resources().await }).await
    }

    /// Reads its resource `params.uri`.
    pub(crate) async fn read(
        &self,
        params: ReadResourceRequestParams,
    ) -> Result<ReadResourceResult, UpstreamError> {
        self.ask(|peer| async move { peer.read_resource(params).await }).await
    }

    /// The prompts it offers now.
    pub(crate) async fn prompts(&self) -> Result<Vec<Prompt>, UpstreamError> {
        self.ask(|peer| async move { peer.list_all_prompts().await }).await
    }

    /// Gets its prompt `params.name`.
    pub(crate) async fn prompt(
        &self,
        params: GetPromptRequestParams,
    ) -> Result<GetPromptResult, UpstreamError> {
        self.ask(|peer| async move { peer.get_prompt(params).await }).await
    }

    /// One request over the connection, within the timeout; a broken connection is dropped so
    /// that the next request opens a new one.
    async fn ask<T, F>(&self, request: impl FnOnce(Peer<RoleClient>) -> F) -> Result<T, UpstreamError>
    where
        F: Future<Output = Result<T, ServiceError>>,
    {
        self.closed_circuit()?;
        let client = match self.client().await {
            Ok(client) => client,
            Err(e) => return Err(self.failure(e)),
        };
        match tokio::time::timeout(self.config.timeout, request(client.peer().clone())).await {
            Ok(Ok(value)) => Ok(self.success(value)),
            // It answered: the upstream works, the request did not.
            Ok(Err(ServiceError::McpError(error))) => Err(UpstreamError::Mcp(self.success(error))),
            Ok(Err(e)) => {
                self.forget(&client).await;
                Err(self.failure(UpstreamError::Failed(e)))
            }
            Err(_) => Err(self.failure(UpstreamError::Timeout(self.config.timeout))),
        }
    }

    /// `Err` while the circuit is open.
    fn closed_circuit(&self) -> Result<(), UpstreamError> {
        let Ok(health) = self.health.lock() else { return Ok(()) };
        match health.open_until.map(|until| until.saturating_duration_since(std::time::Instant::now())) {
            Some(wait) if !wait.is_zero() => {
                Err(UpstreamError::CircuitOpen { failures: health.failures, wait })
            }
            _ => Ok(()),
        }
    }

    fn success<T>(&self, value: T) -> T {
        if let Ok(mut health) = self.health.lock() {
            *health = Health::default();
        }
        value
    }

    /// Counts a failure; from the [`TRIP_AFTER`]th in a row on, opens the circuit for a
    /// doubling backoff (so a crashing child process is not started again in a tight loop).
    fn failure(&self, error: UpstreamError) -> UpstreamError {
        if let Ok(mut health) = self.health.lock() {
            health.failures = health.failures.saturating_add(1);
            if let Some(beyond) = health.failures.checked_sub(TRIP_AFTER) {
                let backoff = FIRST_BACKOFF.saturating_mul(1 << beyond.min(5)).min(MAX_BACKOFF);
                health.open_until = Some(std::time::Instant::now() + backoff);
                tracing::warn!(target: "zta_adapter_mcp", upstream = %self.name, failures = health.failures, ?backoff, "upstream circuit open");
            }
        }
        error
    }

    async fn forget(&self, broken: &Arc<Client>) {
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, broken)) {
            *slot = None;
        }
    }

    /// The open connection, or a new one.
    async fn client(&self) -> Result<Arc<Client>, UpstreamError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let events = Events { verdicts: self.verdicts.clone() };
        let connecting = async {
            if let Some(url) = &self.config.url {
                let config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
                let transport = StreamableHttpClientTransport::with_client(self.http.clone(), config);
                events.serve(transport).await.map_err(|e| UpstreamError::Connect(e.to_string()))
            } else {
                let argv = self.config.command.as_deref().unwrap_or_default();
                let (program, args) =
                    argv.split_first().ok_or(UpstreamError::Connect("no command".into()))?;
                let mut command = tokio::process::Command::new(program);
                command.args(args).env_clear().envs(&self.config.env);
                if let Some(path) = std::env::var_os("PATH") {
                    command.env("PATH", path);
                }
                let (transport, _) = TokioChildProcess::builder(command)
                    .stderr(Stdio::inherit())
                    .spawn()
                    .map_err(|e| UpstreamError::Connect(format!("`{program}`: {e}")))?;
                events.serve(transport).await.map_err(|e| UpstreamError::Connect(e.to_string()))
            }
        };
        let client = tokio::time::timeout(self.config.timeout, connecting)
            .await
            .map_err(|_| UpstreamError::Timeout(self.config.timeout))??;
        let client = Arc::new(client);
        *slot = Some(client.clone());
        Ok(client)
    }
}
