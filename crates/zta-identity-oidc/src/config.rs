//! The two `identity:` sections this crate reads: `type: entra` and `type: oidc`.

use std::{collections::BTreeMap, time::Duration};

use serde::Deserialize;
use zta_core::{AgentId, MAX_CREDENTIAL_LEN};

/// Entra ID's public-cloud authority.
pub const ENTRA_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The issuer base of Entra ID's v1 tokens in the public cloud.
pub const ENTRA_V1_AUTHORITY: &str = "https://sts.windows.net";

/// The `identity` section for `type: entra`: access tokens issued by Microsoft Entra ID.
///
/// ```yaml
/// authority: https://login.microsoftonline.com
/// tenant: 0d5f1f3e-2d7c-4b8e-9f6a-3c1d2e4f5a6b        # or organizations / common
/// allowed_tenants: [0d5f1f3e-2d7c-4b8e-9f6a-3c1d2e4f5a6b] # required when multi-tenant
/// audiences: [6e74172b-be56-4843-9ff4-e66a39bb12e3, api://6e74172b-be56-4843-9ff4-e66a39bb12e3]
/// versions: [v1, v2]
/// app_only: true
/// required_roles: [Agent.Invoke]
/// agents: {2f0c9d1e-5b7a-4c3d-8e9f-0a1b2c3d4e5f: research_bot}
/// leeway: 60s
/// jwks: {min_refetch: 5m, refresh: 1h}
/// issue_session_token: true
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EntraConfig {
    /// The authority base URL (sovereign clouds, or a local test server). `http://` only on a
    /// loopback address.
    #[serde(default = "default_authority")]
    pub authority: String,
    /// The base of the `iss` of v1 tokens (`https://sts.windows.net` in the public cloud).
    #[serde(default = "default_v1_authority")]
    pub v1_authority: String,
    /// The tenant id (a GUID), or `organizations` / `common` for a multi-tenant API.
    pub tenant: String,
    /// The tenants whose tokens a multi-tenant API accepts (GUIDs). Required when `tenant` is
    /// `organizations` or `common`; must be empty otherwise.
    #[serde(default)]
    pub allowed_tenants: Vec<String>,
    /// The exact `aud` values accepted: this API's client id and App ID URI.
    pub audiences: Vec<String>,
    /// The token versions accepted (default `[v2]`).
    #[serde(default = "default_versions")]
    pub versions: Vec<TokenVersion>,
    /// An API for daemon agents only (default): a token carrying `scp` (delegated, on behalf of
    /// a user) or an `idtyp` other than `app` is refused, and `required_roles` must be set.
    #[serde(default = "yes")]
    pub app_only: bool,
    /// App roles a token must carry in `roles`, every one of them.
    #[serde(default)]
    pub required_roles: Vec<String>,
    /// The claim holding the agent id: `azp` or `appid` (the app id; the default is `azp` in
    /// v2 tokens and `appid` in v1 tokens), `oid` or `sub`.
    #[serde(default)]
    pub agent_claim: Option<String>,
    /// Application ids mapped to agent ids. When set, a token of an app not listed is refused.
    #[serde(default)]
    pub agents: BTreeMap<String, AgentId>,
    /// The segment of every agent this provider verifies, unless `segments` names another.
    #[serde(default)]
    pub segment: Option<String>,
    /// Segments by agent id.
    #[serde(default)]
    pub segments: BTreeMap<AgentId, String>,
    /// Clock-skew leeway for `exp` and `nbf` (default 60 s, at most 5 min).
    #[serde(default = "default_leeway", with = "zta_core::duration::text")]
    pub leeway: Duration,
    /// The signing-key cache.
    #[serde(default)]
    pub jwks: JwksConfig,
    /// Longest token accepted, in bytes (default and most: 8 KiB).
    #[serde(default = "default_max_token_size")]
    pub max_token_size: usize,
    /// Whether `login` exchanges a verified token for a ZTA session token (default false).
    #[serde(default)]
    pub issue_session_token: bool,
    /// How many verified tokens are kept, so a repeated token is not verified again (default
    /// 10 000; 0 disables the cache). Expiry, the signing key and revocation are checked on
    /// every use.
    #[serde(default = "default_cache_capacity")]
    pub cache_capacity: usize,
    /// Time limit of each request to the issuer (default 10 s).
    #[serde(default = "default_http_timeout", with = "zta_core::duration::text")]
    pub http_timeout: Duration,
}

