//! [`StaticProvider`]: verifies agent assertions and agent secrets against the agents declared
//! in [`StaticConfig`], with lockout and replay protection kept in a shared [`StateStore`].

use std::{borrow::Cow, collections::HashMap, fmt, io::Read, sync::Arc, time::Duration};

use argon2::{Params, password_hash::PasswordHashString};
use async_trait::async_trait;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use zta_core::{
    AgentId, AuthError, AuthMethod, Credential, IdentityProvider, MAX_CREDENTIAL_LEN, Principal, StateStore,
};
use zta_crypto::jose::CompactJws;

use crate::{
    AgentEntry, AgentKey, Error, StaticConfig,
    key::{self, ED25519_KEY_LEN},
    secret,
};

/// The provider name, also the `issuer` of every principal it makes.
const NAME: &str = "static";
/// How long a principal authenticated by secret stays valid.
const SECRET_PRINCIPAL_LIFETIME: time::Duration = time::Duration::minutes(5);
/// The lockout window doubles at most this many times (64 windows: 5 h 20 min at the default
/// 5 minutes).
const MAX_BACKOFF_DOUBLINGS: u32 = 6;
/// How long the backoff remembers that a name used up its allowance.
const BACKOFF_MEMORY: Duration = Duration::from_secs(24 * 3600);
/// How long a replay id outlives `exp + leeway` (see `verify_assertion`).
const REPLAY_MARGIN: Duration = Duration::from_secs(2);
/// Longest accepted `jti`, in bytes.
const MAX_JTI_LEN: usize = 128;
/// Longest accepted assertion lifetime setting.
const MAX_ASSERTION_LIFETIME: Duration = Duration::from_secs(3600);
/// Most argon2 runs allowed at once (256 at 19 MiB is already about 5 GiB).
const MAX_CONCURRENT_HASHES: usize = 256;
/// Longest accepted wait for an argon2 slot.
const MAX_HASH_WAIT: Duration = Duration::from_secs(30);
/// Longest accepted clock-skew leeway setting.
const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// The same detail for a bad signature and an unknown agent, so errors cannot tell them apart.
const BAD_SIGNATURE: &str = "bad signature or unknown agent";
/// The same detail for a wrong secret and an unknown agent.
const BAD_SECRET: &str = "wrong secret or unknown agent";

/// Identity provider for agents declared in configuration (name `static`).
///
/// Accepts [`Credential::AgentAssertion`] (an EdDSA JWT signed with the agent's configured
/// key, see [`AgentKey::assertion`]) and [`Credential::Password`] (agent id and secret, checked
/// against an argon2id hash). Unknown agents cost the same work as known ones and fail with the
/// same error. Failed secrets count per agent name; past the limit every secret attempt is
/// [`AuthError::LockedOut`] until the window ends, and each lockout doubles the next window.
/// Assertions are never locked out (a key cannot be guessed, and the name in an unverified
/// assertion is the attacker's choice). Any state-store failure denies.
pub struct StaticProvider {
    audience: String,
    agents: HashMap<AgentId, Agent>,
    /// Verifies assertions that name an unknown agent; nobody holds its private key.
    dummy_key: DecodingKey,
    /// Verifies secrets presented for an unknown agent; nobody knows its secret.
    dummy_hash: Arc<PasswordHashString>,
    state: Arc<dyn StateStore>,
    verifier: secret::Verifier,
    max_failures: u32,
    window: Duration,
    max_lifetime: i64,
    leeway: u64,
}

struct Agent {
    id: AgentId,
    segment: Option<String>,
    roles: Vec<String>,
    groups: Vec<String>,
    tenant: Option<String>,
    credential: AgentCredential,
}

enum AgentCredential {
    PublicKey(DecodingKey),
    Secret(Arc<PasswordHashString>),
}

impl Agent {
    fn public_key(&self) -> Option<&DecodingKey> {
        match &self.credential {
            AgentCredential::PublicKey(key) => Some(key),
            AgentCredential::Secret(_) => None,
        }
    }

