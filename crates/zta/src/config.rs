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
//! Unknown keys, missing or placeholder secrets, and backends whose Cargo feature is not
//! compiled in are errors that name the file, line and column. Relative paths are relative to
//! the config file's directory.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::Deserialize;

use crate::location::{self, Position};

/// A configuration could not be loaded or built.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

impl ConfigError {
    fn new(message: impl Into<String>) -> Self {
        Self { file: None, position: None, message: message.into(), hint: None }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
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

impl std::error::Error for ConfigError {}

/// A section whose backend this build does not contain; its content is not read.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(from = "serde::de::IgnoredAny")]
pub struct NotCompiled;

impl From<serde::de::IgnoredAny> for NotCompiled {
    fn from(_: serde::de::IgnoredAny) -> Self {
        Self
    }
}

/// An identity provider section, chosen by `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum IdentitySection {
    /// Agents declared in the config (`identity-static`).
    #[cfg(feature = "identity-static")]
    Static(crate::identity::static_agents::StaticConfig),
    /// Agents declared in the config (not compiled in).
    #[cfg(not(feature = "identity-static"))]
    Static(NotCompiled),
    /// An OpenID Connect issuer such as Entra ID (not yet available).
    Oidc(NotCompiled),
    /// An LDAP directory (not yet available).
    Ldap(NotCompiled),
}

/// The policy section, chosen by `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
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
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditSection {
    /// Hash-chained JSON Lines files (`audit-jsonl`).
    #[cfg(feature = "audit-jsonl")]
    Jsonl(crate::audit::jsonl::JsonlConfig),
    /// Hash-chained JSON Lines files (not compiled in).
    #[cfg(not(feature = "audit-jsonl"))]
    Jsonl(NotCompiled),
    /// SQLite (not yet available).
    Sqlite(NotCompiled),
    /// PostgreSQL (not yet available).
    Postgres(NotCompiled),
    /// NATS JetStream (not yet available).
    Nats(NotCompiled),
}

/// Where revocations, lockout counters and replay ids live.
#[derive(Debug, Default, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
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
#[derive(Debug, Default, Deserialize)]
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Identity providers, asked in order.
    pub identity: Vec<IdentitySection>,
    /// Session tokens.
    pub tokens: crate::token::TokenConfig,
    /// Policy.
    pub policy: PolicySection,
    /// Audit.
    pub audit: AuditSection,
    /// Shared state.
    #[serde(default)]
    pub state: StateSection,
    /// Enforcement settings.
    #[serde(default)]
    pub guard: GuardSection,
    #[serde(skip)]
    origin: Origin,
}

#[derive(Debug, Default)]
struct Origin {
    file: Option<PathBuf>,
    text: String,
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
}

enum Format {
    Yaml,
    Toml,
}

