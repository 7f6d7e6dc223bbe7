//! [`OidcProvider`]: verifies bearer access tokens from Entra ID or another OpenID Connect
//! issuer against the issuer's own keys, with the rules of its profile.

use std::{
    borrow::Cow,
    collections::{BTreeMap, HashMap},
    fmt,
    sync::Arc,
};

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, Validation};
use quick_cache::sync::Cache;
use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use zta_core::{
    AgentId, AuthError, AuthMethod, Credential, IdentityProvider, KeyFetches, Principal, StateStore,
};
use zta_crypto::jose::{CompactJws, auth_error, echo};

use crate::{
    EntraConfig, Error, OidcConfig, TokenVersion,
    config::{MAX_CACHE_CAPACITY, MAX_KEYS, MAX_LEEWAY},
    http,
    jwks::{self, KeySet},
};

/// Claims every token must carry, whatever the profile.
const REQUIRED_CLAIMS: [&str; 5] = ["exp", "nbf", "iss", "aud", "sub"];

/// Identity provider for bearer access tokens from Microsoft Entra ID (name `entra`) or any
/// OpenID Connect issuer (name `oidc`).
///
/// Every token is verified against the issuer's published keys with the algorithms pinned in
/// the configuration; `exp`, `nbf`, `iss`, `aud` and `sub` are required; tokens whose header
/// names its own key (`jku`, `x5u`, `x5c`, `jwk`) are refused. The guard hands a token to this
/// provider by its issuer ([`IdentityProvider::issuers`]). A token verified once is kept in a
/// bounded cache; each use checks its times, that its signing key is still published, and that
/// its agent has not been revoked or suspended since.
pub struct OidcProvider {
    name: &'static str,
    profile: Profile,
    trusts: HashMap<String, Trust>,
    algorithms: Vec<Algorithm>,
    max_token_size: usize,
    leeway: i64,
    required_roles: Vec<String>,
    agents: BTreeMap<String, AgentId>,
    segment: Option<String>,
    segments: BTreeMap<AgentId, String>,
    issue_session_token: bool,
    cache: Option<Cache<String, Arc<Cached>>>,
    state: Arc<dyn StateStore>,
    refreshers: Vec<tokio::task::JoinHandle<()>>,
    /// How the key sets' fetches ended.
    fetches: Arc<jwks::FetchCounts>,
}

enum Profile {
    Entra {
        app_only: bool,
        agent_claim: Option<String>,
    },
    Generic {
        agent_claim: String,
        roles_claim: Option<String>,
        groups_claim: Option<String>,
        tenant_claim: Option<String>,
    },
}

/// One issuer this provider trusts: its keys and the validation of each pinned algorithm.
struct Trust {
    /// The tenant the issuer belongs to (Entra).
    tenant: Option<String>,
    /// The token version the issuer issues (Entra).
    version: Option<TokenVersion>,
    keys: Arc<KeySet>,
    validations: Vec<(Algorithm, Validation)>,
}

/// A verified token, kept so that its next use skips the signature.
struct Cached {
    /// The whole token: a hit counts only if the token presented is exactly this one.
    token: Box<str>,
    principal: Arc<Principal>,
    /// The token's [`bearer_revocation_key`](zta_core::bearer_revocation_key).
    revocation_key: String,
    kid: String,
    keys: Arc<KeySet>,
    nbf: i64,
    exp: i64,
}

impl fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProvider")
            .field("name", &self.name)
            .field("issuers", &self.trusts.keys().collect::<Vec<_>>())
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        for task in &self.refreshers {
            task.abort();
        }
    }
}

/// What both profiles share once their own settings are read.
struct Common {
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    required_roles: Vec<String>,
    agents: BTreeMap<String, AgentId>,
    segment: Option<String>,
    segments: BTreeMap<AgentId, String>,
    leeway: std::time::Duration,
    jwks: crate::JwksConfig,
    max_token_size: usize,
    issue_session_token: bool,
    cache_capacity: usize,
    http_timeout: std::time::Duration,
}

