//! Session tokens: the short-lived credential an agent carries after its primary login.

use std::{fmt::Debug, sync::Arc, time::Duration};

use async_trait::async_trait;
use secrecy::SecretString;

use crate::{AgentId, AuthError, Credential, Principal};

/// A pair of session tokens as issued at login or refresh.
#[derive(Debug, Clone)]
pub struct SessionTokens {
    /// The access token to present with every request.
    pub access_token: SecretString,
    /// The single-use refresh token that obtains the next pair.
    pub refresh_token: SecretString,
    /// Lifetime of the access token.
    pub expires_in: Duration,
}

/// A failure to issue or revoke session tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session token service failed: {0}")]
pub struct TokenError(pub String);

impl From<TokenError> for crate::AuthError {
    /// The token service failing is the identity service being unavailable: deny.
    fn from(e: TokenError) -> Self {
        Self::unavailable(e.to_string())
    }
}

/// Issues, verifies, refreshes and revokes ZTA session tokens.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait TokenAuthority: Send + Sync + Debug + 'static {
    /// Whether `credential` looks like one of this authority's tokens (a cheap header check;
    /// nothing is verified).
    fn accepts(&self, credential: &Credential) -> bool;

    /// Issues an access/refresh pair for a freshly authenticated principal.
    async fn issue(&self, principal: &Principal) -> Result<SessionTokens, TokenError>;

    /// Verifies an access token (signature, claims, expiry, revocation) and returns its
    /// principal (shared, so a cached verification hands it out without copying).
    async fn verify(&self, access_token: &SecretString) -> Result<Arc<Principal>, AuthError>;

    /// Exchanges a refresh token for a new pair. A refresh token works once; presenting it
    /// again revokes its whole family.
    async fn refresh(&self, refresh_token: &SecretString) -> Result<(Principal, SessionTokens), AuthError>;

    /// Revokes one token (access or refresh) by its id.
    async fn revoke_token(&self, token: &SecretString) -> Result<(), TokenError>;

    /// Revokes every token issued to `agent` until now.
    async fn revoke_agent(&self, agent: &AgentId) -> Result<(), TokenError>;
}
