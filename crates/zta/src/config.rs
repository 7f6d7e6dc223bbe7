//! `zta.yaml` (or `.toml`): one file that describes a whole deployment, and builds its
//! [`Guard`](crate::Guard).
//!
//! ```yaml
//! identity:
//!   - type: static
//!     audience: https://zta.example/
//!     agents:
//!       - { id: research_bot, segment: research, roles: [researcher], public_key_file: keys/research_bot.pub.pem }
//! tokens:
//!   issuer: https://zta.example/
//!   audience: zta
//!   signing_key_file: keys/zta-signing.pem
//! policy:
//!   type: native
//!   files: [policies/crew.yaml]
//! audit:
//!   type: jsonl
//!   dir: audit
//! ```
//!
//! `audit:` may also be a list of sinks, each record going to all of them. A sink is required
//! (a request whose record it cannot take is denied) unless it has a `spool:`, a local
//! directory where its records wait, in order, while it is unreachable:
//!
//! ```yaml
//! audit:
//!   - type: jsonl
//!     dir: audit
//!   - type: postgres
//!     url: postgres://zta@db.internal/zta
//!     spool: { dir: audit-spool/postgres, max_bytes: 1073741824 }
//! ```
//!
//! Unknown keys, missing or placeholder secrets, and backends whose Cargo feature is not
//! compiled in are errors that name the file, line and column. Relative paths are relative to
//! the config file's directory.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::de::DeserializeOwned;
use zta_source::{DeError, Node, Pos, Value};

/// A position in a config file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl Position {
    /// `None` for the unknown position (0:0) of text read without positions.
    fn of(pos: Pos) -> Option<Self> {
        (pos != Pos::default()).then_some(Self { line: pos.line as usize, column: pos.col as usize })
    }
}

/// A configuration could not be loaded or built.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConfigError {
    /// The file, when loaded from one.
    pub file: Option<PathBuf>,
    /// Where in the file.
    pub position: Option<Position>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// The error of the part that failed (an I/O error, a backend's build error), if any.
    pub cause: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl ConfigError {
    fn new(message: impl Into<String>) -> Self {
        Self { file: None, position: None, message: message.into(), hint: None, cause: None }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.cause = Some(Arc::new(cause));
        self
    }

    /// A document error at its position, with a hint for the common kinds.
    fn read(e: DeError) -> Self {
        let hint = if e.message.starts_with("unknown field") {
            Some("remove the key or check its spelling; the message lists the keys this section accepts")
        } else if e.message.starts_with("unknown variant") {
            Some("this names a backend or value that does not exist; the message lists the accepted ones")
        } else {
            None
        };
        Self { position: Position::of(e.pos), hint: hint.map(str::to_owned), ..Self::new(e.message) }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.as_deref().map_or_else(|| "<config>".to_owned(), |p| p.display().to_string());
        match self.position {
            Some(p) => write!(f, "{file}:{}:{}: {}", p.line, p.column, self.message)?,
            None => write!(f, "{file}: {}", self.message)?,
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A section whose backend this build does not contain; its content is not read.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotCompiled;

/// An identity provider section, chosen by `type`.
#[derive(Debug)]
#[non_exhaustive]
pub enum IdentitySection {
    /// Agents declared in the config (`identity-static`).
    #[cfg(feature = "identity-static")]
    Static(crate::identity::static_agents::StaticConfig),
    /// Agents declared in the config (not compiled in).
    #[cfg(not(feature = "identity-static"))]
    Static(NotCompiled),
    /// Microsoft Entra ID access tokens (`identity-oidc`).
    #[cfg(feature = "identity-oidc")]
    Entra(crate::identity::oidc::EntraConfig),
    /// Microsoft Entra ID access tokens (not compiled in).
    #[cfg(not(feature = "identity-oidc"))]
    Entra(NotCompiled),
    /// Access tokens of any OpenID Connect issuer (`identity-oidc`).
    #[cfg(feature = "identity-oidc")]
    Oidc(crate::identity::oidc::OidcConfig),
    /// Access tokens of any OpenID Connect issuer (not compiled in).
    #[cfg(not(feature = "identity-oidc"))]
    Oidc(NotCompiled),
    /// An LDAP directory or Active Directory (`identity-ldap`).
    #[cfg(feature = "identity-ldap")]
    Ldap(Box<crate::identity::ldap::LdapConfig>),
    /// An LDAP directory (not compiled in).
    #[cfg(not(feature = "identity-ldap"))]
    Ldap(NotCompiled),
}

/// The policy section, chosen by `type`.
#[derive(Debug)]
#[non_exhaustive]
pub enum PolicySection {
    /// The native engine (`policy-native`).
    #[cfg(feature = "policy-native")]
    Native(crate::policy::PolicyConfig),
    /// The native engine (not compiled in).
    #[cfg(not(feature = "policy-native"))]
    Native(NotCompiled),
    /// Cedar (not yet available).
    Cedar(NotCompiled),
}

/// The audit section, chosen by `type`.
#[derive(Debug)]
#[non_exhaustive]
pub enum AuditSection {
    /// Hash-chained JSON Lines files (`audit-jsonl`). Boxed: it is much larger than the others.
    #[cfg(feature = "audit-jsonl")]
    Jsonl(Box<crate::audit::jsonl::JsonlConfig>),
    /// Hash-chained JSON Lines files (not compiled in).
    #[cfg(not(feature = "audit-jsonl"))]
    Jsonl(NotCompiled),
    /// A SQLite file (`audit-sqlite`).
    #[cfg(feature = "audit-sqlite")]
    Sqlite(crate::audit::sqlite::SqliteConfig),
    /// A SQLite file (not compiled in).
    #[cfg(not(feature = "audit-sqlite"))]
    Sqlite(NotCompiled),
    /// A PostgreSQL table (`audit-postgres`).
    #[cfg(feature = "audit-postgres")]
    Postgres(crate::audit::postgres::PostgresConfig),
    /// A PostgreSQL table (not compiled in).
    #[cfg(not(feature = "audit-postgres"))]
    Postgres(NotCompiled),
    /// A NATS JetStream stream (`audit-nats`).
    #[cfg(feature = "audit-nats")]
    Nats(crate::audit::nats::NatsConfig),
    /// A NATS JetStream stream (not compiled in).
    #[cfg(not(feature = "audit-nats"))]
    Nats(NotCompiled),
}

/// One audit sink of the `audit` section, and the spool it writes through when it has one.
#[derive(Debug)]
#[non_exhaustive]
pub struct AuditTarget {
    /// The sink.
    pub sink: AuditSection,
    /// Where records wait while the sink is unreachable; without one the sink is required.
    pub spool: Option<crate::audit::fanout::SpoolConfig>,
    /// The store a `jsonl` sink publishes its signed checkpoints to (`anchor: {postgres: ...}`
    /// or `anchor: {nats: ...}`); the rest of its `anchor` settings are in the sink's config.
    pub anchor: Option<AnchorStoreSection>,
}

/// The store of a `jsonl` sink's `anchor`, chosen by its key.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnchorStoreSection {
    /// A PostgreSQL table (`audit-postgres`).
    #[cfg(feature = "audit-postgres")]
    Postgres(crate::audit::postgres::PostgresAnchorConfig),
    /// A PostgreSQL table (not compiled in).
    #[cfg(not(feature = "audit-postgres"))]
    Postgres(NotCompiled),
    /// A NATS JetStream stream (`audit-nats`).
    #[cfg(feature = "audit-nats")]
    Nats(crate::audit::nats::NatsAnchorConfig),
    /// A NATS JetStream stream (not compiled in).
    #[cfg(not(feature = "audit-nats"))]
    Nats(NotCompiled),
}

impl AnchorStoreSection {
    /// The key that names it under `anchor`.
    #[cfg(feature = "audit-jsonl")]
    fn key(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Nats(_) => "nats",
        }
    }
}

impl AuditSection {
    /// The section's `type`.
    fn type_name(&self) -> &'static str {
        match self {
            Self::Jsonl(_) => "jsonl",
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
            Self::Nats(_) => "nats",
        }
    }
}