/// Where one key set comes from: a discovery document that must name `issuer`.
struct Source {
    discovery: String,
    issuer: String,
}

/// An exact issuer a key set verifies for, with its tenant and token version (Entra).
type Issued = (String, Option<String>, Option<TokenVersion>);

impl OidcProvider {
    /// Builds the Entra ID profile: reads the discovery documents of the configured versions
    /// (each must name the expected issuer, the `{tenantid}` template for a multi-tenant API),
    /// fetches the keys, and starts their background refresh. An issuer that cannot be reached
    /// is not an error here: its tokens are denied as unavailable until it answers. One that
    /// answers with a wrong issuer or no usable key is.
    pub async fn entra(config: EntraConfig, state: Arc<dyn StateStore>) -> Result<Self, Error> {
        let authority = base("authority", &config.authority)?;
        let v1_authority = base("v1_authority", &config.v1_authority)?;
        let multi = matches!(config.tenant.as_str(), "organizations" | "common");
        if multi {
            if config.allowed_tenants.is_empty() {
                return Err(Error::config(
                    "allowed_tenants",
                    "a multi-tenant API must list the tenants whose tokens it accepts",
                ));
            }
        } else {
            if !is_guid(&config.tenant) {
                return Err(Error::config(
                    "tenant",
                    format!("`{}` is neither a tenant id (GUID) nor organizations/common", config.tenant),
                ));
            }
            if !config.allowed_tenants.is_empty() {
                return Err(Error::config(
                    "allowed_tenants",
                    "only a multi-tenant API lists allowed tenants",
                ));
            }
        }
        if let Some(bad) = config.allowed_tenants.iter().find(|t| !is_guid(t)) {
            return Err(Error::config("allowed_tenants", format!("`{bad}` is not a tenant id (GUID)")));
        }
        if config.versions.is_empty() {
            return Err(Error::config("versions", "name at least one of v1, v2"));
        }
        if let Some(claim) =
            config.agent_claim.as_deref().filter(|c| !["azp", "appid", "oid", "sub"].contains(c))
        {
            return Err(Error::config(
                "agent_claim",
                format!("`{claim}` is not one of azp, appid, oid, sub"),
            ));
        }
        if config.app_only && config.required_roles.is_empty() {
            return Err(Error::config(
                "required_roles",
                "app-only tokens can be issued without any role; name the app roles an agent must hold",
            ));
        }
        let common = Common {
            audiences: config.audiences,
            algorithms: vec![Algorithm::RS256],
            required_roles: config.required_roles,
            agents: config.agents,
            segment: config.segment,
            segments: config.segments,
            leeway: config.leeway,
            jwks: config.jwks,
            max_token_size: config.max_token_size,
            issue_session_token: config.issue_session_token,
            cache_capacity: config.cache_capacity,
            http_timeout: config.http_timeout,
        };
        let tenant = &config.tenant;
        let tenants: Vec<&String> =
            if multi { config.allowed_tenants.iter().collect() } else { vec![tenant] };
        let mut sources = Vec::new();
        for version in dedup(config.versions) {
            let (discovery, template) = match version {
                TokenVersion::V2 => (
                    format!("{authority}/{tenant}/v2.0/.well-known/openid-configuration"),
                    format!("{authority}/{{tenantid}}/v2.0"),
                ),
                TokenVersion::V1 => (
                    format!("{authority}/{tenant}/.well-known/openid-configuration"),
                    format!("{v1_authority}/{{tenantid}}/"),
                ),
            };
            let issuer = if multi { template.clone() } else { template.replace("{tenantid}", tenant) };
            let issuers = tenants
                .iter()
                .map(|t| (template.replace("{tenantid}", t), Some((*t).clone()), Some(version)))
                .collect::<Vec<_>>();
            sources.push((Source { discovery, issuer }, issuers));
        }
        let profile = Profile::Entra { app_only: config.app_only, agent_claim: config.agent_claim };
        Self::build("entra", profile, common, sources, state).await
    }