    fn secret_hash(&self) -> Option<&Arc<PasswordHashString>> {
        match &self.credential {
            AgentCredential::Secret(hash) => Some(hash),
            AgentCredential::PublicKey(_) => None,
        }
    }

    fn principal(&self, method: AuthMethod, now: OffsetDateTime, expires: OffsetDateTime) -> Principal {
        let mut principal = Principal::new(self.id.clone(), NAME, method, now, expires)
            .with_roles(self.roles.iter().cloned())
            .with_groups(self.groups.iter().cloned());
        if let Some(segment) = &self.segment {
            principal = principal.with_segment(segment.clone());
        }
        if let Some(tenant) = &self.tenant {
            principal = principal.with_tenant(tenant.clone());
        }
        principal
    }
}

/// The claims an assertion must carry; a missing one fails deserialization.
#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    exp: i64,
    iat: i64,
    jti: String,
}

/// The one claim read before verification, only to pick the key.
#[derive(Deserialize)]
struct UnverifiedSubject {
    sub: Option<serde_json::Value>,
}

impl StaticProvider {
    /// Validates `config` (naming the agent and field of any error), loads keys and hashes, runs
    /// a sign-and-verify self-test of the JWT backend, and keeps lockout counters and replay
    /// ids in `state`.
    pub fn new(config: StaticConfig, state: Arc<dyn StateStore>) -> Result<Self, Error> {
        zta_crypto::jose::install_provider()?;
        check_limits(&config)?;

        let mut agents = HashMap::with_capacity(config.agents.len());
        let mut hash_params: Vec<Params> = Vec::new();
        for entry in config.agents {
            if agents.contains_key(&entry.id) {
                return Err(Error::DuplicateAgent(entry.id.to_string()));
            }
            let agent = load_agent(entry)?;
            if let Some(hash) = agent.secret_hash() {
                let params = Params::try_from(&hash.password_hash())
                    .map_err(|e| Error::agent(agent.id.as_str(), "secret_hash", e.to_string()))?;
                hash_params.push(params);
            }
            agents.insert(agent.id.clone(), agent);
        }

        // The dummy hash costs what most configured hashes cost, so an unknown name takes as long.
        let dummy_params = match most_common(&hash_params) {
            Some(params) => params,
            None => secret::default_params()?,
        };
        let dummy_hash = Arc::new(secret::dummy_hash(&dummy_params)?);

        let dummy = AgentKey::generate()?;
        let dummy_key =
            decoding_key(&key::parse_public_key_pem(&dummy.public_key_pem()).map_err(Error::Key)?);
        self_test(&dummy, &dummy_key)?;

        Ok(Self {
            audience: config.audience,
            agents,
            dummy_key,
            dummy_hash,
            state,
            verifier: secret::Verifier::new(config.hashing.max_concurrent, config.hashing.max_wait),
            max_failures: config.lockout.max_failures,
            window: config.lockout.window,
            max_lifetime: i64::try_from(config.assertion.max_lifetime.as_secs()).unwrap_or(i64::MAX),
            leeway: config.assertion.leeway.as_secs(),
        })
    }

    /// Secret lockout. Refuses a locked-out name without any verification work, then counts
    /// this attempt as a failure up front: concurrent guesses cannot all slip past the check,
    /// so at most `max_failures` attempts per window reach argon2. Each time a name uses up its
    /// allowance, its next window is twice as long (exponential backoff, remembered for a
    /// day). Returns the attempts counted in the window, this one included.
    async fn gate(&self, id: &AgentId) -> Result<u32, AuthError> {
        let key = lockout_key(id);
        if self.state.failures(&key).await? >= self.max_failures {
            return Err(AuthError::LockedOut);
        }
        let doublings = self.state.failures(&backoff_key(id)).await?;
        let window = self.window.saturating_mul(1 << doublings.min(MAX_BACKOFF_DOUBLINGS));
        let count = self.state.add_failure(&key, window).await?;
        if count == self.max_failures {
            self.state.add_failure(&backoff_key(id), BACKOFF_MEMORY).await?;
        }
        if count > self.max_failures {
            return Err(AuthError::LockedOut);
        }
        Ok(count)
    }

