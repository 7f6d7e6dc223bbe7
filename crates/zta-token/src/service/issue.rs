//! Issuing: minting access and refresh tokens, and the single-use refresh.

use super::*;

pub(super) fn random_id() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|e| Error::crypto("random number generator failed", Some(e.into())))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The base64url header of a token of type `ttype` signed by `key`, exactly as signed.
pub(super) fn encoded_header(key: &SigningKey, ttype: TokenType) -> Result<String, Error> {
    let header =
        serde_json::to_vec(&HeaderOut { alg: key.algorithm().as_str(), typ: ttype.typ(), kid: key.kid() })
            .map_err(|e| Error::crypto("cannot serialize token header", Some(e.into())))?;
    Ok(URL_SAFE_NO_PAD.encode(header))
}

/// Signs `claims` as a compact JWS with `key`.
pub(super) fn sign_token(key: &SigningKey, ttype: TokenType, claims: &Claims) -> Result<String, Error> {
    let json = |e: serde_json::Error| Error::crypto("cannot serialize token", Some(e.into()));
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

impl TokenService {
    pub(super) fn mint(
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
            src_claims: BTreeMap::clone(&session.src_claims),
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

    pub(super) fn mint_pair(
        &self,
        session: &Session,
        now: OffsetDateTime,
    ) -> Result<(SessionTokens, Principal), TokenError> {
        let fail = |e: Error| TokenError::crypto(e.to_string(), Some(Arc::new(e)));
        let key = self.keys.load().signing.clone();
        let now = now.unix_timestamp();
        let (access, exp) = self.mint(&key, session, TokenType::Access, now).map_err(fail)?;
        let (refresh, _) = self.mint(&key, session, TokenType::Refresh, now).map_err(fail)?;
        let principal = session
            .principal(&self.issuer, exp)
            .map_err(|e| TokenError::Refused(e.detail().into_owned().into()))?;
        let tokens = SessionTokens {
            access_token: SecretString::from(access),
            refresh_token: SecretString::from(refresh),
            expires_in: Duration::from_secs(u64::try_from(exp - now).unwrap_or(0)),
        };
        Ok((tokens, principal))
    }

    pub(super) fn issue_for(&self, principal: &Principal) -> Result<SessionTokens, TokenError> {
        if principal.auth_method == AuthMethod::SessionToken {
            return Err(TokenError::Refused(
                "a session token principal cannot be issued new tokens; use refresh".into(),
            ));
        }
        let now = self.now();
        if principal.is_expired_at(now) {
            return Err(TokenError::Refused("the principal has expired".into()));
        }
        if principal.delegation.len() > MAX_DELEGATION_DEPTH {
            return Err(TokenError::Refused(
                format!("delegation chain longer than {MAX_DELEGATION_DEPTH}").into(),
            ));
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
            src_claims: Arc::clone(&principal.claims),
            fam: random_id().map_err(|e| TokenError::crypto(e.to_string(), Some(Arc::new(e))))?,
        };
        if session.end(self.max_session) <= now.unix_timestamp() {
            return Err(TokenError::Refused(
                "the authentication is older than the longest session (`max_session`)".into(),
            ));
        }
        let (tokens, _) = self.mint_pair(&session, now)?;
        tracing::debug!(target: "zta_token", agent = %principal.agent_id, family = %session.fam, "session tokens issued");
        Ok(tokens)
    }

    pub(super) async fn refresh_pair(&self, token: &str) -> Result<(Principal, SessionTokens), AuthError> {
        let now = self.now();
        let decoded = self.decode(token, Some(TokenType::Refresh), now, true)?;
        // A suspended agent's refresh is refused by the guard, after the token is spent.
        let _suspended = self.check_live(&decoded.verified, now).await?;
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
        let (tokens, principal) = self.mint_pair(&decoded.session, now).map_err(AuthError::from)?;
        tracing::debug!(target: "zta_token", agent = %principal.agent_id, family = %decoded.session.fam, "session refreshed");
        Ok((principal, tokens))
    }
}
