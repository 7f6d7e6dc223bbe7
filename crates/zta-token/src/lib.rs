//! ZTA's own session tokens: the short-lived credential an agent carries after its primary
//! login, checked by the [`Guard`](zta_core::Guard) on every request.
//!
//! [`TokenService`] implements [`zta_core::TokenAuthority`]: it issues an access/refresh pair
//! for a verified principal, verifies access tokens (signature, header, claims, expiry and
//! revocation on every request), rotates refresh tokens with reuse detection, ends every
//! session `max_session` after the agent authenticated (no refresh extends it), revokes by
//! token, family or agent, rotates signing keys and publishes a JWKS. Tokens are signed with
//! an asymmetric key ([`SigningKey`]: EdDSA by default, ES256 or RS256) so verifiers cannot
//! mint them.
//!
//! ```text
//! header  {"alg":"EdDSA","typ":"zta-at+jwt"|"zta-rt+jwt","kid":"<16 chars>"}
//! claims  {"iss","aud","sub":<agent id>,"exp","nbf","iat","jti",
//!          "ztt":"access"|"refresh","fam":<family id>,
//!          "roles":[..],"groups":[..],"seg","tid","amr":[<original method>],"auth_time",
//!          "act":{"sub":<latest delegator>,"act":{..."sub":<original requester>}},
//!          "src_iss":<issuer of the primary identity>,
//!          "src_claims":{<further claims that issuer vouched for, e.g. Entra's oid>}}
//! ```
//!
//! ```
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use zta_core::{AgentId, AuthMethod, MemoryStateStore, Principal, TokenAuthority};
//! use zta_token::{Algorithm, SigningKey, TokenConfig, TokenService};
//!
//! let config = TokenConfig::new("https://zta.example", "my-agents");
//! let key = SigningKey::generate(Algorithm::EdDSA)?; // or SigningKey::from_pkcs8_pem_file(..)
//! let tokens = TokenService::new(config, key, Arc::new(MemoryStateStore::new()))?;
//!
//! let now = time::OffsetDateTime::now_utc();
//! let login = Principal::new(AgentId::new("research_bot")?, "static", AuthMethod::AgentKey, now, now + time::Duration::hours(1));
//! let pair = tokens.issue(&login).await?;
//! // The principal comes out only if its agent is not suspended (read with the revocation).
//! let principal = tokens.verify(&pair.access_token).await?.live().map_err(|(e, _)| e)?;
//! assert_eq!(principal.agent_id.as_str(), "research_bot");
//! assert_eq!(principal.auth_method, AuthMethod::SessionToken);
//! # Ok(())
//! # }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! Revocation state lives in a [`zta_core::StateStore`] under `jti:<jti>`, `fam:<fam>`,
//! `rt:<jti>` (refresh tokens already used) and the store's agent-wide revocation time.

mod claims;
mod config;
mod error;
mod key;
mod service;

pub use config::TokenConfig;
pub use error::Error;
pub use key::{Algorithm, SigningKey};
pub use service::TokenService;