    /// After a right secret: the up-front count is forgotten only if it was the window's sole
    /// attempt. While failures are ongoing the count stays, so the owner's successes do not
    /// hand a guesser a fresh allowance.
    async fn succeeded(
        &self,
        id: &AgentId,
        count: u32,
        principal: Principal,
    ) -> Result<Principal, AuthError> {
        if count == 1 {
            self.state.clear_failures(&lockout_key(id)).await?;
        }
        Ok(principal)
    }

    async fn authenticate_assertion(&self, jwt: &str) -> Result<Principal, AuthError> {
        // Read the unverified `sub` only to choose the key; everything is verified below.
        let Some(id) = claimed_agent(jwt)? else {
            // No agent can have this name: do the same verification work, then fail.
            let _ = jsonwebtoken::decode::<AssertionClaims>(jwt, &self.dummy_key, &self.validation(""));
            return Err(AuthError::invalid(BAD_SIGNATURE));
        };
        // No lockout: an Ed25519 key cannot be guessed, and counting failures by the unverified
        // `sub` would let anyone lock any agent out with junk assertions.
        self.verify_assertion(jwt, &id).await
    }

    async fn verify_assertion(&self, jwt: &str, id: &AgentId) -> Result<Principal, AuthError> {
        let mut header_json = Vec::new();
        let header = CompactJws::split(jwt, MAX_CREDENTIAL_LEN)?.read_header(&mut header_json)?;
        if header.alg != "EdDSA" {
            return Err(AuthError::invalid("assertion algorithm must be EdDSA"));
        }

        let agent = self.agents.get(id).filter(|a| a.public_key().is_some());
        let key = agent.and_then(Agent::public_key).unwrap_or(&self.dummy_key);
        let verified = jsonwebtoken::decode::<AssertionClaims>(jwt, key, &self.validation(id.as_str()));
        let (Some(agent), Ok(data)) = (agent, verified.as_ref()) else {
            return Err(match verified {
                Err(e) => assertion_error(e.kind()),
                Ok(_) => AuthError::invalid(BAD_SIGNATURE),
            });
        };
        let claims = &data.claims;

        // jsonwebtoken checked these too; check again, in constant time, against the key's owner.
        let owner = id.as_str().as_bytes();
        if !bool::from(claims.iss.as_bytes().ct_eq(owner) & claims.sub.as_bytes().ct_eq(owner)) {
            return Err(AuthError::invalid("assertion `iss` and `sub` must both be the agent id"));
        }
        let now = OffsetDateTime::now_utc();
        let leeway = i64::try_from(self.leeway).unwrap_or(i64::MAX);
        if claims.iat > now.unix_timestamp().saturating_add(leeway) {
            return Err(AuthError::NotYetValid);
        }
        if claims.exp <= claims.iat {
            return Err(AuthError::invalid("assertion `exp` is not after `iat`"));
        }
        if claims.exp.saturating_sub(claims.iat) > self.max_lifetime {
            return Err(AuthError::invalid("assertion lifetime is longer than allowed"));
        }
        if !valid_jti(&claims.jti) {
            return Err(AuthError::invalid(
                "assertion `jti` is empty, too long or has characters outside `A-Z a-z 0-9 - _ . + / =`",
            ));
        }
        let expires = OffsetDateTime::from_unix_timestamp(claims.exp)
            .map_err(|_| AuthError::invalid("assertion `exp` out of range"))?;
        // Remember the id past every instant the assertion still verifies: jsonwebtoken reads
        // the clock in whole seconds, so it accepts until `exp + leeway + 1s`; one more second
        // covers a replica whose clock ticks over a little later.
        let remember_until = expires + Duration::from_secs(self.leeway) + REPLAY_MARGIN;
        let replay_key = format!("assertion:{id}:{}", claims.jti);
        if !self.state.claim_once(&replay_key, remember_until).await? {
            return Err(AuthError::Replayed);
        }
        Ok(agent.principal(AuthMethod::AgentKey, now, expires))
    }