/// Where revocations, lockout counters and replay ids live.
#[derive(Debug, Default)]
#[non_exhaustive]
pub enum StateSection {
    /// In this process (one replica).
    #[default]
    Memory,
    /// Redis or Valkey, shared by every replica (`state-redis`).
    #[cfg(feature = "state-redis")]
    Redis(crate::state::redis::RedisConfig),
    /// Redis or Valkey (not compiled in).
    #[cfg(not(feature = "state-redis"))]
    Redis(NotCompiled),
    /// PostgreSQL (not yet available).
    Postgres(NotCompiled),
}

/// Enforcement settings.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GuardSection {
    /// Wait for each permit's audit record to be on disk (fsynced, and in the checkpoint)
    /// before returning the permit. Recommended in production.
    ///
    /// `false` (the default) returns the permit once the record is queued; it is made durable
    /// by the next group commit (`flush_interval`, 5 ms by default). If the process, the
    /// machine or the disk dies, or the writer fails, the records accepted within about the
    /// last flush interval are lost although their requests may have been permitted. A writer
    /// failure is reported with the lost request ids (see the `audit::jsonl` docs); a
    /// crash or power loss is not.
    #[serde(default)]
    pub durable_before_permit: bool,
    /// Obligations the enforcement point discharges; allows carrying any other are denied.
    #[serde(default)]
    pub discharges: Vec<String>,
}

/// A whole deployment's configuration.
#[derive(Debug)]
#[non_exhaustive]
pub struct Config {
    /// Identity providers, asked in order.
    pub identity: Vec<IdentitySection>,
    /// Session tokens.
    pub tokens: crate::token::TokenConfig,
    /// Policy.
    pub policy: PolicySection,
    /// Audit: every record goes to each of these sinks.
    pub audit: Vec<AuditTarget>,
    /// Shared state.
    pub state: StateSection,
    /// Enforcement settings.
    pub guard: GuardSection,
    /// Monitoring: detectors over the audit stream and their responses (none by default).
    pub monitor: crate::monitor::MonitorConfig,
    origin: Origin,
}

/// Where the config came from: the file, and its document (for locating later errors and
/// reading the `server` section when it is asked for).
#[derive(Debug)]
struct Origin {
    file: Option<PathBuf>,
    doc: Node,
}

/// The parts a built configuration consists of.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Built {
    /// The guard.
    pub guard: crate::Guard,
    /// The session token service (for `zta token issue`, JWKS export, revocation).
    pub tokens: Arc<crate::token::TokenService>,
    /// The state store shared by the guard's parts.
    pub state: Arc<dyn crate::StateStore>,
    /// The guard's identity providers, in the config's order: for `zta serve`'s `/metrics`
    /// (`ServerConfig::identity_providers`), which counts their signing-key fetches.
    pub identity_providers: Vec<Arc<dyn crate::IdentityProvider>>,
    /// The monitor, when the config has detectors (for its statistics).
    pub monitor: Option<Arc<crate::monitor::Monitor>>,
    /// The first sink of the `audit:` section that can be read back (`jsonl`, `postgres` or
    /// `sqlite`, in the order listed; `None` without one): for `zta serve`'s audit query API
    /// and `/ui` (`ServerConfig::audit_source`).
    pub audit_source: Option<Arc<dyn crate::AuditSource>>,
}