    /// Builds the generic profile for any OpenID Connect issuer: reads
    /// `{issuer}/.well-known/openid-configuration` (it must name the same issuer), fetches the
    /// keys and starts their background refresh. Unreachable and misconfigured issuers are
    /// handled as for [`entra`](Self::entra).
    pub async fn oidc(config: OidcConfig, state: Arc<dyn StateStore>) -> Result<Self, Error> {
        let issuer_url = http::issuer_url("issuer", &config.issuer)?;
        let issuer = config.issuer.clone();
        let mut algorithms = Vec::new();
        for name in &config.algorithms {
            let alg = pinnable(name).ok_or_else(|| {
                Error::config(
                    "algorithms",
                    format!("`{name}` is not accepted; use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA"),
                )
            })?;
            if !algorithms.contains(&alg) {
                algorithms.push(alg);
            }
        }
        if algorithms.is_empty() {
            return Err(Error::config("algorithms", "name at least one algorithm"));
        }
        for (field, path) in [
            ("agent_claim", Some(&config.agent_claim)),
            ("roles_claim", config.roles_claim.as_ref()),
            ("groups_claim", config.groups_claim.as_ref()),
            ("tenant_claim", config.tenant_claim.as_ref()),
        ] {
            if path.is_some_and(|p| p.split('.').any(str::is_empty)) {
                return Err(Error::config(field, "a claim path is names joined by dots, none empty"));
            }
        }
        let common = Common {
            audiences: config.audiences,
            algorithms,
            required_roles: config.required_roles,
            agents: config.agents,
            segment: config.segment,
            segments: config.segments,
            leeway: config.leeway,
            jwks: config.jwks,
            max_token_size: config.max_token_size,
            issue_session_token: config.issue_session_token,
            cache_capacity: config.cache_capacity,
            http_timeout: config.http_timeout,
        };
        let discovery =
            format!("{}/.well-known/openid-configuration", issuer_url.as_str().trim_end_matches('/'));
        let sources = vec![(Source { discovery, issuer: issuer.clone() }, vec![(issuer, None, None)])];
        let profile = Profile::Generic {
            agent_claim: config.agent_claim,
            roles_claim: config.roles_claim,
            groups_claim: config.groups_claim,
            tenant_claim: config.tenant_claim,
        };
        Self::build("oidc", profile, common, sources, state).await
    }

    async fn build(
        name: &'static str,
        profile: Profile,
        common: Common,
        sources: Vec<(Source, Vec<Issued>)>,
        state: Arc<dyn StateStore>,
    ) -> Result<Self, Error> {
        zta_crypto::jose::install_provider()?;
        check_common(&common)?;
        let client = http::client(common.http_timeout)?;
        let leeway = common.leeway.as_secs();
        let mut trusts = HashMap::new();
        let mut refreshers = Vec::new();
        let fetches = Arc::new(jwks::FetchCounts::default());
        for (source, issuers) in sources {
            let uri = discover(&client, &source).await?;
            let known = matches!(uri, jwks::Uri::Known(_));
            let keys = Arc::new(KeySet::new(
                uri,
                client.clone(),
                common.algorithms.clone(),
                common.jwks.min_refetch,
                common.jwks.max_keys,
                fetches.clone(),
            ));
            if known {
                match keys.refresh().await {
                    Ok(()) => {}
                    Err(why) if why.unreachable => tracing::warn!(
                        target: "zta_identity_oidc", error = %why,
                        "the issuer's keys are unreachable; its tokens are denied until it answers"
                    ),
                    Err(why) => return Err(Error::Issuer(why.message)),
                }
            }
            refreshers.push(jwks::spawn_refresh(&keys, common.jwks.refresh, common.jwks.min_refetch));
            for (issuer, tenant, version) in issuers {
                let validations = common
                    .algorithms
                    .iter()
                    .map(|alg| (*alg, validation(*alg, &issuer, &common.audiences, leeway)))
                    .collect();
                trusts.insert(issuer, Trust { tenant, version, keys: keys.clone(), validations });
            }
        }
        Ok(Self {
            name,
            profile,
            trusts,
            algorithms: common.algorithms,
            max_token_size: common.max_token_size,
            leeway: i64::try_from(leeway).unwrap_or(i64::MAX),
            required_roles: common.required_roles,
            agents: common.agents,
            segment: common.segment,
            segments: common.segments,
            issue_session_token: common.issue_session_token,
            cache: (common.cache_capacity > 0).then(|| Cache::new(common.cache_capacity)),
            state,
            refreshers,
            fetches,
        })
    }