    async fn authenticate_secret(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<Principal, AuthError> {
        if password.expose_secret().is_empty() {
            return Err(AuthError::invalid("empty secret"));
        }
        let id = AgentId::new(username).ok();
        let count = match &id {
            Some(id) => Some(self.gate(id).await?),
            None => None,
        };
        let agent = id.as_ref().and_then(|id| self.agents.get(id)).filter(|a| a.secret_hash().is_some());
        let hash = agent.and_then(Agent::secret_hash).unwrap_or(&self.dummy_hash).clone();
        let matched = self.verifier.verify(hash, password.clone()).await?;
        match (agent, count, matched) {
            (Some(agent), Some(count), true) => {
                let now = OffsetDateTime::now_utc();
                let principal =
                    agent.principal(AuthMethod::AgentSecret, now, now + SECRET_PRINCIPAL_LIFETIME);
                self.succeeded(&agent.id, count, principal).await
            }
            _ => {
                tracing::debug!(known = agent.is_some(), "static: secret refused");
                Err(AuthError::invalid(BAD_SECRET))
            }
        }
    }

    fn validation(&self, agent: &str) -> Validation {
        validation(&self.audience, agent, self.leeway)
    }
}

#[async_trait]
impl IdentityProvider for StaticProvider {
    fn name(&self) -> &str {
        NAME
    }

    fn accepts(&self, credential: &Credential) -> bool {
        matches!(credential, Credential::AgentAssertion(_) | Credential::Password { .. })
    }

    fn declares(&self, credential: &Credential) -> bool {
        let claimed = match credential {
            Credential::AgentAssertion(jwt) => claimed_agent(jwt.expose_secret()).ok().flatten(),
            Credential::Password { username, .. } => AgentId::new(username).ok(),
            _ => None,
        };
        claimed.is_some_and(|id| self.agents.contains_key(&id))
    }

    fn declared_agents(&self) -> Vec<AgentId> {
        self.agents.keys().cloned().collect()
    }

    async fn authenticate(&self, credential: &Credential) -> Result<std::sync::Arc<Principal>, AuthError> {
        if credential.len() > MAX_CREDENTIAL_LEN {
            return Err(AuthError::invalid("credential too large"));
        }
        match credential {
            Credential::AgentAssertion(jwt) => {
                self.authenticate_assertion(jwt.expose_secret()).await.map(Arc::new)
            }
            Credential::Password { username, password } => {
                self.authenticate_secret(username, password).await.map(Arc::new)
            }
            other => Err(AuthError::Unsupported(other.kind())),
        }
    }

    async fn segment_of(&self, agent: &AgentId) -> Option<String> {
        self.agents.get(agent).and_then(|a| a.segment.clone())
    }
}

impl fmt::Debug for StaticProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&str> = self.agents.keys().map(AgentId::as_str).collect();
        ids.sort_unstable();
        f.debug_struct("StaticProvider")
            .field("audience", &self.audience)
            .field("agents", &ids)
            .field("max_failures", &self.max_failures)
            .field("window", &self.window)
            .field("max_lifetime_secs", &self.max_lifetime)
            .field("leeway_secs", &self.leeway)
            .finish_non_exhaustive()
    }
}

/// EdDSA only, whatever the header says; `exp`, `iss`, `aud`, `sub` required; `aud` must be
/// ours and `iss`/`sub` the agent.
fn validation(audience: &str, agent: &str, leeway: u64) -> Validation {
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.set_audience(&[audience]);
    v.set_issuer(&[agent]);
    v.sub = Some(agent.to_owned());
    v.validate_exp = true;
    v.validate_nbf = true;
    v.validate_aud = true;
    v.leeway = leeway;
    v
}