impl Config {
    /// Loads a config file; `.toml` files are TOML, `.json` JSON, anything else YAML.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let located = |e: ConfigError| ConfigError { file: Some(path.to_owned()), ..e };
        let text = std::fs::read_to_string(path)
            .map_err(|e| located(ConfigError::new(format!("cannot read config: {e}")).caused_by(e)))?;
        let mut config = Self::parse(&text, zta_source::Format::from_path(path)).map_err(located)?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        config.resolve_paths(base);
        config.origin.file = Some(path.to_owned());
        Ok(config)
    }

    /// Parses YAML text (relative paths stay relative to the working directory).
    pub fn from_yaml_str(text: &str) -> Result<Self, ConfigError> {
        Self::parse(text, zta_source::Format::Yaml)
    }

    /// Parses TOML text (relative paths stay relative to the working directory).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::parse(text, zta_source::Format::Toml)
    }

    /// Reads the document with the positioned reader (repeated keys refused), then each
    /// section as the type its `type` names, so every error has its exact line and column.
    fn parse(text: &str, format: zta_source::Format) -> Result<Self, ConfigError> {
        let doc = zta_source::parse(text, format).map_err(|e| ConfigError {
            position: Position::of(e.pos),
            hint: e.hint.clone(),
            ..ConfigError::new(e.message.clone())
        })?;
        let Value::Map(entries) = &doc.value else {
            return Err(ConfigError::read(DeError::new(
                doc.pos,
                format!("expected a map of sections, found {}", doc.kind()),
            )));
        };
        let mut identity = None;
        let (mut tokens, mut policy, mut audit, mut state, mut guard) = (None, None, None, None, None);
        let mut monitor = None;
        for (key, node) in entries {
            match key.name.as_str() {
                "identity" => identity = Some(read_identities(node)?),
                "tokens" => tokens = Some(read(node)?),
                "policy" => policy = Some(read_policy(node)?),
                "audit" => audit = Some(read_audit(node)?),
                "state" => state = Some(read_state(node)?),
                "guard" => guard = Some(read(node)?),
                "monitor" => monitor = Some(read_monitor(node)?),
                // Read when asked for: only `zta serve` and `zta gateway` need them.
                "server" | "gateway" => {}
                other => {
                    return Err(ConfigError::read(DeError::new(
                        key.pos,
                        format!(
                            "unknown field `{other}`, expected one of `identity`, `tokens`, `policy`, `audit`, `state`, `guard`, `monitor`, `server`, `gateway`"
                        ),
                    )));
                }
            }
        }
        let missing =
            |name: &str| ConfigError::read(DeError::new(doc.pos, format!("missing field `{name}`")));
        Ok(Self {
            identity: identity.ok_or_else(|| missing("identity"))?,
            tokens: tokens.ok_or_else(|| missing("tokens"))?,
            policy: policy.ok_or_else(|| missing("policy"))?,
            audit: audit.ok_or_else(|| missing("audit"))?,
            state: state.unwrap_or_default(),
            guard: guard.unwrap_or_default(),
            monitor: monitor.unwrap_or_default(),
            origin: Origin { file: None, doc },
        })
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        for section in &mut self.identity {
            match section {
                #[cfg(feature = "identity-static")]
                IdentitySection::Static(c) => {
                    c.agents.iter_mut().filter_map(|a| a.public_key_file.as_mut()).for_each(fix);
                }
                #[cfg(feature = "identity-ldap")]
                IdentitySection::Ldap(c) => {
                    c.ca_file.iter_mut().chain(c.bind_password_file.iter_mut()).for_each(fix);
                }
                _ => {}
            }
        }
        if let Some(p) = self.tokens.signing_key_file.as_mut() {
            fix(p);
        }
        #[cfg(feature = "policy-native")]
        if let PolicySection::Native(c) = &mut self.policy {
            c.files.iter_mut().for_each(fix);
        }
        for target in &mut self.audit {
            if let Some(spool) = target.spool.as_mut() {
                fix(&mut spool.dir);
            }
            #[cfg(feature = "audit-jsonl")]
            if let AuditSection::Jsonl(c) = &mut target.sink {
                fix(&mut c.dir);
                if let Some(p) = c.checkpoint_key_file.as_mut() {
                    fix(p);
                }
                if let Some(p) = c.anchor.as_mut().and_then(|a| a.file.as_mut()) {
                    fix(p);
                }
            }
            #[cfg(feature = "audit-sqlite")]
            if let AuditSection::Sqlite(c) = &mut target.sink {
                fix(&mut c.path);
            }
        }
    }

    /// The `server` section (defaults when there is none), for `zta serve`. Its TLS files, if
    /// any, are read (relative to the config file) and must make a TLS configuration.
    #[cfg(feature = "server")]
    pub fn server(&self) -> Result<crate::server::ServerConfig, ConfigError> {
        let mut server: crate::server::ServerConfig = match self.origin.doc.get("server") {
            Some(node) => read(node).map_err(|e| ConfigError { file: self.origin.file.clone(), ..e })?,
            None => return Ok(crate::server::ServerConfig::default()),
        };
        if let Some(tls) = server.tls.as_mut() {
            let base = self.origin.file.as_deref().and_then(Path::parent).unwrap_or_else(|| Path::new("."));
            for file in [&mut tls.cert_file, &mut tls.key_file] {
                if file.is_relative() {
                    *file = base.join(&*file);
                }
            }
            tls.load().map_err(|e| self.error(&["server", "tls"], e.to_string()).caused_by(e))?;
        }
        Ok(server)
    }

    /// Where `section` (or one of its entries) names `backend` as its `type`.
    fn type_position(&self, section: &str, backend: &str) -> Option<Position> {
        let named = |n: &&Node| n.get("type").and_then(Node::as_str) == Some(backend);
        let node = self.origin.doc.get(section)?;
        let entry = match &node.value {
            Value::Seq(items) => items.iter().find(named)?,
            _ => Some(node).filter(named)?,
        };
        entry.get("type").and_then(|t| Position::of(t.pos))
    }

    /// Where the key at the end of `path` is written (`["identity", "0", "agents"]`).
    fn key_position(&self, path: &[&str]) -> Option<Position> {
        let mut node = &self.origin.doc;
        let mut at = None;
        for segment in path {
            node = match &node.value {
                Value::Map(entries) => {
                    let (key, value) = entries.iter().find(|(k, _)| k.name == *segment)?;
                    at = Some(key.pos);
                    value
                }
                Value::Seq(items) => {
                    let item = items.get(segment.parse::<usize>().ok()?)?;
                    at = Some(item.pos);
                    item
                }
                _ => return None,
            };
        }
        at.and_then(Position::of)
    }

    /// An error located at the `type: value` of a section whose backend this version of ZTA
    /// does not have at all (no feature would help).
    fn not_available(&self, section: &str, backend: &str) -> ConfigError {
        ConfigError {
            file: self.origin.file.clone(),
            position: self.type_position(section, backend),
            ..ConfigError::new(format!("{section} type `{backend}` is not available in this version of ZTA"))
                .hint(format!("choose another {section} type"))
        }
    }

    // Only a build that leaves some backend feature off can name one that is off.
    #[cfg(not(all(
        feature = "identity-static",
        feature = "identity-oidc",
        feature = "identity-ldap",
        feature = "policy-native",
        feature = "audit-jsonl",
        feature = "audit-nats",
        feature = "audit-postgres",
        feature = "audit-sqlite",
        feature = "state-redis"
    )))]
    fn missing_feature(&self, section: &str, backend: &str, feature: &str) -> ConfigError {
        ConfigError {
            file: self.origin.file.clone(),
            position: self.type_position(section, backend),
            ..ConfigError::new(format!(
                "{section} type `{backend}` needs the `{feature}` feature, which this build does not have"
            ))
            .hint(format!("build with `--features {feature}`, or choose another {section} type"))
        }
    }

    /// An error at the key `path` leads to.
    fn error(&self, path: &[&str], message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.origin.file.clone(),
            position: self.key_position(path),
            ..ConfigError::new(message)
        }
    }

    /// The `gateway` section, for `zta gateway`: the MCP gateway's settings, checked (`None`
    /// when the config has none).
    #[cfg(feature = "adapter-mcp")]
    pub fn gateway(&self) -> Result<Option<crate::adapter::mcp::GatewayConfig>, ConfigError> {
        let Some(node) = self.origin.doc.get("gateway") else { return Ok(None) };
        let mut config: crate::adapter::mcp::GatewayConfig =
            read(node).map_err(|e| ConfigError { file: self.origin.file.clone(), ..e })?;
        if let Some(base) = self.origin.file.as_deref().and_then(Path::parent) {
            let secret = config.approval_webhook.as_mut().and_then(|hook| hook.secret_file.as_mut());
            for path in config.pins_file.iter_mut().chain(config.approvals_dir.iter_mut()).chain(secret) {
                if path.is_relative() {
                    *path = base.join(&*path);
                }
            }
        }
        config.check().map_err(|e| {
            let path: Vec<String> = std::iter::once("gateway".to_owned())
                .chain(e.field.split(['.', '[', ']']).filter(|s| !s.is_empty()).map(str::to_owned))
                .collect();
            self.error(&path.iter().map(String::as_str).collect::<Vec<_>>(), e.to_string())
        })?;
        // MCP authorization: a server accepts only tokens issued for it.
        if self.tokens.audience != config.resource {
            return Err(self
                .error(&["gateway", "resource"], format!(
                    "ZTA session tokens are for `{}` (tokens.audience), not for this gateway `{}`",
                    self.tokens.audience, config.resource
                ))
                .hint("set `tokens.audience` to the gateway's `resource`, so that its tokens are good for it alone"));
        }
        Ok(Some(config))
    }

    /// Builds the guard with the obligations the MCP gateway discharges, and the gateway of
    /// the `gateway` section.
    #[cfg(feature = "adapter-mcp")]
    pub async fn build_gateway(&self) -> Result<(Built, crate::adapter::mcp::McpGateway), ConfigError> {
        let config = self.gateway()?.ok_or_else(|| {
            ConfigError {
                file: self.origin.file.clone(),
                ..ConfigError::new("the config has no `gateway` section")
            }
            .hint("add `gateway: {resource: ..., upstreams: [...]}` (see docs/mcp-gateway.md)")
        })?;
        let built = self.build_with(&crate::adapter::mcp::OBLIGATIONS).await?;
        let gateway = crate::adapter::mcp::McpGateway::new(built.guard.clone(), config)
            .map_err(|e| self.error(&["gateway"], e.to_string()).caused_by(e))?;
        Ok((built, gateway))
    }

    /// Builds every part and the guard. Opens the audit log, loads keys and policies; anything
    /// missing or invalid is an error.
    pub async fn build(&self) -> Result<Built, ConfigError> {
        self.build_with(&[]).await
    }

    /// [`build`](Self::build), the guard also discharging the obligations `discharged`.
    async fn build_with(&self, discharged: &[&str]) -> Result<Built, ConfigError> {
        let state: Arc<dyn crate::StateStore> = match &self.state {
            StateSection::Memory => Arc::new(crate::MemoryStateStore::new()),
            #[cfg(feature = "state-redis")]
            StateSection::Redis(c) => {
                let store = crate::state::redis::RedisStateStore::connect(c.clone()).await.map_err(|e| {
                    let error = self.error(&["state"], format!("state store: {e}"));
                    let error = match e {
                        crate::state::redis::Error::Connect { .. } => error.hint(
                            "start Redis or fix `url`/`url_env`: without its state the guard can only deny",
                        ),
                        _ => error,
                    };
                    error.caused_by(e)
                })?;
                Arc::new(store)
            }
            #[cfg(not(feature = "state-redis"))]
            StateSection::Redis(_) => return Err(self.missing_feature("state", "redis", "state-redis")),
            StateSection::Postgres(_) => {
                return Err(self.not_available("state", "postgres"));
            }
        };

        let key = self.signing_key()?;
        let tokens = Arc::new(
            crate::token::TokenService::new(self.tokens.clone(), key, state.clone())
                .map_err(|e| self.error(&["tokens"], e.to_string()).caused_by(e))?,
        );

        let mut audit = self.build_audit().await?;
        let monitor = if self.monitor.detectors.is_empty() {
            None
        } else {
            // The detectors watch what the guard writes, and write their alerts and responses
            // past themselves to the configured sinks.
            let monitor = crate::monitor::Monitor::new(self.monitor.clone(), state.clone(), audit.clone())
                .map_err(|e| self.error(&["monitor"], e.to_string()).caused_by(e))?;
            let monitor = Arc::new(monitor);
            audit = Arc::new(crate::monitor::MonitoredSink::with_monitor(audit, monitor.clone()));
            Some(monitor)
        };
        let policy = self.build_policy(&audit)?;

        let mut builder = crate::Guard::builder(policy, audit)
            .token_authority(tokens.clone())
            .state_store(state.clone())
            .durable_before_permit(self.guard.durable_before_permit);
        for name in self.guard.discharges.iter().map(String::as_str).chain(discharged.iter().copied()) {
            builder = builder.discharges(name);
        }
        let mut identity_providers = Vec::with_capacity(self.identity.len());
        for (index, section) in self.identity.iter().enumerate() {
            let provider = self.build_identity(index, section, &state).await?;
            identity_providers.push(provider.clone());
            builder = builder.identity_provider(provider);
        }
        let guard = builder.build().map_err(|e| self.error(&["identity"], e.to_string()).caused_by(e))?;
        let audit_source = crate::audit_source::first_readable(&self.audit);
        Ok(Built { guard, tokens, state, identity_providers, monitor, audit_source })
    }

    /// Loads the token signing key from `signing_key_file` or `signing_key_env`, refusing
    /// placeholders.
    fn signing_key(&self) -> Result<crate::token::SigningKey, ConfigError> {
        let t = &self.tokens;
        let (pem, key) = match (&t.signing_key_file, &t.signing_key_env) {
            (Some(path), None) => {
                let pem = std::fs::read_to_string(path).map_err(|e| {
                    self.error(
                        &["tokens", "signing_key_file"],
                        format!("cannot read signing key `{}`: {e}", path.display()),
                    )
                    .hint("create one with `zta keygen --out DIR`")
                    .caused_by(e)
                })?;
                (pem, "signing_key_file")
            }
            (None, Some(var)) => {
                let pem = std::env::var(var).map_err(|_| {
                    self.error(
                        &["tokens", "signing_key_env"],
                        format!("environment variable `{var}` is not set"),
                    )
                    .hint("export the PKCS#8 PEM signing key in that variable")
                })?;
                (pem, "signing_key_env")
            }
            _ => {
                return Err(self
                    .error(&["tokens"], "tokens need exactly one of `signing_key_file` and `signing_key_env`")
                    .hint("create a key with `zta keygen --out DIR` and point `signing_key_file` at it"));
            }
        };
        if let Some(why) = placeholder(&pem) {
            return Err(self
                .error(&["tokens", key], format!("the token signing key is a placeholder ({why})"))
                .hint("create a real key with `zta keygen --out DIR`"));
        }
        crate::token::SigningKey::from_pkcs8_pem(t.algorithm, &pem)
            .map_err(|e| self.error(&["tokens", key], format!("invalid token signing key: {e}")).caused_by(e))
    }

    async fn build_identity(
        &self,
        index: usize,
        section: &IdentitySection,
        state: &Arc<dyn crate::StateStore>,
    ) -> Result<Arc<dyn crate::IdentityProvider>, ConfigError> {
        match section {
            #[cfg(feature = "identity-static")]
            IdentitySection::Static(c) => {
                let provider = crate::identity::static_agents::StaticProvider::new(c.clone(), state.clone())
                    .map_err(|e| {
                        self.error(&["identity", &index.to_string(), "agents"], e.to_string()).caused_by(e)
                    })?;
                Ok(Arc::new(provider))
            }
            #[cfg(not(feature = "identity-static"))]
            IdentitySection::Static(_) => {
                let _ = (index, state);
                Err(self.missing_feature("identity", "static", "identity-static"))
            }
            #[cfg(feature = "identity-oidc")]
            IdentitySection::Entra(c) => {
                let provider = crate::identity::oidc::OidcProvider::entra(c.clone(), state.clone()).await;
                Ok(Arc::new(provider.map_err(|e| self.oidc_error(index, &e).caused_by(e))?))
            }
            #[cfg(feature = "identity-oidc")]
            IdentitySection::Oidc(c) => {
                let provider = crate::identity::oidc::OidcProvider::oidc(c.clone(), state.clone()).await;
                Ok(Arc::new(provider.map_err(|e| self.oidc_error(index, &e).caused_by(e))?))
            }
            #[cfg(not(feature = "identity-oidc"))]
            IdentitySection::Entra(_) => Err(self.missing_feature("identity", "entra", "identity-oidc")),
            #[cfg(not(feature = "identity-oidc"))]
            IdentitySection::Oidc(_) => Err(self.missing_feature("identity", "oidc", "identity-oidc")),
            #[cfg(feature = "identity-ldap")]
            IdentitySection::Ldap(c) => {
                let provider = crate::identity::ldap::LdapProvider::new((**c).clone(), state.clone())
                    .map_err(|e| {
                        let index = index.to_string();
                        let path: Vec<&str> =
                            ["identity", index.as_str()].into_iter().chain(e.field.split('.')).collect();
                        self.error(&path, e.to_string()).caused_by(e)
                    })?;
                Ok(Arc::new(provider))
            }
            #[cfg(not(feature = "identity-ldap"))]
            IdentitySection::Ldap(_) => Err(self.missing_feature("identity", "ldap", "identity-ldap")),
        }
    }

    /// An OIDC provider's build error, at the setting it names when it names one.
    #[cfg(feature = "identity-oidc")]
    fn oidc_error(&self, index: usize, e: &crate::identity::oidc::Error) -> ConfigError {
        let index = index.to_string();
        match e {
            crate::identity::oidc::Error::Config { field, .. } => {
                let path: Vec<&str> =
                    ["identity", index.as_str()].into_iter().chain(field.split('.')).collect();
                self.error(&path, e.to_string())
            }
            _ => self
                .error(&["identity", &index], e.to_string())
                .hint("check the issuer's URL and that it answers its discovery document and keys"),
        }
    }

    fn build_policy(
        &self,
        audit: &Arc<dyn crate::AuditSink>,
    ) -> Result<Arc<dyn crate::PolicyEngine>, ConfigError> {
        match &self.policy {
            #[cfg(feature = "policy-native")]
            PolicySection::Native(c) => {
                let watcher = crate::policy::PolicyWatcher::new(c, audit.clone())
                    .map_err(|e| self.error(&["policy", "files"], e.to_string()).caused_by(e))?;
                Ok(Arc::new(watcher))
            }
            #[cfg(not(feature = "policy-native"))]
            PolicySection::Native(_) => {
                let _ = audit;
                Err(self.missing_feature("policy", "native", "policy-native"))
            }
            PolicySection::Cedar(_) => Err(self.not_available("policy", "cedar")),
        }
    }

    /// The audit sink: the one configured, or a fan-out over several (or over one that spools).
    async fn build_audit(&self) -> Result<Arc<dyn crate::AuditSink>, ConfigError> {
        use crate::audit::fanout::{FanOutSink, Mode, Target};
        let listed = self.origin.doc.get("audit").is_some_and(|n| matches!(n.value, Value::Seq(_)));
        if let [target @ AuditTarget { spool: None, .. }] = self.audit.as_slice() {
            let at: &[&str] = if listed { &["audit", "0"] } else { &["audit"] };
            return self.build_audit_sink(at, target).await;
        }
        let mut targets = Vec::with_capacity(self.audit.len());
        for (i, target) in self.audit.iter().enumerate() {
            let index = i.to_string();
            let at: &[&str] = if listed { &["audit", &index] } else { &["audit"] };
            let sink = self.build_audit_sink(at, target).await?;
            let mode = target.spool.clone().map_or(Mode::Required, Mode::Spool);
            targets.push(Target::new(format!("audit[{i}] ({})", target.sink.type_name()), sink, mode));
        }
        let fan_out = FanOutSink::new(targets).map_err(|e| self.error(&["audit"], e.to_string()))?;
        Ok(Arc::new(fan_out))
    }

    /// The sink of `target`, described at `at` in the file.
    async fn build_audit_sink(
        &self,
        at: &[&str],
        target: &AuditTarget,
    ) -> Result<Arc<dyn crate::AuditSink>, ConfigError> {
        let _ = at; // unread in a build without the backend
        match &target.sink {
            #[cfg(feature = "audit-jsonl")]
            AuditSection::Jsonl(c) => {
                use crate::audit::jsonl::{Error, JsonlConfig, JsonlSink};
                let mut c = JsonlConfig::clone(c);
                if let Some(store) = &target.anchor {
                    let anchor = self.build_anchor_store(at, store)?;
                    c.anchor = c.anchor.map(|a| a.with_store(anchor));
                }
                let sink = JsonlSink::open(c).map_err(|e| {
                    // The anchor's own settings are refused at `anchor`, the rest at `dir`.
                    let key = match &e {
                        Error::Config(m) | Error::Anchor { reason: m, .. } if m.contains("anchor") => {
                            "anchor"
                        }
                        _ => "dir",
                    };
                    self.error(&[at, &[key]].concat(), e.to_string()).caused_by(e)
                })?;
                Ok(Arc::new(sink))
            }
            #[cfg(not(feature = "audit-jsonl"))]
            AuditSection::Jsonl(_) => Err(self.missing_feature("audit", "jsonl", "audit-jsonl")),
            #[cfg(feature = "audit-sqlite")]
            AuditSection::Sqlite(c) => {
                let path = [at, &["path"]].concat();
                let sink = crate::audit::sqlite::SqliteSink::open(c.clone())
                    .await
                    .map_err(|e| self.error(&path, e.to_string()).caused_by(e))?;
                Ok(Arc::new(sink))
            }
            #[cfg(not(feature = "audit-sqlite"))]
            AuditSection::Sqlite(_) => Err(self.missing_feature("audit", "sqlite", "audit-sqlite")),
            #[cfg(feature = "audit-postgres")]
            AuditSection::Postgres(c) => {
                let sink = crate::audit::postgres::PostgresSink::open(c.clone())
                    .await
                    .map_err(|e| self.error(at, e.to_string()).caused_by(e))?;
                Ok(Arc::new(sink))
            }
            #[cfg(not(feature = "audit-postgres"))]
            AuditSection::Postgres(_) => Err(self.missing_feature("audit", "postgres", "audit-postgres")),
            #[cfg(feature = "audit-nats")]
            AuditSection::Nats(c) => {
                let sink = crate::audit::nats::NatsSink::open(c.clone())
                    .await
                    .map_err(|e| self.error(at, e.to_string()).caused_by(e))?;
                Ok(Arc::new(sink))
            }
            #[cfg(not(feature = "audit-nats"))]
            AuditSection::Nats(_) => Err(self.missing_feature("audit", "nats", "audit-nats")),
        }
    }

    /// The anchor store of the `jsonl` sink at `at`.
    #[cfg(feature = "audit-jsonl")]
    fn build_anchor_store(
        &self,
        at: &[&str],
        store: &AnchorStoreSection,
    ) -> Result<Arc<dyn crate::audit::jsonl::CheckpointAnchor>, ConfigError> {
        let key = [at, &["anchor", store.key()]].concat();
        match store {
            #[cfg(feature = "audit-postgres")]
            AnchorStoreSection::Postgres(c) => match crate::audit::postgres::PostgresAnchor::new(c) {
                Ok(anchor) => Ok(Arc::new(anchor)),
                Err(e) => Err(self.error(&key, e.to_string()).caused_by(e)),
            },
            #[cfg(feature = "audit-nats")]
            AnchorStoreSection::Nats(c) => match crate::audit::nats::NatsAnchor::new(c) {
                Ok(anchor) => Ok(Arc::new(anchor)),
                Err(e) => Err(self.error(&key, e.to_string()).caused_by(e)),
            },
            #[allow(unreachable_patterns)]
            other => {
                let feature = format!("audit-{}", other.key());
                Err(ConfigError {
                    file: self.origin.file.clone(),
                    position: self.key_position(&key),
                    ..ConfigError::new(format!(
                        "an audit anchor in `{}` needs the `{feature}` feature, which this build does not have",
                        other.key()
                    ))
                    .hint(format!("build with `--features {feature}`, or choose another anchor"))
                })
            }
        }
    }
}

