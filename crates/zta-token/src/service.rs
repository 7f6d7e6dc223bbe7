//! [`TokenService`]: issues, verifies, refreshes and revokes session tokens.

use std::{
    borrow::Cow,
    collections::BTreeMap,
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, Validation, errors::ErrorKind};
use quick_cache::sync::Cache;
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use zta_core::{
    AgentId, AuthError, AuthMethod, Credential, MAX_CREDENTIAL_LEN, Principal, SessionTokens, StateError,
    StateStore, TokenAuthority, TokenError, VerifiedToken,
};
use zta_crypto::jose::{self, CompactJws};

use crate::{
    Algorithm, Error, SigningKey, TokenConfig,
    claims::{Act, Claims, HeaderOut, MAX_DELEGATION_DEPTH, TokenType, TypOnly},
    key::MAX_KID_LEN,
};

mod issue;
mod keys;
mod verify;

use self::{issue::*, keys::*, verify::*};

/// Reads the current time; replaceable in tests.
type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// Registered claims every token must carry. jsonwebtoken enforces the first five itself;
/// `iat` and `jti` are listed for clarity and enforced here.
const REQUIRED_CLAIMS: [&str; 7] = ["exp", "nbf", "iat", "iss", "aud", "sub", "jti"];
/// Longest accepted `jti` / `fam`.
const MAX_ID_LEN: usize = 128;

/// ZTA's session token authority: issues short-lived, asymmetrically signed access tokens
/// and single-use refresh tokens, and verifies them on every request.
///
/// Verification refuses: tokens over [`MAX_CREDENTIAL_LEN`]; headers with `jku`, `x5u`,
/// `x5c`, `jwk` or `crit`; a missing, overlong (> 64 bytes), unknown or retired `kid`; any
/// `alg` other than the one pinned to that key (so `none` and HMAC never verify); a bad
/// signature; a wrong `iss`, `aud` or token type (header `typ` and `ztt` claim both); a
/// missing registered claim; a `sub` that is not an [`AgentId`]; expired or not-yet-valid
/// tokens (with the configured leeway); and tokens revoked by id, by family or agent-wide.
/// Revocation state is read from the [`StateStore`] on every request; if it fails the token is
/// refused ([`AuthError::Unavailable`]).
///
/// A verified principal carries `auth_method = SessionToken`, `issuer` = the configured token
/// issuer, `subject` = the agent id and `expires_at` = the access token's `exp`; roles, groups,
/// segment, tenant, delegation chain and `authenticated_at` come from the original login. The
/// original method and issuer stay in the token (`amr`, `src_iss`).
pub struct TokenService {
    issuer: String,
    audience: String,
    algorithm: Algorithm,
    access_ttl: i64,
    refresh_ttl: i64,
    max_session: i64,
    leeway: i64,
    rotation_overlap: time::Duration,
    keys: ArcSwap<KeySet>,
    rotating: Mutex<()>,
    state: Arc<dyn StateStore>,
    /// Verified tokens by signature (see [`cache_key`]).
    cache: Option<Cache<String, Arc<Cached>>>,
    clock: Clock,
    library_time_checks: bool,
}

/// The identity a token family carries from login through every refresh.
struct Session {
    agent: AgentId,
    roles: Vec<String>,
    groups: Vec<String>,
    seg: Option<String>,
    tid: Option<String>,
    amr: Vec<String>,
    auth_time: i64,
    delegation: Vec<String>,
    src_iss: String,
    src_claims: Arc<BTreeMap<String, String>>,
    fam: String,
}

impl Session {
    /// When the session ends, whatever is refreshed: `max_session` seconds after authentication.
    fn end(&self, max_session: i64) -> i64 {
        self.auth_time.saturating_add(max_session)
    }

    fn principal(&self, issuer: &str, exp: i64) -> Result<Principal, AuthError> {
        let mut p = Principal::new(
            self.agent.clone(),
            issuer,
            AuthMethod::SessionToken,
            timestamp(self.auth_time)?,
            timestamp(exp)?,
        )
        .with_roles(self.roles.iter().cloned())
        .with_groups(self.groups.iter().cloned())
        .with_delegation(self.delegation.iter().cloned());
        if let Some(seg) = &self.seg {
            p = p.with_segment(seg.clone());
        }
        if let Some(tid) = &self.tid {
            p = p.with_tenant(tid.clone());
        }
        p = p.with_source_issuer(self.src_iss.clone());
        p.claims = self.src_claims.clone();
        Ok(p)
    }
}

fn timestamp(ts: i64) -> Result<OffsetDateTime, AuthError> {
    OffsetDateTime::from_unix_timestamp(ts).map_err(|_| AuthError::invalid("timestamp out of range"))
}

fn invalid(detail: impl Into<Cow<'static, str>>) -> AuthError {
    AuthError::invalid(detail)
}

fn unavailable(e: StateError) -> AuthError {
    AuthError::StateUnavailable { detail: format!("revocation state: {e}").into() }
}

/// Logs a refusal (never the token) and passes it on.
fn refused(op: &'static str, e: AuthError) -> AuthError {
    tracing::debug!(target: "zta_token", op, detail = %e.detail(), "session token refused");
    e
}

