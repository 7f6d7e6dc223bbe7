//! Configuration: the agents this provider knows, each with exactly one credential, plus
//! lockout and assertion limits.

use std::{path::PathBuf, time::Duration};

use serde::Deserialize;
use zta_core::AgentId;

/// The `identity` section for `type: static`: agents declared in configuration.
///
/// ```yaml
/// audience: https://zta.example/issuer
/// agents:
///   - id: research_bot
///     segment: research
///     roles: [reader]
///     public_key_file: /etc/zta/agents/research_bot.pub.pem
/// lockout: { max_failures: 5, window: 5m }
/// assertion: { max_lifetime: 60s, leeway: 5s }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StaticConfig {
    /// The value assertions must carry in `aud` (usually the ZTA issuer URL).
    pub audience: String,
    /// The known agents.
    #[serde(default)]
    pub agents: Vec<AgentEntry>,
    /// Failed-attempt lockout.
    #[serde(default)]
    pub lockout: LockoutConfig,
    /// Limits on agent assertions.
    #[serde(default)]
    pub assertion: AssertionConfig,
    /// Limits on secret verification work.
    #[serde(default)]
    pub hashing: HashingConfig,
}

impl StaticConfig {
    /// A configuration with `audience`, no agents and default limits.
    pub fn new(audience: impl Into<String>) -> Self {
        Self {
            audience: audience.into(),
            agents: Vec::new(),
            lockout: LockoutConfig::default(),
            assertion: AssertionConfig::default(),
            hashing: HashingConfig::default(),
        }
    }

    /// Adds an agent.
    #[must_use]
    pub fn with_agent(mut self, agent: AgentEntry) -> Self {
        self.agents.push(agent);
        self
    }
}

/// One agent: who it is, where it lives, and exactly one credential (`public_key`,
/// `public_key_file` or `secret_hash`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AgentEntry {
    /// The agent id.
    pub id: AgentId,
    /// The microsegment the agent lives in.
    #[serde(default)]
    pub segment: Option<String>,
    /// Roles granted to the agent.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Groups the agent belongs to.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The agent's tenant, if any.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Ed25519 public key, SubjectPublicKeyInfo PEM text.
    #[serde(default)]
    pub public_key: Option<String>,
    /// Path of a file holding the Ed25519 public key as SPKI PEM.
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
    /// argon2id PHC string of the agent's secret (see [`hash_secret`](crate::hash_secret)).
    #[serde(default)]
    pub secret_hash: Option<String>,
}

impl AgentEntry {
    fn new(id: AgentId) -> Self {
        Self {
            id,
            segment: None,
            roles: Vec::new(),
            groups: Vec::new(),
            tenant: None,
            public_key: None,
            public_key_file: None,
            secret_hash: None,
        }
    }

    /// An agent that signs assertions with the key whose SPKI PEM is `pem`.
    pub fn from_public_key(id: AgentId, pem: impl Into<String>) -> Self {
        Self { public_key: Some(pem.into()), ..Self::new(id) }
    }

    /// An agent that signs assertions with the key in the PEM file at `path`.
    pub fn from_public_key_file(id: AgentId, path: impl Into<PathBuf>) -> Self {
        Self { public_key_file: Some(path.into()), ..Self::new(id) }
    }

    /// An agent that presents a secret, stored as the argon2id PHC string `hash`.
    pub fn from_secret_hash(id: AgentId, hash: impl Into<String>) -> Self {
        Self { secret_hash: Some(hash.into()), ..Self::new(id) }
    }

    /// Sets the segment.
    #[must_use]
    pub fn with_segment(mut self, segment: impl Into<String>) -> Self {
        self.segment = Some(segment.into());
        self
    }

    /// Sets the roles.
    #[must_use]
    pub fn with_roles(mut self, roles: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the groups.
    #[must_use]
    pub fn with_groups(mut self, groups: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the tenant.
    #[must_use]
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }
}

/// Lock a name out of secret authentication after `max_failures` attempts within `window` (a
/// fixed window from the first attempt). Each lockout doubles the next window, up to 64 times
/// `window`, for a day. Assertions are not locked out. Defaults: 5 failures, `5m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LockoutConfig {
    /// Failed attempts allowed per window; the next attempt is refused without verification.
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    /// How long failures are remembered (`"30s"`, `"5m"`, `"1h"`).
    #[serde(default = "default_window", with = "zta_core::duration::text")]
    pub window: Duration,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        Self { max_failures: default_max_failures(), window: default_window() }
    }
}

/// Limits on agent assertions. Defaults: `max_lifetime: 60s`, `leeway: 5s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AssertionConfig {
    /// Longest accepted `exp - iat`.
    #[serde(default = "default_max_lifetime", with = "zta_core::duration::text")]
    pub max_lifetime: Duration,
    /// Allowed clock skew for `exp`, `nbf` and `iat`.
    #[serde(default = "default_leeway", with = "zta_core::duration::text")]
    pub leeway: Duration,
}

/// Limits on argon2 work. Each secret check costs one argon2 run (19 MiB at the minimum
/// parameters), whether the name exists or not, so without a limit a flood of attempts with
/// random names would take memory in proportion to the flood. At most `max_concurrent` run at
/// once; an attempt that finds no free slot within `max_wait` is refused as unavailable.
/// Defaults: one per core, `1s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HashingConfig {
    /// Secret verifications running at once (at least 1). Default: the number of cores.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
    /// Longest wait for a free slot before the attempt is refused (`"250ms"`, `"1s"`).
    #[serde(default = "default_max_wait", with = "zta_core::duration::text")]
    pub max_wait: Duration,
}

impl Default for HashingConfig {
    fn default() -> Self {
        Self { max_concurrent: default_max_concurrent(), max_wait: default_max_wait() }
    }
}

fn default_max_concurrent() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

fn default_max_wait() -> Duration {
    Duration::from_secs(1)
}

impl Default for AssertionConfig {
    fn default() -> Self {
        Self { max_lifetime: default_max_lifetime(), leeway: default_leeway() }
    }
}

fn default_max_failures() -> u32 {
    5
}

fn default_window() -> Duration {
    Duration::from_secs(300)
}

fn default_max_lifetime() -> Duration {
    Duration::from_secs(60)
}

fn default_leeway() -> Duration {
    Duration::from_secs(5)
}