/// The `identity` section for `type: oidc`: access tokens (JWTs) from any OpenID Connect
/// issuer (Okta, Keycloak, Auth0, Google, ...).
///
/// ```yaml
/// issuer: https://keycloak.example/realms/agents
/// audiences: [zta-gateway]
/// algorithms: [RS256, ES256]
/// agent_claim: azp
/// roles_claim: realm_access.roles
/// required_roles: [agent]
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OidcConfig {
    /// The exact issuer; its discovery document is read from
    /// `{issuer}/.well-known/openid-configuration` and must name the same issuer.
    pub issuer: String,
    /// The exact `aud` values accepted.
    pub audiences: Vec<String>,
    /// The signature algorithms accepted (default `[RS256]`): any of RS256, RS384, RS512, PS256,
    /// PS384, PS512, ES256, ES384, EdDSA. HMAC and `none` are never accepted.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// The claim holding the agent id, as a dotted path (default `sub`).
    #[serde(default = "default_subject_claim")]
    pub agent_claim: String,
    /// The claim holding roles, as a dotted path (`roles`, `realm_access.roles`): a list of
    /// strings, or one space-separated string.
    #[serde(default)]
    pub roles_claim: Option<String>,
    /// The claim holding groups, as a dotted path.
    #[serde(default)]
    pub groups_claim: Option<String>,
    /// The claim holding the tenant, as a dotted path.
    #[serde(default)]
    pub tenant_claim: Option<String>,
    /// Roles a token must carry, every one of them.
    #[serde(default)]
    pub required_roles: Vec<String>,
    /// Agent-claim values mapped to agent ids. When set, a value not listed is refused.
    #[serde(default)]
    pub agents: BTreeMap<String, AgentId>,
    /// The segment of every agent this provider verifies, unless `segments` names another.
    #[serde(default)]
    pub segment: Option<String>,
    /// Segments by agent id.
    #[serde(default)]
    pub segments: BTreeMap<AgentId, String>,
    /// Clock-skew leeway for `exp` and `nbf` (default 60 s, at most 5 min).
    #[serde(default = "default_leeway", with = "zta_core::duration::text")]
    pub leeway: Duration,
    /// The signing-key cache.
    #[serde(default)]
    pub jwks: JwksConfig,
    /// Longest token accepted, in bytes (default and most: 8 KiB).
    #[serde(default = "default_max_token_size")]
    pub max_token_size: usize,
    /// Whether `login` exchanges a verified token for a ZTA session token (default false).
    #[serde(default)]
    pub issue_session_token: bool,
    /// How many verified tokens are kept, so a repeated token is not verified again (default
    /// 10 000; 0 disables the cache). Expiry, the signing key and revocation are checked on
    /// every use.
    #[serde(default = "default_cache_capacity")]
    pub cache_capacity: usize,
    /// Time limit of each request to the issuer (default 10 s).
    #[serde(default = "default_http_timeout", with = "zta_core::duration::text")]
    pub http_timeout: Duration,
}

/// The signing-key cache of one issuer: `jwks: {min_refetch: 5m, refresh: 1h, max_keys: 64}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct JwksConfig {
    /// Shortest time between two fetches caused by tokens naming an unknown `kid` (default
    /// 5 min): a flood of such tokens costs the issuer at most one fetch per interval.
    #[serde(default = "default_min_refetch", with = "zta_core::duration::text")]
    pub min_refetch: Duration,
    /// How often the keys are fetched again in the background (default 1 h). Keys the issuer
    /// stopped publishing stop verifying at the next fetch.
    #[serde(default = "default_refresh", with = "zta_core::duration::text")]
    pub refresh: Duration,
    /// Most keys kept from one key set (default 64).
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
}

impl Default for JwksConfig {
    fn default() -> Self {
        Self { min_refetch: default_min_refetch(), refresh: default_refresh(), max_keys: default_max_keys() }
    }
}

/// An Entra ID access-token version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenVersion {
    /// `ver: 1.0`, issued by `https://sts.windows.net/{tid}/`.
    V1,
    /// `ver: 2.0`, issued by `{authority}/{tid}/v2.0`.
    V2,
}

impl TokenVersion {
    /// The value of the `ver` claim.
    pub fn claim(self) -> &'static str {
        match self {
            Self::V1 => "1.0",
            Self::V2 => "2.0",
        }
    }
}

/// Most clock-skew leeway accepted.
pub(crate) const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// Most keys accepted for `jwks.max_keys`.
pub(crate) const MAX_KEYS: usize = 1024;
/// Most cache entries accepted.
pub(crate) const MAX_CACHE_CAPACITY: usize = 1_000_000;

fn default_authority() -> String {
    ENTRA_AUTHORITY.to_owned()
}
fn default_v1_authority() -> String {
    ENTRA_V1_AUTHORITY.to_owned()
}
fn default_versions() -> Vec<TokenVersion> {
    vec![TokenVersion::V2]
}
fn default_algorithms() -> Vec<String> {
    vec!["RS256".to_owned()]
}
fn default_subject_claim() -> String {
    "sub".to_owned()
}
fn yes() -> bool {
    true
}
fn default_leeway() -> Duration {
    Duration::from_secs(60)
}
fn default_max_token_size() -> usize {
    MAX_CREDENTIAL_LEN
}
fn default_cache_capacity() -> usize {
    10_000
}
fn default_http_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_min_refetch() -> Duration {
    Duration::from_secs(300)
}
fn default_refresh() -> Duration {
    Duration::from_secs(3600)
}
fn default_max_keys() -> usize {
    64
}
