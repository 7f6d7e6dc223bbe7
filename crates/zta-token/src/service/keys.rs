//! Signing and verifying keys: the key set, rotation, the JWKS, and the start-up self-test.

use super::*;

/// The signing key and every key that still verifies.
pub(super) struct KeySet {
    pub(super) signing: SigningKey,
    pub(super) verifying: Vec<VerifyingKey>,
}

#[derive(Clone)]
pub(super) struct VerifyingKey {
    pub(super) kid: String,
    pub(super) alg: Algorithm,
    pub(super) decoding: DecodingKey,
    pub(super) validation: Validation,
    pub(super) jwk: serde_json::Value,
    /// The encoded header of the access tokens this key signs: lets `accepts` recognise our
    /// tokens without decoding anything.
    pub(super) access_header: String,
    /// When a rotated-out key stops verifying; `None` for the current key.
    pub(super) retire_at: Option<OffsetDateTime>,
}

pub(super) enum Lookup<'a> {
    Live(&'a VerifyingKey),
    Retired,
    Unknown,
}

impl KeySet {
    pub(super) fn lookup(&self, kid: &str, now: OffsetDateTime) -> Lookup<'_> {
        match self.verifying.iter().find(|k| k.kid == kid) {
            Some(k) if k.retire_at.is_none_or(|t| now < t) => Lookup::Live(k),
            Some(_) => Lookup::Retired,
            None => Lookup::Unknown,
        }
    }
}

pub(super) fn validation(
    key: &SigningKey,
    issuer: &str,
    audience: &str,
    leeway: u64,
    time_checks: bool,
) -> Validation {
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

pub(super) fn verifying_key(key: &SigningKey, validation: Validation) -> VerifyingKey {
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

/// Signs two throwaway tokens with `key`, checks one verifies through jsonwebtoken with the
/// pinned validation and that a spliced signature is refused.
pub(super) fn self_test(key: &SigningKey, issuer: &str, audience: &str) -> Result<(), Error> {
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

impl TokenService {
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
}