/// Why a secret looks like a placeholder, if it does.
fn placeholder(secret: &str) -> Option<&'static str> {
    let upper = secret.to_ascii_uppercase();
    if secret.trim().len() < 32 {
        return Some("shorter than 32 bytes");
    }
    ["CHANGE_ME", "CHANGEME", "PLACEHOLDER", "REPLACE_ME", "YOUR_KEY", "EXAMPLE"]
        .into_iter()
        .find(|marker| upper.contains(marker))
        .map(|_| "contains a placeholder marker")
}

/// Reads a section's content as `T`.
fn read<T: DeserializeOwned>(node: &Node) -> Result<T, ConfigError> {
    zta_source::from_node(node).map_err(ConfigError::read)
}

/// A section's `type`, where it is written, and the rest of the section.
fn split(node: &Node) -> Result<(&str, Pos, Node), ConfigError> {
    zta_source::split_tag(node, "type").map_err(ConfigError::read)
}

fn unknown_type(tag: &str, pos: Pos, types: &[&str]) -> ConfigError {
    let expected = types.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ");
    ConfigError::read(DeError::new(pos, format!("unknown variant `{tag}`, expected one of {expected}")))
}

fn read_identities(node: &Node) -> Result<Vec<IdentitySection>, ConfigError> {
    let Value::Seq(items) = &node.value else {
        return Err(ConfigError::read(DeError::new(node.pos, "expected a list of identity providers")));
    };
    items.iter().map(read_identity).collect()
}