fn assertion_error(kind: &ErrorKind) -> AuthError {
    let detail: Cow<'static, str> = match kind {
        ErrorKind::ExpiredSignature => return AuthError::Expired,
        ErrorKind::ImmatureSignature => return AuthError::NotYetValid,
        ErrorKind::InvalidSignature => BAD_SIGNATURE.into(),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "assertion algorithm must be EdDSA".into()
        }
        ErrorKind::InvalidAudience => "assertion `aud` is not this service".into(),
        ErrorKind::InvalidIssuer | ErrorKind::InvalidSubject => {
            "assertion `iss` and `sub` must both be the agent id".into()
        }
        ErrorKind::MissingRequiredClaim(claim) => format!("assertion lacks `{claim}`").into(),
        ErrorKind::Json(_) => "assertion claims are malformed or lack `iat`/`jti`".into(),
        _ => "malformed assertion".into(),
    };
    AuthError::invalid(detail)
}

/// A `jti` is 1 to 128 characters from `A-Z a-z 0-9 - _ . + / =` (UUIDs, base64). No `:`, so
/// the replay key `assertion:<agent>:<jti>` of one agent can never equal another agent's.
fn valid_jti(jti: &str) -> bool {
    !jti.is_empty()
        && jti.len() <= MAX_JTI_LEN
        && jti
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+' | b'/' | b'='))
}

/// The agent an assertion's unverified `sub` names: only for choosing the key (and the
/// provider). `None` if `sub` is no valid agent id.
fn claimed_agent(jwt: &str) -> Result<Option<AgentId>, AuthError> {
    let claimed = jsonwebtoken::dangerous::insecure_decode_claims::<UnverifiedSubject>(jwt)
        .map_err(|_| AuthError::invalid("malformed assertion"))?
        .sub
        .ok_or_else(|| AuthError::invalid("assertion has no `sub`"))?;
    Ok(claimed.as_str().and_then(|s| AgentId::new(s).ok()))
}

fn lockout_key(id: &AgentId) -> String {
    format!("lockout:{id}")
}

/// Counts the times `id` used up its allowance, for the backoff.
fn backoff_key(id: &AgentId) -> String {
    format!("lockout-backoff:{id}")
}

fn decoding_key(raw: &[u8; ED25519_KEY_LEN]) -> DecodingKey {
    DecodingKey::from_ed_der(raw)
}

fn most_common(params: &[Params]) -> Option<Params> {
    let key = |p: &Params| (p.m_cost(), p.t_cost(), p.p_cost(), p.output_len());
    params.iter().max_by_key(|p| params.iter().filter(|q| key(q) == key(p)).count()).cloned()
}

fn check_limits(config: &StaticConfig) -> Result<(), Error> {
    if config.audience.trim().is_empty() || config.audience.trim() != config.audience {
        return Err(Error::config("audience", "must be a non-empty string without surrounding spaces"));
    }
    if config.lockout.max_failures == 0 {
        return Err(Error::config("lockout.max_failures", "must be at least 1"));
    }
    if config.lockout.window < Duration::from_secs(1) {
        return Err(Error::config("lockout.window", "must be at least `1s`"));
    }
    let lifetime = config.assertion.max_lifetime;
    if lifetime < Duration::from_secs(1) || lifetime > MAX_ASSERTION_LIFETIME {
        return Err(Error::config("assertion.max_lifetime", "must be between `1s` and `1h`"));
    }
    if config.assertion.leeway > MAX_LEEWAY {
        return Err(Error::config("assertion.leeway", "must be at most `5m`"));
    }
    if config.hashing.max_concurrent == 0 || config.hashing.max_concurrent > MAX_CONCURRENT_HASHES {
        return Err(Error::config("hashing.max_concurrent", "must be between 1 and 256"));
    }
    if config.hashing.max_wait > MAX_HASH_WAIT {
        return Err(Error::config("hashing.max_wait", "must be at most `30s`"));
    }
    Ok(())
}