    async fn verify(&self, token: &str) -> Result<Arc<Principal>, AuthError> {
        // The cache is asked first, by the signature alone: a hit compares the whole token, so
        // the split and header checks below are only for tokens not seen before.
        if let Some(cache) = &self.cache
            && token.len() <= self.max_token_size
            && let Some((_, signature)) = token.rsplit_once('.')
            && let Some(hit) = cache.get(signature).filter(|hit| *hit.token == *token)
        {
            let now = OffsetDateTime::now_utc().unix_timestamp();
            return match self.check_cached(&hit, now).await {
                Ok(()) => Ok(hit.principal.clone()),
                Err(e) => {
                    if !e.is_unavailable() {
                        cache.remove(signature);
                    }
                    Err(e)
                }
            };
        }
        let jws = CompactJws::split(token, self.max_token_size)?;

        let mut buf = Vec::new();
        let header = jws.read_header(&mut buf)?;
        let alg =
            header.alg.parse::<Algorithm>().ok().filter(|a| self.algorithms.contains(a)).ok_or_else(
                || AuthError::invalid(format!("algorithm `{}` not accepted", echo(&header.alg))),
            )?;
        let kid = header.kid.ok_or_else(|| AuthError::invalid("token without `kid`"))?.into_owned();
        // With one issuer there is nothing to choose: the validation requires exactly it.
        let (issuer, trust) = match self.trusts.iter().next() {
            Some((issuer, trust)) if self.trusts.len() == 1 => (Cow::Borrowed(issuer.as_str()), trust),
            _ => {
                let issuer = jws
                    .unverified_issuer()
                    .ok_or_else(|| AuthError::invalid("token without a readable `iss`"))?;
                let trust = self.trusts.get(&issuer).ok_or_else(|| {
                    AuthError::invalid(format!("issuer `{}` is not trusted by this provider", echo(&issuer)))
                })?;
                (Cow::Owned(issuer), trust)
            }
        };
        let key = trust.keys.get(&kid).await.map_err(AuthError::from)?;
        if !key.algorithms.contains(&alg) {
            return Err(AuthError::invalid("algorithm not allowed for this key"));
        }
        let validation = trust
            .validations
            .iter()
            .find_map(|(a, v)| (*a == alg).then_some(v))
            .ok_or_else(|| AuthError::invalid("algorithm not allowed for this issuer"))?;
        let decode_error = |e: jsonwebtoken::errors::Error| auth_error(&e);
        let facts = match &self.profile {
            Profile::Entra { .. } => {
                let claims = jsonwebtoken::decode::<EntraClaims>(token, &key.decoding, validation)
                    .map_err(decode_error)?
                    .claims;
                check_key_issuer(&key, claims.tid.as_deref(), &issuer)?;
                self.entra_facts(trust, claims)?
            }
            Profile::Generic { .. } => {
                let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, validation)
                    .map_err(decode_error)?
                    .claims;
                check_key_issuer(&key, string(&claims, "tid"), &issuer)?;
                self.generic_facts(&claims)?
            }
        };
        let (nbf, exp) = (facts.nbf, facts.exp);
        let principal = Arc::new(self.principal(&issuer, facts)?);
        let revocation_key = zta_core::bearer_revocation_key(token);
        self.check_revoked(&principal, &revocation_key).await?;
        if let Some(cache) = &self.cache {
            let entry = Cached {
                token: token.into(),
                principal: principal.clone(),
                revocation_key,
                kid,
                keys: trust.keys.clone(),
                nbf,
                exp,
            };
            cache.insert(jws.signature.to_owned(), Arc::new(entry));
        }
        Ok(principal)
    }

    /// A cached token is still good: within its times, signed by a key still published, and
    /// its agent not revoked since.
    async fn check_cached(&self, hit: &Cached, now: i64) -> Result<(), AuthError> {
        if now >= hit.exp.saturating_add(self.leeway) {
            return Err(AuthError::Expired);
        }
        if now < hit.nbf.saturating_sub(self.leeway) {
            return Err(AuthError::NotYetValid);
        }
        if !hit.keys.current().by_kid.contains_key(&hit.kid) {
            return Err(AuthError::invalid("the signing key is no longer published"));
        }
        self.check_revoked(&hit.principal, &hit.revocation_key).await
    }

    /// Whether the token (by its revocation key) or its agent (since the token was issued) has
    /// been revoked.
    async fn check_revoked(&self, principal: &Principal, revocation_key: &str) -> Result<(), AuthError> {
        match self.state.standing(&[revocation_key], &principal.agent_id, principal.authenticated_at).await {
            Ok(standing) if standing.revoked => Err(AuthError::Revoked),
            Ok(_) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The facts of a verified Entra token: its version, tenant and app-only rules hold.
    fn entra_facts(&self, trust: &Trust, claims: EntraClaims) -> Result<Facts, AuthError> {
        let Profile::Entra { app_only, agent_claim } = &self.profile else {
            return Err(AuthError::invalid("not an Entra provider"));
        };
        let version = trust.version.unwrap_or(TokenVersion::V2);
        if claims.ver.as_deref() != Some(version.claim()) {
            return Err(AuthError::invalid("`ver` does not match the issuer"));
        }
        let tid = claims.tid.ok_or_else(|| AuthError::invalid("missing claim `tid`"))?;
        if trust.tenant.as_deref() != Some(tid.as_str()) {
            return Err(AuthError::invalid("`tid` does not match the issuer"));
        }
        if *app_only {
            if claims.scp {
                return Err(AuthError::invalid("a delegated token (`scp`) on an app-only API"));
            }
            if claims.idtyp.as_deref().is_some_and(|t| t != "app") {
                return Err(AuthError::invalid("`idtyp` is not `app` on an app-only API"));
            }
        }
        let claim = entra_agent_claim(agent_claim, version);
        let agent = match claim {
            "azp" => claims.azp.clone(),
            "appid" => claims.appid.clone(),
            "oid" => claims.oid.clone(),
            _ => claims.sub.clone(),
        }
        .ok_or_else(|| AuthError::invalid(format!("missing claim `{claim}`")))?;
        let mut kept = Vec::new();
        let strings = [("oid", claims.oid), ("azp", claims.azp), ("appid", claims.appid)];
        kept.extend(strings.into_iter().filter_map(|(name, value)| Some((name, value?))));
        let values = [
            ("xms_par_app_azp", claims.xms_par_app_azp),
            ("xms_act_fct", claims.xms_act_fct),
            ("xms_sub_fct", claims.xms_sub_fct),
        ];
        kept.extend(values.into_iter().filter_map(|(name, value)| Some((name, text(&value?)))));
        Ok(Facts {
            sub: claims.sub.ok_or_else(|| AuthError::invalid("malformed claim `sub`"))?,
            iat: claims.iat,
            nbf: claims.nbf.unwrap_or(i64::MIN),
            exp: claims.exp.unwrap_or(i64::MIN),
            agent,
            roles: claims.roles,
            groups: Vec::new(),
            tenant: Some(tid),
            kept,
        })
    }

    /// The facts of a verified token of the generic profile, read by the configured paths.
    fn generic_facts(&self, claims: &Map<String, Value>) -> Result<Facts, AuthError> {
        let Profile::Generic { agent_claim, roles_claim, groups_claim, tenant_claim } = &self.profile else {
            return Err(AuthError::invalid("not a generic OIDC provider"));
        };
        let agent = path(claims, agent_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| AuthError::invalid(format!("missing claim `{}`", echo(agent_claim))))?;
        let list = |p: &Option<String>| p.as_deref().map(|p| strings(path(claims, p))).unwrap_or_default();
        Ok(Facts {
            sub: string(claims, "sub").ok_or_else(|| AuthError::invalid("malformed claim `sub`"))?.to_owned(),
            iat: int(claims, "iat"),
            nbf: int(claims, "nbf").unwrap_or(i64::MIN),
            exp: int(claims, "exp").unwrap_or(i64::MIN),
            agent: agent.to_owned(),
            roles: list(roles_claim),
            groups: list(groups_claim),
            tenant: tenant_claim
                .as_deref()
                .and_then(|p| path(claims, p))
                .and_then(Value::as_str)
                .map(str::to_owned),
            kept: Vec::new(),
        })
    }

    /// The principal of verified facts: required roles held, the agent mapped, the segment set.
    fn principal(&self, issuer: &str, facts: Facts) -> Result<Principal, AuthError> {
        if let Some(missing) = self.required_roles.iter().find(|r| !facts.roles.contains(r)) {
            return Err(AuthError::invalid(format!("missing required role `{missing}`")));
        }
        let agent = facts.agent.as_str();
        let agent_id = if self.agents.is_empty() {
            AgentId::new(agent)
                .map_err(|_| AuthError::invalid(format!("`{}` is not a valid agent id", echo(agent))))?
        } else {
            self.agents
                .get(agent)
                .cloned()
                .ok_or_else(|| AuthError::invalid(format!("`{}` is not mapped to an agent", echo(agent))))?
        };
        let timestamp = |t: i64, name: &str| {
            OffsetDateTime::from_unix_timestamp(t)
                .map_err(|_| AuthError::invalid(format!("malformed claim `{name}`")))
        };
        let exp = timestamp(facts.exp, "exp")?;
        let iat = match facts.iat {
            Some(iat) => timestamp(iat, "iat")?,
            None => OffsetDateTime::now_utc(),
        };
        let mut principal = Principal::new(agent_id, issuer, AuthMethod::Oidc, iat, exp)
            .with_subject(facts.sub)
            .with_roles(facts.roles)
            .with_groups(facts.groups);
        if let Some(tenant) = facts.tenant {
            principal = principal.with_tenant(tenant);
        }
        if let Some(segment) = self.segments.get(&principal.agent_id).or(self.segment.as_ref()) {
            principal = principal.with_segment(segment.clone());
        }
        for (name, value) in facts.kept {
            principal = principal.with_claim(name, value);
        }
        Ok(principal)
    }
}

/// What a verified token says, whichever profile read it.
struct Facts {
    sub: String,
    iat: Option<i64>,
    nbf: i64,
    exp: i64,
    /// The value naming the agent, before the `agents` map.
    agent: String,
    roles: Vec<String>,
    groups: Vec<String>,
    tenant: Option<String>,
    /// Claims kept for the audit.
    kept: Vec<(&'static str, String)>,
}

/// The claims of an Entra access token that the profile reads (`exp nbf iss aud sub` are
/// checked by the validation first).
#[derive(serde::Deserialize)]
struct EntraClaims {
    // Required and checked by the validation; optional here so that its error is the one seen.
    sub: Option<String>,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    ver: Option<String>,
    tid: Option<String>,
    idtyp: Option<String>,
    #[serde(default, deserialize_with = "present")]
    scp: bool,
    #[serde(default)]
    roles: Vec<String>,
    azp: Option<String>,
    appid: Option<String>,
    oid: Option<String>,
    xms_par_app_azp: Option<Value>,
    xms_act_fct: Option<Value>,
    xms_sub_fct: Option<Value>,
}

/// Present with any value.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    <serde::de::IgnoredAny as serde::Deserialize>::deserialize(d).map(|_| true)
}

/// A key the key set gives to one issuer (Entra: `{tenantid}` filled with the token's `tid`)
/// verifies that issuer's tokens only.
fn check_key_issuer(key: &jwks::Key, tid: Option<&str>, issuer: &str) -> Result<(), AuthError> {
    let fits = match (&key.issuer, tid) {
        (None, _) => true,
        (Some(key_issuer), Some(tid)) => key_issuer.replace("{tenantid}", tid) == issuer,
        (Some(key_issuer), None) => key_issuer == issuer,
    };
    if fits { Ok(()) } else { Err(AuthError::invalid("the signing key is not for this issuer")) }
}

impl OidcProvider {
    /// The value of the claim that names the agent (before the `agents` map).
    fn agent_value<'c>(&self, trust: &Trust, claims: &'c Map<String, Value>) -> Option<&'c str> {
        match &self.profile {
            Profile::Entra { agent_claim, .. } => {
                let version = trust.version.unwrap_or(TokenVersion::V2);
                string(claims, entra_agent_claim(agent_claim, version))
            }
            Profile::Generic { agent_claim, .. } => path(claims, agent_claim).and_then(Value::as_str),
        }
    }
}