fn read_identity(node: &Node) -> Result<IdentitySection, ConfigError> {
    let (tag, pos, rest) = split(node)?;
    let _ = &rest; // unread in a build without the backend
    Ok(match tag {
        #[cfg(feature = "identity-static")]
        "static" => IdentitySection::Static(read(&rest)?),
        #[cfg(not(feature = "identity-static"))]
        "static" => IdentitySection::Static(NotCompiled),
        #[cfg(feature = "identity-oidc")]
        "entra" => IdentitySection::Entra(read(&rest)?),
        #[cfg(not(feature = "identity-oidc"))]
        "entra" => IdentitySection::Entra(NotCompiled),
        #[cfg(feature = "identity-oidc")]
        "oidc" => IdentitySection::Oidc(read(&rest)?),
        #[cfg(not(feature = "identity-oidc"))]
        "oidc" => IdentitySection::Oidc(NotCompiled),
        #[cfg(feature = "identity-ldap")]
        "ldap" => IdentitySection::Ldap(Box::new(read(&rest)?)),
        #[cfg(not(feature = "identity-ldap"))]
        "ldap" => IdentitySection::Ldap(NotCompiled),
        other => return Err(unknown_type(other, pos, &["static", "entra", "oidc", "ldap"])),
    })
}

fn read_policy(node: &Node) -> Result<PolicySection, ConfigError> {
    let (tag, pos, rest) = split(node)?;
    let _ = &rest; // unread in a build without the backend
    Ok(match tag {
        #[cfg(feature = "policy-native")]
        "native" => PolicySection::Native(read(&rest)?),
        #[cfg(not(feature = "policy-native"))]
        "native" => PolicySection::Native(NotCompiled),
        "cedar" => PolicySection::Cedar(NotCompiled),
        other => return Err(unknown_type(other, pos, &["native", "cedar"])),
    })
}