impl Config {
    /// Loads a config file; `.toml` files are TOML, anything else YAML.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: Some(path.to_owned()),
            ..ConfigError::new(format!("cannot read config: {e}"))
        })?;
        let format = if path.extension().is_some_and(|e| e == "toml") { Format::Toml } else { Format::Yaml };
        let mut config =
            Self::parse(&text, format).map_err(|e| ConfigError { file: Some(path.to_owned()), ..e })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        config.resolve_paths(base);
        config.origin.file = Some(path.to_owned());
        Ok(config)
    }

    /// Parses YAML text (relative paths stay relative to the working directory).
    pub fn from_yaml_str(text: &str) -> Result<Self, ConfigError> {
        Self::parse(text, Format::Yaml)
    }

    /// Parses TOML text (relative paths stay relative to the working directory).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::parse(text, Format::Toml)
    }

    fn parse(text: &str, format: Format) -> Result<Self, ConfigError> {
        let parsed = match format {
            Format::Yaml => serde_yaml::from_str::<Self>(text).map_err(|e| {
                let line = e.location().map_or(1, |l| l.line());
                let pos = e.location().map(|l| Position { line: l.line(), column: l.column() });
                located(text, &e.to_string(), line, pos)
            }),
            Format::Toml => toml::from_str::<Self>(text).map_err(|e| {
                let (line, pos) = e.span().map_or((1, None), |span| {
                    let before = text.get(..span.start).unwrap_or_default();
                    let line = before.matches('\n').count() + 1;
                    let column = before.rsplit('\n').next().map_or(0, str::len) + 1;
                    (line, Some(Position { line, column }))
                });
                located(text, e.message(), line, pos)
            }),
        };
        let mut config = parsed?;
        config.origin.text = text.to_owned();
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        #[cfg(feature = "identity-static")]
        for section in &mut self.identity {
            if let IdentitySection::Static(c) = section {
                c.agents.iter_mut().filter_map(|a| a.public_key_file.as_mut()).for_each(fix);
            }
        }
        if let Some(p) = self.tokens.signing_key_file.as_mut() {
            fix(p);
        }
        #[cfg(feature = "policy-native")]
        if let PolicySection::Native(c) = &mut self.policy {
            c.files.iter_mut().for_each(fix);
        }
        #[cfg(feature = "audit-jsonl")]
        if let AuditSection::Jsonl(c) = &mut self.audit {
            fix(&mut c.dir);
            if let Some(p) = c.checkpoint_key_file.as_mut() {
                fix(p);
            }
            if let Some(p) = c.anchor.as_mut().and_then(|a| a.file.as_mut()) {
                fix(p);
            }
        }
    }

    /// An error located at the `type: value` line of a section.
    /// An error located at the `type: value` line of a section whose backend this version of
    /// ZTA does not have at all (no feature would help).
    fn not_available(&self, section: &str, backend: &str) -> ConfigError {
        ConfigError {
            file: self.origin.file.clone(),
            position: location::find_key_value(&self.origin.text, "type", backend),
            ..ConfigError::new(format!("{section} type `{backend}` is not available in this version of ZTA"))
                .hint(format!("choose another {section} type"))
        }
    }

    // Only a build that leaves some backend feature off can name one that is off.
    #[cfg(not(all(
        feature = "identity-static",
        feature = "policy-native",
        feature = "audit-jsonl",
        feature = "state-redis"
    )))]
    fn missing_feature(&self, section: &str, backend: &str, feature: &str) -> ConfigError {
        ConfigError {
            file: self.origin.file.clone(),
            position: location::find_key_value(&self.origin.text, "type", backend),
            ..ConfigError::new(format!(
                "{section} type `{backend}` needs the `{feature}` feature, which this build does not have"
            ))
            .hint(format!("build with `--features {feature}`, or choose another {section} type"))
        }
    }

    fn error(&self, key: Option<&str>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.origin.file.clone(),
            position: key.and_then(|k| location::find_key(&self.origin.text, k, 1)),
            ..ConfigError::new(message)
        }
    }

    /// Builds every part and the guard. Opens the audit log, loads keys and policies; anything
    /// missing or invalid is an error.
    pub async fn build(&self) -> Result<Built, ConfigError> {
        let state: Arc<dyn crate::StateStore> = match &self.state {
            StateSection::Memory => Arc::new(crate::MemoryStateStore::new()),
            #[cfg(feature = "state-redis")]
            StateSection::Redis(c) => {
                let store = crate::state::redis::RedisStateStore::connect(c.clone()).await.map_err(|e| {
                    let error = self.error(Some("state"), format!("state store: {e}"));
                    match e {
                        crate::state::redis::Error::Connect { .. } => error.hint(
                            "start Redis or fix `url`/`url_env`: without its state the guard can only deny",
                        ),
                        _ => error,
                    }
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
                .map_err(|e| self.error(Some("tokens"), e.to_string()))?,
        );

        let audit = self.build_audit().await?;
        let policy = self.build_policy(&audit)?;

        let mut builder = crate::Guard::builder(policy, audit)
            .token_authority(tokens.clone())
            .state_store(state.clone())
            .durable_before_permit(self.guard.durable_before_permit);
        for name in &self.guard.discharges {
            builder = builder.discharges(name.clone());
        }
        for section in &self.identity {
            builder = builder.identity_provider(self.build_identity(section, &state)?);
        }
        let guard = builder.build().map_err(|e| self.error(Some("identity"), e.to_string()))?;
        Ok(Built { guard, tokens, state })
    }

    /// Loads the token signing key from `signing_key_file` or `signing_key_env`, refusing
    /// placeholders.
    fn signing_key(&self) -> Result<crate::token::SigningKey, ConfigError> {
        let t = &self.tokens;
        let (pem, key) = match (&t.signing_key_file, &t.signing_key_env) {
            (Some(path), None) => {
                let pem = std::fs::read_to_string(path).map_err(|e| {
                    self.error(
                        Some("signing_key_file"),
                        format!("cannot read signing key `{}`: {e}", path.display()),
                    )
                    .hint("create one with `zta keygen --out DIR`")
                })?;
                (pem, "signing_key_file")
            }
            (None, Some(var)) => {
                let pem = std::env::var(var).map_err(|_| {
                    self.error(Some("signing_key_env"), format!("environment variable `{var}` is not set"))
                        .hint("export the PKCS#8 PEM signing key in that variable")
                })?;
                (pem, "signing_key_env")
            }
            _ => {
                return Err(self
                    .error(
                        Some("tokens"),
                        "tokens need exactly one of `signing_key_file` and `signing_key_env`",
                    )
                    .hint("create a key with `zta keygen --out DIR` and point `signing_key_file` at it"));
            }
        };
        if let Some(why) = placeholder(&pem) {
            return Err(self
                .error(Some(key), format!("the token signing key is a placeholder ({why})"))
                .hint("create a real key with `zta keygen --out DIR`"));
        }
        crate::token::SigningKey::from_pkcs8_pem(t.algorithm, &pem)
            .map_err(|e| self.error(Some(key), format!("invalid token signing key: {e}")))
    }

    fn build_identity(
        &self,
        section: &IdentitySection,
        state: &Arc<dyn crate::StateStore>,
    ) -> Result<Arc<dyn crate::IdentityProvider>, ConfigError> {
        match section {
            #[cfg(feature = "identity-static")]
            IdentitySection::Static(c) => {
                let provider = crate::identity::static_agents::StaticProvider::new(c.clone(), state.clone())
                    .map_err(|e| self.error(Some("agents"), e.to_string()))?;
                Ok(Arc::new(provider))
            }
            #[cfg(not(feature = "identity-static"))]
            IdentitySection::Static(_) => {
                let _ = state;
                Err(self.missing_feature("identity", "static", "identity-static"))
            }
            IdentitySection::Oidc(_) => Err(self.not_available("identity", "oidc")),
            IdentitySection::Ldap(_) => Err(self.not_available("identity", "ldap")),
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
                    .map_err(|e| self.error(Some("files"), e.to_string()))?;
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

    async fn build_audit(&self) -> Result<Arc<dyn crate::AuditSink>, ConfigError> {
        match &self.audit {
            #[cfg(feature = "audit-jsonl")]
            AuditSection::Jsonl(c) => {
                let sink = crate::audit::jsonl::JsonlSink::open(c.clone())
                    .map_err(|e| self.error(Some("dir"), e.to_string()))?;
                Ok(Arc::new(sink))
            }
            #[cfg(not(feature = "audit-jsonl"))]
            AuditSection::Jsonl(_) => Err(self.missing_feature("audit", "jsonl", "audit-jsonl")),
            AuditSection::Sqlite(_) => Err(self.not_available("audit", "sqlite")),
            AuditSection::Postgres(_) => Err(self.not_available("audit", "postgres")),
            AuditSection::Nats(_) => Err(self.not_available("audit", "nats")),
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

/// Builds a located error from a deserializer message, pointing at the offending key when
/// the message names one.
fn located(text: &str, message: &str, line: usize, pos: Option<Position>) -> ConfigError {
    let refined = location::offending_name(message)
        .filter(|_| message.contains("unknown field"))
        .and_then(|name| location::find_key(text, name, line));
    let mut err = ConfigError { position: refined.or(pos), ..ConfigError::new(strip_location(message)) };
    if message.contains("unknown field") {
        err =
            err.hint("remove the key or check its spelling; the message lists the keys this section accepts");
    } else if message.contains("unknown variant") {
        err = err
            .hint("this names a backend or value that does not exist; the message lists the accepted ones");
    }
    err
}

/// serde_yaml appends " at line L column C"; the position is reported separately.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message.get(..i).unwrap_or(message).to_owned(),
        None => message.trim_end().to_owned(),
    }
}