/// The claim naming the agent in an Entra token: the configured one, else `azp` (v2) or
/// `appid` (v1).
fn entra_agent_claim(configured: &Option<String>, version: TokenVersion) -> &str {
    configured.as_deref().unwrap_or(match version {
        TokenVersion::V1 => "appid",
        TokenVersion::V2 => "azp",
    })
}

#[async_trait]
impl IdentityProvider for OidcProvider {
    fn name(&self) -> &str {
        self.name
    }

    fn accepts(&self, credential: &Credential) -> bool {
        matches!(credential, Credential::Bearer(_))
    }

    /// A bearer token of an issuer this provider trusts, naming an agent it maps (any agent,
    /// without an `agents` map). Read unverified, only to route.
    fn declares(&self, credential: &Credential) -> bool {
        let Credential::Bearer(token) = credential else {
            return false;
        };
        let Ok(jws) = CompactJws::split(token.expose_secret(), self.max_token_size) else {
            return false;
        };
        let Some(claims) = jws.unverified_claims() else {
            return false;
        };
        let Some(trust) = string(&claims, "iss").and_then(|iss| self.trusts.get(iss)) else {
            return false;
        };
        self.agents.is_empty()
            || self.agent_value(trust, &claims).is_some_and(|a| self.agents.contains_key(a))
    }