/// The `audit` section: one sink, or a list of them.
fn read_audit(node: &Node) -> Result<Vec<AuditTarget>, ConfigError> {
    match &node.value {
        Value::Seq(items) if items.is_empty() => {
            Err(ConfigError::read(DeError::new(node.pos, "`audit` lists no sink")))
        }
        Value::Seq(items) => items.iter().map(read_audit_target).collect(),
        _ => Ok(vec![read_audit_target(node)?]),
    }
}

fn read_audit_target(node: &Node) -> Result<AuditTarget, ConfigError> {
    let spool = match &node.value {
        Value::Map(entries) => {
            entries.iter().find(|(k, _)| k.name == "spool").map(|(_, v)| read(v)).transpose()?
        }
        _ => None,
    };
    let mut sink = node.clone();
    let mut anchor = None;
    if let Value::Map(entries) = &mut sink.value {
        entries.retain(|(k, _)| k.name != "spool");
        if sink_type(entries) == Some("jsonl")
            && let Some((_, node)) = entries.iter_mut().find(|(k, _)| k.name == "anchor")
        {
            anchor = take_anchor_store(node)?;
        }
    }
    Ok(AuditTarget { sink: read_audit_sink(&sink)?, spool, anchor })
}

/// The `type` of a sink's entries, if it is a plain string.
fn sink_type(entries: &[(zta_source::Key, Node)]) -> Option<&str> {
    entries.iter().find(|(k, _)| k.name == "type").and_then(|(_, v)| v.as_str())
}

