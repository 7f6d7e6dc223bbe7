//! [`TokenService`]: issues, verifies, refreshes and revokes session tokens.

use std::{
    borrow::Cow,
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
    StateStore, TokenAuthority, TokenError,
};

use crate::{
    Algorithm, Error, SigningKey, TokenConfig,
    claims::{
        Act, Claims, HeaderIn, HeaderOut, MAX_DELEGATION_DEPTH, MAX_HEADER_B64_LEN, TokenType, TypOnly,
    },
    key::MAX_KID_LEN,
    provider,
};

/// Reads the current time; replaceable in tests.
type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// Registered claims every token must carry. jsonwebtoken enforces the first five itself;
/// `iat` and `jti` are listed for clarity and enforced here.
const REQUIRED_CLAIMS: [&str; 7] = ["exp", "nbf", "iat", "iss", "aud", "sub", "jti"];
/// Longest accepted `jti` / `fam`.
const MAX_ID_LEN: usize = 128;
/// Longest piece of attacker-controlled text echoed into an audit detail.
const MAX_ECHO_LEN: usize = 120;

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

/// The signing key and every key that still verifies.
struct KeySet {
    signing: SigningKey,
    verifying: Vec<VerifyingKey>,
}

#[derive(Clone)]
struct VerifyingKey {
    kid: String,
    alg: Algorithm,
    decoding: DecodingKey,
    validation: Validation,
    jwk: serde_json::Value,
    /// The encoded header of the access tokens this key signs: lets `accepts` recognise our
    /// tokens without decoding anything.
    access_header: String,
    /// When a rotated-out key stops verifying; `None` for the current key.
    retire_at: Option<OffsetDateTime>,
}

enum Lookup<'a> {
    Live(&'a VerifyingKey),
    Retired,
    Unknown,
}

impl KeySet {
    fn lookup(&self, kid: &str, now: OffsetDateTime) -> Lookup<'_> {
        match self.verifying.iter().find(|k| k.kid == kid) {
            Some(k) if k.retire_at.is_none_or(|t| now < t) => Lookup::Live(k),
            Some(_) => Lookup::Retired,
            None => Lookup::Unknown,
        }
    }
}

/// What the cache keeps: a token whose signature and claims have been verified.
struct Cached {
    /// The whole token: a hit counts only if the token presented is exactly this one.
    token: Box<str>,
    verified: Verified,
}

/// A token's cache key: its signature. Hashing the signature alone costs a fifth of hashing
/// the token, and the whole token is compared on every hit.
fn cache_key(token: &str) -> &str {
    token.rsplit_once('.').map_or(token, |(_, signature)| signature)
}

/// A token whose signature and claims have been verified.
struct Verified {
    principal: Arc<Principal>,
    kid: String,
    jti_key: String,
    fam_key: String,
    issued_at: OffsetDateTime,
    nbf: i64,
    exp: i64,
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
    fam: String,
}

struct Decoded {
    verified: Verified,
    session: Session,
    jti: String,
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
    AuthError::unavailable(format!("revocation state: {e}"))
}

