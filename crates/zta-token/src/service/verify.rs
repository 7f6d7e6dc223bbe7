//! Verification: decoding a token against the pinned key, its claims and times, the
//! verified-token cache, and revocation.

use super::*;

/// What the cache keeps: a token whose signature and claims have been verified.
pub(super) struct Cached {
    /// The whole token: a hit counts only if the token presented is exactly this one.
    pub(super) token: Box<str>,
    pub(super) verified: Verified,
}

/// A token's cache key: its signature. Hashing the signature alone costs a fifth of hashing
/// the token, and the whole token is compared on every hit.
pub(super) fn cache_key(token: &str) -> &str {
    token.rsplit_once('.').map_or(token, |(_, signature)| signature)
}

/// A token whose signature and claims have been verified.
pub(super) struct Verified {
    pub(super) principal: Arc<Principal>,
    pub(super) kid: String,
    pub(super) jti_key: String,
    pub(super) fam_key: String,
    pub(super) issued_at: OffsetDateTime,
    pub(super) nbf: i64,
    pub(super) exp: i64,
}

pub(super) struct Decoded {
    pub(super) verified: Verified,
    pub(super) session: Session,
    pub(super) jti: String,
}

impl TokenService {
    /// Signature, header and claims checks; no revocation (that needs the state store).
    pub(super) fn decode(
        &self,
        token: &str,
        expect: Option<TokenType>,
        now: OffsetDateTime,
        time_checks: bool,
    ) -> Result<Decoded, AuthError> {
        let jws = CompactJws::split(token, MAX_CREDENTIAL_LEN)?;
        let mut header_json = Vec::new();
        let header = jws.read_header(&mut header_json)?;
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
                jose::echo(&header.alg),
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
            .map_err(|e| jose::auth_error(&e))?
            .claims;
        self.check_claims(claims, ttype, &key.kid, now, time_checks)
    }

    pub(super) fn check_claims(
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
            src_claims: Arc::new(claims.src_claims),
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

    pub(super) fn check_time(&self, exp: i64, nbf: i64, now: OffsetDateTime) -> Result<(), AuthError> {
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
    /// token is within its lifetime, and nothing revoked it. Answers whether its agent is
    /// suspended, read in the same state-store call.
    pub(super) async fn check_live(&self, v: &Verified, now: OffsetDateTime) -> Result<bool, AuthError> {
        if !matches!(self.keys.load().lookup(&v.kid, now), Lookup::Live(_)) {
            return Err(invalid(format!("key id {:?} is retired", v.kid)));
        }
        self.check_time(v.exp, v.nbf, now)?;
        let keys = [v.jti_key.as_str(), v.fam_key.as_str()];
        let standing =
            self.state.standing(&keys, &v.principal.agent_id, v.issued_at).await.map_err(unavailable)?;
        if standing.revoked {
            tracing::debug!(target: "zta_token", agent = %v.principal.agent_id, "token revoked");
            return Err(AuthError::Revoked);
        }
        Ok(standing.suspended)
    }

    pub(super) async fn verify_access(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        if token.len() > MAX_CREDENTIAL_LEN {
            return Err(invalid(format!("token longer than {MAX_CREDENTIAL_LEN} bytes")));
        }
        let now = self.now();
        let key = cache_key(token);
        if let Some(cache) = &self.cache
            && let Some(hit) = cache.get(key).filter(|hit| *hit.token == *token)
        {
            return match self.check_live(&hit.verified, now).await {
                Ok(suspended) => Ok(VerifiedToken::new(hit.verified.principal.clone(), suspended)),
                Err(e) => {
                    if matches!(e, AuthError::Expired | AuthError::Invalid { .. }) {
                        cache.remove(key);
                    }
                    Err(e)
                }
            };
        }
        let verified = self.decode(token, Some(TokenType::Access), now, true)?.verified;
        let suspended = self.check_live(&verified, now).await?;
        let principal = verified.principal.clone();
        if let Some(cache) = &self.cache {
            cache.insert(key.to_owned(), Arc::new(Cached { token: token.into(), verified }));
        }
        Ok(VerifiedToken::new(principal, suspended))
    }

    pub(super) async fn revoke_one(&self, token: &str) -> Result<(), AuthError> {
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