/// Takes the store (`postgres:` or `nats:`) out of a `jsonl` sink's `anchor`, leaving the
/// settings the sink itself reads.
fn take_anchor_store(anchor: &mut Node) -> Result<Option<AnchorStoreSection>, ConfigError> {
    let Value::Map(entries) = &mut anchor.value else { return Ok(None) };
    let mut found = None;
    for store in ["postgres", "nats"] {
        let Some(i) = entries.iter().position(|(k, _)| k.name == store) else { continue };
        let (key, node) = entries.remove(i);
        if found.is_some() {
            return Err(ConfigError::read(DeError::new(
                key.pos,
                "`anchor` takes one of `file`, `command`, `postgres` or `nats`, not several",
            )));
        }
        let _ = &node; // unread in a build without the backend
        found = Some(match store {
            #[cfg(feature = "audit-postgres")]
            "postgres" => AnchorStoreSection::Postgres(read(&node)?),
            #[cfg(not(feature = "audit-postgres"))]
            "postgres" => AnchorStoreSection::Postgres(NotCompiled),
            #[cfg(feature = "audit-nats")]
            _ => AnchorStoreSection::Nats(read(&node)?),
            #[cfg(not(feature = "audit-nats"))]
            _ => AnchorStoreSection::Nats(NotCompiled),
        });
    }
    Ok(found)
}