/// At most [`MAX_ECHO_LEN`] bytes of `text`, cut at a character boundary.
fn echo(text: &str) -> &str {
    let mut end = text.len().min(MAX_ECHO_LEN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

fn random_id() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| Error::Crypto("random number generator failed".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn validation(key: &SigningKey, issuer: &str, audience: &str, leeway: u64, time_checks: bool) -> Validation {
    let mut v = Validation::new(key.algorithm().jwt());
    v.set_required_spec_claims(&REQUIRED_CLAIMS);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.leeway = leeway;
    v.validate_exp = time_checks;
    v.validate_nbf = time_checks;
    v.validate_aud = true;
    v
}

fn verifying_key(key: &SigningKey, validation: Validation) -> VerifyingKey {
    VerifyingKey {
        kid: key.kid().to_owned(),
        alg: key.algorithm(),
        decoding: key.decoding_key(),
        validation,
        jwk: key.public_jwk(),
        access_header: encoded_header(key, TokenType::Access).unwrap_or_default(),
        retire_at: None,
    }
}

/// The base64url header of a token of type `ttype` signed by `key`, exactly as signed.
fn encoded_header(key: &SigningKey, ttype: TokenType) -> Result<String, Error> {
    let header =
        serde_json::to_vec(&HeaderOut { alg: key.algorithm().as_str(), typ: ttype.typ(), kid: key.kid() })
            .map_err(|e| Error::Crypto(format!("cannot serialize token header: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(header))
}

/// Signs `claims` as a compact JWS with `key`.
fn sign_token(key: &SigningKey, ttype: TokenType, claims: &Claims) -> Result<String, Error> {
    let json = |e: serde_json::Error| Error::Crypto(format!("cannot serialize token: {e}"));
    let header = encoded_header(key, ttype)?;
    let payload = serde_json::to_vec(claims).map_err(json)?;
    let mut token = String::with_capacity(header.len() + payload.len() * 4 / 3 + 360);
    token.push_str(&header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    Ok(token)
}

/// Signs two throwaway tokens with `key`, checks one verifies through jsonwebtoken with the
/// pinned validation and that a spliced signature is refused.
fn self_test(key: &SigningKey, issuer: &str, audience: &str) -> Result<(), Error> {
    let fail = |reason: String| Error::SelfTest { kid: key.kid().to_owned(), reason };
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let claims = |jti: &str| Claims {
        iss: Some(issuer.to_owned()),
        aud: Some(audience.to_owned()),
        sub: Some("zta-self-test".to_owned()),
        exp: Some(now + 60),
        nbf: Some(now),
        iat: Some(now),
        jti: Some(jti.to_owned()),
        ztt: Some(TokenType::Access),
        fam: Some("self-test".to_owned()),
        ..Claims::default()
    };
    let first = sign_token(key, TokenType::Access, &claims("first"))?;
    let second = sign_token(key, TokenType::Access, &claims("second"))?;
    let vk = verifying_key(key, validation(key, issuer, audience, 5, true));
    let data = jsonwebtoken::decode::<Claims>(&first, &vk.decoding, &vk.validation)
        .map_err(|e| fail(format!("a freshly signed token does not verify: {e}")))?;
    if data.claims.jti.as_deref() != Some("first") {
        return Err(fail("claims did not survive signing and verification".into()));
    }
    let spliced = match (second.rsplit_once('.'), first.rsplit_once('.')) {
        (Some((body, _)), Some((_, signature))) => format!("{body}.{signature}"),
        _ => return Err(fail("signed token is not a compact JWS".into())),
    };
    match jsonwebtoken::decode::<Claims>(&spliced, &vk.decoding, &vk.validation) {
        Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => Ok(()),
        Err(e) => Err(fail(format!("a spliced signature was refused for the wrong reason: {e}"))),
        Ok(_) => Err(fail("a spliced signature verified".into())),
    }
}

fn map_jwt_error(e: &jsonwebtoken::errors::Error) -> AuthError {
    match e.kind() {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidSignature => invalid("bad signature"),
        ErrorKind::InvalidIssuer => invalid("wrong issuer"),
        ErrorKind::InvalidAudience => invalid("wrong audience"),
        ErrorKind::MissingRequiredClaim(c) => invalid(format!("missing required claim `{}`", echo(c))),
        ErrorKind::InvalidClaimFormat(c) => invalid(format!("malformed claim `{}`", echo(c))),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            invalid("algorithm not allowed for this key")
        }
        ErrorKind::Base64(_) => invalid("malformed token: not base64url"),
        ErrorKind::Json(e) => invalid(format!("malformed claims: {}", echo(&e.to_string()))),
        ErrorKind::Utf8(_) => invalid("malformed token: not UTF-8"),
        other => invalid(format!("token refused: {}", echo(&format!("{other:?}")))),
    }
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
        provider::install();
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

    /// Makes `new_key` the signing key. The previous key keeps verifying for the rotation
    /// overlap, then is dropped. Refuses a key of another algorithm than configured, a `kid`
    /// already in the key set, and a key failing the self-test.
    pub fn rotate(&self, new_key: SigningKey) -> Result<(), Error> {
        if new_key.algorithm() != self.algorithm {
            return Err(Error::AlgorithmMismatch { key: new_key.algorithm(), configured: self.algorithm });
        }
        self_test(&new_key, &self.issuer, &self.audience)?;
        let _one_at_a_time = self.rotating.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.now();
        let current = self.keys.load_full();
        if current.verifying.iter().any(|k| k.kid == new_key.kid()) {
            return Err(Error::KeyId {
                kid: new_key.kid().to_owned(),
                reason: "it is already in the key set",
            });
        }
        let retire_at = now + self.rotation_overlap;
        let mut verifying: Vec<VerifyingKey> = current
            .verifying
            .iter()
            .filter(|k| k.retire_at.is_none_or(|t| now < t))
            .cloned()
            .map(|mut k| {
                k.retire_at.get_or_insert(retire_at);
                k
            })
            .collect();
        let leeway = u64::try_from(self.leeway).unwrap_or(0);
        let validation = validation(&new_key, &self.issuer, &self.audience, leeway, self.library_time_checks);
        verifying.push(verifying_key(&new_key, validation));
        tracing::info!(target: "zta_token", kid = new_key.kid(), previous = current.signing.kid(), "signing key rotated");
        self.keys.store(Arc::new(KeySet { signing: new_key, verifying }));
        Ok(())
    }

    /// The public keys that currently verify tokens, as a JWK Set: `{"keys": [...]}` with
    /// `kid`, `alg` and `use: sig`. Never contains private members.
    pub fn jwks(&self) -> serde_json::Value {
        let now = self.now();
        let set = self.keys.load();
        let keys: Vec<serde_json::Value> = set
            .verifying
            .iter()
            .filter(|k| k.retire_at.is_none_or(|t| now < t))
            .map(|k| k.jwk.clone())
            .collect();
        serde_json::json!({ "keys": keys })
    }

    fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    /// Signature, header and claims checks; no revocation (that needs the state store).
    fn decode(
        &self,
        token: &str,
        expect: Option<TokenType>,
        now: OffsetDateTime,
        time_checks: bool,
    ) -> Result<Decoded, AuthError> {
        if token.len() > MAX_CREDENTIAL_LEN {
            return Err(invalid(format!("token longer than {MAX_CREDENTIAL_LEN} bytes")));
        }
        let mut parts = token.split('.');
        let (Some(h64), Some(p64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("malformed token: expected three dot-separated parts"));
        };
        if h64.is_empty() || p64.is_empty() || s64.is_empty() {
            return Err(invalid("malformed token: empty part"));
        }
        if h64.len() > MAX_HEADER_B64_LEN {
            return Err(invalid("malformed token: header too large"));
        }
        let header_json =
            URL_SAFE_NO_PAD.decode(h64).map_err(|_| invalid("malformed header: not base64url"))?;
        let header: HeaderIn<'_> = serde_json::from_slice(&header_json)
            .map_err(|e| invalid(format!("malformed header: {}", echo(&e.to_string()))))?;
        if let Some(member) = header.forbidden_member() {
            return Err(invalid(format!("header member `{member}` is not accepted")));
        }
        let ttype = header
            .typ
            .as_deref()
            .and_then(TokenType::from_typ)
            .ok_or_else(|| invalid("header `typ` is not a ZTA session token type"))?;
        if let Some(want) = expect
            && ttype != want
        {
            return Err(invalid(format!(
                "wrong token type: expected {}, got {}",
                want.as_str(),
                ttype.as_str()
            )));
        }
        let kid = header.kid.as_deref().ok_or_else(|| invalid("header has no `kid`"))?;
        if kid.len() > MAX_KID_LEN {
            return Err(invalid(format!("header `kid` longer than {MAX_KID_LEN} bytes")));
        }
        let keys = self.keys.load();
        let key = match keys.lookup(kid, now) {
            Lookup::Live(key) => key,
            Lookup::Retired => return Err(invalid(format!("key id {kid:?} is retired"))),
            Lookup::Unknown => return Err(invalid(format!("unknown key id {kid:?}"))),
        };
        if header.alg != key.alg.as_str() {
            return Err(invalid(format!(
                "algorithm {:?} is not {} as pinned to key id {:?}",
                echo(&header.alg),
                key.alg,
                key.kid
            )));
        }
        let no_time;
        let validation = if time_checks {
            &key.validation
        } else {
            no_time = Validation { validate_exp: false, validate_nbf: false, ..key.validation.clone() };
            &no_time
        };
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, validation)
            .map_err(|e| map_jwt_error(&e))?
            .claims;
        self.check_claims(claims, ttype, &key.kid, now, time_checks)
    }

    fn check_claims(
        &self,
        claims: Claims,
        ttype: TokenType,
        kid: &str,
        now: OffsetDateTime,
        time_checks: bool,
    ) -> Result<Decoded, AuthError> {
        fn need<T>(value: Option<T>, name: &str) -> Result<T, AuthError> {
            value.ok_or_else(|| invalid(format!("missing required claim `{name}`")))
        }
        fn id(value: Option<String>, name: &str) -> Result<String, AuthError> {
            let value = need(value, name)?;
            if value.is_empty() || value.len() > MAX_ID_LEN {
                return Err(invalid(format!("claim `{name}` must be 1 to {MAX_ID_LEN} bytes")));
            }
            Ok(value)
        }
        if need(claims.ztt, "ztt")? != ttype {
            return Err(invalid("claim `ztt` does not match header `typ`"));
        }
        if need(claims.iss, "iss")? != self.issuer {
            return Err(invalid("wrong issuer"));
        }
        if need(claims.aud, "aud")? != self.audience {
            return Err(invalid("wrong audience"));
        }
        let sub = need(claims.sub, "sub")?;
        let agent =
            AgentId::new(&sub).map_err(|e| invalid(format!("subject is not a valid agent id: {e}")))?;
        let (exp, nbf, iat) = (need(claims.exp, "exp")?, need(claims.nbf, "nbf")?, need(claims.iat, "iat")?);
        let jti = id(claims.jti, "jti")?;
        let fam = id(claims.fam, "fam")?;
        if time_checks {
            self.check_time(exp, nbf, now)?;
        }
        let delegation = match &claims.act {
            None => Vec::new(),
            Some(act) => act
                .to_chain()
                .ok_or_else(|| invalid(format!("`act` chain deeper than {MAX_DELEGATION_DEPTH}")))?,
        };
        let session = Session {
            agent,
            roles: claims.roles,
            groups: claims.groups,
            seg: claims.seg,
            tid: claims.tid,
            amr: claims.amr,
            auth_time: need(claims.auth_time, "auth_time")?,
            delegation,
            src_iss: need(claims.src_iss, "src_iss")?,
            fam,
        };
        let verified = Verified {
            principal: Arc::new(session.principal(&self.issuer, exp)?),
            kid: kid.to_owned(),
            jti_key: format!("jti:{jti}"),
            fam_key: format!("fam:{}", session.fam),
            issued_at: timestamp(iat)?,
            nbf,
            exp,
        };
        Ok(Decoded { verified, session, jti })
    }

    fn check_time(&self, exp: i64, nbf: i64, now: OffsetDateTime) -> Result<(), AuthError> {
        let now = now.unix_timestamp();
        if now >= exp.saturating_add(self.leeway) {
            return Err(AuthError::Expired);
        }
        if now.saturating_add(self.leeway) < nbf {
            return Err(AuthError::NotYetValid);
        }
        Ok(())
    }

    /// The checks that run on every request, cached or not: the key still verifies, the
    /// token is within its lifetime, and nothing revoked it.
    async fn check_live(&self, v: &Verified, now: OffsetDateTime) -> Result<(), AuthError> {
        if !matches!(self.keys.load().lookup(&v.kid, now), Lookup::Live(_)) {
            return Err(invalid(format!("key id {:?} is retired", v.kid)));
        }
        self.check_time(v.exp, v.nbf, now)?;
        let keys = [v.jti_key.as_str(), v.fam_key.as_str()];
        if self.state.is_revoked(&keys, &v.principal.agent_id, v.issued_at).await.map_err(unavailable)? {
            tracing::debug!(target: "zta_token", agent = %v.principal.agent_id, "token revoked");
            return Err(AuthError::Revoked);
        }
        Ok(())
    }

    async fn verify_access(&self, token: &str) -> Result<Arc<Principal>, AuthError> {
        if token.len() > MAX_CREDENTIAL_LEN {
            return Err(invalid(format!("token longer than {MAX_CREDENTIAL_LEN} bytes")));
        }
        let now = self.now();
        let key = cache_key(token);
        if let Some(cache) = &self.cache
            && let Some(hit) = cache.get(key).filter(|hit| *hit.token == *token)
        {
            return match self.check_live(&hit.verified, now).await {
                Ok(()) => Ok(hit.verified.principal.clone()),
                Err(e) => {
                    if matches!(e, AuthError::Expired | AuthError::Invalid { .. }) {
                        cache.remove(key);
                    }
                    Err(e)
                }
            };
        }
        let verified = self.decode(token, Some(TokenType::Access), now, true)?.verified;
        self.check_live(&verified, now).await?;
        let principal = verified.principal.clone();
        if let Some(cache) = &self.cache {
            cache.insert(key.to_owned(), Arc::new(Cached { token: token.into(), verified }));
        }
        Ok(principal)
    }

    fn mint(
        &self,
        key: &SigningKey,
        session: &Session,
        ttype: TokenType,
        now: i64,
    ) -> Result<(String, i64), Error> {
        let ttl = if ttype == TokenType::Access { self.access_ttl } else { self.refresh_ttl };
        let exp = now.saturating_add(ttl).min(session.end(self.max_session));
        let claims = Claims {
            iss: Some(self.issuer.clone()),
            aud: Some(self.audience.clone()),
            sub: Some(session.agent.as_str().to_owned()),
            exp: Some(exp),
            nbf: Some(now),
            iat: Some(now),
            jti: Some(random_id()?),
            ztt: Some(ttype),
            fam: Some(session.fam.clone()),
            roles: session.roles.clone(),
            groups: session.groups.clone(),
            seg: session.seg.clone(),
            tid: session.tid.clone(),
            amr: session.amr.clone(),
            auth_time: Some(session.auth_time),
            act: Act::from_chain(&session.delegation),
            src_iss: Some(session.src_iss.clone()),
        };
        let token = sign_token(key, ttype, &claims)?;
        if token.len() > MAX_CREDENTIAL_LEN {
            return Err(Error::Config(format!(
                "a {} token would be {} bytes, over the {MAX_CREDENTIAL_LEN}-byte limit (too many roles, groups or delegation entries)",
                ttype.as_str(),
                token.len()
            )));
        }
        Ok((token, exp))
    }

    fn mint_pair(
        &self,
        session: &Session,
        now: OffsetDateTime,
    ) -> Result<(SessionTokens, Principal), TokenError> {
        let fail = |e: Error| TokenError(e.to_string());
        let key = self.keys.load().signing.clone();
        let now = now.unix_timestamp();
        let (access, exp) = self.mint(&key, session, TokenType::Access, now).map_err(fail)?;
        let (refresh, _) = self.mint(&key, session, TokenType::Refresh, now).map_err(fail)?;
        let principal =
            session.principal(&self.issuer, exp).map_err(|e| TokenError(e.detail().into_owned()))?;
        let tokens = SessionTokens {
            access_token: SecretString::from(access),
            refresh_token: SecretString::from(refresh),
            expires_in: Duration::from_secs(u64::try_from(exp - now).unwrap_or(0)),
        };
        Ok((tokens, principal))
    }

    fn issue_for(&self, principal: &Principal) -> Result<SessionTokens, TokenError> {
        if principal.auth_method == AuthMethod::SessionToken {
            return Err(TokenError(
                "a session token principal cannot be issued new tokens; use refresh".into(),
            ));
        }
        let now = self.now();
        if principal.is_expired_at(now) {
            return Err(TokenError("the principal has expired".into()));
        }
        if principal.delegation.len() > MAX_DELEGATION_DEPTH {
            return Err(TokenError(format!("delegation chain longer than {MAX_DELEGATION_DEPTH}")));
        }
        let session = Session {
            agent: principal.agent_id.clone(),
            roles: principal.roles.clone(),
            groups: principal.groups.clone(),
            seg: principal.segment.clone(),
            tid: principal.tenant.clone(),
            amr: vec![principal.auth_method.as_str().to_owned()],
            auth_time: principal.authenticated_at.unix_timestamp(),
            delegation: principal.delegation.clone(),
            src_iss: principal.issuer.clone(),
            fam: random_id().map_err(|e| TokenError(e.to_string()))?,
        };
        if session.end(self.max_session) <= now.unix_timestamp() {
            return Err(TokenError(
                "the authentication is older than the longest session (`max_session`)".into(),
            ));
        }
        let (tokens, _) = self.mint_pair(&session, now)?;
        tracing::debug!(target: "zta_token", agent = %principal.agent_id, family = %session.fam, "session tokens issued");
        Ok(tokens)
    }

    async fn refresh_pair(&self, token: &str) -> Result<(Principal, SessionTokens), AuthError> {
        let now = self.now();
        let decoded = self.decode(token, Some(TokenType::Refresh), now, true)?;
        self.check_live(&decoded.verified, now).await?;
        if now.unix_timestamp() >= decoded.session.end(self.max_session) {
            // Within the leeway of the refresh token's `exp`, but the session is over.
            return Err(AuthError::Expired);
        }
        let until = timestamp(decoded.verified.exp.saturating_add(self.leeway))?;
        let first_use =
            self.state.claim_once(&format!("rt:{}", decoded.jti), until).await.map_err(unavailable)?;
        if !first_use {
            // Every token of the family expires by now + refresh_ttl (+ leeway).
            let family_until = now + time::Duration::seconds(self.refresh_ttl.saturating_add(self.leeway));
            if let Err(e) = self.state.revoke(&decoded.verified.fam_key, family_until).await {
                tracing::error!(target: "zta_token", error = %e, family = %decoded.session.fam, "reused refresh token: revoking its family failed");
            }
            tracing::warn!(
                target: "zta_token",
                agent = %decoded.session.agent,
                family = %decoded.session.fam,
                "refresh token reused; token family revoked"
            );
            return Err(AuthError::Replayed);
        }
        let (tokens, principal) =
            self.mint_pair(&decoded.session, now).map_err(|e| AuthError::unavailable(e.0))?;
        tracing::debug!(target: "zta_token", agent = %principal.agent_id, family = %decoded.session.fam, "session refreshed");
        Ok((principal, tokens))
    }

    async fn revoke_one(&self, token: &str) -> Result<(), AuthError> {
        let now = self.now();
        // Signature, issuer, audience and type are checked; an expired token may be revoked.
        let verified = self.decode(token, None, now, false)?.verified;
        let until = verified.exp.saturating_add(self.leeway);
        if now.unix_timestamp() >= until {
            return Ok(()); // it can no longer be used anyway
        }
        self.state.revoke(&verified.jti_key, timestamp(until)?).await.map_err(unavailable)?;
        tracing::info!(target: "zta_token", agent = %verified.principal.agent_id, "session token revoked");
        Ok(())
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
        if h64.len() > MAX_HEADER_B64_LEN {
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

    async fn verify(&self, access_token: &SecretString) -> Result<Arc<Principal>, AuthError> {
        self.verify_access(access_token.expose_secret()).await.map_err(|e| refused("verify", e))
    }

    async fn refresh(&self, refresh_token: &SecretString) -> Result<(Principal, SessionTokens), AuthError> {
        self.refresh_pair(refresh_token.expose_secret()).await.map_err(|e| refused("refresh", e))
    }

    async fn revoke_token(&self, token: &SecretString) -> Result<(), TokenError> {
        self.revoke_one(token.expose_secret())
            .await
            .map_err(|e| TokenError(refused("revoke", e).detail().into_owned()))
    }

    /// Revokes every token of `agent` with `iat` at or before now. `iat` has second precision,
    /// so tokens issued later in the same second are revoked too.
    async fn revoke_agent(&self, agent: &AgentId) -> Result<(), TokenError> {
        self.state.revoke_agent(agent, self.now()).await.map_err(|e| TokenError(e.to_string()))?;
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