    fn issuers(&self) -> Vec<String> {
        let mut issuers: Vec<String> = self.trusts.keys().cloned().collect();
        issuers.sort();
        issuers
    }

    fn issues_session_tokens(&self) -> bool {
        self.issue_session_token
    }

    async fn authenticate(&self, credential: &Credential) -> Result<Arc<Principal>, AuthError> {
        match credential {
            Credential::Bearer(token) => self.verify(token.expose_secret()).await,
            other => Err(AuthError::Unsupported(other.kind())),
        }
    }

    async fn segment_of(&self, agent: &AgentId) -> Option<String> {
        self.segments.get(agent).cloned()
    }

    /// Every attempt to fetch an issuer's key set (at start-up, the background refresh, an
    /// unknown `kid`), by how it ended.
    fn key_fetches(&self) -> Option<KeyFetches> {
        Some(self.fetches.read())
    }
}

/// Reads the discovery document; it must name `source.issuer` and a `jwks_uri` that is an
/// issuer URL. An unreachable issuer yields no URI yet (the key set discovers it later).
async fn discover(client: &reqwest::Client, source: &Source) -> Result<jwks::Uri, Error> {
    jwks::discover(client, &source.discovery, &source.issuer).await.or_else(|why| {
        if why.unreachable {
            tracing::warn!(
                target: "zta_identity_oidc", url = %source.discovery, error = %why.message,
                "the issuer's discovery document is unreachable; its tokens are denied until it answers"
            );
            Ok(jwks::Uri::Later { discovery: source.discovery.clone(), issuer: source.issuer.clone() })
        } else {
            Err(Error::Issuer(why.message))
        }
    })
}