fn read_audit_sink(node: &Node) -> Result<AuditSection, ConfigError> {
    let (tag, pos, rest) = split(node)?;
    let _ = &rest; // unread in a build without the backend
    Ok(match tag {
        #[cfg(feature = "audit-jsonl")]
        "jsonl" => AuditSection::Jsonl(Box::new(read(&rest)?)),
        #[cfg(not(feature = "audit-jsonl"))]
        "jsonl" => AuditSection::Jsonl(NotCompiled),
        #[cfg(feature = "audit-sqlite")]
        "sqlite" => AuditSection::Sqlite(read(&rest)?),
        #[cfg(not(feature = "audit-sqlite"))]
        "sqlite" => AuditSection::Sqlite(NotCompiled),
        #[cfg(feature = "audit-postgres")]
        "postgres" => AuditSection::Postgres(read(&rest)?),
        #[cfg(not(feature = "audit-postgres"))]
        "postgres" => AuditSection::Postgres(NotCompiled),
        #[cfg(feature = "audit-nats")]
        "nats" => AuditSection::Nats(read(&rest)?),
        #[cfg(not(feature = "audit-nats"))]
        "nats" => AuditSection::Nats(NotCompiled),
        other => return Err(unknown_type(other, pos, &["jsonl", "sqlite", "postgres", "nats"])),
    })
}

/// The `monitor` section, its detectors checked (names, windows, thresholds, responses).
fn read_monitor(node: &Node) -> Result<crate::monitor::MonitorConfig, ConfigError> {
    let config: crate::monitor::MonitorConfig = read(node)?;
    config.validate().map_err(|e| {
        // At the detector it names.
        let entry = match node.get("detectors").map(|d| &d.value) {
            Some(Value::Seq(items)) => {
                items.iter().find(|i| i.get("name").and_then(Node::as_str) == e.detector.as_deref())
            }
            _ => None,
        };
        ConfigError { position: Position::of(entry.unwrap_or(node).pos), ..ConfigError::new(e.to_string()) }
    })?;
    Ok(config)
}

fn read_state(node: &Node) -> Result<StateSection, ConfigError> {
    let (tag, pos, rest) = split(node)?;
    Ok(match tag {
        "memory" => {
            read::<Empty>(&rest)?;
            StateSection::Memory
        }
        #[cfg(feature = "state-redis")]
        "redis" => StateSection::Redis(read(&rest)?),
        #[cfg(not(feature = "state-redis"))]
        "redis" => StateSection::Redis(NotCompiled),
        "postgres" => StateSection::Postgres(NotCompiled),
        other => return Err(unknown_type(other, pos, &["memory", "redis", "postgres"])),
    })
}

/// A section with nothing besides its `type`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}