fn load_agent(entry: AgentEntry) -> Result<Agent, Error> {
    let name = entry.id.as_str();
    let credential = match (&entry.public_key, &entry.public_key_file, &entry.secret_hash) {
        (Some(pem), None, None) => AgentCredential::PublicKey(decoding_key(
            &key::parse_public_key_pem(pem).map_err(|e| Error::agent(name, "public_key", e))?,
        )),
        (None, Some(path), None) => {
            let pem = read_small(path).map_err(|e| Error::agent(name, "public_key_file", e))?;
            AgentCredential::PublicKey(decoding_key(
                &key::parse_public_key_pem(&pem).map_err(|e| {
                    Error::agent(name, "public_key_file", format!("`{}`: {e}", path.display()))
                })?,
            ))
        }
        (None, None, Some(phc)) => AgentCredential::Secret(Arc::new(
            secret::check_phc(phc).map_err(|e| Error::agent(name, "secret_hash", e))?.0,
        )),
        (None, None, None) => {
            return Err(Error::agent(
                name,
                "public_key",
                "no credential: give exactly one of `public_key`, `public_key_file`, `secret_hash`",
            ));
        }
        _ => {
            return Err(Error::agent(
                name,
                "public_key",
                "more than one credential: give exactly one of `public_key`, `public_key_file`, `secret_hash`",
            ));
        }
    };
    for (field, value) in [("segment", &entry.segment), ("tenant", &entry.tenant)] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(Error::agent(name, field, "must not be empty"));
        }
    }
    for (field, values) in [("roles", &entry.roles), ("groups", &entry.groups)] {
        if values.iter().any(|v| v.trim().is_empty()) {
            return Err(Error::agent(name, field, "entries must not be empty"));
        }
    }
    Ok(Agent {
        id: entry.id,
        segment: entry.segment,
        roles: entry.roles,
        groups: entry.groups,
        tenant: entry.tenant,
        credential,
    })
}

/// Reads a key file, refusing anything larger than a PEM public key could be.
fn read_small(path: &std::path::Path) -> Result<String, String> {
    const LIMIT: u64 = 16 * 1024;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let mut text = String::new();
    file.take(LIMIT + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    if text.len() as u64 > LIMIT {
        return Err(format!("`{}` is larger than {LIMIT} bytes", path.display()));
    }
    Ok(text)
}

/// Signs and verifies one assertion with the dummy key, and checks that a forged signature is
/// refused: proves the installed JWT crypto provider works before any agent relies on it.
fn self_test(key: &AgentKey, public: &DecodingKey) -> Result<(), Error> {
    const AUD: &str = "zta-self-test";
    let fail = |reason, source| Error::SelfTest { reason, source };
    let id = AgentId::new("self-test").map_err(|_| fail("the self-test agent id is refused", None))?;
    let credential = key.assertion(&id, AUD, Duration::from_secs(30))?;
    let Credential::AgentAssertion(jwt) = &credential else {
        return Err(fail("the assertion is not an agent assertion", None));
    };
    let jwt = jwt.expose_secret();
    let v = validation(AUD, id.as_str(), 0);
    jsonwebtoken::decode::<AssertionClaims>(jwt, public, &v)
        .map_err(|e| fail("a freshly signed assertion does not verify", Some(e)))?;
    let (message, signature) =
        jwt.rsplit_once('.').ok_or_else(|| fail("the signed assertion is not a compact JWS", None))?;
    let forged = format!("{message}.{}", forge(signature));
    if jsonwebtoken::decode::<AssertionClaims>(&forged, public, &v).is_ok() {
        return Err(fail("a forged EdDSA signature was accepted", None));
    }
    Ok(())
}

/// Flips one base64url character of a signature.
fn forge(signature: &str) -> String {
    let mut chars: Vec<char> = signature.chars().collect();
    if let Some(c) = chars.first_mut() {
        *c = if *c == 'A' { 'B' } else { 'A' };
    }
    chars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_most_common_params() {
        let a = Params::new(19_456, 2, 1, None).unwrap();
        let b = Params::new(65_536, 3, 1, None).unwrap();
        assert_eq!(most_common(&[a.clone(), b.clone(), b.clone()]).unwrap().m_cost(), 65_536);
        assert!(most_common(&[]).is_none());
    }

    #[test]
    fn forge_changes_the_signature() {
        assert_ne!(forge("AAAA"), "AAAA");
        assert_ne!(forge("BAAA"), "BAAA");
    }
}