fn check_common(common: &Common) -> Result<(), Error> {
    if common.audiences.is_empty() || common.audiences.iter().any(|a| a.trim().is_empty()) {
        return Err(Error::config("audiences", "list the exact audiences this service accepts (none empty)"));
    }
    if common.leeway > MAX_LEEWAY {
        return Err(Error::config("leeway", "at most 5m"));
    }
    if common.max_token_size == 0 || common.max_token_size > zta_core::MAX_CREDENTIAL_LEN {
        return Err(Error::config(
            "max_token_size",
            format!("between 1 and {} bytes", zta_core::MAX_CREDENTIAL_LEN),
        ));
    }
    if common.cache_capacity > MAX_CACHE_CAPACITY {
        return Err(Error::config("cache_capacity", format!("at most {MAX_CACHE_CAPACITY}")));
    }
    if common.jwks.max_keys == 0 || common.jwks.max_keys > MAX_KEYS {
        return Err(Error::config("jwks.max_keys", format!("between 1 and {MAX_KEYS}")));
    }
    if common.jwks.refresh.is_zero() || common.jwks.min_refetch.is_zero() {
        return Err(Error::config("jwks", "`refresh` and `min_refetch` must be longer than zero"));
    }
    if common.http_timeout.is_zero() {
        return Err(Error::config("http_timeout", "must be longer than zero"));
    }
    Ok(())
}