impl TokenService {
    /// Builds the service. Validates `config`, installs jsonwebtoken's aws-lc-rs provider, and
    /// signs and verifies a throwaway token with `key`. Refuses a key whose algorithm is not
    /// `config.algorithm`; any failure is an [`Error`], never a panic.
    pub fn new(config: TokenConfig, key: SigningKey, state: Arc<dyn StateStore>) -> Result<Self, Error> {
        config.validate()?;
        if key.algorithm() != config.algorithm {
            return Err(Error::AlgorithmMismatch { key: key.algorithm(), configured: config.algorithm });
        }
        zta_crypto::jose::install_provider()?;
        self_test(&key, &config.issuer, &config.audience)?;
        let secs =
            |d: Duration| i64::try_from(d.as_secs()).map_err(|_| Error::Config("duration too large".into()));
        let overlap = config.effective_rotation_overlap();
        let validation = validation(&key, &config.issuer, &config.audience, config.leeway.as_secs(), true);
        let keys = KeySet { verifying: vec![verifying_key(&key, validation)], signing: key };
        Ok(Self {
            access_ttl: secs(config.access_ttl)?,
            refresh_ttl: secs(config.refresh_ttl)?,
            max_session: secs(config.max_session)?,
            leeway: secs(config.leeway)?,
            rotation_overlap: time::Duration::seconds(secs(overlap)?),
            algorithm: config.algorithm,
            keys: ArcSwap::from_pointee(keys),
            rotating: Mutex::new(()),
            state,
            cache: (config.cache_capacity > 0).then(|| Cache::new(config.cache_capacity)),
            clock: Arc::new(OffsetDateTime::now_utc),
            library_time_checks: true,
            issuer: config.issuer,
            audience: config.audience,
        })
    }

    /// Replaces the clock the service reads (tests only: expiry, rotation overlap). With a
    /// custom clock, `exp`/`nbf` are checked against it alone.
    #[doc(hidden)]
    #[must_use]
    pub fn with_clock(mut self, clock: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self.library_time_checks = false;
        let set = self.keys.load_full();
        let verifying = set
            .verifying
            .iter()
            .cloned()
            .map(|mut k| {
                k.validation.validate_exp = false;
                k.validation.validate_nbf = false;
                k
            })
            .collect();
        self.keys.store(Arc::new(KeySet { signing: set.signing.clone(), verifying }));
        self
    }

    fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }
}

#[async_trait]
impl TokenAuthority for TokenService {
    /// True for a bearer token whose header `typ` is `zta-at+jwt`; verifies nothing.
    fn accepts(&self, credential: &Credential) -> bool {
        let Credential::Bearer(token) = credential else {
            return false;
        };
        let token = token.expose_secret();
        if token.len() > MAX_CREDENTIAL_LEN {
            return false;
        }
        // The exact header one of our keys writes: ours, no decoding needed.
        let ours = |k: &VerifyingKey| {
            token.strip_prefix(k.access_header.as_str()).is_some_and(|rest| rest.starts_with('.'))
        };
        if self.keys.load().verifying.iter().any(ours) {
            return true;
        }
        let Some((h64, _)) = token.split_once('.') else {
            return false;
        };
        if h64.len() > zta_crypto::jose::MAX_HEADER_LEN {
            return false;
        }
        let Ok(json) = URL_SAFE_NO_PAD.decode(h64) else {
            return false;
        };
        serde_json::from_slice::<TypOnly<'_>>(&json)
            .is_ok_and(|h| h.typ.as_deref().and_then(TokenType::from_typ) == Some(TokenType::Access))
    }

    async fn issue(&self, principal: &Principal) -> Result<SessionTokens, TokenError> {
        self.issue_for(principal)
    }

    async fn verify(&self, access_token: &SecretString) -> Result<VerifiedToken, AuthError> {
        self.verify_access(access_token.expose_secret()).await.map_err(|e| refused("verify", e))
    }

    async fn refresh(&self, refresh_token: &SecretString) -> Result<(Principal, SessionTokens), AuthError> {
        self.refresh_pair(refresh_token.expose_secret()).await.map_err(|e| refused("refresh", e))
    }

    async fn revoke_token(&self, token: &SecretString) -> Result<(), TokenError> {
        self.revoke_one(token.expose_secret())
            .await
            .map_err(|e| TokenError::Refused(refused("revoke", e).detail().into_owned().into()))
    }

    /// Revokes every token of `agent` with `iat` at or before now. `iat` has second precision,
    /// so tokens issued later in the same second are revoked too.
    async fn revoke_agent(&self, agent: &AgentId) -> Result<(), TokenError> {
        self.state.revoke_agent(agent, self.now()).await?;
        tracing::info!(target: "zta_token", agent = %agent, "all session tokens of agent revoked");
        Ok(())
    }
}

impl fmt::Debug for TokenService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.keys.load();
        f.debug_struct("TokenService")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("algorithm", &self.algorithm)
            .field("signing_kid", &keys.signing.kid())
            .field("keys", &keys.verifying.len())
            .field("cache", &self.cache.as_ref().map(Cache::capacity))
            .finish_non_exhaustive()
    }
}
