//! A `zta serve` on loopback around a real guard (static agent keys, session tokens, native
//! policy, JSON Lines audit, the state store given), and an HTTP client for it.

use std::{path::PathBuf, sync::Arc, time::Duration};

use serde_json::Value;
use zta::{
    AgentId, AuditSink, Credential, Guard, MemoryStateStore, StateStore,
    audit::jsonl::{JsonlConfig, JsonlSink},
    identity::static_agents::{AgentEntry, AgentKey, StaticConfig, StaticProvider},
    policy::PolicySet,
    secrecy::ExposeSecret,
    token::{Algorithm, SigningKey, TokenConfig, TokenService},
};
use zta_server::ServerConfig;

pub(crate) const POLICY: &str = "\
policies:
  - {name: search, effect: allow, conditions: {action_type: call_tool, tool_name: web_search}}
";

/// The agents every service declares, each with its own key.
pub(crate) const AGENTS: [&str; 4] = ["research_bot", "writer_bot", "ops_bot", "gateway_pep"];

pub(crate) fn redis_url() -> String {
    std::env::var("ZTA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

/// A Redis state store under a key prefix of its own.
pub(crate) fn redis_store(url: &str) -> Arc<dyn StateStore> {
    use zta::state::redis::{RedisConfig, RedisStateStore};
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let prefix = format!("zta-test:server:{}:{nanos}:", std::process::id());
    let config = RedisConfig::new(url).with_key_prefix(prefix).with_timeout(Duration::from_secs(2));
    Arc::new(RedisStateStore::new(config).unwrap())
}

pub(crate) struct Service {
    _dir: tempfile::TempDir,
    pub(crate) url: String,
    pub(crate) guard: Guard,
    pub(crate) audit: PathBuf,
    keys: Vec<(AgentId, AgentKey)>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub(crate) http: reqwest::Client,
}

impl Service {
    pub(crate) async fn start(config: ServerConfig) -> Self {
        Self::with_state(config, Arc::new(MemoryStateStore::new())).await
    }

    pub(crate) async fn with_state(config: ServerConfig, state: Arc<dyn StateStore>) -> Self {
        Self::with_parts(config, state, None).await
    }

    /// A service on `state`, auditing to `sink` (default: a JSON Lines log in a temporary
    /// directory, which [`records`](Self::records) reads).
    pub(crate) async fn with_parts(
        config: ServerConfig,
        state: Arc<dyn StateStore>,
        sink: Option<Arc<dyn AuditSink>>,
    ) -> Self {
        Self::with_policy(config, state, sink, POLICY).await
    }

    /// [`with_parts`](Self::with_parts) deciding by `policy` (YAML) instead of [`POLICY`].
    pub(crate) async fn with_policy(
        config: ServerConfig,
        state: Arc<dyn StateStore>,
        sink: Option<Arc<dyn AuditSink>>,
        policy: &str,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut agents = StaticConfig::new("aud");
        let mut keys = Vec::new();
        for name in AGENTS {
            let key = AgentKey::generate().unwrap();
            let id = AgentId::new(name).unwrap();
            agents = agents.with_agent(AgentEntry::from_public_key(id.clone(), key.public_key_pem()));
            keys.push((id, key));
        }
        let tokens = TokenService::new(
            TokenConfig::new("https://zta.test", "zta"),
            SigningKey::generate(Algorithm::EdDSA).unwrap(),
            state.clone(),
        )
        .unwrap();
        let audit = dir.path().join("audit");
        let mut config = config;
        if sink.is_none() && config.audit_source.is_none() {
            config.audit_source = Some(Arc::new(zta::audit::jsonl::JsonlReader::new(&audit)));
        }
        let sink = sink.unwrap_or_else(|| Arc::new(JsonlSink::open(JsonlConfig::new(&audit)).unwrap()));
        let guard = Guard::builder(Arc::new(PolicySet::from_yaml(policy).unwrap()), sink)
            .identity_provider(Arc::new(StaticProvider::new(agents, state.clone()).unwrap()))
            .token_authority(Arc::new(tokens))
            .state_store(state)
            .build()
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = if config.tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = guard.clone();
        let task = tokio::spawn(async move {
            zta_server::serve_on(listener, served, &config, async {
                let _ = stopped.await;
            })
            .await
        });
        Self {
            _dir: dir,
            url,
            guard,
            audit,
            keys,
            stop: Some(stop),
            task: Some(task),
            http: reqwest::Client::new(),
        }
    }

    /// A fresh signed assertion of `agent`: its primary credential.
    pub(crate) fn assertion(&self, agent: &str) -> Credential {
        let (id, key) = self.keys.iter().find(|(id, _)| id.as_str() == agent).unwrap();
        key.assertion(id, "aud", Duration::from_secs(30)).unwrap()
    }

    /// The assertion in the JSON shape requests carry.
    pub(crate) fn assertion_json(&self, agent: &str) -> Value {
        let Credential::AgentAssertion(jwt) = self.assertion(agent) else { unreachable!() };
        serde_json::json!({ "assertion": jwt.expose_secret() })
    }

    /// A session access token of `agent`, from the guard directly.
    pub(crate) async fn token(&self, agent: &str) -> String {
        let session = self.guard.login(&self.assertion(agent)).await.unwrap();
        session.access_token.expose_secret().to_owned()
    }

    /// `POST path` with a JSON body and an optional bearer token: the status and the JSON answer.
    pub(crate) async fn post(&self, path: &str, bearer: Option<&str>, body: &Value) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.url)).json(body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        answer(request.send().await.unwrap()).await
    }

    /// `GET path`: the status, the content type and the body as text.
    pub(crate) async fn get(&self, path: &str) -> (u16, String, String) {
        let response = self.http.get(format!("{}{path}", self.url)).send().await.unwrap();
        let content_type = response.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
        (response.status().as_u16(), content_type, response.text().await.unwrap())
    }

    /// The audit records written so far, in order (after a flush).
    pub(crate) async fn records(&self) -> Vec<Value> {
        self.guard.audit_sink().flush().await.unwrap();
        let mut records = Vec::new();
        let mut files: Vec<_> = std::fs::read_dir(&self.audit)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect();
        files.sort();
        for file in files {
            for line in std::fs::read_to_string(file).unwrap().lines() {
                let mut entry: Value = serde_json::from_str(line).unwrap();
                records.push(entry["record"].take());
            }
        }
        records
    }

    /// Stops the service as a signal would, and returns how `serve_on` ended.
    pub(crate) async fn stop(mut self) -> std::io::Result<()> {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap()
    }
}

pub(crate) async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}