/// A validation for one pinned algorithm and one exact issuer: all five claims required,
/// `nbf` checked, the audience one of `audiences`.
fn validation(alg: Algorithm, issuer: &str, audiences: &[String], leeway: u64) -> Validation {
    let mut validation = Validation::new(alg);
    validation.set_required_spec_claims(&REQUIRED_CLAIMS);
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.leeway = leeway;
    validation.set_issuer(&[issuer]);
    validation.set_audience(audiences);
    validation
}

/// An authority base URL without its trailing slash.
fn base(field: &str, text: &str) -> Result<String, Error> {
    let url = http::issuer_url(field, text)?;
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// An algorithm a configuration may pin: any asymmetric one jsonwebtoken knows, never HMAC
/// (`none` is not an algorithm there at all).
fn pinnable(name: &str) -> Option<Algorithm> {
    let alg = name.parse::<Algorithm>().ok()?;
    (!matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)).then_some(alg)
}

/// A GUID in its usual text form (Entra tenant ids).
pub(crate) fn is_guid(text: &str) -> bool {
    text.len() == 36 && uuid::Uuid::try_parse(text).is_ok()
}

fn string<'c>(claims: &'c Map<String, Value>, name: &str) -> Option<&'c str> {
    claims.get(name).and_then(Value::as_str)
}

fn int(claims: &Map<String, Value>, name: &str) -> Option<i64> {
    claims.get(name).and_then(Value::as_i64)
}

/// The claim at a dotted path (`realm_access.roles`).
fn path<'c>(claims: &'c Map<String, Value>, dotted: &str) -> Option<&'c Value> {
    let mut parts = dotted.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.get(part)?;
    }
    Some(value)
}

/// A list of strings, or one space-separated string (`scope`); anything else is empty.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// A claim's value as audit text: strings as they are, anything else as compact JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => echo(s).to_owned(),
        other => echo(&other.to_string()).to_owned(),
    }
}
